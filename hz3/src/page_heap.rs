//! Page heaps: segments of the arena handed to owners, page runs handed out
//! from them (to `span`, and to `alloc` for aligned blocks), and handing free
//! pages back to the OS. A run is a number of pages, nothing more: this module
//! knows no spans.
//!
//! Owns: the global segment pool, one page heap per owner (its segments with a
//! free-page bitmap and a dirty-page bitmap each, and its run cache, linked
//! through a table of its own, `RUN_LINKS`).
//! Locking: the pool lock and each owner's page-heap lock (order: heap -> pool).
//! Invariant: a page is in exactly one state: free in its segment's bitmap,
//! in a run of the run cache, or in one run handed out.
//! The page heaps live in the owner records (`owner`); only this module reads
//! or writes them (`owner` takes their locks for fork).
//! Must not touch thread caches, central caches or span records (`tcache`,
//! `central`, `span`).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arena::{self, NSEGS, SEG_PAGES};
use crate::options;
use crate::os::{self, PAGE};
use crate::owner;
use crate::page_bits::{self, Map};
use crate::stats;
use crate::sync::Locked;

#[repr(C)]
struct SegMeta {
    /// Next segment (index + 1) in the owner's list or in the pool.
    next: u32,
    nfree: u32,
    /// In the pool (guarded by the pool lock): its metadata may be dropped
    /// (`pool_put`).
    pooled: bool,
    /// 1 = page free.
    free: Map,
    /// 1 = page may hold data (touched since the last purge).
    dirty: Map,
    /// At least the longest run of free pages, and of free dirty pages: a
    /// search for a longer run skips the segment. Raised when pages are freed
    /// (to the run they join), lowered to the truth when a search fails.
    free_run_max: u16,
    dirty_run_max: u16,
}

impl SegMeta {
    /// The pages both free and dirty (free pages that may be resident).
    fn free_dirty(&self) -> Map {
        let mut map = self.free;
        for (w, d) in map.iter_mut().zip(self.dirty.iter()) {
            *w &= *d;
        }
        map
    }
}

/// Least time between two purges triggered by the size bound.
const PURGE_MIN_INTERVAL_MS: u64 = 10;

static SEG_META: AtomicUsize = AtomicUsize::new(0);
/// The run cache's links: one u32 per reserved arena page (the first page + 1
/// of the next cached run of the same length, 0 for none), read only at the
/// first page of a cached run. Reserved after the arena, for the pages it got
/// (`init_run_links`), so it takes no address space from the arena; committed
/// with each segment. 0 when refused: the run cache is then off.
static RUN_LINKS: AtomicUsize = AtomicUsize::new(0);

struct Pool {
    /// Segments never used so far start here.
    next_unused: usize,
    /// Returned (purged) segments: index + 1.
    free_head: u32,
}

pub struct PageHeap {
    segs: u32,
    /// Free pages that may be resident: free-and-dirty bitmap pages plus the run cache.
    dirty_free_pages: usize,
    /// Milliseconds (monotonic) of the last purge forced by the size bound.
    last_purge_ms: u64,
    /// Decay epoch (half the decay period): when it started, and the fewest
    /// free dirty pages seen since (see `decay_locked`).
    epoch_ms: u64,
    low_water: usize,
    /// The previous epoch's low-water mark, less what its end purged.
    prev_low: usize,
    /// Run cache: freed runs of n pages (n <= RUN_CACHE_MAX_PAGES) kept whole in
    /// LIFO lists (first page + 1, linked through `run_next`),
    /// still marked used in the bitmaps; reused by an allocation of the same size
    /// in O(1). Spilled into the bitmaps before any purge.
    runs: [u32; RUN_CACHE_MAX_PAGES + 1],
}

/// Largest run the run cache keeps.
const RUN_CACHE_MAX_PAGES: usize = 64;

static POOL: Locked<Pool> = Locked::new(Pool {
    next_unused: 0,
    free_head: 0,
});

/// One owner's page heap with its lock, on a cache line of its own (in the
/// owner's record, see `owner`).
#[repr(align(64))]
pub struct HeapSlot(pub Locked<PageHeap>);

impl HeapSlot {
    pub const fn new() -> HeapSlot {
        HeapSlot(Locked::new(PageHeap {
            segs: 0,
            dirty_free_pages: 0,
            last_purge_ms: 0,
            epoch_ms: 0,
            low_water: 0,
            prev_low: 0,
            runs: [0; RUN_CACHE_MAX_PAGES + 1],
        }))
    }
}

#[inline]
fn heap(owner: usize) -> &'static Locked<PageHeap> {
    &owner::of(owner).heap.0
}

/// Reserves the segment-record table (without access: a segment's record is
/// committed with the segment, see `commit_segment`). Called once during init; false on failure.
pub fn init() -> bool {
    let seg_bytes = NSEGS * core::mem::size_of::<SegMeta>();
    let g = os::reserve(seg_bytes);
    if g.is_null() {
        return false;
    }
    SEG_META.store(g as usize, Ordering::Release);
    true
}

unsafe fn seg(i: usize) -> &'static mut SegMeta {
    &mut *(SEG_META.load(Ordering::Relaxed) as *mut SegMeta).add(i)
}

/// Reserves the run cache's links for the pages the arena got (after
/// `arena::reserve`). False when refused (the run cache then stays off).
pub fn init_run_links() -> bool {
    let pages = arena::RESERVED_PAGES.load(Ordering::Relaxed);
    if pages == 0 {
        return false;
    }
    let l = os::reserve(pages * 4);
    if l.is_null() {
        return false;
    }
    RUN_LINKS.store(l as usize, Ordering::Release);
    true
}

/// True when the run cache has its links.
#[inline]
fn run_cache_on() -> bool {
    RUN_LINKS.load(Ordering::Relaxed) != 0
}

/// The run-cache link of the run starting at `page`.
///
/// # Safety
/// The owner's page-heap lock is held, `page` starts a run of that owner and
/// `run_cache_on()`.
unsafe fn run_next(page: usize) -> &'static mut u32 {
    &mut *(RUN_LINKS.load(Ordering::Relaxed) as *mut u32).add(page)
}

fn take_segment() -> Option<usize> {
    POOL.with(|p| {
        if p.free_head != 0 {
            let i = p.free_head as usize - 1;
            // SAFETY: pool lock held; i < NSEGS.
            let m = unsafe { seg(i) };
            p.free_head = m.next;
            m.pooled = false;
            return Some(i);
        }
        let limit = arena::RESERVED_PAGES.load(Ordering::Relaxed) / SEG_PAGES;
        if p.next_unused < limit && commit_segment(p.next_unused) {
            p.next_unused += 1;
            stats::SEGMENTS_MAPPED.fetch_add(1, Ordering::Relaxed);
            return Some(p.next_unused - 1);
        }
        None
    })
}

/// Puts segment `i`, wholly free and purged, in the pool and drops the
/// resident pages of its metadata (issue 16, settled RSS: 32 bytes of span
/// record and 8 of tag and run-cache link per arena page, 5 MiB per GiB of
/// segments a program once used, stayed resident after their pages went
/// back): its span records, and the tag-table and run-link pages it shares
/// with its pair segment `i ^ 1` when that one is pooled or was never handed
/// out too. Everything dropped reads as zero when the segment is taken again
/// (`take_segment`), as it did when fresh.
///
/// # Safety
/// The pool lock is held (`pool`) and segment `i` was taken, holds no run
/// (every page free in its bitmap, none in the run cache) and is on no list.
unsafe fn pool_put(pool: &mut Pool, i: usize) {
    let m = seg(i);
    m.next = pool.free_head;
    m.pooled = true;
    pool.free_head = i as u32 + 1;
    let j = i ^ 1;
    // Never handed out (tags and links untouched), or pooled.
    let pair_free = j >= pool.next_unused || seg(j).pooled;
    arena::drop_segment_metadata(i, pair_free);
    let links = RUN_LINKS.load(Ordering::Relaxed);
    if pair_free && links != 0 {
        let l = (links + i * SEG_PAGES * 4) & !(PAGE - 1);
        os::purge(l as *mut u8, PAGE);
    }
}

/// Makes a segment never used so far writable: its pages, its tags, its span
/// records (`arena::commit_segment`), its segment record and its run-cache
/// links. False when the system refuses.
fn commit_segment(i: usize) -> bool {
    let range = |table: usize, each: usize, first: usize, n: usize| {
        let start = (table + first * each) & !(PAGE - 1);
        let end = (table + (first + n) * each + PAGE - 1) & !(PAGE - 1);
        (start as *mut u8, end - start)
    };
    let (g, glen) = range(
        SEG_META.load(Ordering::Relaxed),
        core::mem::size_of::<SegMeta>(),
        i,
        1,
    );
    // SAFETY: the slices of segment i < NSEGS lie inside the tables reserved by `init`.
    unsafe {
        let links = RUN_LINKS.load(Ordering::Relaxed);
        let (l, llen) = range(links, 4, i * SEG_PAGES, SEG_PAGES);
        os::commit(g, glen) && (links == 0 || os::commit(l, llen)) && arena::commit_segment(i)
    }
}

/// Allocates a run of `n` pages (n <= SEG_PAGES) for `owner`. Returns its first page index.
pub fn alloc_run(owner: usize, n: usize) -> Option<usize> {
    heap(owner).with(|h| {
        // SAFETY: the owner's page-heap lock guards its segments' metadata and run cache.
        unsafe {
            if n <= RUN_CACHE_MAX_PAGES && h.runs[n] != 0 {
                let page = h.runs[n] as usize - 1;
                h.runs[n] = *run_next(page);
                h.dirty_free_pages -= n;
                h.low_water = h.low_water.min(h.dirty_free_pages);
                count_span_pages(n);
                return Some(page);
            }
            // Reuse pages that are still resident first (no page faults, and the
            // dirty set shrinks instead of growing towards a purge); then clean ones.
            for want_dirty in [true, false] {
                let mut s = h.segs;
                while s != 0 {
                    let i = s as usize - 1;
                    let m = seg(i);
                    let hint = if want_dirty {
                        m.dirty_run_max
                    } else {
                        m.free_run_max
                    };
                    if hint as usize >= n {
                        let map = if want_dirty { m.free_dirty() } else { m.free };
                        match page_bits::find_run(&map, n) {
                            Ok(at) => return Some(take_pages(h, i, at, n)),
                            Err(longest) if want_dirty => m.dirty_run_max = longest as u16,
                            Err(longest) => m.free_run_max = longest as u16,
                        }
                    }
                    s = m.next;
                }
            }
            let i = take_segment()?;
            let m = seg(i);
            m.free = [u64::MAX; SEG_PAGES / 64];
            m.dirty = [0; SEG_PAGES / 64];
            m.nfree = SEG_PAGES as u32;
            m.free_run_max = SEG_PAGES as u16;
            m.dirty_run_max = 0;
            m.next = h.segs;
            h.segs = i as u32 + 1;
            Some(take_pages(h, i, 0, n))
        }
    })
}

unsafe fn take_pages(h: &mut PageHeap, segi: usize, at: usize, n: usize) -> usize {
    let m = seg(segi);
    h.dirty_free_pages = h
        .dirty_free_pages
        .saturating_sub(page_bits::count(&m.dirty, at, n));
    h.low_water = h.low_water.min(h.dirty_free_pages);
    page_bits::set(&mut m.free, at, n, false);
    page_bits::set(&mut m.dirty, at, n, true);
    m.nfree -= n as u32;
    count_span_pages(n);
    segi * SEG_PAGES + at
}

/// Counts `n` more pages in spans (and the peak).
fn count_span_pages(n: usize) {
    let now = stats::PAGES_IN_SPANS.fetch_add(n, Ordering::Relaxed) + n;
    stats::PAGES_IN_SPANS_PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Returns a run of pages to its owner's page heap; purges when the owner holds
/// more free dirty pages than its lane allows.
pub fn free_run(owner: usize, page: usize, n: usize) {
    let purge_limit = options::purge_owner_kib() * 1024 / PAGE;
    let decay_ms = options::purge_decay_ms();
    heap(owner).with(|h| {
        if n <= RUN_CACHE_MAX_PAGES && run_cache_on() {
            // SAFETY: owner's page-heap lock held; the run is the owner's and no longer used.
            unsafe { *run_next(page) = h.runs[n] };
            h.runs[n] = page as u32 + 1;
        } else {
            // SAFETY: owner's page-heap lock held.
            unsafe { release_to_bitmap(page, n) };
        }
        h.dirty_free_pages += n;
        stats::PAGES_IN_SPANS.fetch_sub(n, Ordering::Relaxed);
        if h.dirty_free_pages > purge_limit {
            // Over the hard bound: purge down to half of it, but at most once per
            // PURGE_MIN_INTERVAL_MS (or at twice the bound), so a heap churning
            // around the bound does not spend its time in madvise and page faults.
            let now = os::now_ms();
            if h.dirty_free_pages > 2 * purge_limit
                || now.saturating_sub(h.last_purge_ms) >= PURGE_MIN_INTERVAL_MS
            {
                purge_locked(h, purge_limit / 2);
                h.last_purge_ms = now;
                h.low_water = h.low_water.min(h.dirty_free_pages);
            }
        }
        if decay_ms > 0 {
            decay_locked(h, os::now_ms(), decay_ms);
        }
    });
}

/// Returns a run of pages that sat unused for a while (`central::release_idle`)
/// to its owner's page heap, clean: its pages go back to the OS now, and a
/// segment it leaves wholly free and clean goes back to the pool (`pool_put`).
pub fn free_run_purged(owner: usize, page: usize, n: usize) {
    heap(owner).with(|h| {
        // SAFETY: owner's page-heap lock held; the run is the owner's and no
        // longer used (its pages are in no run cache and marked used).
        unsafe {
            os::purge(arena::page_addr(page) as *mut u8, n * PAGE);
            let segi = page / SEG_PAGES;
            let m = seg(segi);
            page_bits::set(&mut m.dirty, page % SEG_PAGES, n, false);
            release_to_bitmap(page, n);
            if m.nfree as usize == SEG_PAGES && m.dirty.iter().all(|&d| d == 0) {
                // Wholly free and clean: back to the pool now (a purge only
                // visits segments while dirty pages are left).
                let mut link: *mut u32 = &mut h.segs;
                while *link != 0 && *link as usize - 1 != segi {
                    link = &mut seg(*link as usize - 1).next;
                }
                if *link != 0 {
                    *link = m.next;
                    POOL.with(|pool| pool_put(pool, segi));
                }
            }
        }
        stats::PAGES_IN_SPANS.fetch_sub(n, Ordering::Relaxed);
        stats::BYTES_PURGED.fetch_add(n * PAGE, Ordering::Relaxed);
    });
}

/// Decay: epochs of half of `decay_ms`; at the end of each, the free dirty
/// pages that stayed free through it and through the epoch before (the lower
/// of the two low-water marks), so for at least `decay_ms`, go back to the
/// OS: a page freed at time t is purged by t + 1.5 x decay_ms (plus the
/// lateness of the check that ends the epoch).
fn decay_locked(h: &mut PageHeap, now: u64, decay_ms: u64) {
    if now.saturating_sub(h.epoch_ms) >= decay_ms.div_ceil(2) {
        let idle = h.low_water.min(h.prev_low).min(h.dirty_free_pages);
        let mut purged = 0;
        if idle > 0 {
            purged = purge_locked(h, h.dirty_free_pages - idle) / PAGE;
        }
        h.prev_low = h.low_water.saturating_sub(purged).min(h.dirty_free_pages);
        h.low_water = h.dirty_free_pages;
        h.epoch_ms = now;
    }
}

/// When the next clock-driven decay pass over every page heap is due
/// (`os::now_ms`); 0 at start.
static NEXT_DECAY_MS: AtomicU64 = AtomicU64::new(0);

/// Decay passes per decay period: each heap's epoch ends at most
/// `decay_ms / DECAY_CHECKS` late, so idle pages go back within about
/// 2 x decay_ms even when their owner never frees a page again.
const DECAY_CHECKS: u64 = 16;

/// Clock-driven decay: ends the epoch of every page heap whose epoch is over,
/// whichever thread calls it. Called on slow-path beats (each thread cache's
/// 64th slow event, large-block events) and from the heartbeat's pass
/// (`heartbeat`: a free countdown's cold branch, or the purge thread),
/// never inline on a fast path. Cheap when
/// nothing is due: one coarse clock read (vDSO, no system call) and one load.
pub fn decay_tick() {
    let decay_ms = options::purge_decay_ms();
    if decay_ms == 0 {
        return;
    }
    let now = os::now_ms();
    let due = NEXT_DECAY_MS.load(Ordering::Relaxed);
    if now < due {
        return;
    }
    let next = now + (decay_ms / DECAY_CHECKS).max(1);
    if NEXT_DECAY_MS
        .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        // Another thread runs this pass.
        return;
    }
    for o in owner::all() {
        o.heap.0.with(|h| {
            if h.dirty_free_pages > 0 {
                decay_locked(h, now, decay_ms);
            }
        });
    }
}

/// Marks a run free in its segment's bitmap.
///
/// # Safety
/// The owner's page-heap lock is held and the run is the owner's.
unsafe fn release_to_bitmap(page: usize, n: usize) {
    let m = seg(page / SEG_PAGES);
    page_bits::set(&mut m.free, page % SEG_PAGES, n, true);
    m.nfree += n as u32;
    // The free run these pages join bounds both longest runs from above.
    let (start, end) = page_bits::run_around(&m.free, page % SEG_PAGES);
    let len = (end - start) as u16;
    m.free_run_max = m.free_run_max.max(len);
    m.dirty_run_max = m.dirty_run_max.max(len);
}

/// Moves every cached run into the bitmaps (before a purge scans them).
fn spill_runs(h: &mut PageHeap) {
    for n in 1..=RUN_CACHE_MAX_PAGES {
        while h.runs[n] != 0 {
            let page = h.runs[n] as usize - 1;
            // SAFETY: owner's page-heap lock held; cached runs are the owner's.
            unsafe {
                h.runs[n] = *run_next(page);
                release_to_bitmap(page, n);
            }
        }
    }
}

/// Hands every free dirty page of `owner` back to the OS and returns its wholly
/// free segments to the pool. Returns the bytes purged.
pub fn purge_owner(owner: usize) -> usize {
    heap(owner).with(|h| {
        let n = purge_locked(h, 0);
        // Nothing free is left: pages freed from now on start a fresh idle
        // count (the old low-water marks would let the next epoch's end purge
        // pages freed moments before it).
        h.low_water = 0;
        h.prev_low = 0;
        n
    })
}

/// `purge_owner` when `owner` holds at least `min_pages` free dirty pages
/// (so a trickle of frees costs a madvise per `min_pages`, not per call).
pub fn purge_owner_over(owner: usize, min_pages: usize) {
    heap(owner).with(|h| {
        if h.dirty_free_pages >= min_pages {
            purge_locked(h, 0);
            h.low_water = 0;
            h.prev_low = 0;
        }
    });
}

/// Purges free dirty pages, segment by segment, until at most `keep` free
/// dirty pages remain (hysteresis: a purge triggered by the bound leaves half
/// of it, so a heap hovering at the bound does not purge on every free).
fn purge_locked(h: &mut PageHeap, keep: usize) -> usize {
    spill_runs(h);
    let mut purged = 0;
    let mut link: *mut u32 = &mut h.segs;
    // SAFETY: owner's page-heap lock held; the pool lock is taken inside (order: heap -> pool).
    unsafe {
        while *link != 0 && h.dirty_free_pages > keep {
            let i = *link as usize - 1;
            let m = seg(i);
            let both = m.free_dirty();
            let mut start = page_bits::next(&both, 0, true);
            while start < SEG_PAGES {
                let end = page_bits::next(&both, start, false);
                let addr = arena::page_addr(i * SEG_PAGES + start) as *mut u8;
                os::purge(addr, (end - start) * PAGE);
                page_bits::set(&mut m.dirty, start, end - start, false);
                purged += (end - start) * PAGE;
                h.dirty_free_pages = h.dirty_free_pages.saturating_sub(end - start);
                start = page_bits::next(&both, end, true);
            }
            if m.nfree as usize == SEG_PAGES {
                // Wholly free and now clean: back to the pool.
                *link = m.next;
                POOL.with(|pool| pool_put(pool, i));
            } else {
                link = &mut m.next;
            }
        }
    }
    if keep == 0 {
        h.dirty_free_pages = 0;
    }
    stats::BYTES_PURGED.fetch_add(purged, Ordering::Relaxed);
    purged
}

/// True when some page heap holds free dirty pages (for the background
/// purge's sleep).
pub fn any_dirty() -> bool {
    owner::all()
        .iter()
        .any(|o| o.heap.0.with(|h| h.dirty_free_pages > 0))
}

/// Free dirty pages `owner`'s page heap holds right now (tests).
#[cfg(test)]
pub fn dirty_pages_of(owner: usize) -> usize {
    heap(owner).with(|h| h.dirty_free_pages)
}

/// Free dirty bytes all page heaps hold right now (RSS that a purge would return).
pub fn dirty_free_bytes() -> usize {
    owner::all()
        .iter()
        .map(|o| o.heap.0.with(|h| h.dirty_free_pages))
        .sum::<usize>()
        * PAGE
}

/// Fork support (`owner::lock_all`): the segment pool's lock (the page
/// heaps' locks are taken by `owner`).
pub fn lock_pool() {
    POOL.lock.lock();
}
pub fn unlock_pool(child: bool) {
    if child {
        POOL.lock.reset_after_fork();
    } else {
        POOL.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    /// The tests share the last owner's page heap.
    static HEAP_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn runs_are_disjoint_and_reusable() {
        let _g = HEAP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        crate::init::ensure();
        let owner = config::OWNERS - 1;
        let a = alloc_run(owner, 3).unwrap();
        let b = alloc_run(owner, 5).unwrap();
        assert!(a + 3 <= b || b + 5 <= a);
        free_run(owner, a, 3);
        let c = alloc_run(owner, 2).unwrap();
        assert!(c + 2 <= b || b + 5 <= c, "reused run overlaps a live one");
        free_run(owner, b, 5);
        free_run(owner, c, 2);
    }

    /// A segment that a search found too full gets a low run hint; freeing a
    /// run in it raises the hint again, so the next search finds the hole
    /// instead of a fresh segment (fails with the raise in
    /// `release_to_bitmap` taken out: the clean segment serves it).
    #[test]
    fn a_freed_run_is_found_after_a_failed_search() {
        let _g = HEAP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        crate::init::ensure();
        let owner = config::OWNERS - 1;
        // Runs above the run cache's largest go to the bitmaps when freed.
        let n = 200;
        assert!(n > RUN_CACHE_MAX_PAGES && 2 * n < SEG_PAGES);
        let mut runs = [0usize; 8];
        let mut k = 0;
        // Fill until a search fails in a segment and a new one is taken.
        let first_seg = loop {
            runs[k] = alloc_run(owner, n).unwrap();
            k += 1;
            if k >= 2 && runs[k - 1] / SEG_PAGES != runs[k - 2] / SEG_PAGES {
                break runs[k - 2] / SEG_PAGES;
            }
            assert!(k < runs.len());
        };
        let hole = runs[k - 2];
        free_run(owner, hole, n);
        let again = alloc_run(owner, n - 10).unwrap();
        assert_eq!(again, hole, "segment {first_seg}'s freed run was not found");
        free_run(owner, again, n - 10);
        for &r in &runs[..k] {
            if r != hole {
                free_run(owner, r, n);
            }
        }
    }
}
