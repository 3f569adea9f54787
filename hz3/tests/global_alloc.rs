//! `hz3::Hz3` as the `#[global_allocator]` of a whole test program: collections,
//! strings and boxes moved between threads (cross-thread frees), thread churn,
//! over-aligned types, and realloc growth. Contents are verified everywhere.

use std::collections::HashMap;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

#[repr(align(4096))]
struct Page([u8; 4096]);

#[repr(align(64))]
#[derive(Clone, Copy)]
struct Line(u64);

#[test]
fn collections_and_realloc_growth() {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..1_000_000u64 {
        v.push(i * 3);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    let mut m = HashMap::new();
    for i in 0..100_000 {
        m.insert(format!("key-{i}"), vec![i as u8; i % 300]);
    }
    for i in (0..100_000).step_by(7) {
        let e = &m[&format!("key-{i}")];
        assert_eq!(e.len(), i % 300);
        assert!(e.iter().all(|&b| b == i as u8));
    }
    let mut s = String::new();
    for i in 0..50_000 {
        s.push_str(&i.to_string());
    }
    assert!(s.starts_with("0123456789101112"));
}

#[test]
fn over_aligned_types() {
    let pages: Vec<Box<Page>> = (0..64).map(|i| Box::new(Page([i as u8; 4096]))).collect();
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(&**p as *const Page as usize % 4096, 0);
        assert!(p.0.iter().all(|&b| b == i as u8));
    }
    let mut lines = vec![Line(1); 10];
    for i in 0..10_000 {
        lines.push(Line(i));
        assert_eq!(lines.as_ptr() as usize % 64, 0);
    }
    assert_eq!(lines.last().unwrap().0, 9_999);
}

#[test]
fn cross_thread_frees_and_thread_churn() {
    for wave in 0..20 {
        let (tx, rx) = mpsc::channel::<Vec<Box<[u64]>>>();
        let producers: Vec<_> = (0..8)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        let batch: Vec<Box<[u64]>> = (0..100)
                            .map(|i| {
                                let n = 1 + (i * 37 + round * 11 + t) % 5000;
                                vec![(wave * 1000 + t) as u64; n].into_boxed_slice()
                            })
                            .collect();
                        tx.send(batch).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumer = std::thread::spawn(move || {
            let mut n = 0;
            for batch in rx {
                for b in batch {
                    let v = b[0];
                    assert!(b.iter().all(|&x| x == v), "contents changed in flight");
                    assert!(v >= wave as u64 * 1000 && v < wave as u64 * 1000 + 8);
                    n += 1;
                }
            }
            n
        });
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), 8 * 20 * 100);
    }
    let s = hz3::stats();
    assert!(
        s.threads_exited >= 20 * 9,
        "thread exits not seen: {}",
        s.threads_exited
    );
    assert!(
        s.live_thread_caches < 20,
        "caches of exited threads leaked: {}",
        s.live_thread_caches
    );
}

#[test]
fn many_threads_beyond_owners() {
    // Far more live threads than owners.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(300));
    let hs: Vec<_> = (0..300)
        .map(|i| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let v: Vec<String> = (0..200).map(|j| format!("{i}-{j}")).collect();
                b.wait();
                v.iter().filter(|s| s.starts_with(&format!("{i}-"))).count()
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 200);
    }
}
