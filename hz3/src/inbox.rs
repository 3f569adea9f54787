//! Inboxes: the incoming side of the remote path. A batch of remote frees
//! (gathered in a thread's `outbox`) reaches its owner through `deliver`, the
//! one place that decides the lane's inbox policy (`config::OWNER_STASH`, the
//! manifest's `owner_stash` key):
//! - on: one lock-free LIFO per (owner, class), pushed with one CAS, without
//!   taking the owner's central lock; the owner's threads take everything with
//!   one swap when they refill (`take`), and thread exit / malloc_trim hand
//!   leftovers to the central cache (`drain_to_central`);
//! - off: the batch goes straight to the owner's central cache under its lock
//!   (`take` and `drain_to_central` then have nothing to do).
//!
//! Owns the inbox heads. Lock-free protocol: push links the batch's tail to the
//! observed head, then CAS(head: observed -> batch head, Release); take swaps
//! the head with null (Acquire). There is no pop of a single node, so no ABA.
//! Objects in an inbox belong to its (owner, class) and are reachable from
//! exactly one head. Must not touch spans, page heaps or thread caches
//! (`span`, `page_heap`, `tcache`).

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::central;
use crate::config;
use crate::owner;
use crate::size_class::NCLS;

/// The atomic pointer a [`Head`] is built on: `AtomicPtr<u8>` in the allocator;
/// loom's model of it in the loom tests (`RUSTFLAGS="--cfg loom"`, see
/// `.ci/run-loom.sh`), which check the protocol under every interleaving.
pub trait HeadCell {
    fn load(&self, order: Ordering) -> *mut u8;
    fn compare_exchange_weak(
        &self,
        current: *mut u8,
        new: *mut u8,
        success: Ordering,
        failure: Ordering,
    ) -> Result<*mut u8, *mut u8>;
    fn swap(&self, val: *mut u8, order: Ordering) -> *mut u8;
}

impl HeadCell for AtomicPtr<u8> {
    #[inline(always)]
    fn load(&self, order: Ordering) -> *mut u8 {
        AtomicPtr::load(self, order)
    }
    #[inline(always)]
    fn compare_exchange_weak(
        &self,
        current: *mut u8,
        new: *mut u8,
        success: Ordering,
        failure: Ordering,
    ) -> Result<*mut u8, *mut u8> {
        AtomicPtr::compare_exchange_weak(self, current, new, success, failure)
    }
    #[inline(always)]
    fn swap(&self, val: *mut u8, order: Ordering) -> *mut u8 {
        AtomicPtr::swap(self, val, order)
    }
}

/// One inbox head (the allocator's: `Head<AtomicPtr<u8>>`).
pub struct Head<A = AtomicPtr<u8>>(A);

impl Head {
    pub const fn new() -> Self {
        Head(AtomicPtr::new(ptr::null_mut()))
    }
}

impl<A: HeadCell> Head<A> {
    /// A head over another atomic pointer implementation (the loom model's).
    #[cfg(all(test, loom))]
    pub fn with_cell(cell: A) -> Self {
        Head(cell)
    }

    /// Pushes the list `first ..= last` (linked through each object's first word).
    ///
    /// # Safety
    /// The list is owned by the caller and `last` is its final node.
    pub unsafe fn push_list(&self, first: *mut u8, last: *mut u8) {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            *(last as *mut *mut u8) = old;
            match self
                .0
                .compare_exchange_weak(old, first, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => old = cur,
            }
        }
    }

    /// Takes every object in the inbox (a null-terminated list), or null.
    #[inline]
    pub fn take_all(&self) -> *mut u8 {
        if self.0.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.0.swap(ptr::null_mut(), Ordering::Acquire)
    }
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

/// One inbox head on a cache line of its own (an owner's record holds one
/// per class, see `owner`).
#[repr(align(64))]
pub struct Slot(Head);

impl Slot {
    pub const fn new() -> Slot {
        Slot(Head::new())
    }
}

/// The lane keeps lock-free inboxes (else remote batches go to the central cache).
pub const ENABLED: bool = config::OWNER_STASH;

#[inline]
fn head(owner: usize, cls: usize) -> &'static Head {
    &owner::of(owner).inbox[cls].0
}

/// Hands a batch `first ..= last` of `n` (owner, cls) objects, linked through
/// their first words, to the owner (`n` 0 when the caller did not count them).
/// Without inboxes, a counted batch may be kept whole as a transfer list of
/// the central cache when the lane says so (`config::REMOTE_TRANSFER`).
///
/// # Safety
/// The batch is the caller's, `last` is its final node and `n` is its length
/// or 0.
#[inline]
pub unsafe fn deliver(owner: usize, cls: usize, first: *mut u8, last: *mut u8, n: usize) {
    if ENABLED {
        head(owner, cls).push_list(first, last);
        // An owner with no thread left never takes from its inbox: the batch
        // goes on to the central cache (and wholly free spans to the page
        // heap) now. Pairs with the fence in `tcache::destroy`: either the
        // owner's last thread sees this batch, or this sees it gone.
        core::sync::atomic::fence(Ordering::SeqCst);
        if owner::of(owner).live.load(Ordering::Relaxed) == 0 {
            drain_class_to_central(owner, cls);
        }
    } else {
        // `central::flush` wants a null-terminated list.
        *(last as *mut *mut u8) = ptr::null_mut();
        if config::REMOTE_TRANSFER && n > 0 {
            central::flush_remote(owner, cls, first, last, n);
        } else {
            central::flush(owner, cls, first);
        }
    }
    if owner::of(owner).live.load(Ordering::Relaxed) == 0 {
        // Spans the batch emptied would wait for a thread that is gone.
        owner::after_departed_delivery(owner);
    }
}

/// Takes everything in the inbox of (owner, cls): a null-terminated list, or
/// null (always, when the lane keeps no inboxes).
#[inline]
pub fn take(owner: usize, cls: usize) -> *mut u8 {
    if ENABLED {
        head(owner, cls).take_all()
    } else {
        ptr::null_mut()
    }
}

/// Moves everything in `owner`'s inboxes into its central caches.
pub fn drain_to_central(owner: usize) {
    if !ENABLED {
        return;
    }
    for cls in 1..NCLS {
        drain_class_to_central(owner, cls);
    }
}

/// Moves everything stashed for (`owner`, `cls`) into its central cache.
pub fn drain_class_to_central(owner: usize, cls: usize) {
    let l = head(owner, cls).take_all();
    if !l.is_null() {
        central::flush(owner, cls, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[repr(align(16))]
    struct Node(#[allow(dead_code)] [usize; 2]);

    /// Many producers push batches while consumers take everything: each node
    /// must come out exactly once.
    #[test]
    fn concurrent_push_and_take_lose_and_duplicate_nothing() {
        const P: usize = 4;
        const PER: usize = 20_000;
        const BATCH: usize = 7;
        let head = Arc::new(Head::new());
        // Raw node memory shared by all threads (each node is written only by the
        // thread that currently owns it, as in the allocator).
        let nodes: Box<[Node]> = (0..P * PER).map(|_| Node([0, 0])).collect();
        let base = Box::into_raw(nodes) as *mut Node as usize;
        let node = move |i: usize| (base + i * std::mem::size_of::<Node>()) as *mut u8;
        let seen = Arc::new(
            (0..P * PER)
                .map(|_| std::sync::atomic::AtomicU8::new(0))
                .collect::<Vec<_>>(),
        );
        let producers: Vec<_> = (0..P)
            .map(|t| {
                let head = head.clone();
                std::thread::spawn(move || {
                    let mut i = t * PER;
                    while i < (t + 1) * PER {
                        let n = BATCH.min((t + 1) * PER - i);
                        for k in 0..n - 1 {
                            unsafe { *(node(i + k) as *mut *mut u8) = node(i + k + 1) };
                        }
                        unsafe { head.push_list(node(i), node(i + n - 1)) };
                        i += n;
                    }
                })
            })
            .collect();
        let consumer = {
            let head = head.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut got = 0;
                while got < P * PER {
                    let mut l = head.take_all();
                    while !l.is_null() {
                        let idx = (l as usize - base) / std::mem::size_of::<Node>();
                        assert_eq!(
                            seen[idx].fetch_add(1, Ordering::Relaxed),
                            0,
                            "node {idx} taken twice"
                        );
                        got += 1;
                        l = unsafe { *(l as *mut *mut u8) };
                    }
                }
                got
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), P * PER);
        assert!(head.take_all().is_null());
        // SAFETY: all threads are done with the nodes.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                base as *mut Node,
                P * PER,
            ))
        });
    }
}

/// loom models of the stash protocol (`.ci/run-loom.sh`, or
/// `RUSTFLAGS="--cfg loom" cargo test -p hz3 --lib --release loom`): every
/// interleaving and every weak-memory outcome loom allows for a few producers
/// and consumers. Each node carries a payload written by its producer before
/// the push and read by whoever takes it: loom reports a causality violation if
/// the Release push / Acquire take did not order them, and the tests check that
/// every node comes out exactly once.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{Head, HeadCell};
    use core::sync::atomic::Ordering;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicPtr;
    use loom::sync::Arc;
    use loom::thread;

    impl HeadCell for AtomicPtr<u8> {
        fn load(&self, order: Ordering) -> *mut u8 {
            AtomicPtr::load(self, order)
        }
        fn compare_exchange_weak(
            &self,
            current: *mut u8,
            new: *mut u8,
            success: Ordering,
            failure: Ordering,
        ) -> Result<*mut u8, *mut u8> {
            AtomicPtr::compare_exchange_weak(self, current, new, success, failure)
        }
        fn swap(&self, val: *mut u8, order: Ordering) -> *mut u8 {
            AtomicPtr::swap(self, val, order)
        }
    }

    type LoomHead = Head<AtomicPtr<u8>>;

    /// A stash object: the link word first (as in the allocator), then a
    /// payload whose accesses loom tracks.
    #[repr(C)]
    struct Node {
        link: core::cell::UnsafeCell<*mut u8>,
        payload: UnsafeCell<usize>,
    }

    /// The nodes of one model run, shared by its threads (each node is used by
    /// one thread at a time: its producer, then whoever took it).
    struct Nodes(Vec<Node>);
    // SAFETY: see above; the stash protocol hands a node from thread to thread.
    unsafe impl Sync for Nodes {}
    unsafe impl Send for Nodes {}

    impl Nodes {
        fn new(n: usize) -> Arc<Nodes> {
            Arc::new(Nodes(
                (0..n)
                    .map(|_| Node {
                        link: core::cell::UnsafeCell::new(core::ptr::null_mut()),
                        payload: UnsafeCell::new(0),
                    })
                    .collect(),
            ))
        }
        fn ptr(&self, i: usize) -> *mut u8 {
            &self.0[i] as *const Node as *mut u8
        }
        fn index(&self, p: *mut u8) -> usize {
            (p as usize - self.0.as_ptr() as usize) / core::mem::size_of::<Node>()
        }
        /// Producer side: payload, links, one push of the batch `ids`.
        fn push_batch(&self, head: &LoomHead, ids: &[usize]) {
            for (k, &i) in ids.iter().enumerate() {
                self.0[i].payload.with_mut(|p| unsafe { *p = 1000 + i });
                if k + 1 < ids.len() {
                    unsafe { *self.0[i].link.get() = self.ptr(ids[k + 1]) };
                }
            }
            // SAFETY: the batch is ours and linked first -> last.
            unsafe { head.push_list(self.ptr(ids[0]), self.ptr(*ids.last().unwrap())) };
        }
        /// Consumer side: walks a taken list, checks payloads, returns the indexes.
        fn drain(&self, mut l: *mut u8) -> Vec<usize> {
            let mut got = Vec::new();
            while !l.is_null() {
                let i = self.index(l);
                let v = self.0[i].payload.with(|p| unsafe { *p });
                assert_eq!(v, 1000 + i, "node {i}: payload not visible to its taker");
                got.push(i);
                l = unsafe { *self.0[i].link.get() };
            }
            got
        }
    }

    fn assert_each_once(mut all: Vec<usize>, n: usize) {
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "lost or duplicated nodes");
    }

    fn model<F: Fn() + Sync + Send + 'static>(f: F) {
        let mut b = loom::model::Builder::new();
        // Bounded preemptions keep each model under a minute; every bug found
        // in lock-free lists of this size needs at most two or three.
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// Two producers push a batch of two each while the consumer takes twice;
    /// after the joins a last take gets the rest.
    #[test]
    fn loom_two_producers_one_consumer() {
        model(|| {
            let nodes = Nodes::new(4);
            let head = Arc::new(LoomHead::with_cell(AtomicPtr::new(core::ptr::null_mut())));
            let producers: Vec<_> = [[0usize, 1], [2, 3]]
                .into_iter()
                .map(|ids| {
                    let (nodes, head) = (nodes.clone(), head.clone());
                    thread::spawn(move || nodes.push_batch(&head, &ids))
                })
                .collect();
            let mut got = nodes.drain(head.take_all());
            got.extend(nodes.drain(head.take_all()));
            for p in producers {
                p.join().unwrap();
            }
            got.extend(nodes.drain(head.take_all()));
            assert!(head.take_all().is_null());
            assert_each_once(got, 4);
        });
    }

    /// One producer pushes two batches (the second onto whatever the first left)
    /// while two consumers take concurrently.
    #[test]
    fn loom_one_producer_two_consumers() {
        model(|| {
            let nodes = Nodes::new(3);
            let head = Arc::new(LoomHead::with_cell(AtomicPtr::new(core::ptr::null_mut())));
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let (nodes, head) = (nodes.clone(), head.clone());
                    thread::spawn(move || nodes.drain(head.take_all()))
                })
                .collect();
            nodes.push_batch(&head, &[0, 1]);
            nodes.push_batch(&head, &[2]);
            let mut got = Vec::new();
            for c in consumers {
                got.extend(c.join().unwrap());
            }
            got.extend(nodes.drain(head.take_all()));
            assert_each_once(got, 3);
        });
    }

    /// Three producers of one node each race on the CAS while the consumer
    /// takes: the CAS retry path (a failed exchange relinks the batch).
    #[test]
    fn loom_three_producers_cas_retry() {
        model(|| {
            let nodes = Nodes::new(3);
            let head = Arc::new(LoomHead::with_cell(AtomicPtr::new(core::ptr::null_mut())));
            let producers: Vec<_> = (0..3)
                .map(|i| {
                    let (nodes, head) = (nodes.clone(), head.clone());
                    thread::spawn(move || nodes.push_batch(&head, &[i]))
                })
                .collect();
            let mut got = nodes.drain(head.take_all());
            for p in producers {
                p.join().unwrap();
            }
            got.extend(nodes.drain(head.take_all()));
            assert_each_once(got, 3);
        });
    }
}
