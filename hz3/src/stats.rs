//! Statistics: counters bumped on slow paths only (never on a fast path), and
//! `stats()`, which gathers them with the per-class central counters into one
//! struct. `print()` writes them to stderr without allocating (HZ3_PRINT_STATS=1
//! prints them at exit).
//!
//! Owns the global counters. Reads other modules' counters through their
//! accessors; must not change allocation state.
//! Must not touch spans or remote frees (`span`, `inbox`, `outbox`).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arena;
use crate::central;
use crate::config;
use crate::large;
use crate::os::{self, PAGE};
use crate::size_class::{class_size, NCLS, STATS_NCLS};
use crate::tcache;

pub static SEGMENTS_MAPPED: AtomicUsize = AtomicUsize::new(0);
pub static PAGES_IN_SPANS: AtomicUsize = AtomicUsize::new(0);
pub static PAGES_IN_SPANS_PEAK: AtomicUsize = AtomicUsize::new(0);
pub static BYTES_PURGED: AtomicUsize = AtomicUsize::new(0);
pub static SPANS_RELEASED: AtomicUsize = AtomicUsize::new(0);
pub static LARGE_MAPS: AtomicUsize = AtomicUsize::new(0);
pub static LARGE_CACHE_HITS: AtomicUsize = AtomicUsize::new(0);
pub static LARGE_CACHE_DECAYED: AtomicUsize = AtomicUsize::new(0);
pub static THREADS_STARTED: AtomicUsize = AtomicUsize::new(0);
pub static THREADS_EXITED: AtomicUsize = AtomicUsize::new(0);
pub static TRANSFER_REFILLS: AtomicUsize = AtomicUsize::new(0);

/// Counters of one size class, summed over owners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ClassStats {
    /// Object size of the class in bytes.
    pub size: u64,
    /// Live spans of the class.
    pub spans: u64,
    /// Free objects held in those spans (not counting objects in thread caches).
    pub free_objects: u64,
    /// Refills of thread caches from central caches.
    pub refills: u64,
    /// Flushes of objects to central caches (thread-cache overflow, remote batches, thread exit).
    pub flushes: u64,
}

/// A snapshot of the allocator's counters.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Stats {
    /// Bytes of arena address space reserved.
    pub arena_reserved: u64,
    /// Segments (2 MiB) ever taken from the arena.
    pub segments_mapped: u64,
    /// Bytes of arena pages that belong to live spans (an upper bound on small/medium RSS).
    pub span_bytes: u64,
    /// The most `span_bytes` ever reached.
    pub span_bytes_peak: u64,
    /// Bytes handed back to the OS with madvise so far.
    pub bytes_purged: u64,
    /// Free pages (bytes) the page heaps hold that may still be resident.
    pub dirty_free_bytes: u64,
    /// Spans released to the page heaps so far.
    pub spans_released: u64,
    /// Bytes of live large blocks.
    pub large_live_bytes: u64,
    /// Bytes of freed large mappings kept for reuse.
    pub large_cached_bytes: u64,
    /// Large mappings made / served from the cache.
    pub large_maps: u64,
    pub large_cache_hits: u64,
    /// Cached large mappings unmapped after sitting unused for the decay period.
    pub large_cache_decayed: u64,
    /// Thread caches created / handed back.
    pub threads_started: u64,
    pub threads_exited: u64,
    /// Thread caches alive now.
    pub live_thread_caches: u64,
    /// Owners of this lane.
    pub owners: u64,
    /// Refills served whole from a central cache's transfer list (lane key `transfer_kib`).
    pub transfer_refills: u64,
    /// Per size class (index = class id; 0 unused; slots from the lane's
    /// `NCLS` on stay zero: the C layout is the same in every lane).
    pub classes: [ClassStats; STATS_NCLS],
}

/// Gathers the current counters.
pub fn stats() -> Stats {
    let mut classes = [ClassStats::default(); STATS_NCLS];
    let ready = crate::init::ensure();
    for (c, cs) in classes.iter_mut().enumerate().take(NCLS).skip(1) {
        cs.size = class_size(c) as u64;
        if ready {
            for o in 0..config::OWNERS {
                let (spans, free, refills, flushes) = central::counters(o, c);
                cs.spans += spans as u64;
                cs.free_objects += free;
                cs.refills += refills;
                cs.flushes += flushes;
            }
        }
    }
    let r = |a: &AtomicUsize| a.load(Ordering::Relaxed) as u64;
    Stats {
        arena_reserved: (arena::RESERVED_PAGES.load(Ordering::Relaxed) * PAGE) as u64,
        segments_mapped: r(&SEGMENTS_MAPPED),
        span_bytes: (PAGES_IN_SPANS.load(Ordering::Relaxed) * PAGE) as u64,
        span_bytes_peak: (PAGES_IN_SPANS_PEAK.load(Ordering::Relaxed) * PAGE) as u64,
        bytes_purged: r(&BYTES_PURGED),
        dirty_free_bytes: if ready {
            crate::page_heap::dirty_free_bytes() as u64
        } else {
            0
        },
        spans_released: r(&SPANS_RELEASED),
        large_live_bytes: r(&large::LIVE_BYTES),
        large_cached_bytes: large::cached_bytes() as u64,
        large_maps: r(&LARGE_MAPS),
        large_cache_hits: r(&LARGE_CACHE_HITS),
        large_cache_decayed: r(&LARGE_CACHE_DECAYED),
        threads_started: r(&THREADS_STARTED),
        threads_exited: r(&THREADS_EXITED),
        live_thread_caches: r(&tcache::LIVE_CACHES),
        owners: config::OWNERS as u64,
        transfer_refills: r(&TRANSFER_REFILLS),
        classes,
    }
}

/// Writes the statistics to stderr.
pub fn print() {
    let s = stats();
    let line = |name: &str, v: u64| {
        let mut l = os::Line::new();
        l.s("hz3: ").s(name).s(" ").u(v).s("\n");
        l.emit();
    };
    let mut l = os::Line::new();
    l.s("hz3: stats lane=").s(config::LANE).s("\n");
    l.emit();
    line("arena_reserved_bytes", s.arena_reserved);
    line("segments_mapped", s.segments_mapped);
    line("span_bytes", s.span_bytes);
    line("span_bytes_peak", s.span_bytes_peak);
    line("bytes_purged", s.bytes_purged);
    line("dirty_free_bytes", s.dirty_free_bytes);
    line("spans_released", s.spans_released);
    line("large_live_bytes", s.large_live_bytes);
    line("large_cached_bytes", s.large_cached_bytes);
    line("large_maps", s.large_maps);
    line("large_cache_hits", s.large_cache_hits);
    line("large_cache_decayed", s.large_cache_decayed);
    line("threads_started", s.threads_started);
    line("threads_exited", s.threads_exited);
    line("live_thread_caches", s.live_thread_caches);
    line("transfer_refills", s.transfer_refills);
    for c in s.classes.iter().filter(|c| c.refills > 0 || c.spans > 0) {
        let mut l = os::Line::new();
        l.s("hz3: class size=")
            .u(c.size)
            .s(" spans=")
            .u(c.spans)
            .s(" free_objects=")
            .u(c.free_objects)
            .s(" refills=")
            .u(c.refills)
            .s(" flushes=")
            .u(c.flushes)
            .s("\n");
        l.emit();
    }
}

pub fn after_fork_child() {
    THREADS_STARTED.store(
        tcache::LIVE_CACHES.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    THREADS_EXITED.store(0, Ordering::Relaxed);
}
