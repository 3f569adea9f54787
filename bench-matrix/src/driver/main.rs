//! hz3-bench-driver: one benchmark workload, one process, one JSON line.
//!
//! Every block the workload measures comes from the C API (`libc::malloc`,
//! `libc::free`, resolved by the dynamic linker), so `LD_PRELOAD` decides which
//! allocator is measured. The driver's own bookkeeping (slot tables, rings,
//! the RSS timeline) is allocated before the timed region starts and freed
//! after it ends; nothing inside the timed loops allocates except through the
//! measured calls themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use bench_matrix::schema::{DriverOutput, FastpathOutput, Measured};

mod rss;
mod shapes;
mod trace;

use rss::Sampler;

const USAGE: &str = "\
usage: hz3-bench-driver <workload> [options]

workloads:
  small         random size 16 B..2 KiB, random free order over a working set
  medium        random size 4..32 KiB
  mixed         random size 16 B..32 KiB
  dist_app      80% 16..256 B, 15% 257..2048 B, 5% 2049..32768 B
  remote        T threads, R% of frees handed to the next thread through an SPSC ring
  cross128      remote over 16 B..128 KiB
  mstress       churn across thread generations; survivors outlive their thread
  malloc_large  5..25 MiB blocks, a bounded number live, some pages touched
  server        shared pool, random replacement, thread churn (--generations)
  prodcons      producers only allocate, consumers only free
  fs_program    one thread's consecutive 16 B blocks written by T threads
  fs_passive    blocks freed by another thread, reused, then written
  cache_thrash  each thread allocates, writes and frees its own small objects
                (Hoard's cache-thrash: --size B object, --n objects per thread)
  cache_scratch as cache_thrash, after freeing one of the main thread's
                back-to-back objects (Hoard's cache-scratch)
  rptest        rpmalloc's benchmark: scattered slot churn, 16 B..16000 B
                (linear drop-off), a batch to the next thread every 2 loops
  leak          churn with --keep-pct % of frees skipped (leaked)
  realloc       vector doubling, string append, shrink via realloc
  trace         replay a recorded allocation trace (--trace), objects split over threads
  fastpath      N malloc+free pairs of fixed sizes, one thread (for callgrind)

options (defaults depend on the workload):
  --threads T       worker threads                         [1]
  --iters N         iterations per thread                  [200000]
  --ws W            working-set slots per thread           [4096]
  --seed S          RNG seed                               [1]
  --min B --max B   size range in bytes
  --remote-pct R    share of frees handed off (remote)     [50]
  --ring N          ring capacity per thread (power of 2)  [4096]
  --settle-ms N     after the result line, light traffic for N ms, then a
                    second line {settled_rss_kib: K}       [0 = off]
  --live L          live blocks per thread (malloc_large)  [8]
  --touch-stride B  touch one byte every B (malloc_large)  [65536]
  --generations G   thread generations (mstress)           [5]
  --keep-pct K      survivors kept per generation (mstress)[25]
  --sample-ms MS    RSS sampling period                    [2]
  --timeline        emit a downsampled RSS timeline (always on for mstress)
  --n N             pairs (fastpath); objects per thread
                    (cache_thrash, cache_scratch: default 1000) [100000]
  --size B          fixed size for fastpath, 0 = cycle 16..2048 [0];
                    object size for cache_thrash/cache_scratch, 0 = 1 B
  --trace NAME      built-in trace (python3) or a .hz3trc path (trace) [python3]

tools: hz3-bench-driver trace-info FILE|NAME, trace-pack IN OUT [--max-bytes N]
";

#[derive(Clone, Copy, Debug)]
enum SizeDist {
    Uniform {
        min: usize,
        span: u64,
    },
    /// 80% 16..256, 15% 257..2048, 5% 2049..32768.
    DistApp,
}

impl SizeDist {
    fn uniform(min: usize, max: usize) -> SizeDist {
        assert!(max >= min && min > 0);
        SizeDist::Uniform {
            min,
            span: (max - min + 1) as u64,
        }
    }

    #[inline(always)]
    fn pick(&self, rng: &mut Rng) -> usize {
        match *self {
            SizeDist::Uniform { min, span } => min + rng.below(span) as usize,
            SizeDist::DistApp => {
                let c = rng.below(100);
                if c < 80 {
                    16 + rng.below(256 - 16 + 1) as usize
                } else if c < 95 {
                    257 + rng.below(2048 - 257 + 1) as usize
                } else {
                    2049 + rng.below(32768 - 2049 + 1) as usize
                }
            }
        }
    }

    fn bounds(&self) -> (usize, usize) {
        match *self {
            SizeDist::Uniform { min, span } => (min, min + span as usize - 1),
            SizeDist::DistApp => (16, 32768),
        }
    }
}

/// xorshift64* seeded through splitmix64: fast, fixed, identical everywhere.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed
            .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x632B_E59B_D9B4_E019);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, n) by multiply-high (no division in the hot loop); n < 2^32.
    #[inline(always)]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

#[derive(Clone, Debug)]
struct Params {
    workload: String,
    threads: usize,
    iters: u64,
    ws: usize,
    seed: u64,
    dist: SizeDist,
    remote_pct: u32,
    ring: usize,
    live: usize,
    touch_stride: usize,
    generations: u32,
    keep_pct: u32,
    sample_ms: u64,
    timeline: bool,
    /// Settling phase after the workload (ms of light traffic); 0 = off.
    settle_ms: u64,
    n: u64,
    size: usize,
    /// Trace to replay (`trace` workload).
    trace: String,
}

fn parse_args() -> Params {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        print!("{USAGE}");
        std::process::exit(if args.is_empty() { 2 } else { 0 });
    }
    let workload = args[0].clone();
    let (dmin, dmax, dws, diters) = match workload.as_str() {
        "small" | "remote" => (16, 2048, 4096, 200_000),
        "medium" => (4096, 32768, 1024, 100_000),
        "mixed" | "dist_app" => (16, 32768, 2048, 200_000),
        "cross128" => (16, 131072, 1024, 100_000),
        "mstress" => (16, 4096, 4096, 200_000),
        "malloc_large" => (5 << 20, 25 << 20, 8, 500),
        "fastpath" => (16, 2048, 1, 0),
        other if shapes::defaults(other).is_some() => shapes::defaults(other).unwrap(),
        other if trace::defaults(other).is_some() => trace::defaults(other).unwrap(),
        other => die(&format!("unknown workload '{other}'\n\n{USAGE}")),
    };
    let mut p = Params {
        workload: workload.clone(),
        threads: 1,
        iters: diters,
        ws: dws,
        seed: 1,
        dist: SizeDist::uniform(dmin, dmax),
        remote_pct: 50,
        ring: 4096,
        live: 8,
        touch_stride: 65536,
        generations: 5,
        keep_pct: 25,
        sample_ms: 2,
        timeline: workload == "mstress",
        // cache_thrash / cache_scratch: objects per thread, as the classic runs.
        n: if workload.starts_with("cache_") {
            1000
        } else {
            100_000
        },
        size: 0,
        settle_ms: 0,
        trace: "python3".into(),
    };
    if workload == "dist_app" {
        p.dist = SizeDist::DistApp;
    }
    let (mut min, mut max) = (dmin, dmax);
    let mut i = 1;
    let num = |i: usize| -> u64 {
        let v = args
            .get(i + 1)
            .unwrap_or_else(|| die(&format!("{} needs a value", args[i])));
        parse_num(v).unwrap_or_else(|| die(&format!("{}: bad number '{v}'", args[i])))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--threads" => p.threads = num(i) as usize,
            "--iters" => p.iters = num(i),
            "--ws" => p.ws = num(i) as usize,
            "--seed" => p.seed = num(i),
            "--min" => min = num(i) as usize,
            "--max" => max = num(i) as usize,
            "--remote-pct" => p.remote_pct = num(i) as u32,
            "--ring" => p.ring = num(i) as usize,
            "--live" => p.live = num(i) as usize,
            "--touch-stride" => p.touch_stride = num(i) as usize,
            "--generations" => p.generations = num(i) as u32,
            "--keep-pct" => p.keep_pct = num(i) as u32,
            "--sample-ms" => p.sample_ms = num(i),
            "--n" => p.n = num(i),
            "--size" => p.size = num(i) as usize,
            "--settle-ms" => p.settle_ms = num(i),
            "--trace" => p.trace = args.get(i + 1).cloned().unwrap_or_default(),
            "--timeline" => {
                p.timeline = true;
                i += 1;
                continue;
            }
            other => die(&format!("unknown option '{other}'\n\n{USAGE}")),
        }
        i += 2;
    }
    if workload != "dist_app" {
        if min < 16 || max < min {
            die(&format!(
                "bad size range {min}..{max} (min >= 16, max >= min)"
            ));
        }
        p.dist = SizeDist::uniform(min, max);
    }
    if p.threads == 0 || p.ws == 0 || p.live == 0 {
        die("--threads, --ws and --live must be > 0");
    }
    if p.remote_pct > 100 || p.keep_pct > 100 {
        die("--remote-pct and --keep-pct are percentages");
    }
    p.ring = p.ring.max(2).next_power_of_two();
    p.touch_stride = p.touch_stride.max(4096);
    p.generations = p.generations.max(1);
    p.sample_ms = p.sample_ms.max(1);
    p
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    let (digits, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

fn die(msg: &str) -> ! {
    eprintln!("hz3-bench-driver: {msg}");
    std::process::exit(2)
}

// ---------------------------------------------------------------- C API ----

#[inline(always)]
fn c_malloc(size: usize) -> *mut u8 {
    let p = unsafe { libc::malloc(size) } as *mut u8;
    if p.is_null() {
        oom(size);
    }
    p
}

#[inline(always)]
fn c_free(p: *mut u8) {
    unsafe { libc::free(p as *mut libc::c_void) }
}

#[cold]
fn oom(size: usize) -> ! {
    // No formatting machinery that might allocate: write a fixed message.
    let msg = b"hz3-bench-driver: malloc returned NULL\n";
    unsafe {
        libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len());
    }
    let _ = size;
    std::process::abort()
}

/// Write the tag into the first 16 bytes of a fresh block.
#[inline(always)]
fn stamp(p: *mut u8, tag: u64) {
    unsafe {
        (p as *mut u64).write_unaligned(tag);
        (p.add(8) as *mut u64).write_unaligned(!tag);
    }
}

/// Read the tag back before freeing; returns (tag, intact).
#[inline(always)]
fn check(p: *mut u8) -> (u64, bool) {
    unsafe {
        let a = (p as *const u64).read_unaligned();
        let b = (p.add(8) as *const u64).read_unaligned();
        (a, a == !b)
    }
}

/// Which shared object provides `malloc` in this process.
fn malloc_provider() -> String {
    unsafe {
        let sym = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
        if sym.is_null() {
            return "?".into();
        }
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(sym, &mut info) == 0 || info.dli_fname.is_null() {
            return "?".into();
        }
        std::ffi::CStr::from_ptr(info.dli_fname)
            .to_string_lossy()
            .into_owned()
    }
}

/// CPU time consumed by the calling thread (ns).
#[inline]
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ------------------------------------------------------------- results ----

#[derive(Default, Clone, Copy)]
struct ThreadOut {
    ops: u64,
    checksum: u64,
    corrupt: u64,
    frees: u64,
    remote: u64,
    /// CPU time this thread spent in its timed loop.
    cpu_ns: u64,
}

impl ThreadOut {
    fn add(&mut self, o: &ThreadOut) {
        self.ops += o.ops;
        self.checksum = self.checksum.wrapping_add(o.checksum);
        self.corrupt += o.corrupt;
        self.frees += o.frees;
        self.remote += o.remote;
        self.cpu_ns += o.cpu_ns;
    }
}

/// Shared timing: workers wait on `start` together, each records when its
/// timed loop began and ended; wall = last end - first start.
struct Clock {
    start: Barrier,
    epoch: Instant,
    first_start_ns: AtomicU64,
    last_end_ns: AtomicU64,
}

impl Clock {
    fn new(workers: usize) -> Arc<Clock> {
        Arc::new(Clock {
            start: Barrier::new(workers + 1),
            epoch: Instant::now(),
            first_start_ns: AtomicU64::new(u64::MAX),
            last_end_ns: AtomicU64::new(0),
        })
    }
    /// Main thread: release the workers.
    fn go(&self) {
        self.start.wait();
    }
    /// Worker: wait for the others, then note the start of the timed loop.
    fn worker_start(&self) {
        self.start.wait();
        let ns = self.epoch.elapsed().as_nanos() as u64;
        self.first_start_ns.fetch_min(ns, Ordering::Relaxed);
    }
    fn worker_end(&self) {
        let ns = self.epoch.elapsed().as_nanos() as u64;
        self.last_end_ns.fetch_max(ns, Ordering::Relaxed);
    }
    fn wall(&self) -> Duration {
        let s = self.first_start_ns.load(Ordering::Relaxed);
        let e = self.last_end_ns.load(Ordering::Relaxed);
        Duration::from_nanos(e.saturating_sub(s))
    }
}

// ------------------------------------------------------ churn (small…) ----

struct Slots {
    ptr: Vec<*mut u8>,
    tag: Vec<u64>,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            ptr: vec![std::ptr::null_mut(); n],
            tag: vec![0; n],
        }
    }
}

#[inline(always)]
fn alloc_into(slots: &mut Slots, idx: usize, dist: &SizeDist, rng: &mut Rng) {
    let size = dist.pick(rng);
    let p = c_malloc(size);
    let tag = rng.next() ^ size as u64;
    stamp(p, tag);
    slots.ptr[idx] = p;
    slots.tag[idx] = tag;
}

#[inline(always)]
fn release(slots: &mut Slots, idx: usize, out: &mut ThreadOut) -> *mut u8 {
    let p = slots.ptr[idx];
    let (t, ok) = check(p);
    if !ok || t != slots.tag[idx] {
        out.corrupt += 1;
    }
    out.checksum = out.checksum.wrapping_add(t);
    slots.ptr[idx] = std::ptr::null_mut();
    p
}

/// Fill half the working set so the timed loop starts in steady state.
fn prefill(slots: &mut Slots, dist: &SizeDist, rng: &mut Rng) {
    let n = slots.ptr.len();
    for i in (0..n).step_by(2) {
        alloc_into(slots, i, dist, rng);
    }
}

fn free_all(slots: &mut Slots, out: &mut ThreadOut) {
    for i in 0..slots.ptr.len() {
        if !slots.ptr[i].is_null() {
            let p = release(slots, i, out);
            c_free(p);
        }
    }
}

fn churn_thread(p: &Params, tid: usize, clock: &Clock) -> ThreadOut {
    let mut rng = Rng::new(p.seed, tid as u64);
    let mut slots = Slots::new(p.ws);
    let mut out = ThreadOut::default();
    prefill(&mut slots, &p.dist, &mut rng);
    let ws = p.ws as u64;
    clock.worker_start();
    let c0 = thread_cpu_ns();
    for _ in 0..p.iters {
        let idx = rng.below(ws) as usize;
        if slots.ptr[idx].is_null() {
            alloc_into(&mut slots, idx, &p.dist, &mut rng);
        } else {
            let q = release(&mut slots, idx, &mut out);
            c_free(q);
            out.frees += 1;
        }
    }
    out.ops = p.iters;
    out.cpu_ns = thread_cpu_ns() - c0;
    clock.worker_end();
    free_all(&mut slots, &mut out);
    out
}

// ------------------------------------------------------------- settle ----

/// Workloads that hand blocks to other threads (their cells carry an asked
/// remote rate and the remote-rate rule applies).
fn is_handoff(workload: &str) -> bool {
    matches!(workload, "remote" | "cross128")
}

/// After the workload freed everything: light allocation traffic (a few
/// small and page-sized blocks, alloc then free, every millisecond) for
/// `ms`, so that every lane's purge decay has passed; then the RSS.
/// Returns 0 when `ms` is 0 (not measured).
fn settle(ms: u64) -> u64 {
    if ms == 0 {
        return 0;
    }
    let end = Instant::now() + Duration::from_millis(ms);
    let mut i = 0u64;
    while Instant::now() < end {
        let size = if i.is_multiple_of(4) {
            4096
        } else {
            16 + (i % 64) as usize * 16
        };
        // Opaque to the optimizer: a malloc whose block is only written and
        // freed is otherwise removed with its free (LLVM knows both), and the
        // phase did no allocator traffic at all.
        let q = std::hint::black_box(c_malloc(std::hint::black_box(size)));
        stamp(q, i);
        c_free(std::hint::black_box(q));
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    rss::current_rss_kib()
}

// ------------------------------------------------------------- remote ----

#[repr(align(128))]
struct Padded<T>(T);

/// Bounded single-producer single-consumer ring of block addresses.
struct Ring {
    buf: Box<[AtomicUsize]>,
    mask: usize,
    head: Padded<AtomicUsize>, // consumer position
    tail: Padded<AtomicUsize>, // producer position
    done: Padded<AtomicBool>,  // producer finished pushing
}

impl Ring {
    fn new(cap: usize) -> Ring {
        let buf: Vec<AtomicUsize> = (0..cap).map(|_| AtomicUsize::new(0)).collect();
        Ring {
            buf: buf.into_boxed_slice(),
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            done: Padded(AtomicBool::new(false)),
        }
    }
}

struct Producer<'a> {
    ring: &'a Ring,
    tail: usize,
    head_cache: usize,
}

impl Producer<'_> {
    #[inline(always)]
    fn push(&mut self, v: usize) -> bool {
        let cap = self.ring.mask + 1;
        if self.tail - self.head_cache == cap {
            self.head_cache = self.ring.head.0.load(Ordering::Acquire);
            if self.tail - self.head_cache == cap {
                return false;
            }
        }
        self.ring.buf[self.tail & self.ring.mask].store(v, Ordering::Relaxed);
        self.tail += 1;
        self.ring.tail.0.store(self.tail, Ordering::Release);
        true
    }
}

/// Free everything currently in the ring; returns how many.
#[inline]
fn drain(ring: &Ring) -> usize {
    let h = ring.head.0.load(Ordering::Relaxed);
    let t = ring.tail.0.load(Ordering::Acquire);
    for i in h..t {
        c_free(ring.buf[i & ring.mask].load(Ordering::Relaxed) as *mut u8);
    }
    if t != h {
        ring.head.0.store(t, Ordering::Release);
    }
    t - h
}

fn remote_thread(p: &Params, tid: usize, rings: &[Ring], clock: &Clock) -> ThreadOut {
    let t = p.threads;
    let remote_on = t > 1 && p.remote_pct > 0;
    let out_ring = &rings[tid];
    let in_ring = &rings[(tid + t - 1) % t];
    let mut prod = Producer {
        ring: out_ring,
        tail: 0,
        head_cache: 0,
    };
    let mut rng = Rng::new(p.seed, tid as u64);
    let mut slots = Slots::new(p.ws);
    let mut out = ThreadOut::default();
    prefill(&mut slots, &p.dist, &mut rng);
    let ws = p.ws as u64;
    let pct = p.remote_pct as u64;
    clock.worker_start();
    let c0 = thread_cpu_ns();
    for i in 0..p.iters {
        if remote_on && i & 15 == 0 {
            drain(in_ring);
        }
        let idx = rng.below(ws) as usize;
        if slots.ptr[idx].is_null() {
            alloc_into(&mut slots, idx, &p.dist, &mut rng);
        } else {
            let q = release(&mut slots, idx, &mut out);
            out.frees += 1;
            // The draw happens whatever the ring state, so the RNG stream and
            // the checksum do not depend on timing.
            let want_remote = rng.below(100) < pct;
            if remote_on && want_remote {
                // A full ring waits (draining our own inbox meanwhile, so a
                // cycle of full rings cannot deadlock) instead of freeing
                // locally: every allocator hands off the same share.
                while !prod.push(q as usize) {
                    if drain(in_ring) == 0 {
                        std::thread::yield_now();
                    }
                }
                out.remote += 1;
            } else {
                c_free(q);
            }
        }
    }
    out.ops = p.iters;
    out.cpu_ns = thread_cpu_ns() - c0;
    clock.worker_end();
    free_all(&mut slots, &mut out);
    out_ring.done.0.store(true, Ordering::Release);
    if remote_on {
        loop {
            let finished = in_ring.done.0.load(Ordering::Acquire);
            let n = drain(in_ring);
            if finished && n == 0 && drain(in_ring) == 0 {
                break;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
    }
    out
}

// ------------------------------------------------------------ mstress ----

/// Survivors handed from generation g's thread i to generation g+1's thread i+1.
type Survivors = Mutex<Vec<(usize, u64)>>;

fn mstress_thread(
    p: &Params,
    gen: u32,
    tid: usize,
    inherit: &Survivors,
    pass_on: Option<&Survivors>,
) -> ThreadOut {
    let c0 = thread_cpu_ns();
    let mut rng = Rng::new(p.seed ^ ((gen as u64 + 1) << 40), tid as u64);
    let mut slots = Slots::new(p.ws);
    let mut out = ThreadOut::default();
    // Adopt the previous generation's survivors (allocated by a thread that has exited).
    {
        let mut inh = inherit.lock().unwrap();
        for (j, &(ptr, tag)) in inh.iter().enumerate().take(p.ws) {
            slots.ptr[j] = ptr as *mut u8;
            slots.tag[j] = tag;
        }
        inh.clear();
    }
    let ws = p.ws as u64;
    let iters = p.iters / p.generations as u64;
    for _ in 0..iters {
        let idx = rng.below(ws) as usize;
        if slots.ptr[idx].is_null() {
            alloc_into(&mut slots, idx, &p.dist, &mut rng);
        } else {
            let q = release(&mut slots, idx, &mut out);
            c_free(q);
            out.frees += 1;
        }
    }
    out.ops = iters;
    // Keep a fraction alive for the next generation, free the rest.
    match pass_on {
        Some(next) => {
            let mut keep = next.lock().unwrap(); // capacity reserved up front
            for i in 0..slots.ptr.len() {
                if slots.ptr[i].is_null() {
                    continue;
                }
                if rng.below(100) < p.keep_pct as u64 && keep.len() < keep.capacity() {
                    keep.push((slots.ptr[i] as usize, slots.tag[i]));
                    slots.ptr[i] = std::ptr::null_mut();
                } else {
                    let q = release(&mut slots, i, &mut out);
                    c_free(q);
                }
            }
        }
        None => free_all(&mut slots, &mut out),
    }
    out.cpu_ns = thread_cpu_ns() - c0;
    out
}

// --------------------------------------------------------- malloc_large ----

fn large_thread(p: &Params, tid: usize, clock: &Clock) -> ThreadOut {
    let mut rng = Rng::new(p.seed, tid as u64);
    let mut live: Vec<(*mut u8, usize, u64)> = vec![(std::ptr::null_mut(), 0, 0); p.live];
    let mut out = ThreadOut::default();
    let stride = p.touch_stride;
    let touch = |q: *mut u8, size: usize, tag: u64| {
        stamp(q, tag);
        let mut off = stride;
        while off < size {
            unsafe { q.add(off).write_volatile(tag as u8) };
            off += stride;
        }
    };
    let verify = |q: *mut u8, size: usize, tag: u64, out: &mut ThreadOut| {
        let (t, ok) = check(q);
        let mut bad = !ok || t != tag;
        let mut off = stride;
        while off < size {
            bad |= unsafe { q.add(off).read_volatile() } != tag as u8;
            off += stride;
        }
        out.corrupt += bad as u64;
        out.checksum = out.checksum.wrapping_add(t);
    };
    for slot in live.iter_mut().step_by(2) {
        let size = p.dist.pick(&mut rng);
        let q = c_malloc(size);
        let tag = rng.next();
        touch(q, size, tag);
        *slot = (q, size, tag);
    }
    let n = p.live as u64;
    clock.worker_start();
    let c0 = thread_cpu_ns();
    for _ in 0..p.iters {
        let idx = rng.below(n) as usize;
        let (q, size, tag) = live[idx];
        if q.is_null() {
            let size = p.dist.pick(&mut rng);
            let q = c_malloc(size);
            let tag = rng.next();
            touch(q, size, tag);
            live[idx] = (q, size, tag);
        } else {
            verify(q, size, tag, &mut out);
            c_free(q);
            live[idx].0 = std::ptr::null_mut();
            out.frees += 1;
        }
    }
    out.ops = p.iters;
    out.cpu_ns = thread_cpu_ns() - c0;
    clock.worker_end();
    for &(q, size, tag) in &live {
        if !q.is_null() {
            verify(q, size, tag, &mut out);
            c_free(q);
        }
    }
    out
}

// ------------------------------------------------------------ fastpath ----

fn fastpath(p: &Params) {
    const SIZES: [usize; 8] = [16, 32, 48, 64, 128, 256, 512, 2048];
    let mut sum = 0u64;
    for i in 0..p.n {
        let size = if p.size == 0 {
            SIZES[(i & 7) as usize]
        } else {
            p.size
        };
        let q = c_malloc(std::hint::black_box(size));
        unsafe { q.write_volatile(i as u8) };
        sum = sum.wrapping_add(unsafe { q.read_volatile() } as u64);
        c_free(std::hint::black_box(q));
    }
    let out = FastpathOutput {
        workload: "fastpath".into(),
        pairs: p.n,
        checksum: sum,
        malloc_from: malloc_provider(),
    };
    println!("{}", serde_json::to_string(&out).unwrap());
}

// ---------------------------------------------------------------- main ----

fn main() {
    if trace::tool(&std::env::args().skip(1).collect::<Vec<_>>()) {
        return;
    }
    let p = parse_args();
    if p.workload == "fastpath" {
        fastpath(&p);
        return;
    }
    let provider = malloc_provider();
    let threads = p.threads;

    let mut sampler = Sampler::start(Duration::from_millis(p.sample_ms));
    let baseline = rss::current_rss_kib();
    let mut total = ThreadOut::default();
    let wall: Duration;

    match p.workload.as_str() {
        "small" | "medium" | "mixed" | "dist_app" | "malloc_large" | "remote" | "cross128" => {
            let is_remote = matches!(p.workload.as_str(), "remote" | "cross128");
            let clock = Clock::new(threads);
            let rings: Arc<Vec<Ring>> = Arc::new(if is_remote {
                (0..threads).map(|_| Ring::new(p.ring)).collect()
            } else {
                Vec::new()
            });
            let params = Arc::new(p.clone());
            let handles: Vec<_> = (0..threads)
                .map(|tid| {
                    let (clock, rings, params) = (clock.clone(), rings.clone(), params.clone());
                    std::thread::Builder::new()
                        .name(format!("w{tid}"))
                        .spawn(move || match params.workload.as_str() {
                            "malloc_large" => large_thread(&params, tid, &clock),
                            "remote" | "cross128" => remote_thread(&params, tid, &rings, &clock),
                            _ => churn_thread(&params, tid, &clock),
                        })
                        .expect("spawn worker")
                })
                .collect();
            sampler.begin();
            clock.go();
            // Workers free everything after their timed loop; the sampler keeps
            // running until they joined, but only the timed window is averaged.
            let outs: Vec<ThreadOut> = handles
                .into_iter()
                .map(|h| h.join().expect("worker"))
                .collect();
            wall = clock.wall();
            sampler.end_at(wall);
            for o in &outs {
                total.add(o);
            }
        }
        "mstress" => {
            // Two survivor lists per thread, alternating between generations,
            // with capacity reserved before the clock starts.
            let lists: Arc<Vec<[Survivors; 2]>> = Arc::new(
                (0..threads)
                    .map(|_| {
                        [
                            Mutex::new(Vec::with_capacity(p.ws)),
                            Mutex::new(Vec::with_capacity(p.ws)),
                        ]
                    })
                    .collect(),
            );
            let params = Arc::new(p.clone());
            let t0 = Instant::now();
            sampler.begin();
            for g in 0..p.generations {
                let last = g + 1 == p.generations;
                let cur = (g % 2) as usize;
                let handles: Vec<_> = (0..threads)
                    .map(|tid| {
                        let (lists, params) = (lists.clone(), params.clone());
                        std::thread::spawn(move || {
                            // Thread tid inherits what thread tid-1 of the previous generation kept.
                            let from = &lists[(tid + threads - 1) % threads][cur];
                            let to = if last {
                                None
                            } else {
                                Some(&lists[tid][1 - cur])
                            };
                            mstress_thread(&params, g, tid, from, to)
                        })
                    })
                    .collect();
                for h in handles {
                    total.add(&h.join().expect("mstress worker"));
                }
            }
            wall = t0.elapsed();
            sampler.end_at(wall);
        }
        other if shapes::defaults(other).is_some() => {
            sampler.begin();
            let (t, w) = shapes::run(&p);
            total = t;
            wall = w;
            sampler.end_at(wall);
        }
        "trace" => {
            sampler.begin();
            let (t, w) = trace::run(&p);
            total = t;
            wall = w;
            sampler.end_at(wall);
        }
        other => die(&format!("unknown workload '{other}'")),
    }

    let stats = sampler.stop();
    let after = rss::current_rss_kib();
    let peak = rss::vm_hwm_kib().unwrap_or(stats.max_kib);
    let secs = wall.as_secs_f64().max(1e-9);
    let (min_size, max_size) = p.dist.bounds();
    let measured = Measured {
        threads: threads as u32,
        asked_remote_rate: if is_handoff(&p.workload) && threads > 1 {
            p.remote_pct as f64 / 100.0
        } else {
            0.0
        },
        remote_frees: total.remote,
        total_frees: total.frees,
        // Measured after the result line is out (below), so the runner can
        // start the next run while this process settles.
        settled_rss_kib: 0,
    };
    let mut out = DriverOutput {
        workload: p.workload.clone(),
        threads: threads as u32,
        iters_per_thread: p.iters,
        ws: if p.workload == "malloc_large" {
            p.live as u64
        } else {
            p.ws as u64
        },
        seed: p.seed,
        min_size: min_size as u64,
        max_size: max_size as u64,
        remote_pct: if is_handoff(&p.workload) {
            p.remote_pct
        } else {
            0
        },
        ops: total.ops,
        wall_s: secs,
        ops_per_sec: total.ops as f64 / secs,
        cpu_s: total.cpu_ns as f64 / 1e9,
        ops_per_cpu_sec: if total.cpu_ns > 0 {
            total.ops as f64 / (total.cpu_ns as f64 / 1e9)
        } else {
            0.0
        },
        baseline_rss_kib: baseline,
        peak_rss_kib: peak,
        mean_rss_kib: stats.mean_kib.unwrap_or(after.max(baseline)),
        after_rss_kib: after,
        remote_rate: 0.0,
        remote_frees: 0,
        total_frees: 0,
        asked_remote_rate: 0.0,
        remote_valid: true,
        settled_rss_kib: 0,
        checksum: total.checksum,
        corrupt: total.corrupt,
        samples: stats.samples,
        malloc_from: provider,
        timeline: if p.timeline {
            Some(stats.timeline)
        } else {
            None
        },
    };
    measured.report(&mut out);
    println!("{}", serde_json::to_string(&out).unwrap());
    if total.corrupt > 0 {
        eprintln!(
            "hz3-bench-driver: {} corrupted blocks detected",
            total.corrupt
        );
        std::process::exit(3);
    }
    if p.settle_ms > 0 {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let settled = settle(p.settle_ms);
        println!("{{\"settled_rss_kib\":{settled}}}");
    }
}
