//! Randomized model test of the raw allocation API against a shadow map:
//! random malloc / calloc / realloc / aligned / free sequences (fixed seeds),
//! checking that live blocks never overlap, are aligned, keep their contents
//! (also across realloc), that usable size covers the request and is writable,
//! and that calloc memory is zero. Also run from several threads at once with
//! blocks freed by other threads than the ones that allocated them.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Barrier};

use hz3::raw;

// Every pointer passed below comes from hz3 and is tracked by the model.
fn free(p: *mut u8) {
    unsafe { raw::free(p) }
}
fn realloc(p: *mut u8, n: usize) -> *mut u8 {
    unsafe { raw::realloc(p, n) }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
struct Block {
    size: usize,
    usable: usize,
    fill: u8,
}

fn fill(p: *mut u8, n: usize, v: u8) {
    unsafe { std::ptr::write_bytes(p, v, n) }
}

fn check(p: *mut u8, n: usize, v: u8, what: &str) {
    let s = unsafe { std::slice::from_raw_parts(p, n) };
    if let Some(i) = s.iter().position(|&b| b != v) {
        panic!(
            "{what}: block {p:?} byte {i} of {n} is {:#x}, expected {v:#x}",
            s[i]
        );
    }
}

fn random_size(r: &mut Rng) -> usize {
    match r.below(100) {
        0..=59 => r.below(1025) as usize, // tiny classes, incl. 0
        60..=84 => 1025 + r.below(32 * 1024) as usize, // medium classes
        85..=96 => 32 * 1024 + r.below(300 * 1024) as usize, // across the large boundary
        _ => 256 * 1024 + r.below(3 << 20) as usize, // large
    }
}

struct Model {
    live: BTreeMap<usize, Block>,
}

impl Model {
    fn insert(&mut self, p: *mut u8, size: usize, align: usize, fill_v: u8) {
        assert!(!p.is_null(), "allocation of {size} failed");
        let a = p as usize;
        assert_eq!(
            a % align.max(16),
            0,
            "block {p:?} of {size} not aligned to {align}"
        );
        let usable = raw::usable_size(p);
        assert!(usable >= size, "usable {usable} < requested {size}");
        // No overlap with the neighbours (by usable size).
        if let Some((&q, b)) = self.live.range(..a).next_back() {
            assert!(
                q + b.usable <= a,
                "block {p:?} overlaps {q:#x}+{}",
                b.usable
            );
        }
        if let Some((&q, _)) = self.live.range(a..).next() {
            assert!(a + usable <= q, "block {p:?}+{usable} overlaps {q:#x}");
        }
        fill(p, usable, fill_v);
        self.live.insert(
            a,
            Block {
                size,
                usable,
                fill: fill_v,
            },
        );
    }

    fn take(&mut self, a: usize) -> Block {
        let b = self.live.remove(&a).unwrap();
        check(a as *mut u8, b.usable, b.fill, "contents");
        b
    }
}

fn run_model(seed: u64, steps: usize) {
    let mut r = Rng(seed | 1);
    let mut m = Model {
        live: BTreeMap::new(),
    };
    for step in 0..steps {
        let op = r.below(100);
        let fill_v = (step % 251) as u8 + 1;
        if op < 35 || m.live.is_empty() {
            let size = random_size(&mut r);
            let p = raw::malloc(size);
            m.insert(p, size, 16, fill_v);
        } else if op < 45 {
            let size = random_size(&mut r) / 4;
            let n = 1 + r.below(8) as usize;
            let p = raw::calloc(n, size);
            assert!(!p.is_null());
            check(p, n * size, 0, "calloc");
            m.insert(p, n * size, 16, fill_v);
        } else if op < 55 {
            let align = 1usize << (4 + r.below(13)); // 16 B .. 64 KiB
            let size = random_size(&mut r);
            let p = raw::aligned_alloc(align, size);
            m.insert(p, size, align, fill_v);
        } else if op < 70 {
            let k = r.below(m.live.len() as u64) as usize;
            let a = *m.live.keys().nth(k).unwrap();
            let b = m.take(a);
            let new = random_size(&mut r).max(1);
            // Re-fill so realloc must carry the pattern.
            let q = realloc(a as *mut u8, new);
            assert!(!q.is_null());
            check(
                q,
                b.size.min(new).min(b.usable),
                b.fill,
                "realloc kept contents",
            );
            m.insert(q, new, 16, fill_v);
        } else {
            let k = r.below(m.live.len() as u64) as usize;
            let a = *m.live.keys().nth(k).unwrap();
            m.take(a);
            free(a as *mut u8);
        }
    }
    for (&a, _) in m.live.clone().iter() {
        m.take(a);
        free(a as *mut u8);
    }
}

#[test]
fn model_single_thread_fixed_seeds() {
    for seed in [1u64, 42, 0xdead_beef, 7_777_777] {
        run_model(seed, 20_000);
    }
}

#[test]
fn model_edge_cases() {
    // malloc(0) is unique and freeable; realloc(p, 0) frees and returns null.
    let a = raw::malloc(0);
    let b = raw::malloc(0);
    assert!(!a.is_null() && !b.is_null() && a != b);
    free(a);
    free(b);
    free(std::ptr::null_mut());
    assert_eq!(raw::usable_size(std::ptr::null_mut()), 0);
    let p = raw::malloc(10);
    assert!(realloc(p, 0).is_null());
    // Huge requests fail with null.
    assert!(raw::malloc(usize::MAX).is_null());
    assert!(raw::malloc(isize::MAX as usize).is_null());
    assert!(raw::calloc(usize::MAX / 2, 3).is_null());
    // Every size class boundary gives a block of at least its size.
    for c in 1..raw::NCLS {
        let s = raw::class_size(c);
        for size in [s - 1, s, s + 1] {
            let p = raw::malloc(size);
            assert!(raw::usable_size(p) >= size);
            fill(p, raw::usable_size(p), 0x5a);
            free(p);
        }
    }
    // Large alignments up to 64 MiB.
    for shift in 12..=26 {
        let align = 1usize << shift;
        let p = raw::aligned_alloc(align, 100);
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0);
        fill(p, raw::usable_size(p), 1);
        free(p);
    }
}

#[test]
fn model_threads_with_cross_thread_frees() {
    const T: usize = 8;
    let barrier = Arc::new(Barrier::new(T));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..T).map(|_| mpsc::channel::<(usize, Block)>()).unzip();
    let txs = Arc::new(txs);
    let handles: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let txs = txs.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut r = Rng(0x1234_5678 + i as u64);
                let mut m = Model {
                    live: BTreeMap::new(),
                };
                barrier.wait();
                for step in 0..15_000 {
                    // Free what the neighbour sent us (allocated by another thread).
                    while let Ok((a, b)) = rx.try_recv() {
                        check(a as *mut u8, b.usable, b.fill, "cross-thread contents");
                        free(a as *mut u8);
                    }
                    let op = r.below(100);
                    if op < 50 || m.live.is_empty() {
                        let size = random_size(&mut r) / 8;
                        let p = raw::malloc(size);
                        m.insert(p, size, 16, (step % 200) as u8 + 1);
                    } else if op < 75 {
                        let a = *m.live.keys().next().unwrap();
                        let b = m.take(a);
                        fill(a as *mut u8, b.usable, b.fill);
                        let _ = txs[(i + 1) % T].send((a, b));
                    } else {
                        let a = *m.live.keys().next_back().unwrap();
                        m.take(a);
                        free(a as *mut u8);
                    }
                }
                barrier.wait();
                while let Ok((a, b)) = rx.try_recv() {
                    check(a as *mut u8, b.usable, b.fill, "cross-thread contents");
                    free(a as *mut u8);
                }
                for (&a, _) in m.live.clone().iter() {
                    m.take(a);
                    free(a as *mut u8);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn stats_reflect_activity() {
    let before = hz3::stats();
    let ptrs: Vec<_> = (0..1000).map(|_| raw::malloc(3000)).collect();
    let mid = hz3::stats();
    assert!(
        mid.span_bytes >= 1000 * 3000,
        "span bytes {} too small",
        mid.span_bytes
    );
    let c = raw::class_of(3000);
    assert!(mid.classes[c].refills > before.classes[c].refills);
    for p in ptrs {
        free(p);
    }
    let big = raw::malloc(10 << 20);
    assert!(hz3::stats().large_live_bytes >= 10 << 20);
    free(big);
    assert!(raw::trim() || hz3::stats().bytes_purged > 0 || hz3::stats().large_cached_bytes == 0);
}
