//! Central caches: one per (owner, size class), holding that owner's spans of
//! that class that have free objects. Thread caches refill from and flush to
//! their owner's central cache in batches; remote frees reach the object's owner
//! here too, in batches.
//!
//! Owns: the central caches, each holding under its lock the partial list of
//! its (owner, class) (`span::Partial`: the list and the span records belong
//! to `span`, which the lock guards) and the transfer lists: whole lists a thread cache flushed,
//! kept (up to the lane's `transfer_kib`) for the next refill, which takes one
//! in O(1) without walking objects back into and out of their spans. Releases
//! wholly free spans to the owner's page heap (lock order: central -> page heap
//! -> pool). Detects, at no extra cost, objects that do not belong where they
//! are flushed (bad pointers) and spans that would hold more free objects than
//! they have (double frees), and aborts with a message; objects that travel in
//! transfer lists are checked when they reach their spans.
//! The caches and the transfer-list byte counts live in the owner records
//! (`owner`); only this module reads or writes them (`owner` takes their locks
//! for fork).
//! Must not touch thread caches or page heaps (`tcache`, `page_heap`). Spans
//! come and go through `span`.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arena;
use crate::config;
use crate::os;
use crate::owner;
use crate::size_class::{CLASSES, NCLS};
use crate::span::{self, Partial, Span};
use crate::stats;
use crate::sync::Locked;

/// A wholly free span this small may stay as the last partial span of its
/// class (saving a page-heap round trip when a class's usage hovers at zero);
/// bigger ones always go back.
const KEEP_EMPTY_SPAN_PAGES: usize = 16;

/// Bytes of never-used objects one refill carves at most (at least one
/// object): about the page the first of them starts in.
const CARVE_BYTES: usize = crate::os::PAGE;

/// Transfer lists kept per (owner, class) at most.
const XFER_SLOTS: usize = 8;
/// Bytes of transfer lists per owner, all classes together (so a burst of
/// frees cannot park more than this per owner outside the spans, where the
/// page heap could release it); off in the hardened build, where every flushed
/// object goes through the span checks.
const XFER_BYTES: usize = if crate::hardened::ENABLED {
    0
} else {
    config::TRANSFER_KIB * 1024
};

#[derive(Clone, Copy)]
struct Xfer {
    head: *mut u8,
    n: u32,
}

pub struct Central {
    /// Spans of this (owner, class) with free objects.
    partial: Partial,
    /// Transfer lists (a stack: the last flushed, warmest, is taken first).
    xfer: [Xfer; XFER_SLOTS],
    nxfer: u32,
    /// Objects in the transfer lists.
    xfer_objs: u32,
    /// Live spans of this (owner, class).
    pub spans: u32,
    /// Free objects sitting in those spans (carved or not).
    pub free_objs: u64,
    pub refills: u64,
    pub flushes: u64,
    /// `refills` at the last `release_idle` pass: equal at the next one,
    /// the class took nothing from this cache in between.
    aged_refills: u64,
}

// SAFETY: the raw pointers in the transfer lists are free objects owned by
// this (owner, class), touched only under its lock.
unsafe impl Send for Central {}

/// One central cache with its lock, on a cache line of its own (an owner's
/// record holds one per class, see `owner`).
#[repr(align(64))]
pub struct Slot(pub Locked<Central>);

impl Slot {
    pub const fn new() -> Slot {
        Slot(Locked::new(Central {
            partial: Partial::new(),
            xfer: [Xfer {
                head: ptr::null_mut(),
                n: 0,
            }; XFER_SLOTS],
            nxfer: 0,
            xfer_objs: 0,
            spans: 0,
            free_objs: 0,
            refills: 0,
            flushes: 0,
            aged_refills: 0,
        }))
    }
}

#[inline]
fn slot(owner: usize, cls: usize) -> &'static Locked<Central> {
    &owner::of(owner).central[cls].0
}

/// Bytes in `owner`'s transfer lists, all classes together (checked before a
/// list is kept; two classes racing may overshoot by a list each).
#[inline]
fn xfer_bytes(owner: usize) -> &'static AtomicUsize {
    &owner::of(owner).xfer_bytes
}

/// Notes that `owner` keeps a wholly free span or a transfer list
/// (`owner::Owner::kept`; a load first, so the flag's line is written only
/// when it changes).
#[inline]
fn mark_kept(owner: usize) {
    let k = &owner::of(owner).kept;
    if !k.load(Ordering::Relaxed) {
        k.store(true, Ordering::Relaxed);
    }
}

/// Takes a wholly free span (first page `first`, `objs` objects) off its
/// partial list and gives it back to the owner's page heap (`pages`: resident
/// or purged). Returns its pages.
///
/// # Safety
/// The central lock of the span's (owner, class) is held and `s` is that span.
unsafe fn release_span(
    c: &mut Central,
    owner: usize,
    first: usize,
    s: &mut Span,
    objs: u32,
    pages: span::Pages,
) -> usize {
    c.partial.unlink(s);
    c.spans -= 1;
    c.free_objs -= objs as u64;
    let n = s.npages();
    span::release(owner, first, s, pages);
    n
}

/// Empties one class's central cache of whole spans: its transfer lists go
/// back into their spans, and every span that is or becomes wholly free (the
/// kept one too) goes back to the page heap (`pages`). Returns the pages released.
///
/// # Safety
/// `c` is the central cache of (owner, cls), its lock held.
unsafe fn release_free_spans(
    c: &mut Central,
    owner: usize,
    cls: usize,
    pages: span::Pages,
) -> usize {
    let info = CLASSES[cls];
    let mut released = 0;
    while c.nxfer > 0 {
        let x = pop_xfer(c, owner, info.size as usize);
        released += to_spans(c, owner, cls, x.head, pages);
    }
    let mut next = c.partial.first();
    while let Some(first) = next {
        let s = span::record(first);
        next = s.next_on_list();
        if s.nfree() == info.span_objs {
            released += release_span(c, owner, first, s, info.span_objs, pages);
        }
    }
    released
}

/// True when (owner, cls) had no refill since the last `release_idle` pass
/// (so its inbox can be drained into it before that pass, `owner::age_tick`).
pub fn is_idle(owner: usize, cls: usize) -> bool {
    slot(owner, cls).with(|c| c.refills == c.aged_refills)
}

/// Idle classes give back what their central caches keep (issue 16, settled
/// RSS), at tick time (`owner::age_tick`), never on an allocation path: in
/// every class of `owner` with no refill since the previous pass (so idle
/// for at least one tick period), the transfer lists go back into their
/// spans and every wholly free span (the one kept as the last partial span
/// of its class, `KEEP_EMPTY_SPAN_PAGES`) goes back to the page heap, its
/// pages to the OS at once (`span::Pages::Purged`: they sat unused through
/// the whole period; the page heap's decay would take one more). That
/// includes the spans the transfer lists' objects make wholly free: left to
/// decay, they were most of what remote_r50_2k t8 still held 2 s after its
/// workers exited (14 of 18 MiB). A live thread's class that stops being
/// used no longer keeps a span resident per class for good. Returns the pages released.
pub fn release_idle(owner: usize) -> usize {
    let mut pages = 0;
    for cls in 1..NCLS {
        slot(owner, cls).with(|c| {
            let idle = c.refills == c.aged_refills;
            c.aged_refills = c.refills;
            if !idle || (c.spans == 0 && c.nxfer == 0) {
                return;
            }
            // SAFETY: central lock held.
            pages += unsafe { release_free_spans(c, owner, cls, span::Pages::Purged) };
        });
    }
    pages
}

/// Takes objects of (owner, cls): a whole transfer list if one holds at most
/// `max`, else up to `want` from the spans. Returns the head of a
/// null-terminated list and its length; length 0 means the arena is exhausted.
pub fn refill(owner: usize, cls: usize, want: usize, max: usize) -> (*mut u8, usize) {
    let info = CLASSES[cls];
    let size = info.size as usize;
    slot(owner, cls).with(|c| {
        c.refills += 1;
        if c.nxfer > 0 && c.xfer[c.nxfer as usize - 1].n as usize <= max {
            let x = pop_xfer(c, owner, size);
            stats::TRANSFER_REFILLS.fetch_add(1, Ordering::Relaxed);
            return (x.head, x.n as usize);
        }
        let mut head: *mut u8 = ptr::null_mut();
        let mut got = 0;
        // Never-used objects carved by this refill at most: carving writes a
        // link into each, touching its page, so a batch of big objects would
        // make pages resident that nobody may ever use (lazy carving).
        let mut fresh_left = (CARVE_BYTES / size).max(1);
        // Spans visited after the carving budget ran out, looking for freed
        // objects (bounded: the partial list may be long).
        let mut visits_left = 8;
        // The span to take from next (None: the end of the partial list).
        let mut cur = c.partial.first();
        // SAFETY: this central lock guards every span of (owner, cls).
        unsafe {
            while got < want {
                let (page, next) = match cur {
                    Some(page) => (page, span::record(page).next_on_list()),
                    None => {
                        if fresh_left == 0 {
                            // Only freed objects were still wanted, and none are left.
                            break;
                        }
                        let Some(page) = span::create(owner, cls) else {
                            break;
                        };
                        c.partial.push(page, span::record(page));
                        c.spans += 1;
                        c.free_objs += info.span_objs as u64;
                        (page, None)
                    }
                };
                let s = span::record(page);
                let n = s.carve(page, cls, want - got, &mut head, &mut fresh_left);
                got += n;
                c.free_objs -= n as u64;
                if s.nfree() == 0 {
                    c.partial.unlink(s);
                }
                cur = next;
                if fresh_left == 0 {
                    if visits_left == 0 {
                        break;
                    }
                    visits_left -= 1;
                }
            }
        }
        (head, got)
    })
}

/// Takes the last transfer list of `c` (there is one), whose objects are
/// `size` bytes, out of the counts.
fn pop_xfer(c: &mut Central, owner: usize, size: usize) -> Xfer {
    c.nxfer -= 1;
    let x = c.xfer[c.nxfer as usize];
    c.xfer_objs -= x.n;
    xfer_bytes(owner).fetch_sub(x.n as usize * size, Ordering::Relaxed);
    x
}

/// Returns a null-terminated list of `n` objects, all of (owner, cls), that a
/// thread cache flushed: kept whole as a transfer list while the (owner, class)
/// has room for it, else back to the spans.
pub fn flush_counted(owner: usize, cls: usize, list: *mut u8, n: usize) {
    if XFER_BYTES == 0 || n == 0 || n > CLASSES[cls].limit as usize {
        return flush(owner, cls, list);
    }
    let size = CLASSES[cls].size as usize;
    slot(owner, cls).with(|c| {
        c.flushes += 1;
        let bytes = n * size;
        if (c.nxfer as usize) < XFER_SLOTS
            && xfer_bytes(owner).load(Ordering::Relaxed) + bytes <= XFER_BYTES
        {
            xfer_bytes(owner).fetch_add(bytes, Ordering::Relaxed);
            c.xfer[c.nxfer as usize] = Xfer {
                head: list,
                n: n as u32,
            };
            c.nxfer += 1;
            c.xfer_objs += n as u32;
            mark_kept(owner);
        } else {
            // SAFETY: central lock held; the list is of (owner, cls).
            unsafe { to_spans(c, owner, cls, list, span::Pages::Dirty) };
        }
    });
}

/// Takes a remote batch `first ..= last` (null-terminated, `n` objects, all of
/// (owner, cls)) that a thread's outbox sent: in O(1) under the lock, while
/// the owner's transfer lists have room, else back to the spans. A batch that
/// fits is chained in front of the newest transfer list up to a refill batch
/// (the outbox sends short batches when it holds many classes), so the owner's
/// next refill still takes about a batch in one step.
pub fn flush_remote(owner: usize, cls: usize, first: *mut u8, last: *mut u8, n: usize) {
    let info = CLASSES[cls];
    if XFER_BYTES == 0 || n == 0 || n > info.batch as usize {
        return flush(owner, cls, first);
    }
    let bytes = n * info.size as usize;
    slot(owner, cls).with(|c| {
        c.flushes += 1;
        if xfer_bytes(owner).load(Ordering::Relaxed) + bytes <= XFER_BYTES {
            let top = c.nxfer as usize;
            if top > 0 && (c.xfer[top - 1].n as usize + n) <= info.batch as usize {
                // SAFETY: `last` is the batch's final node, ours until it is linked.
                unsafe { *(last as *mut *mut u8) = c.xfer[top - 1].head };
                c.xfer[top - 1].head = first;
                c.xfer[top - 1].n += n as u32;
            } else if top < XFER_SLOTS {
                c.xfer[top] = Xfer {
                    head: first,
                    n: n as u32,
                };
                c.nxfer += 1;
            } else {
                // SAFETY: central lock held; the list is of (owner, cls).
                unsafe { to_spans(c, owner, cls, first, span::Pages::Dirty) };
                return;
            }
            xfer_bytes(owner).fetch_add(bytes, Ordering::Relaxed);
            c.xfer_objs += n as u32;
            mark_kept(owner);
        } else {
            // SAFETY: central lock held; the list is of (owner, cls).
            unsafe { to_spans(c, owner, cls, first, span::Pages::Dirty) };
        }
    });
}

/// Returns a null-terminated list of objects, all of (owner, cls), to their spans.
pub fn flush(owner: usize, cls: usize, list: *mut u8) {
    slot(owner, cls).with(|c| {
        c.flushes += 1;
        // SAFETY: central lock held; the objects are checked one by one.
        unsafe { to_spans(c, owner, cls, list, span::Pages::Dirty) };
    });
}

/// Puts every object of `list` back into its span, releasing spans that become
/// wholly free.
///
/// # Safety
/// The central lock of (owner, cls) is held (`c` is its cache).
unsafe fn to_spans(
    c: &mut Central,
    owner: usize,
    cls: usize,
    mut list: *mut u8,
    pages: span::Pages,
) -> usize {
    let info = CLASSES[cls];
    let mut released = 0;
    let want = arena::Tag::span(owner, cls, 0);
    // Each object's tag is checked to be of (owner, cls) before its span is touched.
    while !list.is_null() {
        let obj = list;
        list = *(obj as *mut *mut u8);
        let Some((page, t)) = arena::lookup(obj as usize) else {
            os::fatal(
                "free(): pointer outside the heap in a cache list (heap corruption)",
                obj as usize,
            );
        };
        if t.span_kind() != want {
            os::fatal(
                "free(): invalid pointer (not a live hz3 block)",
                obj as usize,
            );
        }
        let first = page - t.page_off();
        let s = span::record(first);
        s.put(first, cls, obj);
        c.free_objs += 1;
        if !s.in_partial() {
            c.partial.push(first, s);
        }
        if s.nfree() == info.span_objs {
            if s.has_neighbours() || info.span_pages as usize > KEEP_EMPTY_SPAN_PAGES {
                // Wholly free and not the only (small) partial span: give the pages back.
                released += release_span(c, owner, first, s, info.span_objs, pages);
            } else {
                mark_kept(owner);
            }
        }
    }
    released
}

/// True when `p`, a block of class `cls`, is free: in its span's free list or
/// in a transfer list of its (owner, class). For the double-free confirmation
/// (`checks`), a rare slow path: walks at most a span's and the transfer lists'
/// objects under the central lock.
pub fn holds_free(cls: usize, p: *mut u8) -> bool {
    let Some((page, t)) = arena::lookup(p as usize) else {
        return false;
    };
    if !t.is_valid() || t.class() != cls {
        return false;
    }
    let owner = t.owner();
    slot(owner, cls).with(|c| {
        // Under the lock the span cannot change hands: re-read its tag.
        let t = arena::tag(page);
        if !t.is_valid() || t.class() != cls || t.owner() != owner {
            return false;
        }
        // SAFETY: central lock of (owner, cls) held; the span and the lists
        // hold free objects of (owner, cls), linked through their first word.
        unsafe {
            if span::record(page - t.page_off()).holds_free(p) {
                return true;
            }
            c.xfer[..c.nxfer as usize]
                .iter()
                .any(|x| span::list_holds(x.head, x.n as usize, p))
        }
    })
}

/// Puts the transfer lists back into their spans and releases every wholly
/// free span still cached (kept as the last partial span), resident: the
/// caller (`Owner::collect`) purges the whole page heap next.
pub fn release_empty(owner: usize) {
    for cls in 1..NCLS {
        // SAFETY: central lock held.
        slot(owner, cls).with(|c| unsafe { release_free_spans(c, owner, cls, span::Pages::Dirty) });
    }
}

/// A consistent copy of one central cache's counters (free objects include
/// those in transfer lists).
pub fn counters(owner: usize, cls: usize) -> (u32, u64, u64, u64) {
    slot(owner, cls).with(|c| {
        (
            c.spans,
            c.free_objs + c.xfer_objs as u64,
            c.refills,
            c.flushes,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_heap;
    use crate::size_class::class_of;

    /// The objects of a list, in order.
    fn walk(mut l: *mut u8, max: usize) -> std::vec::Vec<*mut u8> {
        let mut v = std::vec::Vec::new();
        while !l.is_null() && v.len() <= max {
            v.push(l);
            // SAFETY: a list of free objects handed out by `refill`.
            l = unsafe { *(l as *mut *mut u8) };
        }
        v
    }

    /// `want` objects of (owner, cls) as one list, from as many refills as it
    /// takes (a refill carves at most a page's worth of never-used objects).
    fn take(owner: usize, cls: usize, want: usize) -> (*mut u8, usize) {
        let mut head: *mut u8 = core::ptr::null_mut();
        let mut got = 0;
        while got < want {
            let (h, n) = refill(owner, cls, want - got, 0);
            assert!(n >= 1, "a refill handed out nothing");
            let objs = walk(h, n);
            assert_eq!(objs.len(), n, "list length differs from the count");
            // SAFETY: the last object of the list just handed out.
            unsafe { *(objs[n - 1] as *mut *mut u8) = head };
            head = h;
            got += n;
        }
        (head, got)
    }

    /// The last object of a list of `n`.
    fn last_of(l: *mut u8, n: usize) -> *mut u8 {
        *walk(l, n).last().expect("an empty list")
    }

    /// Remote batches (`remote_transfer`): two short batches delivered to an
    /// owner are chained into one transfer list, which the owner's next refill
    /// takes whole (both batches, newest first), not a span's objects one by
    /// one. Fails with `flush_remote` sending batches to the spans (the refill
    /// then carves from the span: not the second batch's head, not both batches).
    #[test]
    fn remote_batches_are_chained_into_one_transfer_list() {
        crate::init::ensure();
        let owner = config::OWNERS - 4; // not the other tests' owners
        let cls = class_of(2200);
        let limit = CLASSES[cls].limit as usize;
        // Two batches that fit one refill batch together in every lane
        // (mem_mstress's batches of big classes are short).
        let nb_want = if CLASSES[cls].batch >= 3 { 2 } else { 1 };
        let (a, na) = take(owner, cls, 1);
        let (b, nb) = take(owner, cls, nb_want);
        let (a_last, b_last) = (last_of(a, na), last_of(b, nb));
        flush_remote(owner, cls, a, a_last, na);
        flush_remote(owner, cls, b, b_last, nb);
        let (h, n) = refill(owner, cls, 1, limit);
        // `flush_remote` keeps batches whenever the lane has transfer lists
        // (only `remote_transfer` lanes call it from the outbox).
        if XFER_BYTES > 0 {
            assert!(na + nb <= CLASSES[cls].batch as usize);
            assert_eq!(
                (h, n),
                (b, na + nb),
                "the batches were not kept as one list"
            );
            let objs = walk(h, n);
            assert_eq!(objs.len(), n);
            assert_eq!(
                objs[nb], a,
                "the older batch is not chained after the newer"
            );
        } else {
            assert_eq!(n, 1);
        }
        flush(owner, cls, h);
        release_empty(owner);
        assert_eq!(
            counters(owner, cls).0,
            0,
            "objects of the batches were lost"
        );
        assert_eq!(xfer_bytes(owner).load(Ordering::Relaxed), 0);
    }

    /// Lazy carving: a refill from a fresh span hands out about a page's
    /// worth of objects (at least one), however many were asked for.
    #[test]
    fn refill_carves_about_a_page_of_fresh_objects() {
        crate::init::ensure();
        let owner = config::OWNERS - 3;
        for size in [48, 1000, 20000] {
            let cls = class_of(size);
            let csize = CLASSES[cls].size as usize;
            let (head, n) = refill(owner, cls, 64, 0);
            assert_eq!(n, (CARVE_BYTES / csize).clamp(1, 64), "class of {size} B");
            flush(owner, cls, head);
        }
        release_empty(owner);
    }

    /// Invariants of one (owner, class): a refill hands out exactly `n`
    /// distinct objects of (owner, class), counted out of the cache's free
    /// objects (spans x objects per span = free + handed out); flushing them
    /// back counts them in again, and `release_empty` gives every wholly free
    /// span back (no span and no free object left).
    #[test]
    fn refill_and_flush_keep_the_counts() {
        crate::init::ensure();
        let owner = config::OWNERS - 1;
        let cls = class_of(3000); // a class no other unit test uses
        let info = CLASSES[cls];
        let want = info.span_objs as usize + 3; // spans two spans
        let (head, n) = take(owner, cls, want);
        assert_eq!(n, want);
        let objs = walk(head, want);
        assert_eq!(objs.len(), n, "list length differs from the count");
        let mut sorted = objs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "an object was handed out twice");
        for &o in &objs {
            let (_, t) = arena::lookup(o as usize).expect("object in the arena");
            assert!(t.is_valid() && t.owner() == owner && t.class() == cls);
        }
        let (spans, free, _, _) = counters(owner, cls);
        assert_eq!(spans, 2);
        assert_eq!(
            spans as u64 * info.span_objs as u64,
            free + n as u64,
            "spans x objects != free + handed out"
        );
        flush(owner, cls, head);
        let (spans, free, _, _) = counters(owner, cls);
        assert_eq!(spans as u64 * info.span_objs as u64, free);
        release_empty(owner);
        assert_eq!(counters(owner, cls).0, 0, "a wholly free span was kept");
        assert_eq!(counters(owner, cls).1, 0);
    }

    /// An idle class gives back the spans its transfer lists' objects make
    /// wholly free with their pages purged, as the free spans it kept: left
    /// to the page heap's decay they stayed resident one more decay period
    /// (remote_r50_2k t8 held 14 MiB of them 2 s after its workers exited).
    /// Fails with `release_idle` releasing them `Pages::Dirty`.
    #[test]
    fn an_idle_class_purges_the_spans_its_transfer_lists_empty() {
        crate::init::ensure();
        let owner = config::OWNERS - 5; // not the other tests' owners
        let cls = class_of(1500);
        let info = CLASSES[cls];
        let per_list = (info.limit as usize).min(info.span_objs as usize).max(1);
        let want = 2 * info.span_objs as usize;
        assert!(
            want <= XFER_SLOTS * per_list,
            "two spans do not fit the lists"
        );
        let (mut head, got) = take(owner, cls, want);
        assert_eq!(got, want);
        let (spans, free, _, _) = counters(owner, cls);
        assert_eq!((spans, free), (2, 0), "two spans wholly handed out");
        let dirty_before = page_heap::dirty_pages_of(owner);
        // Back as transfer lists (where the lane keeps them).
        let mut left = want;
        while left > 0 {
            let n = left.min(per_list);
            let objs = walk(head, n);
            // SAFETY: the list's n-th object ends the part flushed now.
            let rest =
                unsafe { core::mem::replace(&mut *(objs[n - 1] as *mut *mut u8), ptr::null_mut()) };
            flush_counted(owner, cls, head, n);
            head = rest;
            left -= n;
        }
        if XFER_BYTES == 0 {
            // No transfer lists: the flushes emptied the spans already.
            release_empty(owner);
            return;
        }
        assert_eq!(
            counters(owner, cls).0,
            2,
            "the spans were emptied at the flush"
        );
        release_idle(owner); // the refills above: not idle yet
        let released = release_idle(owner);
        assert_eq!(counters(owner, cls).0, 0, "an idle class kept its spans");
        assert_eq!(released, 2 * info.span_pages as usize);
        assert_eq!(
            page_heap::dirty_pages_of(owner),
            dirty_before,
            "the emptied spans' pages were left resident for the decay"
        );
    }

    /// A flushed list is kept whole as a transfer list (where the lane keeps
    /// them) and the next refill that can take it gets that same list back.
    #[test]
    fn transfer_list_comes_back_whole() {
        crate::init::ensure();
        let owner = config::OWNERS - 2; // not the other test's: release_empty is per owner
        let cls = class_of(2500);
        let n = (CLASSES[cls].limit as usize).min(4);
        let (head, got) = take(owner, cls, n);
        assert_eq!(got, n);
        flush_counted(owner, cls, head, n);
        let (h2, n2) = refill(owner, cls, 1, n);
        if XFER_BYTES > 0 {
            assert_eq!((h2, n2), (head, n), "the transfer list was not taken whole");
        } else {
            assert_eq!(n2, 1);
        }
        flush(owner, cls, h2);
        release_empty(owner);
        assert_eq!(counters(owner, cls).0, 0);
        assert_eq!(xfer_bytes(owner).load(Ordering::Relaxed), 0);
    }
}
