//! Thread caches: per-thread bins of free objects per size class, the thread's
//! owner, its outbox, and the thread life cycle (create on first slow
//! path, hand everything back at thread exit through a pthread key destructor).
//!
//! Owns: the `TCache` structures and their pool (a reserved region, never
//! malloc), owner assignment. A cache is touched only by its thread, except by
//! the fork child (which abandons other threads' caches). Refill and flush go
//! to the owner's central cache in batches.
//! Calls up into `heartbeat` (a beat every `heartbeat::FREES_PER_BEAT`
//! fast-path frees), never holding a lock.
//! Must not touch another thread's cache or any span or page run directly
//! (`span`, `page_heap`).

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arena;
use crate::central;
use crate::config;
use crate::hardened;
use crate::inbox;
use crate::init;
use crate::os;
use crate::outbox::Outbox;
use crate::owner;
use crate::size_class::{CLASSES, NCLS};
use crate::stats;
use crate::sync::Locked;
use crate::tls;

/// The bins: per class a LIFO list of free objects (`head`) and `room`, how
/// many more objects the bin may take before it overflows (limit - count); a
/// free that drives it negative sends a batch back (one decrement and one sign
/// test on the fast path). Kept as arrays by field, not an array of bin
/// records: the fast paths reach `head[cls]` and `room[cls]` with the class id
/// scaled by the addressing mode (8 and 4 bytes), with no shift or add to turn
/// the class into a record offset.
#[repr(C)]
pub struct Bins {
    pub head: [*mut u8; NCLS],
    pub room: [i32; NCLS],
    pub limit: [u32; NCLS],
}

impl Bins {
    #[inline(always)]
    pub fn count(&self, cls: usize) -> usize {
        (self.limit[cls] as i64 - self.room[cls] as i64) as usize
    }

    /// Pops a block of class `cls` (null when the bin is empty); the hardened
    /// build checks the link it follows.
    ///
    /// # Safety
    /// The bins belong to the calling thread (or are EMPTY's, which are always
    /// empty); cls < NCLS.
    #[inline(always)]
    pub unsafe fn pop(&mut self, cls: usize) -> *mut u8 {
        debug_assert!(cls < NCLS);
        let h = *self.head.get_unchecked(cls);
        if !h.is_null() {
            let next = *(h as *mut *mut u8);
            hardened::check_link(cls, next);
            *self.head.get_unchecked_mut(cls) = next;
            *self.room.get_unchecked_mut(cls) += 1;
        }
        h
    }

    /// Pushes the freed block `p` of class `cls`; true when the bin went over
    /// its limit (the caller then calls `overflow`).
    ///
    /// # Safety
    /// The bins belong to the calling thread, `p` is a free block of class
    /// `cls` and cls < NCLS.
    #[inline(always)]
    pub unsafe fn push(&mut self, cls: usize, p: *mut u8) -> bool {
        debug_assert!(cls < NCLS);
        *(p as *mut *mut u8) = *self.head.get_unchecked(cls);
        *self.head.get_unchecked_mut(cls) = p;
        let r = self.room.get_unchecked_mut(cls);
        *r -= 1;
        *r < 0
    }
}

#[repr(C)]
pub struct TCache {
    pub bins: Bins,
    /// `arena::expect_for_owner(owner)`: what `arena::local_class` compares a tag with.
    pub expect: u32,
    pub owner: u32,
    /// Fast-path frees left before the next heartbeat (`beat`): one
    /// decrement and one sign test per free, next to `expect`, which the
    /// free fast path reads already.
    tick: i32,
    pool_next: *mut TCache,
    /// Slow-path events (refills, overflows) since the cache was created.
    events: u32,
    /// Bit `c` set: the bin of class `c` may hold blocks of other owners
    /// (adopted by `free_remote`); cleared when the bin runs empty (`refill`).
    /// A bin whose bit is clear is flushed whole to the own central cache.
    mixed: [u64; MIXED_WORDS],
    /// Blocks of other owners this thread may still adopt (`free_remote`):
    /// earned by taking objects from the own owner (refills), so only a
    /// thread that keeps needing memory adopts, and only about as much as it
    /// needs (a thread that only frees adopts nothing; a block circulating in
    /// one thread stops being adopted and goes home).
    credit: u32,
    /// Last: its bulk (the dense bank) is touched only as it is used.
    pub outbox: Outbox,
}

/// Adoptions one object taken by a refill earns.
const CREDIT_PER_REFILLED: u32 = 2;
/// Most adoptions a thread may have in hand.
const CREDIT_MAX: u32 = 1024;

const MIXED_WORDS: usize = NCLS.div_ceil(64);

/// The cache of threads that have none: every bin empty (`head` null, so malloc
/// falls into its slow path) and `expect` `arena::EXPECT_NONE`, a value no tag
/// matches (a bit no tag has; 0 would match free pages), so free does too.
/// Never written.
pub struct EmptyCache(core::cell::UnsafeCell<TCache>);
// SAFETY: never written after construction; only read by the fast paths.
unsafe impl Sync for EmptyCache {}
pub static EMPTY: EmptyCache = EmptyCache(core::cell::UnsafeCell::new({
    // SAFETY: all-zero is a valid TCache (null pointers, zero counters).
    let mut t: TCache = unsafe { core::mem::zeroed() };
    t.expect = NO_OWNER_EXPECT;
    t
}));

/// An `expect` that no tag matches.
pub const NO_OWNER_EXPECT: u32 = arena::EXPECT_NONE;

#[inline(always)]
pub fn empty() -> *mut TCache {
    EMPTY.0.get()
}

/// Most thread caches alive at once; threads beyond run uncached (slower, correct).
const MAX_CACHES: usize = 1 << 16;

struct Pool {
    /// Current chunk and how many of its caches were handed out.
    base: usize,
    used: usize,
    /// Caches ever handed out.
    total: usize,
    free: *mut TCache,
    /// The first this many caches of `free` came back since the last
    /// `drop_free_caches` (the list is LIFO: the rest were dropped already).
    undropped: usize,
}

/// Caches mapped at once.
const POOL_CHUNK: usize = 64;
// SAFETY: guarded by its lock.
unsafe impl Send for Pool {}

static POOL: Locked<Pool> = Locked::new(Pool {
    base: 0,
    used: 0,
    total: 0,
    free: ptr::null_mut(),
    undropped: 0,
});
/// Owners new threads are spread over (the first N): set at init from the
/// lane's `owners_per_cpu` and the CPUs available, or from HZ3_OWNERS, and by
/// mallopt(M_ARENA_MAX). Read only by `pick_owner` when a thread cache is
/// created, so a change at any time is safe: threads keep the owner they have.
static OWNERS_IN_USE: AtomicUsize = AtomicUsize::new(config::OWNERS);

/// How many owners threads are spread over: `HZ3_OWNERS` if set (clamped to
/// 1..=OWNERS), else the lane's `owners_per_cpu` times the CPUs this process may
/// run on, at most OWNERS (all of them when `owners_per_cpu` is 0). An owner is a
/// unit of lock and cache separation; more owners than CPUs can run at once
/// buy no concurrency, only spans and pages held apart from each other.
pub fn owners_in_use_for(env: Option<usize>, cpus: usize) -> usize {
    let n = match env {
        Some(n) => n,
        None if config::OWNERS_PER_CPU == 0 => config::OWNERS,
        None => cpus.saturating_mul(config::OWNERS_PER_CPU),
    };
    n.clamp(1, config::OWNERS)
}

/// Called from init and mallopt(M_ARENA_MAX).
pub fn set_owners_in_use(n: usize) {
    OWNERS_IN_USE.store(n.clamp(1, config::OWNERS), Ordering::Relaxed);
}

pub fn owners_in_use() -> usize {
    OWNERS_IN_USE.load(Ordering::Relaxed)
}
pub static LIVE_CACHES: AtomicUsize = AtomicUsize::new(0);

fn pool_take() -> *mut TCache {
    POOL.with(|p| {
        if !p.free.is_null() {
            let t = p.free;
            // SAFETY: pool entries are valid TCache slots.
            p.free = unsafe { (*t).pool_next };
            p.undropped = p.undropped.saturating_sub(1);
            return t;
        }
        if p.total == MAX_CACHES {
            return ptr::null_mut();
        }
        if p.base == 0 || p.used == POOL_CHUNK {
            // Map caches a chunk at a time, so the address space used grows with
            // the threads (a process under `ulimit -v` still gets its caches).
            let m = os::map(POOL_CHUNK * core::mem::size_of::<TCache>());
            if m.is_null() {
                return ptr::null_mut();
            }
            p.base = m as usize;
            p.used = 0;
        }
        p.used += 1;
        p.total += 1;
        (p.base + (p.used - 1) * core::mem::size_of::<TCache>()) as *mut TCache
    })
}

fn pool_put(t: *mut TCache) {
    POOL.with(|p| {
        // SAFETY: `t` came from pool_take and is no longer used by any thread.
        unsafe { (*t).pool_next = p.free };
        p.free = t;
        p.undropped += 1;
    });
}

/// Gives back the resident pages of the outboxes of caches in the pool
/// (threads that exited; issue 16, settled RSS: a dense bank is ~18 KiB per
/// thread with 8 owners), at tick time (`owner::age_tick`), not at thread
/// exit. Only whole pages from the outbox on: the header before it
/// (`pool_next` and the bins) stays, and what is dropped reads as zero,
/// which is a clean outbox (`Outbox::init`: a flushed bank is all empty
/// entries, as a zeroed one). A cache taken again faults in only the pages
/// its thread uses, as a fresh one does.
pub fn drop_free_caches() {
    POOL.with(|p| {
        let mut t = p.free;
        for _ in 0..p.undropped {
            if t.is_null() {
                break;
            }
            // SAFETY: `t` is a pool entry (a valid TCache slot no thread
            // uses, its outbox flushed by `destroy`); the pool lock is held.
            unsafe {
                let from = (ptr::addr_of!((*t).outbox) as usize + os::PAGE - 1) & !(os::PAGE - 1);
                let to = (t as usize + core::mem::size_of::<TCache>()) & !(os::PAGE - 1);
                if to > from {
                    os::purge(from as *mut u8, to - from);
                }
                t = (*t).pool_next;
            }
        }
        p.undropped = 0;
    });
}

/// The least-loaded owner in use, ties going to the lowest index: a thread that
/// replaces an exited one reuses the same owner's warm spans and segments
/// instead of spreading the process over every owner.
fn pick_owner() -> usize {
    let mut best = 0;
    let mut best_n = u32::MAX;
    for (o, rec) in owner::all()[..owners_in_use()].iter().enumerate() {
        let n = rec.live.load(Ordering::Relaxed);
        if n < best_n {
            best = o;
            best_n = n;
            if n == 0 {
                break;
            }
        }
    }
    best
}

/// Returns this thread's cache, creating it if the thread has none. Null when the
/// thread must run uncached (re-entry during creation, after thread exit, no memory).
#[cold]
pub fn get_or_create() -> *mut TCache {
    let t = tls::tc();
    if !t.is_null() {
        return t;
    }
    if tls::state() != tls::FRESH || !init::ensure() {
        return ptr::null_mut();
    }
    tls::set_state(tls::CREATING);
    let t = pool_take();
    if t.is_null() {
        tls::set_state(tls::FRESH);
        return t;
    }
    let owner = pick_owner();
    let before = owner::of(owner).live.fetch_add(1, Ordering::Relaxed);
    owner::on_thread_start(owner, before);
    owner::of(owner).starts.fetch_add(1, Ordering::Relaxed);
    LIVE_CACHES.fetch_add(1, Ordering::Relaxed);
    stats::THREADS_STARTED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `t` is a fresh slot owned by this thread from now on.
    unsafe {
        (*t).expect = arena::expect_for_owner(owner);
        (*t).owner = owner as u32;
        let b = &mut (*t).bins;
        for (c, info) in CLASSES.iter().enumerate() {
            b.head[c] = ptr::null_mut();
            b.limit[c] = info.limit;
            b.room[c] = info.limit as i32;
        }
        // The slot is fresh from `os::map` (zero) or came back through
        // `destroy`, whose `drain` flushed the outbox: its bank is clean.
        (*t).outbox.init();
        (*t).events = 0;
        (*t).tick = crate::heartbeat::FREES_PER_BEAT;
        (*t).mixed = [0; MIXED_WORDS];
        (*t).credit = 0;
    }
    tls::set_tc(t);
    // May allocate (it re-enters through the new cache): registers the exit hook.
    init::register_thread_exit(t as *mut u8);
    tls::set_state(tls::ACTIVE);
    t
}

/// Thread exit: hands the cache's objects back and the cache to the pool.
///
/// # Safety
/// `t` is the calling thread's cache.
pub unsafe fn destroy(t: *mut TCache) {
    if t.is_null() || tls::tc() != t {
        return;
    }
    drain(t);
    let owner = (*t).owner as usize;
    tls::set_tc(ptr::null_mut());
    tls::set_state(tls::DEAD);
    let last = owner::of(owner).live.fetch_sub(1, Ordering::Relaxed) == 1;
    if last {
        // The owner's last thread: nobody would drain its inboxes. The fence
        // pairs with the one in `inbox::deliver`: a batch delivered after
        // this point sees the owner without threads and drains it itself.
        core::sync::atomic::fence(Ordering::SeqCst);
    }
    // One thread left in the process (the main thread after its workers).
    let alone = LIVE_CACHES.fetch_sub(1, Ordering::Relaxed) == 2;
    if crate::options::departed_return() {
        owner::after_thread_exit(owner, last, alone);
    } else if last {
        inbox::drain_to_central(owner);
    }
    stats::THREADS_EXITED.fetch_add(1, Ordering::Relaxed);
    pool_put(t);
}

/// Sends every cached object of `t` back to the central caches.
///
/// # Safety
/// `t` is the calling thread's cache.
pub unsafe fn drain(t: *mut TCache) {
    let owner = (*t).owner as usize;
    for c in 1..NCLS {
        let b = &mut (*t).bins;
        if !b.head[c].is_null() {
            let h = b.head[c];
            b.head[c] = ptr::null_mut();
            let n = b.count(c);
            b.room[c] = b.limit[c] as i32;
            send_back(t, owner, c, h, n);
        }
    }
    (*t).outbox.flush_all();
}

/// Refills the bin of `cls` and returns one object, or null when the arena is exhausted.
///
/// # Safety
/// `t` is the calling thread's cache and its bin of `cls` is empty.
#[cold]
pub unsafe fn refill(t: *mut TCache, cls: usize) -> *mut u8 {
    (*t).outbox.on_slow_event();
    on_event(t);
    // The bin is empty: no adopted block of another owner is left in it.
    set_mixed(t, cls, false);
    let owner = (*t).owner as usize;
    let l = inbox::take(owner, cls);
    if !l.is_null() {
        earn(t, CLASSES[cls].batch as usize);
        return take_inbox(t, cls, l);
    }
    let info = CLASSES[cls];
    let (head, n) = central::refill(owner, cls, info.batch as usize, info.limit as usize);
    if n == 0 {
        return ptr::null_mut();
    }
    earn(t, n);
    let b = &mut (*t).bins;
    b.head[cls] = *(head as *mut *mut u8);
    b.room[cls] = b.limit[cls] as i32 - (n as i32 - 1);
    // The bin is consistent again: starting the thread may allocate through it.
    crate::background::ensure_started();
    head
}

/// Slow events between two checks of the thread's total cached bytes.
const SCAVENGE_EVERY: u32 = 64;

/// Counts a slow-path event; every `SCAVENGE_EVERY` events the thread's cached
/// bytes are summed and, above the lane's budget, bins give back half, largest
/// class first, until 3/4 of the budget is left. The same beat lets the large
/// cache and every page heap decay in a program that has stopped allocating
/// large blocks or freeing pages (decay driven by the clock, not by the owner's
/// own frees).
#[inline]
unsafe fn on_event(t: *mut TCache) {
    (*t).events = (*t).events.wrapping_add(1);
    if (*t).events.is_multiple_of(SCAVENGE_EVERY) {
        scavenge(t);
        crate::large::decay_tick();
        owner::decay_tick();
    }
}

/// Slow-path events (refills, overflows) of `t` since it was created.
pub unsafe fn slow_path_events(t: *mut TCache) -> u32 {
    (*t).events
}

/// Bytes of objects cached in the bins of `t`.
pub unsafe fn cached_bytes(t: *mut TCache) -> usize {
    let b = &(*t).bins;
    CLASSES
        .iter()
        .enumerate()
        .map(|(c, info)| b.count(c) * info.size as usize)
        .sum()
}

/// This thread's cache budget: the lane's per-thread bound, shrunk so that all
/// live threads together stay within the lane's total.
fn budget() -> usize {
    let live = LIVE_CACHES.load(Ordering::Relaxed).max(1);
    let share = (config::TCACHE_TOTAL_MIB << 20) / live;
    share.clamp(64 * 1024, config::TCACHE_KIB * 1024)
}

#[cold]
unsafe fn scavenge(t: *mut TCache) {
    let budget = budget();
    let mut cached = cached_bytes(t);
    if cached <= budget {
        return;
    }
    // Down to 3/4 of the budget (so the next check does not fire again at
    // once), halving bins from the largest class down: the most bytes per
    // object moved, and the small, hot bins keep what they hold.
    let target = budget - budget / 4;
    let owner = (*t).owner as usize;
    while cached > target {
        let before = cached;
        for c in (1..NCLS).rev() {
            let n = (*t).bins.count(c).div_ceil(2);
            if n == 0 {
                continue;
            }
            flush_from_head(t, owner, c, n);
            cached -= n * CLASSES[c].size as usize;
            if cached <= target {
                break;
            }
        }
        if cached == before {
            break;
        }
    }
}

/// Refills the empty bin of `cls` from a list taken from the owner's inbox: up
/// to the bin's limit goes into the bin, the rest to the central cache.
unsafe fn take_inbox(t: *mut TCache, cls: usize, list: *mut u8) -> *mut u8 {
    let b = &mut (*t).bins;
    let first = *(list as *mut *mut u8);
    let mut n = 0usize;
    let mut last = ptr::null_mut::<u8>();
    let mut cur = first;
    while !cur.is_null() && n < b.limit[cls] as usize {
        last = cur;
        cur = *(cur as *mut *mut u8);
        n += 1;
    }
    if !last.is_null() {
        *(last as *mut *mut u8) = ptr::null_mut();
    }
    b.head[cls] = if n == 0 { ptr::null_mut() } else { first };
    b.room[cls] = b.limit[cls] as i32 - n as i32;
    if !cur.is_null() {
        central::flush((*t).owner as usize, cls, cur);
    }
    list
}

/// The bin of `cls` went over its limit: sends one batch, taken from the head
/// (the objects freed last, still in cache), back to the central cache.
///
/// # Safety
/// `t` is the calling thread's cache.
#[cold]
pub unsafe fn overflow(t: *mut TCache, cls: usize) {
    on_event(t);
    let b = &mut (*t).bins;
    if b.room[cls] >= 0 {
        // The scavenge in `on_event` already shrank this bin.
        return;
    }
    let n = (CLASSES[cls].batch as usize).min(b.count(cls));
    flush_from_head(t, (*t).owner as usize, cls, n);
}

/// `overflow` for the free fast path, whose tail call passes what it has in
/// its registers: `p`, the block just pushed (its page tag gives the class).
///
/// # Safety
/// `t` is the calling thread's cache; `p` was just pushed into its bin.
#[cold]
pub unsafe fn overflow_at(p: *mut u8, t: *mut TCache) {
    overflow(t, arena::class_at(p as usize))
}

/// Sends the first `n` objects of the bin of `cls` (the last freed, still in
/// cache) to the owner's central cache.
///
/// # Safety
/// `t` is the calling thread's cache and `n` <= the bin's count.
unsafe fn flush_from_head(t: *mut TCache, owner: usize, cls: usize, n: usize) {
    if n == 0 {
        return;
    }
    let b = &mut (*t).bins;
    let first = b.head[cls];
    let mut last = first;
    for _ in 1..n {
        last = *(last as *mut *mut u8);
    }
    b.head[cls] = *(last as *mut *mut u8);
    *(last as *mut *mut u8) = ptr::null_mut();
    b.room[cls] += n as i32;
    send_back(t, owner, cls, first, n);
}

/// A refill took `n` objects from the own owner: adoption credit.
#[inline]
unsafe fn earn(t: *mut TCache, n: usize) {
    let c = (*t).credit as usize + n * CREDIT_PER_REFILLED as usize;
    (*t).credit = c.min(CREDIT_MAX as usize) as u32;
}

#[inline(always)]
unsafe fn set_mixed(t: *mut TCache, cls: usize, on: bool) {
    let w = &mut (*t).mixed[cls / 64];
    if on {
        *w |= 1 << (cls % 64);
    } else {
        *w &= !(1 << (cls % 64));
    }
}

#[inline(always)]
unsafe fn is_mixed(t: *mut TCache, cls: usize) -> bool {
    (*t).mixed[cls / 64] & (1 << (cls % 64)) != 0
}

/// Sends a null-terminated list of `n` free objects of `cls`, taken from the
/// bin of `t` (its owner `owner`), back: the own owner's objects to its
/// central cache in one batch; adopted objects of other owners (a bin marked
/// mixed) through the outbox to theirs.
///
/// # Safety
/// `t` is the calling thread's cache; the list holds `n` free blocks of `cls`.
unsafe fn send_back(t: *mut TCache, owner: usize, cls: usize, first: *mut u8, n: usize) {
    if !is_mixed(t, cls) {
        central::flush_counted(owner, cls, first, n);
        return;
    }
    let mut own: *mut u8 = ptr::null_mut();
    let mut own_n = 0usize;
    let mut cur = first;
    while !cur.is_null() {
        let next = *(cur as *mut *mut u8);
        let tag = match arena::lookup(cur as usize) {
            Some((_, tag)) => tag,
            None => os::fatal(
                "free(): pointer outside the heap in a cache list (heap corruption)",
                cur as usize,
            ),
        };
        if arena::local_class(tag, (*t).expect).is_some() {
            *(cur as *mut *mut u8) = own;
            own = cur;
            own_n += 1;
        } else {
            if !tag.is_valid() || tag.class() != cls {
                os::fatal(
                    "free(): invalid pointer (not a live hz3 block)",
                    cur as usize,
                );
            }
            (*t).outbox.push(tag.owner(), cls, cur);
        }
        cur = next;
    }
    if own_n > 0 {
        central::flush_counted(owner, cls, own, own_n);
    }
}

/// Fork child: only the forking thread survives; the other threads' caches are
/// abandoned (their cached objects stay allocated in the child).
pub fn after_fork_child() {
    for o in owner::all() {
        o.live.store(0, Ordering::Relaxed);
    }
    let t = tls::tc();
    let mut live = 0;
    if !t.is_null() {
        // SAFETY: our own cache.
        let owner = unsafe { (*t).owner } as usize;
        owner::of(owner).live.store(1, Ordering::Relaxed);
        live = 1;
    }
    LIVE_CACHES.store(live, Ordering::Relaxed);
    POOL.lock.reset_after_fork();
}

pub fn lock_pool() {
    POOL.lock.lock();
}
pub fn unlock_pool() {
    POOL.lock.unlock();
}

/// Pops a free block of `cls` from the bin (null when it is empty): the malloc fast path.
///
/// # Safety
/// `t` is the calling thread's cache or `empty()`; cls < NCLS.
#[inline(always)]
pub unsafe fn pop(t: *mut TCache, cls: usize) -> *mut u8 {
    (*t).bins.pop(cls)
}

/// The class of the block whose page tag is `tag` when it is a block of `t`'s
/// owner, else None (always for `empty()`): the free fast path's
/// test, which leaves the class in its register (`arena::local_class`).
///
/// # Safety
/// `t` is the calling thread's cache or `empty()`.
#[inline(always)]
pub unsafe fn local_class(t: *mut TCache, tag: arena::Tag) -> Option<usize> {
    arena::local_class(tag, (*t).expect)
}

/// The owner of `t`.
///
/// # Safety
/// `t` is the calling thread's (live) cache.
#[inline(always)]
pub unsafe fn owner(t: *mut TCache) -> usize {
    (*t).owner as usize
}

/// Frees `p`, a block of `cls` of `t`'s owner, into its bin (sends a batch
/// back when the bin overflows): the free fast path.
///
/// # Safety
/// `t` is the calling thread's live cache; `p` is a block of class `cls` of its owner.
#[inline(always)]
pub unsafe fn free_local(t: *mut TCache, p: *mut u8, cls: usize) {
    if (*t).bins.push(cls, p) {
        // Passes `p` rather than `cls`: no register kept for the call.
        overflow_at(p, t);
        return;
    }
    (*t).tick -= 1;
    if (*t).tick < 0 {
        beat(t);
    }
}

/// The free countdown of `t` ran out: restarts it and lets the heartbeat run
/// its pass when one is due (decay driven by the clock in a program that
/// does only fast-path traffic).
///
/// # Safety
/// `t` is the calling thread's live cache.
#[cold]
#[inline(never)]
pub unsafe fn beat(t: *mut TCache) {
    (*t).tick = crate::heartbeat::FREES_PER_BEAT;
    // Most beats of a busy thread end here: no call, no saved register.
    if crate::heartbeat::clock_read_recently() {
        return;
    }
    beat_on_clock(t);
}

/// `beat` once no beat read the clock recently.
///
/// # Safety
/// As for `beat`.
#[cold]
#[inline(never)]
unsafe fn beat_on_clock(t: *mut TCache) {
    (*t).tick = crate::heartbeat::on_beat();
}

/// Frees `p`, a block of (owner, cls) of another owner: adopted into `t`'s
/// bin of `cls` while it holds less than a refill batch and the thread has
/// adoption credit (earned by refills: see `TCache::credit`) (the thread's next malloc of the class
/// reuses it while it is still in this CPU's cache, without a trip through the
/// owner's central lock and back), else into `t`'s outbox. An adopted block
/// still belongs to its owner: when the bin sends objects back, it goes to
/// that owner through the outbox (`send_back`).
///
/// # Safety
/// `t` is the calling thread's live cache; `p` is a free block of (owner, cls).
#[inline]
pub unsafe fn free_remote(t: *mut TCache, owner: usize, cls: usize, p: *mut u8) {
    let b = &mut (*t).bins;
    // At most one refill batch in the bin: a thread that only frees (a
    // consumer) keeps little of other owners' memory; one that allocates the
    // class too takes the adopted blocks out again.
    if (*t).credit > 0 && b.room[cls] > b.limit[cls] as i32 - CLASSES[cls].batch as i32 {
        (*t).credit -= 1;
        set_mixed(t, cls, true);
        b.push(cls, p);
    } else {
        (*t).outbox.push(owner, cls, p);
    }
}

/// Which owner uncached calls use.
pub fn direct_owner() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::class_of;

    #[repr(align(16))]
    struct Block([u8; 64]);

    /// Resident pages of `[from, to)` (page-aligned).
    fn resident_pages(from: usize, to: usize) -> usize {
        let n = (to - from) / os::PAGE;
        let mut v = [0u8; 64];
        assert!(n <= v.len());
        // SAFETY: the range is mapped (a pool chunk) and `v` has room for it.
        let rc = unsafe { libc::mincore(from as *mut libc::c_void, to - from, v.as_mut_ptr()) };
        assert_eq!(rc, 0);
        v[..n].iter().filter(|&&b| b & 1 != 0).count()
    }

    /// A cache back in the pool keeps its outbox's pages resident until
    /// `drop_free_caches`, after which none of them is (fails with the drop
    /// made a no-op), and one taken again starts with a clean outbox.
    #[test]
    fn pooled_caches_drop_their_outbox_pages() {
        crate::init::ensure();
        let t = pool_take();
        assert!(!t.is_null());
        // SAFETY: `t` is ours until `pool_put`; zeros keep its bank clean.
        let (from, to) = unsafe {
            let from = (ptr::addr_of!((*t).outbox) as usize + os::PAGE - 1) & !(os::PAGE - 1);
            let to = (t as usize + core::mem::size_of::<TCache>()) & !(os::PAGE - 1);
            ptr::write_bytes(from as *mut u8, 0, to - from);
            (from, to)
        };
        assert!(to - from >= os::PAGE, "no whole page in the outbox");
        assert_eq!(resident_pages(from, to), (to - from) / os::PAGE);
        pool_put(t);
        drop_free_caches();
        // Another test's thread may have taken it meanwhile: only a cache
        // still in the pool is checked.
        let still_pooled = POOL.with(|p| {
            let mut c = p.free;
            while !c.is_null() && c != t {
                // SAFETY: pool entries are valid slots.
                c = unsafe { (*c).pool_next };
            }
            c == t
        });
        if still_pooled {
            assert_eq!(
                resident_pages(from, to),
                0,
                "a pooled cache's outbox stayed resident"
            );
        }
    }

    /// Adoption: a block of another owner freed by a thread without credit
    /// goes to the outbox; after a refill (credit) it is adopted into the bin
    /// and the next malloc of the class gets it back; when the bin is sent
    /// back it reaches its own owner, not this thread's central cache (which
    /// would abort on a block of another owner).
    #[test]
    fn remote_free_is_adopted_after_a_refill_and_sent_home() {
        std::thread::spawn(|| {
            let t = get_or_create();
            assert!(!t.is_null());
            let cls = class_of(1800);
            // SAFETY: this thread's cache; the blocks come from the other
            // owner's central cache and are freed once each.
            unsafe {
                let own = owner(t);
                let other = (own + 1) % config::OWNERS;
                let (q, n) = central::refill(other, cls, 1, 1);
                assert_eq!(n, 1);
                assert_eq!((*t).credit, 0);
                free_remote(t, other, cls, q);
                assert_eq!((*t).bins.count(cls), 0, "adopted without credit");
                let p = refill(t, cls);
                assert!(!p.is_null());
                assert!((*t).credit > 0, "a refill earned no credit");
                let before = (*t).bins.count(cls);
                let (r, n) = central::refill(other, cls, 1, 1);
                assert_eq!(n, 1);
                free_remote(t, other, cls, r);
                assert_eq!((*t).bins.count(cls), before + 1, "not adopted");
                assert_eq!(pop(t, cls), r, "the adopted block is not served next");
                free_remote(t, other, cls, r);
                free_local(t, p, cls);
                let (_, free_before, _, _) = central::counters(other, cls);
                drain(t);
                if !config::OWNER_STASH {
                    let (_, free_after, _, _) = central::counters(other, cls);
                    assert!(free_after >= free_before + 2, "the blocks did not go home");
                } else {
                    inbox::drain_class_to_central(other, cls);
                }
                destroy(t);
            }
        })
        .join()
        .unwrap();
    }

    /// A bin is a LIFO whose `room` is always `limit - count`; a push reports
    /// overflow exactly when the count goes past the limit; a pop of an empty
    /// bin changes nothing.
    #[test]
    fn bin_counts_and_overflow() {
        let mut blocks: std::vec::Vec<Block> = (0..5).map(|_| Block([0; 64])).collect();
        // SAFETY: all-zero bins are empty bins with limit 0.
        let mut b: Bins = unsafe { core::mem::zeroed() };
        let c = 1;
        b.room[c] = 3;
        b.limit[c] = 3;
        // SAFETY: the blocks are ours and at least 16 bytes; class 0 is never checked.
        unsafe {
            assert!(b.pop(c).is_null());
            assert_eq!((b.count(c), b.room[c]), (0, 3));
            let ps: std::vec::Vec<*mut u8> = blocks.iter_mut().map(|x| x.0.as_mut_ptr()).collect();
            for (i, &p) in ps.iter().enumerate() {
                let over = b.push(c, p);
                assert_eq!(b.count(c), i + 1);
                assert_eq!(b.room[c] as i64, b.limit[c] as i64 - b.count(c) as i64);
                assert_eq!(over, i + 1 > 3, "overflow reported at count {}", i + 1);
            }
            for &p in ps.iter().rev() {
                assert_eq!(b.pop(c), p, "not LIFO");
            }
            assert!(b.pop(c).is_null());
            assert_eq!((b.count(c), b.room[c]), (0, 3));
        }
    }

    /// The cache of threads without one never serves a malloc nor claims a
    /// block: every bin empty and no valid tag of any owner matches it.
    #[test]
    fn empty_cache_matches_nothing() {
        let t = empty();
        for c in 0..NCLS {
            // SAFETY: EMPTY is never written; pop of an empty bin reads only its head.
            assert!(unsafe { (*t).bins.head[c].is_null() });
        }
        for o in 0..config::OWNERS {
            for c in [1, NCLS - 1] {
                let tag = arena::Tag::span(o, c, 0);
                // SAFETY: EMPTY is a valid cache to compare against.
                assert!(unsafe { local_class(t, tag) }.is_none());
            }
        }
    }

    #[test]
    fn owners_in_use_is_clamped() {
        assert_eq!(owners_in_use_for(Some(0), 4), 1);
        assert_eq!(owners_in_use_for(Some(usize::MAX), 4), config::OWNERS);
        let n = owners_in_use_for(None, 1);
        assert!((1..=config::OWNERS).contains(&n));
    }

    /// A live cache: a refill fills the bin with the rest of a batch (room =
    /// limit - count), a local free goes to the own bin, and `drain` hands
    /// every cached object back (all bins empty, room = limit, nothing cached).
    #[test]
    fn refill_free_and_drain() {
        std::thread::spawn(|| {
            let t = get_or_create();
            assert!(!t.is_null());
            let cls = class_of(1500);
            // SAFETY: this thread's cache; the bin of `cls` is empty on a fresh cache.
            unsafe {
                let p = refill(t, cls);
                assert!(!p.is_null());
                let b = &(*t).bins;
                assert!(b.count(cls) >= 1 && b.count(cls) < CLASSES[cls].batch as usize);
                assert_eq!(
                    b.room[cls] as i64,
                    b.limit[cls] as i64 - b.count(cls) as i64
                );
                let before = b.count(cls);
                let (_, tag) = arena::lookup(p as usize).unwrap();
                assert_eq!(local_class(t, tag), Some(cls));
                free_local(t, p, cls);
                assert_eq!((*t).bins.count(cls), before + 1);
                assert!(cached_bytes(t) > 0);
                drain(t);
                let b = &(*t).bins;
                for c in 0..NCLS {
                    assert!(b.head[c].is_null());
                    assert_eq!(b.room[c], b.limit[c] as i32);
                }
                assert_eq!(cached_bytes(t), 0);
                destroy(t);
            }
        })
        .join()
        .unwrap();
    }
}
