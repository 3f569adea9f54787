//! Owners: the unit of lock and cache separation (threads are spread over
//! them, see `tcache`). Everything kept per owner lives in one `Owner` record
//! of one static table: its central caches, its inboxes, its page heap, the
//! bytes in its transfer lists and its live-thread count. The operations over
//! an owner as a whole live here too: `collect` (what malloc_trim does per
//! owner) and the fork protocol (`lock_all`, `unlock_all`), so no other module
//! walks the owners or knows the lock order.
//!
//! Owns the table and the whole-owner operations. Each field's contents and
//! invariants belong to the module that declares its type (`central`, `inbox`,
//! `page_heap`, `tcache`), which alone reads or writes them; this module only
//! takes and releases their locks, in the one lock order: every central lock,
//! then every page-heap lock, the segment pool, the large cache, the
//! thread-cache pool.
//! Must not touch spans or the objects in any list (`span`, `outbox`).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::central;
use crate::config;
use crate::inbox;
use crate::large;
use crate::page_heap;
use crate::size_class::NCLS;
use crate::tcache;

/// Everything one owner holds.
pub struct Owner {
    /// Central caches, one per size class (`central`).
    pub central: [central::Slot; NCLS],
    /// Inboxes of remote frees, one per size class (`inbox`).
    pub inbox: [inbox::Slot; NCLS],
    /// The page heap (`page_heap`).
    pub heap: page_heap::HeapSlot,
    /// Bytes in the transfer lists of all classes (`central`).
    pub xfer_bytes: AtomicUsize,
    /// Live threads whose cache has this owner (`tcache`).
    pub live: AtomicU32,
    /// A wholly free span was kept or a transfer list stored since the
    /// owner was last collected (set by `central`, cleared by
    /// `after_thread_exit`): an owner without threads then still holds
    /// something a collect would give back.
    pub kept: AtomicBool,
    /// When its last thread exited (`os::now_ms`; 0: never), for the churn
    /// detection of `on_thread_start`.
    pub departed_ms: AtomicU64,
    /// Thread caches ever given this owner (`tcache`; read by `background`
    /// to tell an owner it collected from one a thread used since).
    pub starts: AtomicU32,
}

static TABLE: [Owner; config::OWNERS] = [const {
    Owner {
        central: [const { central::Slot::new() }; NCLS],
        inbox: [const { inbox::Slot::new() }; NCLS],
        heap: page_heap::HeapSlot::new(),
        xfer_bytes: AtomicUsize::new(0),
        live: AtomicU32::new(0),
        kept: AtomicBool::new(false),
        departed_ms: AtomicU64::new(0),
        starts: AtomicU32::new(0),
    }
}; config::OWNERS];

/// Owner `o` (< config::OWNERS).
#[inline(always)]
pub fn of(o: usize) -> &'static Owner {
    &TABLE[o]
}

/// Every owner, in index order.
pub fn all() -> &'static [Owner] {
    &TABLE
}

impl Owner {
    /// This owner's index.
    pub fn index(&self) -> usize {
        (self as *const Owner as usize - TABLE.as_ptr() as usize) / core::mem::size_of::<Owner>()
    }

    /// Hands back what this owner's caches hold: its inboxes go to its
    /// central caches, their transfer lists and wholly free spans to its page
    /// heap, whose free pages go back to the OS. Returns the bytes purged.
    pub fn collect(&self) -> usize {
        let o = self.index();
        inbox::drain_to_central(o);
        central::release_empty(o);
        page_heap::purge_owner(o)
    }
}

impl Owner {
    /// What the background purge does to an owner whose threads are gone
    /// (for two of its passes, see `background`): `collect` (its inboxes and
    /// transfer lists go back into spans, wholly free spans to the page
    /// heap, and its free pages to the OS). The purge used to be left to the
    /// page heap's decay, which hands pages freed by the collect back 1 to
    /// 1.5 decay periods later: a program settled 2 s after its workers
    /// exited still held them (scale `mstress` t8: 6 or 32 MiB settled, by
    /// the timing of the passes). The owner has been idle for a pass
    /// already; a thread that takes it next faults its pages in again, as
    /// after a decay.
    pub fn release_idle(&self) {
        self.collect();
    }
}

/// What `collect_departed` last saw of each owner: it had no thread at the
/// previous pass (`DEPARTED_SEEN`), and its `starts` when it was last
/// collected (`COLLECTED_AT`; 0 at first: an owner no thread ever took has
/// nothing to collect). Written only by the pass that holds the heartbeat's
/// flag (`heartbeat::pass`), so Relaxed accesses suffice.
static DEPARTED_SEEN: [AtomicBool; config::OWNERS] =
    [const { AtomicBool::new(false) }; config::OWNERS];
static COLLECTED_AT: [AtomicU32; config::OWNERS] = [const { AtomicU32::new(0) }; config::OWNERS];

/// A heartbeat pass (`heartbeat::pass`, from a thread's free countdown or the
/// background thread): an owner whose threads are gone (at this pass and the
/// one before) has its remote stash and transfer lists put back into its
/// spans and its wholly free spans (kept ones too) returned to its page heap
/// and its free pages to the OS (`release_idle`), once per generation of
/// threads: nobody would refill from them. Waiting a pass
/// keeps a program that replaces its threads at once from losing its warm
/// spans.
pub fn collect_departed() {
    for (o, rec) in TABLE.iter().enumerate() {
        // `starts` before `live`: a thread that starts between the two loads
        // is then counted as not yet collected (its generation is collected
        // at a later pass), never as collected already.
        let starts = rec.starts.load(Ordering::Acquire);
        let idle = rec.live.load(Ordering::Acquire) == 0;
        if idle
            && DEPARTED_SEEN[o].load(Ordering::Relaxed)
            && starts != COLLECTED_AT[o].load(Ordering::Relaxed)
        {
            rec.release_idle();
            COLLECTED_AT[o].store(starts, Ordering::Relaxed);
        }
        DEPARTED_SEEN[o].store(idle, Ordering::Relaxed);
    }
}

/// Until when (`os::now_ms`) threads are taken to churn: exits then leave
/// their owners' pages for the next threads (decay returns them).
static CHURN_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

/// How long a departed owner taken again counts as churn, and how long churn
/// mode lasts after it was last seen: the lane's decay period (at least 100 ms).
fn churn_window_ms() -> u64 {
    crate::options::purge_decay_ms().max(100)
}

/// A thread cache was just given `owner`, which had `before` live threads
/// (`tcache::get_or_create`): an owner whose last thread exited less than a
/// churn window ago is taken again, so threads are being replaced (a pool,
/// generations of workers): exits keep their pages for the next threads from
/// now on, for a window (a purge at each exit would make every new thread
/// fault its pages in again).
pub fn on_thread_start(owner: usize, before: u32) {
    if before != 0 || !crate::options::churn_detection() {
        return;
    }
    let d = TABLE[owner].departed_ms.load(Ordering::Relaxed);
    if d == 0 {
        return;
    }
    let now = crate::os::now_ms();
    let w = churn_window_ms();
    if now.saturating_sub(d) < w {
        CHURN_UNTIL_MS.fetch_max(now + w, Ordering::Relaxed);
    }
}

/// Departed return (issue 16, settled RSS), run by an exiting thread after
/// it handed its cache back (`tcache::destroy`, with `live` already counted
/// down; `last`: it was its owner's last thread). A program that goes on
/// with fast-path traffic only (or sleeps) never reaches the slow-path beat
/// that drives decay, so what exited threads leave is returned here: the
/// owner left without threads is collected whole (inboxes, transfer lists,
/// kept empty spans, free pages: nobody is left to reuse them), and every
/// other owner without threads has its kept spans collected (when `kept`) or
/// its free pages purged (the exiting thread's remote frees may have emptied
/// spans of owners collected before). The owner a thread leaves while others
/// stay on it keeps its pages for them (decay returns them), unless a single
/// thread is left in the process (`alone`: the main thread after its
/// workers), when every owner is collected (the one left's transfer lists
/// and kept spans too) and the large-mapping cache is emptied. Skipped while
/// threads churn (`on_thread_start`): a thread that takes such an owner next
/// would fault every page in again; only the inboxes of an owner left
/// without threads are drained then.
pub fn after_thread_exit(own: usize, last: bool, alone: bool) {
    let now = crate::os::now_ms();
    if last {
        TABLE[own].departed_ms.store(now.max(1), Ordering::Relaxed);
    }
    if now < CHURN_UNTIL_MS.load(Ordering::Relaxed) {
        if last {
            inbox::drain_to_central(own);
        }
        return;
    }
    if alone {
        // The cached large mappings too: the workers that freed them are gone.
        large::trim();
    }
    for (o, rec) in TABLE.iter().enumerate() {
        let idle = rec.live.load(Ordering::Acquire) == 0;
        // `kept` is cleared before the collect: whatever is kept after it
        // is seen by the next exit.
        if alone || (idle && (rec.kept.swap(false, Ordering::AcqRel) || (o == own && last))) {
            rec.collect();
        } else if idle {
            page_heap::purge_owner(o);
        }
    }
}

/// Free pages an owner without threads gathers from remote frees before
/// they go back (one madvise per this much, not per batch): 1 MiB.
const DEPARTED_PURGE_PAGES: usize = (1 << 20) / crate::os::PAGE;

/// A remote batch reached `owner`, which has no thread left (`inbox::deliver`):
/// outside churn, the free pages its spans gave back go back to the OS once
/// they reach `DEPARTED_PURGE_PAGES` (nobody of its own would reuse them, and
/// no exit of its own comes to collect them).
pub fn after_departed_delivery(owner: usize) {
    if crate::options::departed_return()
        && crate::os::now_ms() >= CHURN_UNTIL_MS.load(Ordering::Relaxed)
    {
        page_heap::purge_owner_over(owner, DEPARTED_PURGE_PAGES);
    }
}

/// Clock-driven decay of every owner's page heap (`page_heap::decay_tick`),
/// on the thread caches' slow-path beat.
#[inline]
pub fn decay_tick() {
    age_tick();
    page_heap::decay_tick();
}

/// When the next `age_tick` pass is due (`os::now_ms`); 0 at start.
static NEXT_AGE_MS: AtomicU64 = AtomicU64::new(0);

/// Every half decay period (at least 50 ms), whichever thread calls it: the
/// classes of every owner a thread ever took that had no refill since the
/// pass before give back what their central caches keep
/// (`central::release_idle`), and the caches of exited threads their
/// outboxes' pages (`tcache::drop_free_caches`). Cheap when not due: one clock read, one load.
#[inline]
pub fn age_tick() {
    let decay_ms = crate::options::purge_decay_ms();
    if decay_ms == 0 {
        return;
    }
    let now = crate::os::now_ms();
    let due = NEXT_AGE_MS.load(Ordering::Relaxed);
    if now < due {
        return;
    }
    let next = now + (decay_ms / 2).max(50);
    if NEXT_AGE_MS
        .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        // Another thread runs this pass.
        return;
    }
    for (o, rec) in TABLE.iter().enumerate() {
        if rec.starts.load(Ordering::Relaxed) != 0 {
            // Remote frees stashed for an idle class (lanes with an owner
            // stash) would wait for a refill that does not come: into the
            // spans first, so their wholly free spans go back too.
            if inbox::ENABLED {
                for cls in 1..NCLS {
                    if central::is_idle(o, cls) {
                        inbox::drain_class_to_central(o, cls);
                    }
                }
            }
            central::release_idle(o);
        }
    }
    tcache::drop_free_caches();
}

/// `collect` for every owner; returns the bytes purged.
pub fn collect_all() -> usize {
    TABLE.iter().map(Owner::collect).sum()
}

/// Fork prepare: takes every allocator lock, in the lock order.
pub fn lock_all() {
    for o in TABLE.iter() {
        for s in o.central.iter() {
            s.0.lock.lock();
        }
    }
    for o in TABLE.iter() {
        o.heap.0.lock.lock();
    }
    page_heap::lock_pool();
    large::lock();
    tcache::lock_pool();
}

/// Fork parent (`child` false): releases every lock `lock_all` took. Fork
/// child (`child` true): resets them (only the forking thread survives),
/// forgets the other threads' caches and drains the inboxes of the owners
/// left without threads (departed return).
pub fn unlock_all(child: bool) {
    if child {
        tcache::after_fork_child();
    } else {
        tcache::unlock_pool();
    }
    large::unlock(child);
    page_heap::unlock_pool(child);
    for o in TABLE.iter() {
        if child {
            o.heap.0.lock.reset_after_fork();
        } else {
            o.heap.0.lock.unlock();
        }
    }
    for o in TABLE.iter() {
        for s in o.central.iter() {
            if child {
                s.0.lock.reset_after_fork();
            } else {
                s.0.lock.unlock();
            }
        }
    }
    if child && crate::options::departed_return() {
        // Only the forking thread survives: every other owner is left
        // without threads, and what its inboxes hold would wait for a
        // refill that never comes (every lock is free again and no other
        // thread runs: the drain takes them in the lock order).
        for (o, rec) in TABLE.iter().enumerate() {
            if rec.live.load(Ordering::Relaxed) == 0 {
                inbox::drain_to_central(o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        for o in 0..config::OWNERS {
            assert_eq!(of(o).index(), o);
        }
    }
}
