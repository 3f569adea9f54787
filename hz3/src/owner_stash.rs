//! Owner-shared stash: one lock-free LIFO per (owner, class) through which remote
//! frees reach their owner without taking the owner's central lock. Any thread
//! pushes a whole batch with one CAS; the owner's threads take everything with
//! one swap when they refill (and thread exit / malloc_trim hand leftovers to
//! the central cache).
//!
//! Owns the stash heads. Lock-free protocol: push links the batch's tail to the
//! observed head, then CAS(head: observed -> batch head, Release); take swaps
//! the head with null (Acquire). There is no pop of a single node, so no ABA.
//! Objects in a stash belong to the stash's (owner, class) and are reachable
//! from exactly one head. Must not touch spans or thread caches.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::central;
use crate::config;
use crate::size_class::NCLS;

/// One stash head.
pub struct Head(AtomicPtr<u8>);

impl Head {
    pub const fn new() -> Self {
        Head(AtomicPtr::new(ptr::null_mut()))
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

    /// Takes every stashed object (a null-terminated list), or null.
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

#[repr(align(64))]
struct Slot(Head);

static STASH: [[Slot; NCLS]; config::OWNERS] =
    [const { [const { Slot(Head::new()) }; NCLS] }; config::OWNERS];

#[inline]
pub fn head(owner: usize, cls: usize) -> &'static Head {
    &STASH[owner][cls].0
}

/// Moves everything stashed for `owner` into its central caches.
pub fn drain_to_central(owner: usize) {
    for cls in 1..NCLS {
        let l = head(owner, cls).take_all();
        if !l.is_null() {
            central::flush(owner, cls, l);
        }
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
