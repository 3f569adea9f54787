//! Coverage-guided fuzz target: random sequences of the hz3 raw API (malloc,
//! calloc, realloc, aligned_alloc, free, free_sized, usable_size, trim, frees
//! and allocations by another thread, thread exit) checked against a shadow
//! model of the live blocks.
//!
//! Checked after every step: live blocks never overlap (over their whole usable
//! size), every block is aligned (16 bytes, or the requested power of two),
//! `usable_size` covers the request, stays the same while the block lives and
//! is writable up to its end, small requests waste at most max(15 B, 1/steps)
//! (steps: the lane's classes per doubling, 8 or 12.5 % in the speed lanes),
//! contents survive until free (also across realloc up to the smaller size),
//! calloc memory is zero, and impossible requests (huge sizes, calloc
//! overflow) return null with errno ENOMEM and leave existing blocks alone.
//!
//! The input is a byte string read as a program: one opcode byte per step and
//! its operands; a short input simply ends (missing bytes read as zero). Blocks
//! bigger than 16 KiB are written and checked on their first and last 4 KiB and
//! 32 bytes of every 16 KiB in between, so multi-MiB blocks stay cheap.
//!
//! Build and run with `.ci/fuzz.sh` (stable Rust: libFuzzer through
//! `libfuzzer-sys`, sanitizer coverage through `-C` flags).

#![no_main]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

use hz3::raw;
use libfuzzer_sys::fuzz_target;

/// Blocks tracked at once.
const SLOTS: usize = 64;
/// Largest size of an ordinary (satisfiable) request.
const MAX_LARGE: usize = 6 << 20;
/// Blocks up to this size are written and checked in full.
const FULL_CHECK: usize = 16 << 10;
/// Largest class size ("small"); above it a request is large.
const SMALL_LIMIT: usize = 256 << 10;
/// Steps per input at most.
const MAX_STEPS: usize = 4096;

// ---------------------------------------------------------------- input

struct Input<'a> {
    d: &'a [u8],
    i: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// Size-class boundaries, computed here from the documented scheme and the
/// lane's two manifest values (not from hz3's tables): 16-byte steps to
/// `tiny_max`, then `classes_per_doubling` classes per doubling to 256 KiB.
fn boundaries() -> &'static [usize] {
    static B: OnceLock<Vec<usize>> = OnceLock::new();
    B.get_or_init(|| {
        let tiny = hz3::config::TINY_MAX;
        let steps = hz3::config::CLASSES_PER_DOUBLING;
        let mut v: Vec<usize> = (1..=tiny / 16).map(|k| k * 16).collect();
        let mut base = tiny;
        while base < SMALL_LIMIT {
            for k in 1..=steps {
                v.push(base + k * base / steps);
            }
            base *= 2;
        }
        v
    })
}

/// A request size: mostly tiny, often at or next to a class boundary, some
/// medium, some large (up to MAX_LARGE) and around the small/large limit.
fn size(r: &mut Input) -> usize {
    match r.u8() % 16 {
        0..=4 => r.u16() as usize % 1025,
        5..=8 => {
            let b = boundaries();
            let edge = b[r.u8() as usize % b.len()];
            (edge + (r.u8() % 5) as usize).saturating_sub(2)
        }
        9..=11 => 1025 + r.u32() as usize % (SMALL_LIMIT - 1024),
        12 => SMALL_LIMIT - 32 + r.u8() as usize % 64,
        13 | 14 => SMALL_LIMIT + r.u32() as usize % (MAX_LARGE - SMALL_LIMIT),
        _ => r.u8() as usize % 48,
    }
}

/// A power-of-two alignment from 1 B to 64 KiB.
fn align(r: &mut Input) -> usize {
    1usize << (r.u8() % 17)
}

/// A size no allocator can satisfy.
fn huge(r: &mut Input) -> usize {
    match r.u8() % 4 {
        0 => usize::MAX - r.u16() as usize,
        1 => usize::MAX - (r.u16() as usize) * 4096,
        2 => (isize::MAX as usize).wrapping_add(r.u16() as usize),
        _ => 1usize << (62 + r.u8() % 2),
    }
}

// ---------------------------------------------------------------- contents

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bigger blocks are sampled every this many bytes (and on both ends).
const SAMPLE_STRIDE: usize = 16 << 10;

/// The byte ranges of an `n`-byte block that are written and checked.
fn ranges(n: usize) -> Vec<(usize, usize)> {
    if n <= FULL_CHECK {
        return vec![(0, n)];
    }
    let mut v = vec![(0, 4096)];
    let mut at = 4096;
    while at + SAMPLE_STRIDE < n - 4096 {
        let off = at + (mix(at as u64) as usize % (SAMPLE_STRIDE - 32));
        v.push((off, off + 32));
        at += SAMPLE_STRIDE;
    }
    v.push((n - 4096, n));
    v
}

/// The pattern word covering bytes `8w .. 8w + 8` of a block.
fn word(seed: u64, w: usize) -> u64 {
    mix(seed ^ (w as u64).wrapping_mul(0x2545_f491_4f6c_dd1d))
}

fn pattern(seed: u64, i: usize) -> u8 {
    (word(seed, i / 8) >> ((i % 8) * 8)) as u8
}

fn fill(p: usize, n: usize, seed: u64) {
    for (lo, hi) in ranges(n) {
        let mut i = lo;
        while i < hi {
            if i % 8 == 0 && i + 8 <= hi {
                // SAFETY: i + 8 <= n <= the block's usable size; p is 16-aligned.
                unsafe { *((p + i) as *mut u64) = word(seed, i / 8).to_le() };
                i += 8;
            } else {
                // SAFETY: i < n <= the block's usable size; the block is live and ours.
                unsafe { *((p + i) as *mut u8) = pattern(seed, i) };
                i += 1;
            }
        }
    }
}

/// Checks bytes `[0, limit)` of a block of `n` usable bytes written by `fill(.., n, seed)`.
fn verify(p: usize, n: usize, limit: usize, seed: u64, what: &str) {
    for (lo, hi) in ranges(n) {
        let hi = hi.min(limit);
        let mut i = lo;
        while i < hi {
            if i % 8 == 0 && i + 8 <= hi {
                // SAFETY: as in `fill`.
                let got = unsafe { *((p + i) as *const u64) };
                if got == word(seed, i / 8).to_le() {
                    i += 8;
                    continue;
                }
            }
            // SAFETY: as in `fill`.
            let got = unsafe { *((p + i) as *const u8) };
            let want = pattern(seed, i);
            if got != want {
                panic!(
                    "hz3-fuzz: {what}: block {p:#x} ({n} usable bytes) byte {i} is {got:#04x}, expected {want:#04x} (overwritten by another block or not preserved)"
                );
            }
            i += 1;
        }
    }
}

fn verify_zero(p: usize, n: usize, what: &str) {
    for (lo, hi) in ranges(n) {
        for i in lo..hi {
            // SAFETY: i < n <= the block's size.
            let got = unsafe { *((p + i) as *const u8) };
            if got != 0 {
                panic!(
                    "hz3-fuzz: {what}: block {p:#x} of {n} bytes: byte {i} is {got:#04x}, not zero"
                );
            }
        }
    }
}

fn errno() -> i32 {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}
fn clear_errno() {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() = 0 }
}

// ---------------------------------------------------------------- model

#[derive(Clone, Copy, Debug)]
struct Block {
    p: usize,
    req: usize,
    usable: usize,
    seed: u64,
}

struct Model {
    slots: [Option<Block>; SLOTS],
    /// Live blocks: start -> end of the usable range.
    live: BTreeMap<usize, usize>,
    next_seed: u64,
}

impl Model {
    fn new(salt: u64) -> Self {
        Model {
            slots: [None; SLOTS],
            live: BTreeMap::new(),
            next_seed: mix(salt),
        }
    }

    /// A block the allocator just returned for a request of `req` bytes aligned to `align`.
    fn admit(&mut self, p: *mut u8, req: usize, align: usize, zeroed: bool, what: &str) -> Block {
        let p = p as usize;
        if p == 0 {
            panic!(
                "hz3-fuzz: {what}({req} bytes, align {align}) returned null (errno {})",
                errno()
            );
        }
        let a = align.max(16);
        assert!(
            p.is_multiple_of(a),
            "hz3-fuzz: {what}({req}, align {align}) = {p:#x} is not {a}-aligned"
        );
        let usable = raw::usable_size(p as *mut u8);
        assert!(
            usable >= req && usable > 0,
            "hz3-fuzz: {what}({req}) = {p:#x}: usable size {usable} is smaller than the request"
        );
        if align <= 16 && req <= SMALL_LIMIT {
            let r = req.max(1);
            // A fresh block wastes at most max(15 B, 1/steps of the request);
            // realloc may keep a block that is less than twice the new size,
            // and a block it grows into a mapping of its own may get a cached
            // mapping up to twice its page-rounded size.
            let steps = hz3::config::CLASSES_PER_DOUBLING;
            assert!(
                usable - r <= (r / steps).max(15)
                    || (what == "realloc" && usable <= 2 * r.next_multiple_of(4096)),
                "hz3-fuzz: {what}({req}) = {p:#x}: usable size {usable} wastes more than max(15 B, 1/{steps})"
            );
        }
        let end = p + usable;
        if let Some((&s, &e)) = self.live.range(..=p).next_back() {
            assert!(
                e <= p,
                "hz3-fuzz: {what}({req}) = {p:#x}..{end:#x} overlaps the live block {s:#x}..{e:#x}"
            );
        }
        if let Some((&s, &e)) = self.live.range(p..).next() {
            assert!(
                s >= end,
                "hz3-fuzz: {what}({req}) = {p:#x}..{end:#x} overlaps the live block {s:#x}..{e:#x}"
            );
        }
        if zeroed {
            verify_zero(p, req, what);
        }
        self.live.insert(p, end);
        self.next_seed = mix(self.next_seed);
        let b = Block {
            p,
            req,
            usable,
            seed: self.next_seed,
        };
        fill(p, usable, b.seed);
        b
    }

    /// Checks a live block's size and contents.
    fn check(&self, b: &Block, what: &str) {
        let u = raw::usable_size(b.p as *mut u8);
        assert_eq!(
            u, b.usable,
            "hz3-fuzz: {what}: usable size of live block {:#x} changed from {} to {u}",
            b.p, b.usable
        );
        verify(b.p, b.usable, b.usable, b.seed, what);
    }

    /// Takes a block out of the model (about to be freed), after checking it.
    fn retire(&mut self, b: &Block, what: &str) {
        self.check(b, what);
        self.live.remove(&b.p);
    }

    /// Frees whatever is in `slot` (checking it first).
    fn clear(&mut self, slot: usize) {
        if let Some(b) = self.slots[slot].take() {
            self.retire(&b, "free");
            // SAFETY: a live block of ours, freed once.
            unsafe { raw::free(b.p as *mut u8) };
        }
    }

    fn put(&mut self, slot: usize, b: Block) {
        self.clear(slot);
        self.slots[slot] = Some(b);
    }
}

// ---------------------------------------------------------------- helper thread

enum Cmd {
    Free(usize),
    Malloc(usize),
    Calloc(usize, usize),
    Aligned(usize, usize),
    Exit,
}

struct Helper {
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<usize>,
    handle: Option<JoinHandle<()>>,
}

impl Helper {
    fn spawn() -> Helper {
        let (tx, crx) = mpsc::channel::<Cmd>();
        let (ctx, rx) = mpsc::channel::<usize>();
        let handle = std::thread::spawn(move || {
            while let Ok(c) = crx.recv() {
                let r = match c {
                    // SAFETY: the main thread hands over a live block it no longer uses.
                    Cmd::Free(p) => unsafe {
                        raw::free(p as *mut u8);
                        0
                    },
                    Cmd::Malloc(n) => raw::malloc(n) as usize,
                    Cmd::Calloc(n, s) => raw::calloc(n, s) as usize,
                    Cmd::Aligned(a, n) => raw::aligned_alloc(a, n) as usize,
                    Cmd::Exit => return,
                };
                if ctx.send(r).is_err() {
                    return;
                }
            }
        });
        Helper {
            tx,
            rx,
            handle: Some(handle),
        }
    }

    fn call(&mut self, c: Cmd) -> usize {
        self.tx.send(c).expect("hz3-fuzz: helper thread gone");
        self.rx.recv().expect("hz3-fuzz: helper thread died")
    }

    /// Ends the helper thread (its cache goes back through the thread-exit path) and starts a new one.
    fn respawn(&mut self) {
        let _ = self.tx.send(Cmd::Exit);
        if let Some(h) = self.handle.take() {
            h.join().expect("hz3-fuzz: helper thread panicked");
        }
        *self = Helper::spawn();
    }
}

fn helper() -> MutexGuard<'static, Helper> {
    static H: OnceLock<Mutex<Helper>> = OnceLock::new();
    H.get_or_init(|| Mutex::new(Helper::spawn()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- the target

fn expect_enomem(p: *mut u8, what: &str, n: usize) {
    assert!(p.is_null(), "hz3-fuzz: {what}({n:#x}) succeeded: {p:?}");
    assert_eq!(
        errno(),
        libc::ENOMEM,
        "hz3-fuzz: {what}({n:#x}) returned null but errno is not ENOMEM"
    );
}

fn run(data: &[u8]) {
    let mut r = Input { d: data, i: 0 };
    let mut m = Model::new(data.len() as u64);
    let mut steps = 0;
    while !r.done() && steps < MAX_STEPS {
        steps += 1;
        let op = r.u8();
        let slot = r.u8() as usize % SLOTS;
        match op % 20 {
            // malloc
            0..=3 => {
                let n = size(&mut r);
                let b = m.admit(raw::malloc(n), n, 1, false, "malloc");
                m.put(slot, b);
            }
            // calloc (also with an element count), zero-checked
            4 => {
                let n = size(&mut r);
                let k = 1 + r.u8() as usize % 16;
                let each = n / k;
                let b = m.admit(raw::calloc(k, each), k * each, 1, true, "calloc");
                m.put(slot, b);
            }
            // aligned_alloc, any power of two up to 64 KiB
            5 | 6 => {
                let a = align(&mut r);
                let n = size(&mut r);
                let b = m.admit(raw::aligned_alloc(a, n), n, a, false, "aligned_alloc");
                m.put(slot, b);
            }
            // posix_memalign / valloc style: at least pointer-sized, page-sized and page-multiple sizes
            7 => {
                let a = align(&mut r).max(8);
                let n = size(&mut r);
                let (a, n) = if r.u8() & 1 == 0 {
                    (a, n)
                } else {
                    (4096, (n + 4095) & !4095)
                };
                let b = m.admit(raw::aligned_alloc(a, n), n, a, false, "posix_memalign");
                m.put(slot, b);
            }
            // realloc (grow, shrink, same class, across small/large)
            8..=10 => {
                let n = size(&mut r);
                match m.slots[slot].take() {
                    None => {
                        // SAFETY: realloc(NULL, n) is malloc.
                        let q = unsafe { raw::realloc(std::ptr::null_mut(), n) };
                        let b = m.admit(q, n, 1, false, "realloc(NULL)");
                        m.slots[slot] = Some(b);
                    }
                    Some(b) => {
                        m.check(&b, "before realloc");
                        // SAFETY: a live block of ours.
                        let q = unsafe { raw::realloc(b.p as *mut u8, n) };
                        if n == 0 {
                            assert!(
                                q.is_null(),
                                "hz3-fuzz: realloc(p, 0) must free and return null"
                            );
                            m.live.remove(&b.p);
                        } else {
                            let keep = b.req.min(n);
                            assert!(
                                !q.is_null(),
                                "hz3-fuzz: realloc({:#x}, {n}) returned null",
                                b.p
                            );
                            // The first `keep` bytes moved with the block.
                            verify(q as usize, b.usable, keep, b.seed, "realloc contents");
                            m.live.remove(&b.p);
                            let nb = m.admit(q, n, 1, false, "realloc");
                            m.slots[slot] = Some(nb);
                        }
                    }
                }
            }
            // free / sized free / realloc to 0
            11 | 12 => {
                if let Some(b) = m.slots[slot].take() {
                    m.retire(&b, "free");
                    // SAFETY: a live block of ours, freed once.
                    unsafe {
                        match r.u8() % 3 {
                            0 => raw::free(b.p as *mut u8),
                            1 => raw::free_sized(b.p as *mut u8, b.req),
                            _ => assert!(raw::realloc(b.p as *mut u8, 0).is_null()),
                        }
                    }
                } else {
                    // SAFETY: free(NULL) is a no-op.
                    unsafe { raw::free(std::ptr::null_mut()) };
                    assert_eq!(raw::usable_size(std::ptr::null_mut()), 0);
                }
            }
            // check a live block
            13 => {
                if let Some(b) = m.slots[slot] {
                    m.check(&b, "live block");
                }
            }
            // free by another thread
            14 => {
                if let Some(b) = m.slots[slot].take() {
                    m.retire(&b, "remote free");
                    helper().call(Cmd::Free(b.p));
                }
            }
            // allocated by another thread, used and freed here
            15 => {
                let n = size(&mut r);
                let (q, a, zeroed, what) = match r.u8() % 3 {
                    0 => (helper().call(Cmd::Malloc(n)), 1, false, "remote malloc"),
                    1 => (helper().call(Cmd::Calloc(1, n)), 1, true, "remote calloc"),
                    _ => {
                        let a = align(&mut r);
                        (
                            helper().call(Cmd::Aligned(a, n)),
                            a,
                            false,
                            "remote aligned_alloc",
                        )
                    }
                };
                let b = m.admit(q as *mut u8, n, a, zeroed, what);
                m.put(slot, b);
            }
            // impossible requests: null, ENOMEM, nothing else touched
            16 => {
                let h = huge(&mut r);
                clear_errno();
                match r.u8() % 5 {
                    0 => expect_enomem(raw::malloc(h), "malloc", h),
                    1 => {
                        let a = align(&mut r);
                        expect_enomem(raw::aligned_alloc(a, h), "aligned_alloc", h)
                    }
                    2 => {
                        let k = 2 + r.u8() as usize;
                        let each = h / k + 1 + r.u8() as usize;
                        // k * each is huge or overflows: either way ENOMEM.
                        expect_enomem(raw::calloc(k, each), "calloc(k, huge / k)", h);
                    }
                    3 => expect_enomem(raw::calloc(h, 1), "calloc", h),
                    _ => {
                        if let Some(b) = m.slots[slot] {
                            // SAFETY: a live block of ours; on failure it stays ours.
                            let q = unsafe { raw::realloc(b.p as *mut u8, h) };
                            expect_enomem(q, "realloc", h);
                            m.check(&b, "block after a failed realloc");
                        }
                    }
                }
            }
            // thread exit of the helper (its cache and remote stash go back)
            17 => {
                if r.u8() < 32 {
                    helper().respawn();
                }
            }
            // malloc_trim
            18 => {
                if r.u8() < 16 {
                    raw::trim();
                }
            }
            // many small blocks of one size at once (fills spans, forces refills and flushes)
            _ => {
                let n = r.u16() as usize % 2049;
                let k = 1 + r.u8() as usize % 200;
                let mut v = Vec::with_capacity(k);
                for _ in 0..k {
                    v.push(m.admit(raw::malloc(n), n, 1, false, "malloc (burst)"));
                }
                // Odd ones first, then the rest: frees out of allocation order.
                for b in v.iter().skip(1).step_by(2).chain(v.iter().step_by(2)) {
                    m.retire(b, "free (burst)");
                    // SAFETY: a live block of ours, freed once.
                    unsafe { raw::free(b.p as *mut u8) };
                }
            }
        }
    }
    for s in 0..SLOTS {
        m.clear(s);
    }
    assert!(m.live.is_empty());
}

fuzz_target!(|data: &[u8]| run(data));
