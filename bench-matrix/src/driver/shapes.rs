//! Classic allocator stress shapes (issue 13 item 2), as driver workloads.
//!
//! Every shape does the same work for every allocator: all random choices come
//! from per-thread seeded RNGs and every count (ops, churn points, leak shares)
//! is fixed by the arguments, never by timing.
//!
//! - `server`: T threads replace random blocks of one shared pool (an atomic
//!   swap per slot), so most blocks are freed by a thread other than the one
//!   that allocated them; each thread exits after `iters / generations` ops and
//!   is replaced by a new thread (thread churn), `generations` times.
//! - `prodcons`: half the threads (at least one) only allocate and hand blocks
//!   over through an SPSC ring, the other half only free what they receive.
//!   With one thread: batches of `ws` allocations, then freed in order.
//! - `fs_program`: one thread allocates `threads * 8` consecutive 16-byte blocks
//!   and hands block i to thread i % T; `fs_passive`: each thread gets one
//!   block allocated by thread 0, frees it and allocates its own of the same
//!   size (reuse of another thread's freed block). Timed: each thread writes
//!   its blocks `iters` times.
//! - `cache_thrash` (Hoard's cache-thrash, active false sharing made by the
//!   allocator): every thread, `n` times over, allocates one `size`-byte
//!   object, writes every byte of it `iters / n` times and frees it. The
//!   program shares nothing: a slowdown over one thread can only come from
//!   the allocator giving different threads' objects one cache line.
//! - `cache_scratch` (Hoard's cache-scratch, passive false sharing): as
//!   `cache_thrash`, but first the main thread allocates one object per
//!   thread back to back, and each thread frees the one it was given before
//!   its loop. An allocator that hands a freed block to the thread that freed
//!   it makes the threads write neighbouring bytes of one line.
//!   Timed in both: the loops (ops = byte writes).
//! - `rptest` (rpmalloc's benchmark as mimalloc-bench runs it: 16 threads,
//!   sizes 8 B-16 000 B with a linear drop-off, cross rate 2, 1000 slots, 100
//!   ops): each thread has `ws` slots; every loop frees 0.8 x 31-99 % of `op`
//!   slots walking them with one prime stride, then allocates 31-99 % of `op`
//!   (freeing what a slot held) walking with another, writing the block's
//!   first bytes, one byte per page and its last byte. Every `cross` loops it
//!   also allocates a batch of as many blocks and pushes it on the next
//!   thread's lock-free stack; each loop starts by freeing every batch pushed
//!   to it; after its loops it frees the batches still coming until every
//!   thread is done (timed, so the work does not depend on the interleaving).
//!   `iters` = loops per thread; ops = mallocs + frees. Sizes start at 16 B
//!   (the driver's floor; the classic run's 8 B share a class with 16 B in
//!   hz3, glibc and mimalloc).
//! - `leak`: churn like `small`, but `keep-pct` % of the frees are skipped
//!   (the block is leaked until the process exits).
//! - `realloc`: vector doubling to `max`, string append in small steps, then
//!   shrink by halves, all through `realloc`.

use super::*;

#[cfg_attr(not(test), allow(dead_code))]
pub const NAMES: &[&str] = &[
    "server",
    "prodcons",
    "fs_program",
    "fs_passive",
    "cache_thrash",
    "cache_scratch",
    "rptest",
    "leak",
    "realloc",
];

pub fn defaults(name: &str) -> Option<(usize, usize, usize, u64)> {
    Some(match name {
        "server" => (16, 1024, 8192, 200_000),
        "prodcons" => (16, 2048, 1024, 200_000),
        "fs_program" | "fs_passive" => (16, 16, 8, 1_000_000),
        // Size range unused: the object size is --size (default 1, as the
        // classic benchmarks run them); --n objects per thread.
        "cache_thrash" | "cache_scratch" => (16, 16, 1, 2_000_000),
        "rptest" => (16, 16000, 1000, 500),
        "leak" => (16, 2048, 4096, 200_000),
        "realloc" => (16, 1 << 20, 64, 2_000),
        _ => return None,
    })
}

#[inline(always)]
fn c_realloc(p: *mut u8, size: usize) -> *mut u8 {
    let q = unsafe { libc::realloc(p as *mut libc::c_void, size) } as *mut u8;
    if q.is_null() {
        oom(size);
    }
    q
}

/// Run shape `p.workload`; returns the summed thread outputs and the timed wall.
pub fn run(p: &Params) -> (ThreadOut, Duration) {
    match p.workload.as_str() {
        "server" => server(p),
        "prodcons" => prodcons(p),
        "fs_program" | "fs_passive" => false_sharing(p),
        "cache_thrash" | "cache_scratch" => cache_bench(p),
        "rptest" => rptest(p),
        "leak" | "realloc" => simple(p),
        other => die(&format!("unknown shape '{other}'")),
    }
}

fn join_all(hs: Vec<std::thread::JoinHandle<ThreadOut>>, total: &mut ThreadOut) {
    for h in hs {
        total.add(&h.join().expect("shape worker"));
    }
}

// ------------------------------------------------------------- server ----

fn server(p: &Params) -> (ThreadOut, Duration) {
    let t = p.threads;
    let gens = p.generations.max(1) as u64;
    let pool_n = p.ws * t;
    // Slot value: block address; the block's first word records the allocating
    // thread's stream id so a free can tell whether it is remote.
    let pool: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..pool_n)
            .map(|i| {
                let mut rng = Rng::new(p.seed, 1_000_000 + i as u64);
                let q = c_malloc(p.dist.pick(&mut rng));
                stamp(q, u64::MAX);
                AtomicUsize::new(q as usize)
            })
            .collect(),
    );
    let mut total = ThreadOut::default();
    let per_gen = p.iters / gens;
    let params = Arc::new(p.clone());
    let t0 = Instant::now();
    for g in 0..gens {
        let hs: Vec<_> = (0..t)
            .map(|tid| {
                let (pool, params) = (pool.clone(), params.clone());
                std::thread::spawn(move || {
                    let stream = g * 4096 + tid as u64;
                    let mut rng = Rng::new(params.seed, stream);
                    let mut out = ThreadOut::default();
                    let c0 = thread_cpu_ns();
                    let n = pool.len() as u64;
                    for _ in 0..per_gen {
                        let idx = rng.below(n) as usize;
                        let size = params.dist.pick(&mut rng);
                        let q = c_malloc(size);
                        stamp(q, stream);
                        // Timing-independent: which block a swap frees depends on
                        // the interleaving, so only what this thread allocated counts.
                        out.checksum = out.checksum.wrapping_add(size as u64);
                        let old = pool[idx].swap(q as usize, Ordering::AcqRel) as *mut u8;
                        let (owner, ok) = check(old);
                        if !ok {
                            out.corrupt += 1;
                        }
                        if owner != stream {
                            out.remote += 1;
                        }
                        c_free(old);
                        out.frees += 1;
                    }
                    out.ops = per_gen;
                    out.cpu_ns = thread_cpu_ns() - c0;
                    out
                })
            })
            .collect();
        join_all(hs, &mut total);
    }
    let wall = t0.elapsed();
    for s in pool.iter() {
        c_free(s.load(Ordering::Acquire) as *mut u8);
    }
    (total, wall)
}

// ----------------------------------------------------------- prodcons ----

fn pop(ring: &Ring, head: &mut usize) -> Option<usize> {
    let t = ring.tail.0.load(Ordering::Acquire);
    if *head == t {
        return None;
    }
    let v = ring.buf[*head & ring.mask].load(Ordering::Relaxed);
    *head += 1;
    ring.head.0.store(*head, Ordering::Release);
    Some(v)
}

fn prodcons(p: &Params) -> (ThreadOut, Duration) {
    let mut total = ThreadOut::default();
    if p.threads <= 1 {
        let mut rng = Rng::new(p.seed, 0);
        let mut batch: Vec<*mut u8> = Vec::with_capacity(p.ws);
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        let mut done = 0;
        while done < p.iters {
            let n = (p.ws as u64).min(p.iters - done);
            for _ in 0..n {
                let q = c_malloc(p.dist.pick(&mut rng));
                stamp(q, 7);
                batch.push(q);
            }
            for q in batch.drain(..) {
                let (_, ok) = check(q);
                total.corrupt += !ok as u64;
                c_free(q);
                total.frees += 1;
            }
            done += n;
        }
        total.ops = p.iters;
        total.cpu_ns = thread_cpu_ns() - c0;
        return (total, t0.elapsed());
    }
    let pairs = p.threads / 2;
    let rings: Arc<Vec<Ring>> = Arc::new((0..pairs).map(|_| Ring::new(p.ring)).collect());
    let clock = Clock::new(pairs * 2);
    let params = Arc::new(p.clone());
    // Producers do all the allocation work of the cell (iters per thread x threads).
    let per_prod = p.iters * p.threads as u64 / pairs as u64;
    let mut hs = Vec::new();
    for i in 0..pairs {
        let (r1, c1, params) = (rings.clone(), clock.clone(), params.clone());
        hs.push(std::thread::spawn(move || {
            let mut rng = Rng::new(params.seed, i as u64);
            let (rings, clock) = (r1, c1);
            let mut prod = Producer {
                ring: &rings[i],
                tail: 0,
                head_cache: 0,
            };
            let mut out = ThreadOut::default();
            clock.worker_start();
            let c0 = thread_cpu_ns();
            for _ in 0..per_prod {
                let q = c_malloc(params.dist.pick(&mut rng));
                stamp(q, i as u64);
                while !prod.push(q as usize) {
                    std::thread::yield_now();
                }
            }
            rings[i].done.0.store(true, Ordering::Release);
            out.ops = per_prod;
            out.cpu_ns = thread_cpu_ns() - c0;
            clock.worker_end();
            out
        }));
        let (r2, c2) = (rings.clone(), clock.clone());
        hs.push(std::thread::spawn(move || {
            let (rings, clock) = (r2, c2);
            let mut out = ThreadOut::default();
            let mut head = 0usize;
            clock.worker_start();
            let c0 = thread_cpu_ns();
            loop {
                match pop(&rings[i], &mut head) {
                    Some(v) => {
                        let q = v as *mut u8;
                        let (tag, ok) = check(q);
                        out.corrupt += (!ok || tag != i as u64) as u64;
                        c_free(q);
                        out.frees += 1;
                        out.remote += 1;
                    }
                    None => {
                        if rings[i].done.0.load(Ordering::Acquire)
                            && rings[i].tail.0.load(Ordering::Acquire) == head
                        {
                            break;
                        }
                        std::thread::yield_now();
                    }
                }
            }
            out.cpu_ns = thread_cpu_ns() - c0;
            clock.worker_end();
            out
        }));
    }
    clock.go();
    join_all(hs, &mut total);
    (total, clock.wall())
}

// ------------------------------------------------------- false sharing ----

fn false_sharing(p: &Params) -> (ThreadOut, Duration) {
    let t = p.threads;
    let per = if p.workload == "fs_program" { 8 } else { 1 };
    let size = p.dist.bounds().0;
    // Thread 0's consecutive blocks, dealt round-robin.
    let blocks: Vec<usize> = (0..t * per).map(|_| c_malloc(size) as usize).collect();
    let blocks = Arc::new(blocks);
    let clock = Clock::new(t);
    let params = Arc::new(p.clone());
    let passive = p.workload == "fs_passive";
    let hs: Vec<_> = (0..t)
        .map(|tid| {
            let (blocks, clock, params) = (blocks.clone(), clock.clone(), params.clone());
            std::thread::spawn(move || {
                let mut mine: Vec<*mut u8> =
                    (0..per).map(|k| blocks[k * t + tid] as *mut u8).collect();
                if passive {
                    // Free the block another thread allocated, take a fresh one.
                    c_free(mine[0]);
                    mine[0] = c_malloc(size);
                }
                for &q in &mine {
                    // malloc'd memory is undefined: start every block from 0.
                    unsafe { (q as *mut u64).write_volatile(0) };
                }
                let mut out = ThreadOut::default();
                clock.worker_start();
                let c0 = thread_cpu_ns();
                for i in 0..params.iters {
                    for &q in &mine {
                        unsafe {
                            let v = (q as *mut u64).read_volatile();
                            (q as *mut u64).write_volatile(v.wrapping_add(i | 1));
                        }
                    }
                }
                out.cpu_ns = thread_cpu_ns() - c0;
                clock.worker_end();
                out.ops = params.iters * per as u64;
                for q in mine {
                    out.checksum = out
                        .checksum
                        .wrapping_add(unsafe { (q as *const u64).read_volatile() });
                    if !(passive) {
                        continue;
                    }
                    c_free(q);
                }
                out
            })
        })
        .collect();
    clock.go();
    let mut total = ThreadOut::default();
    join_all(hs, &mut total);
    if !passive {
        for &b in blocks.iter() {
            c_free(b as *mut u8);
        }
    }
    (total, clock.wall())
}

// ------------------------------------- cache-thrash and cache-scratch ----

fn cache_bench(p: &Params) -> (ThreadOut, Duration) {
    let t = p.threads;
    let size = if p.size == 0 { 1 } else { p.size };
    // Objects each thread allocates, writes and frees in turn (the classic
    // benchmarks' `iterations`, 1000 unless --n says otherwise).
    let objs = p.n.max(1);
    // The writes a thread does (iters) are spread over its objects.
    let reps = (p.iters / (objs * size as u64)).max(1);
    let scratch = p.workload == "cache_scratch";
    // cache-scratch: one object per thread, allocated back to back by this thread.
    let given: Vec<usize> = if scratch {
        (0..t).map(|_| c_malloc(size) as usize).collect()
    } else {
        Vec::new()
    };
    let given = Arc::new(given);
    let clock = Clock::new(t);
    let hs: Vec<_> = (0..t)
        .map(|tid| {
            let (given, clock) = (given.clone(), clock.clone());
            std::thread::spawn(move || {
                if scratch {
                    c_free(given[tid] as *mut u8);
                }
                let mut out = ThreadOut::default();
                let mut sum = 0u64;
                clock.worker_start();
                let c0 = thread_cpu_ns();
                for _ in 0..objs {
                    let q = c_malloc(size);
                    for _ in 0..reps {
                        for k in 0..size {
                            // SAFETY: q holds `size` bytes.
                            unsafe {
                                q.add(k).write_volatile(k as u8);
                                sum = sum.wrapping_add(q.add(k).read_volatile() as u64);
                            }
                        }
                    }
                    c_free(q);
                    out.frees += 1;
                }
                out.cpu_ns = thread_cpu_ns() - c0;
                clock.worker_end();
                out.ops = objs * reps * size as u64;
                out.checksum = sum;
                out
            })
        })
        .collect();
    clock.go();
    let mut total = ThreadOut::default();
    join_all(hs, &mut total);
    (total, clock.wall())
}

// ------------------------------------------------------------- rptest ----

/// Operations per loop (the classic run's `op count`).
const RP_OPS: u64 = 100;
/// A batch goes to another thread every this many loops (`cross rate`).
const RP_CROSS: u64 = 2;
/// Slot strides for frees and allocations: primes that do not divide `ws`.
const RP_PRIMES: [usize; 8] = [511, 2047, 8191, 1031, 3067, 65537, 131071, 524287];

/// A size in [min, max] with rptest's linear drop-off: |w0 + w1 - 1| of an
/// even draw, w0 and w1 = 1 - two more even draws, so small sizes dominate.
fn rp_size(rng: &mut Rng, min: usize, max: usize) -> usize {
    let range = (max - min).max(1) as u64;
    let w0 = 1.0 - rng.below(range + 1) as f64 / range as f64;
    let w1 = 1.0 - rng.below(range + 1) as f64 / range as f64;
    let even = rng.below(range + 1) as f64;
    min + (even * (w0 + w1 - 1.0).abs()) as usize
}

/// Allocate `size` bytes and touch them as rptest does: the size in the
/// first word (our 16-byte tag here), one byte per further page, the last byte.
fn rp_alloc(size: usize, tag: u64) -> *mut u8 {
    let q = c_malloc(size);
    stamp(q, tag);
    let mut off = 4096;
    while off + 1 < size {
        unsafe { q.add(off).write_volatile(1) };
        off += 4096;
    }
    if size > 16 {
        // (Not into the tag.)
        unsafe { q.add(size - 1).write_volatile(1) };
    }
    q
}

/// Frees every batch on `stack` (pushed by other threads); returns the frees.
fn rp_drain(stack: &AtomicUsize, out: &mut ThreadOut) -> u64 {
    let mut b = stack.swap(0, Ordering::Acquire) as *mut usize;
    let mut n = 0;
    while !b.is_null() {
        // Batch layout: [next, count, blocks...], itself a malloc'd block.
        let (next, count) = unsafe { (*b, *b.add(1)) };
        for i in 0..count {
            let q = unsafe { *b.add(2 + i) } as *mut u8;
            let (_, ok) = check(q);
            out.corrupt += !ok as u64;
            c_free(q);
        }
        c_free(b as *mut u8);
        n += count as u64 + 1;
        out.remote += count as u64 + 1;
        b = next as *mut usize;
    }
    out.frees += n;
    n
}

fn rptest(p: &Params) -> (ThreadOut, Duration) {
    let t = p.threads;
    let ws = p.ws.max(1);
    let primes: Vec<usize> = RP_PRIMES
        .iter()
        .copied()
        .filter(|q| !ws.is_multiple_of(*q))
        .collect();
    let (alloc_step, free_step) = (primes[0] % ws, primes[1] % ws);
    let stacks: Arc<Vec<AtomicUsize>> = Arc::new((0..t).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let clock = Clock::new(t);
    let params = Arc::new(p.clone());
    let hs: Vec<_> = (0..t)
        .map(|tid| {
            let (stacks, done, clock, params) =
                (stacks.clone(), done.clone(), clock.clone(), params.clone());
            std::thread::spawn(move || {
                let (min, max) = params.dist.bounds();
                let mut rng = Rng::new(params.seed, tid as u64);
                let mut slots: Vec<*mut u8> = vec![std::ptr::null_mut(); ws];
                let (mut ai, mut fi) = (0usize, 0usize);
                let mut target = tid;
                let mut out = ThreadOut::default();
                let mut ops = 0u64;
                let tag = tid as u64;
                clock.worker_start();
                let c0 = thread_cpu_ns();
                for lp in 0..params.iters {
                    ops += rp_drain(&stacks[tid], &mut out);
                    let nfree = RP_OPS * 8 * (31 + rng.below(69)) / 1000;
                    let nalloc = RP_OPS * (31 + rng.below(69)) / 100;
                    for _ in 0..nfree {
                        let q = std::mem::replace(&mut slots[fi], std::ptr::null_mut());
                        if !q.is_null() {
                            let (_, ok) = check(q);
                            out.corrupt += !ok as u64;
                            c_free(q);
                            out.frees += 1;
                            ops += 1;
                        }
                        fi = (fi + free_step) % ws;
                    }
                    for _ in 0..nalloc {
                        let old = slots[ai];
                        if !old.is_null() {
                            c_free(old);
                            out.frees += 1;
                            ops += 1;
                        }
                        slots[ai] = rp_alloc(rp_size(&mut rng, min, max), tag);
                        ops += 1;
                        ai = (ai + alloc_step) % ws;
                    }
                    if t > 1 && lp % RP_CROSS == 0 {
                        let n = nalloc as usize;
                        let b = c_malloc((2 + n) * 8) as *mut usize;
                        for i in 0..n {
                            let q = rp_alloc(rp_size(&mut rng, min, max), tag);
                            unsafe { *b.add(2 + i) = q as usize };
                        }
                        unsafe { *b.add(1) = n };
                        ops += n as u64 + 1;
                        target = (target + 1) % t;
                        if target == tid {
                            target = (target + 1) % t;
                        }
                        let st = &stacks[target];
                        let mut head = st.load(Ordering::Relaxed);
                        loop {
                            unsafe { *b = head };
                            match st.compare_exchange_weak(
                                head,
                                b as usize,
                                Ordering::Release,
                                Ordering::Relaxed,
                            ) {
                                Ok(_) => break,
                                Err(h) => head = h,
                            }
                        }
                    }
                }
                // Free what the others still send until all are done (every
                // push happens before its sender counts itself done), so the
                // timed work is the same whatever the interleaving; the waits
                // themselves are not counted as CPU.
                done.fetch_add(1, Ordering::AcqRel);
                let mut idle = 0;
                loop {
                    let all = done.load(Ordering::Acquire) == t;
                    ops += rp_drain(&stacks[tid], &mut out);
                    if all {
                        break;
                    }
                    let w0 = thread_cpu_ns();
                    std::thread::yield_now();
                    idle += thread_cpu_ns() - w0;
                }
                for q in slots.iter_mut() {
                    if !q.is_null() {
                        c_free(*q);
                        out.frees += 1;
                        ops += 1;
                        *q = std::ptr::null_mut();
                    }
                }
                out.cpu_ns = thread_cpu_ns() - c0 - idle;
                clock.worker_end();
                out.ops = ops;
                out
            })
        })
        .collect();
    clock.go();
    let mut total = ThreadOut::default();
    join_all(hs, &mut total);
    (total, clock.wall())
}

// ---------------------------------------------------- leak and realloc ----

fn simple(p: &Params) -> (ThreadOut, Duration) {
    let clock = Clock::new(p.threads);
    let params = Arc::new(p.clone());
    let hs: Vec<_> = (0..p.threads)
        .map(|tid| {
            let (clock, params) = (clock.clone(), params.clone());
            std::thread::spawn(move || {
                if params.workload == "leak" {
                    leak_thread(&params, tid, &clock)
                } else {
                    realloc_thread(&params, tid, &clock)
                }
            })
        })
        .collect();
    clock.go();
    let mut total = ThreadOut::default();
    join_all(hs, &mut total);
    (total, clock.wall())
}

fn leak_thread(p: &Params, tid: usize, clock: &Clock) -> ThreadOut {
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
            if rng.below(100) >= p.keep_pct as u64 {
                c_free(q);
                out.frees += 1;
            }
        }
    }
    out.ops = p.iters;
    out.cpu_ns = thread_cpu_ns() - c0;
    clock.worker_end();
    free_all(&mut slots, &mut out);
    out
}

fn realloc_thread(p: &Params, tid: usize, clock: &Clock) -> ThreadOut {
    let mut rng = Rng::new(p.seed, tid as u64);
    let (min, max) = p.dist.bounds();
    let mut out = ThreadOut::default();
    clock.worker_start();
    let c0 = thread_cpu_ns();
    for i in 0..p.iters {
        let tag = rng.next();
        let mut size = min;
        let mut q = c_malloc(size);
        stamp(q, tag);
        match i % 3 {
            // vector doubling
            0 => {
                while size < max {
                    size *= 2;
                    q = c_realloc(q, size);
                    out.ops += 1;
                }
            }
            // string append: small random steps up to max / 16
            1 => {
                while size < max / 16 {
                    size += 1 + rng.below(64) as usize;
                    q = c_realloc(q, size);
                    out.ops += 1;
                }
            }
            // grow once, then shrink by halves
            _ => {
                size = max;
                q = c_realloc(q, size);
                while size > min {
                    size = (size / 2).max(min);
                    q = c_realloc(q, size);
                    out.ops += 1;
                }
            }
        }
        let (t, ok) = check(q);
        out.corrupt += (!ok || t != tag) as u64;
        out.checksum = out.checksum.wrapping_add(t);
        c_free(q);
        out.frees += 1;
    }
    out.cpu_ns = thread_cpu_ns() - c0;
    clock.worker_end();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_has_defaults() {
        for n in NAMES {
            assert!(defaults(n).is_some(), "{n}");
        }
        assert!(defaults("small").is_none());
    }

    #[test]
    fn rptest_sizes_drop_off_linearly() {
        let mut rng = Rng::new(1, 0);
        let n = 20_000;
        let (mut sum, mut small) = (0usize, 0usize);
        for _ in 0..n {
            let s = rp_size(&mut rng, 16, 16000);
            assert!((16..=16000).contains(&s), "{s}");
            sum += s;
            small += (s < 8000) as usize;
        }
        // Even sizes would average 8008 with half below 8000.
        assert!(sum / n < 6000, "mean {}", sum / n);
        assert!(small > n * 3 / 5, "{small} of {n} below 8000");
    }
}
