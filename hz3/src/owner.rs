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

use core::sync::atomic::{AtomicU32, AtomicUsize};

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
    /// What the background purge does to an owner whose threads are gone:
    /// `collect` without the purge (its inboxes and transfer lists go back
    /// into spans, wholly free spans to the page heap, whose decay then hands
    /// the pages back).
    pub fn release_idle(&self) {
        let o = self.index();
        inbox::drain_to_central(o);
        central::release_empty(o);
    }
}

/// Clock-driven decay of every owner's page heap (`page_heap::decay_tick`),
/// on the thread caches' slow-path beat.
#[inline]
pub fn decay_tick() {
    page_heap::decay_tick();
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
/// child (`child` true): resets them (only the forking thread survives) and
/// forgets the other threads' caches.
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
