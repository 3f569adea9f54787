//! The arena: one reserved virtual range for every size-class allocation, the
//! page-tag table in front of it, span and segment metadata beside it.
//!
//! Owns the reservation and the tag encoding. Layout of the reservation:
//! `[tag table: NPAGES u32][arena: NPAGES pages]`, the table ending exactly where
//! the arena starts, so a tag is read at `base - TAG_BYTES + 4*page` with one
//! global load (`base`). Tags are written (relaxed) when a span is created and
//! cleared when it is released; a thread only ever reads a tag of a pointer it
//! legitimately holds, whose publication happened-before. Pointers outside
//! `[base, base + NPAGES*PAGE)` are never tag-read. If the full reservation is
//! refused (e.g. `ulimit -v`), smaller arenas are tried; with none at all, the
//! arena is "disabled" (`base` = DISABLED_BASE, so every range check fails) and
//! everything is served by the large-mapping path.
//! The reservation is made without access and without commit charge
//! (PROT_NONE, MAP_NORESERVE: under strict overcommit a process is charged
//! only for what it uses): the tag table is made readable at once (it reads as
//! zero, so a stray pointer's tag read finds "no block" and is not charged)
//! and a segment's pages and its slice of the table become writable when the
//! segment is first taken (`commit_segment`). The span-record table
//! (`SPAN_RECORD_BYTES` per page, whose contents belong to `span`) is reserved
//! beside it and committed with each segment too.
//! Must not touch thread caches, central caches or span records' contents
//! (`tcache`, `central`, `span`).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::config;
use crate::os::{self, PAGE};

pub const PAGE_SHIFT: usize = 12;
/// Pages the arena may span (compile-time, per lane).
pub const NPAGES: usize = config::ARENA_GIB << (30 - PAGE_SHIFT);
/// Bytes of the tag table.
pub const TAG_BYTES: usize = NPAGES * 4;
/// Segment: the unit an owner takes from the arena.
pub const SEG_PAGES: usize = 512;
pub const SEG_BYTES: usize = SEG_PAGES * PAGE;
pub const NSEGS: usize = NPAGES / SEG_PAGES;
/// Base used when no arena could be reserved: `p - base` exceeds the arena for every user address.
pub const DISABLED_BASE: usize = 0usize.wrapping_sub(1usize << 44);

/// Longest aligned run (its page count - 1 is kept in 8 bits).
pub const ALIGNED_MAX_PAGES: usize = 256;

/// A page tag: what the table says about one arena page. The only place that
/// knows the bit layout (nothing outside this module masks or shifts a tag).
///
/// Layout: bits 0..8 class, 8..16 owner, bit 16 VALID, bits 20..32 page offset
/// in the span. An aligned run (a block with an alignment above a page, see
/// `alloc::aligned_alloc`) is tagged ALIGNED instead of VALID (so the free fast
/// path never matches it): bits 0..8 its pages - 1, 8..16 owner, bit 18 on the
/// block's first page only. A free page's tag is 0 (`Tag::NONE`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Tag(u32);

const TAG_VALID: u32 = 1 << 16;
const TAG_CLASS_MASK: u32 = 0xff;
const TAG_OFF_SHIFT: u32 = 20;
/// The bits that hold the page offset (cleared by `Tag::span_kind`).
const TAG_OFF_MASK: u32 = 0xfff << TAG_OFF_SHIFT;
const TAG_ALIGNED: u32 = 1 << 17;
const TAG_BLOCK_START: u32 = 1 << 18;
/// A bit no tag has (an `expect` with it matches no tag, `EXPECT_NONE`).
const TAG_NEVER: u32 = 1 << 19;

impl Tag {
    /// The tag of a page that belongs to no block.
    pub const NONE: Tag = Tag(0);

    /// Page `page_off` of a span of (owner, cls).
    #[inline(always)]
    pub const fn span(owner: usize, cls: usize, page_off: usize) -> Tag {
        Tag(TAG_VALID | ((owner as u32) << 8) | cls as u32 | ((page_off as u32) << TAG_OFF_SHIFT))
    }

    /// Page `page_off` of an aligned run of `npages` pages whose block starts at `block_off`.
    pub const fn aligned(owner: usize, npages: usize, page_off: usize, block_off: usize) -> Tag {
        let start = if page_off == block_off {
            TAG_BLOCK_START
        } else {
            0
        };
        Tag(TAG_ALIGNED
            | start
            | ((owner as u32) << 8)
            | (npages as u32 - 1)
            | ((page_off as u32) << TAG_OFF_SHIFT))
    }

    /// A page of a span of size-class blocks.
    #[inline(always)]
    pub const fn is_valid(self) -> bool {
        self.0 & TAG_VALID != 0
    }
    /// A page of an aligned run (never `is_valid`).
    #[inline(always)]
    pub const fn is_aligned(self) -> bool {
        self.0 & TAG_ALIGNED != 0
    }
    /// The page of an aligned run where its block starts.
    #[inline(always)]
    pub const fn is_block_start(self) -> bool {
        self.0 & TAG_BLOCK_START != 0
    }
    #[inline(always)]
    pub const fn owner(self) -> usize {
        ((self.0 >> 8) & 0xff) as usize
    }
    /// The size class (of a valid tag).
    #[inline(always)]
    pub const fn class(self) -> usize {
        (self.0 & TAG_CLASS_MASK) as usize
    }
    /// This page's offset from the first page of its span or run.
    #[inline(always)]
    pub const fn page_off(self) -> usize {
        (self.0 >> TAG_OFF_SHIFT) as usize
    }
    /// Pages of the aligned run (of an `is_aligned` tag).
    #[inline(always)]
    pub const fn aligned_pages(self) -> usize {
        (self.0 & TAG_CLASS_MASK) as usize + 1
    }
    /// The tag without its page offset: equal for every page of every span of
    /// one (owner, class).
    #[inline(always)]
    pub const fn span_kind(self) -> Tag {
        Tag(self.0 & !TAG_OFF_MASK)
    }
}

/// The `expect` of a thread of `owner`: what a VALID tag of `owner` shows
/// without its class and page offset (`local_class`).
#[inline(always)]
pub const fn expect_for_owner(owner: usize) -> u32 {
    TAG_VALID | ((owner as u32) << 8)
}

/// The `expect` of threads without a cache: no tag matches it in
/// `local_class` (it has a bit no tag has).
pub const EXPECT_NONE: u32 = TAG_NEVER;
const _: () = assert!(
    local_class(Tag::NONE, EXPECT_NONE).is_none()
        && local_class(Tag::span(0, 1, 0), EXPECT_NONE).is_none()
        && local_class(Tag::aligned(0, 1, 0, 0), EXPECT_NONE).is_none()
);

/// The free fast path's owner test and class in one: `tag ^ expect` without
/// the page offset. For the `expect_for_owner` of the tag's owner and a VALID
/// tag the owner and VALID bits cancel and ALIGNED, BLOCK_START and NEVER are
/// 0, which leaves the class (< 256); any other owner, a free page (`NONE`),
/// an aligned run or `EXPECT_NONE` leaves a bit at 8 or above. One xor, one
/// and, one compare, and the class is already in its register.
#[inline(always)]
pub const fn local_class(tag: Tag, expect: u32) -> Option<usize> {
    let x = ((tag.0 ^ expect) & !TAG_OFF_MASK) as usize;
    if x <= TAG_CLASS_MASK as usize {
        Some(x)
    } else {
        None
    }
}

/// Bytes of one span record (`span::Span`, checked there).
pub const SPAN_RECORD_BYTES: usize = 32;
/// The span-record table: NPAGES records (0 until reserved).
static SPAN_RECORDS: AtomicUsize = AtomicUsize::new(0);

/// Base of the arena (DISABLED_BASE until initialised or when disabled).
pub static BASE: AtomicUsize = AtomicUsize::new(DISABLED_BASE);
/// Pages actually reserved (<= NPAGES).
pub static RESERVED_PAGES: AtomicUsize = AtomicUsize::new(0);

/// Reserves the arena. Called once, under the init lock. Returns false when
/// no arena could be had (the allocator then runs on the large path alone).
pub fn reserve() -> bool {
    let records = os::reserve(NPAGES * SPAN_RECORD_BYTES);
    if records.is_null() {
        return false;
    }
    SPAN_RECORDS.store(records as usize, Ordering::Release);
    let mut pages = NPAGES;
    let min_pages = SEG_PAGES * 4;
    while pages >= min_pages {
        let total = TAG_BYTES + pages * PAGE + SEG_BYTES;
        let raw = os::reserve(total);
        if !raw.is_null() {
            let raw = raw as usize;
            // The arena starts at the first segment boundary leaving room for the table.
            let arena = (raw + TAG_BYTES + SEG_BYTES - 1) & !(SEG_BYTES - 1);
            // SAFETY: the table lies inside the fresh reservation (TAG_BYTES is page-aligned).
            if !unsafe { os::read_only((arena - TAG_BYTES) as *mut u8, TAG_BYTES) } {
                // SAFETY: our fresh, unused reservation.
                unsafe { os::unmap(raw as *mut u8, total) };
                return false;
            }
            BASE.store(arena, Ordering::Release);
            RESERVED_PAGES.store(pages, Ordering::Release);
            return true;
        }
        pages /= 2;
    }
    false
}

/// Makes segment `i` (its pages and its slice of the tag table) writable.
/// Called once per segment, when the pool first hands it out. False when the
/// system refuses (strict overcommit: out of commit).
pub fn commit_segment(i: usize) -> bool {
    debug_assert!(i < RESERVED_PAGES.load(Ordering::Relaxed) / SEG_PAGES);
    let b = base();
    let tags = b - TAG_BYTES + i * SEG_PAGES * 4;
    let tags_start = tags & !(PAGE - 1);
    let tags_end = (tags + SEG_PAGES * 4 + PAGE - 1) & !(PAGE - 1);
    let recs = SPAN_RECORDS.load(Ordering::Relaxed) + i * SEG_PAGES * SPAN_RECORD_BYTES;
    // SAFETY: segment i and its table slices lie inside the reservations (i < reserved
    // segments; the record slice is page-aligned: SEG_PAGES * SPAN_RECORD_BYTES is
    // a multiple of PAGE).
    unsafe {
        os::commit(recs as *mut u8, SEG_PAGES * SPAN_RECORD_BYTES)
            && os::commit(tags_start as *mut u8, tags_end - tags_start)
            && os::commit((b + i * SEG_BYTES) as *mut u8, SEG_BYTES)
    }
}

/// Gives back the resident memory of segment `i`'s metadata in the arena's
/// tables (issue 16, settled RSS): its span records (a whole number of pages,
/// `SEG_PAGES * SPAN_RECORD_BYTES`) always, and the tag-table page its tags
/// share with segment `i ^ 1` when `pair_free` (the page holds the tags of
/// both segments of an even-odd pair). The pages stay writable and read as
/// zero when next touched, which is what a segment nobody uses holds in
/// every tag (`Tag::NONE`); its records are written whole when a span is
/// made (`span`), never read before.
///
/// # Safety
/// Segment `i` (and, with `pair_free`, segment `i ^ 1`) has been committed
/// (`commit_segment`) and holds no span, run or tag: it is in the segment
/// pool (or, for `i ^ 1`, was never handed out), and stays so while this
/// runs (the caller holds the pool lock).
pub unsafe fn drop_segment_metadata(i: usize, pair_free: bool) {
    let recs = SPAN_RECORDS.load(Ordering::Relaxed) + i * SEG_PAGES * SPAN_RECORD_BYTES;
    os::purge(recs as *mut u8, SEG_PAGES * SPAN_RECORD_BYTES);
    if pair_free {
        let tags = (base() - TAG_BYTES + i * SEG_PAGES * 4) & !(PAGE - 1);
        os::purge(tags as *mut u8, PAGE);
    }
}

/// Segments whose tags share one page of the tag table (an even-odd pair).
const _: () =
    assert!(SEG_PAGES * 4 * 2 == PAGE && (SEG_PAGES * SPAN_RECORD_BYTES).is_multiple_of(PAGE));

#[inline(always)]
pub fn base() -> usize {
    BASE.load(Ordering::Relaxed)
}

/// True when arena page `page` lies in the reserved part of the arena (the
/// free fast path checks only `page < NPAGES`).
#[inline]
pub fn is_reserved(page: usize) -> bool {
    page < RESERVED_PAGES.load(Ordering::Relaxed)
}

/// Page index of `p` in the arena, or None when `p` is outside it. When only a
/// smaller arena could be reserved, the rest of the NPAGES range belongs to
/// others (mmap may place anything there): only reserved pages count. (The free
/// fast path checks against NPAGES alone; pages beyond the reservation carry tag
/// 0 and reach the slow path, which asks here.)
#[inline(always)]
pub fn page_of(p: usize) -> Option<usize> {
    let page = p.wrapping_sub(base()) >> PAGE_SHIFT;
    if page < RESERVED_PAGES.load(Ordering::Relaxed) {
        Some(page)
    } else {
        None
    }
}

/// The tag of page `page` of the arena at `base`, for the free fast path
/// (which has loaded `base` already and checked `page < NPAGES`).
///
/// # Safety
/// `page < NPAGES` and `base` is `base()` (a reservation or DISABLED_BASE,
/// with which no page passes the check).
#[inline(always)]
pub unsafe fn tag_in(base: usize, page: usize) -> Tag {
    Tag((*((base - TAG_BYTES) as *const AtomicU32).add(page)).load(Ordering::Relaxed))
}

#[inline(always)]
fn tag_slot(page: usize) -> &'static AtomicU32 {
    debug_assert!(page < NPAGES);
    // SAFETY: the table spans NPAGES u32 right below `base`, reserved by `reserve`
    // whenever `page_of` can return Some (base is DISABLED_BASE otherwise).
    unsafe { &*((base() - TAG_BYTES) as *const AtomicU32).add(page) }
}

/// The tag of page `page` (< the reserved pages).
#[inline(always)]
pub fn tag(page: usize) -> Tag {
    Tag(tag_slot(page).load(Ordering::Relaxed))
}

/// The page of `p` and its tag, or None when `p` is outside the arena: the one
/// way from a pointer to its metadata.
#[inline(always)]
pub fn lookup(p: usize) -> Option<(usize, Tag)> {
    let page = page_of(p)?;
    Some((page, tag(page)))
}

/// Tags every page of a span `[first, first + n)`.
pub fn set_span_tags(first: usize, n: usize, owner: usize, cls: usize) {
    for i in 0..n {
        tag_slot(first + i).store(Tag::span(owner, cls, i).0, Ordering::Relaxed);
    }
}

/// Tags every page of an aligned run `[first, first + n)` whose block starts at page `block_off`.
pub fn set_aligned_tags(first: usize, n: usize, owner: usize, block_off: usize) {
    for i in 0..n {
        tag_slot(first + i).store(Tag::aligned(owner, n, i, block_off).0, Ordering::Relaxed);
    }
}

pub fn clear_tags(first: usize, n: usize) {
    for i in 0..n {
        tag_slot(first + i).store(Tag::NONE.0, Ordering::Relaxed);
    }
}

/// The class of the block at `p`, a pointer into a live span of the arena.
#[inline(always)]
pub fn class_at(p: usize) -> usize {
    let page = (p - base()) >> PAGE_SHIFT;
    tag(page).class()
}

/// The span record of `page` (raw memory; `span` gives it its type).
#[inline(always)]
pub fn span_record(page: usize) -> *mut u8 {
    debug_assert!(page < NPAGES);
    (SPAN_RECORDS.load(Ordering::Relaxed) + page * SPAN_RECORD_BYTES) as *mut u8
}

#[inline(always)]
pub fn page_addr(page: usize) -> usize {
    base() + (page << PAGE_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trip() {
        for owner in [0usize, 1, 7, 31, 255] {
            for cls in [1usize, 64, 65, 128] {
                for off in [0usize, 1, 255, 511] {
                    let t = Tag::span(owner, cls, off);
                    assert!(t.is_valid() && !t.is_aligned());
                    assert_eq!(t.owner(), owner);
                    assert_eq!(t.class(), cls);
                    assert_eq!(t.page_off(), off);
                    assert!(t.span_kind() == Tag::span(owner, cls, 0));
                    let a = Tag::aligned(owner, 4, off % 4, 1);
                    assert!(!a.is_valid() && a.is_aligned());
                    assert_eq!(a.owner(), owner);
                    assert_eq!(a.aligned_pages(), 4);
                    assert_eq!(a.page_off(), off % 4);
                    assert_eq!(a.is_block_start(), off % 4 == 1);
                    // local_class: the class for the own owner, None otherwise.
                    let e = expect_for_owner(owner);
                    assert_eq!(local_class(t, e), Some(cls));
                    assert_eq!(local_class(t, expect_for_owner(owner ^ 1)), None);
                    assert_eq!(local_class(Tag::NONE, e), None);
                    assert_eq!(local_class(a, e), None);
                    for x in [t, a, Tag::NONE] {
                        assert_eq!(local_class(x, EXPECT_NONE), None);
                    }
                }
            }
        }
    }

    #[test]
    fn disabled_base_rejects_every_user_address() {
        for p in [0usize, 4096, 1 << 30, 0x7fff_ffff_f000, 0x7fff_ffff_ffff] {
            assert!(p.wrapping_sub(DISABLED_BASE) >> PAGE_SHIFT >= NPAGES);
        }
    }

    #[test]
    fn arena_is_reserved_aligned_and_tags_work() {
        crate::init::ensure();
        let b = base();
        assert_ne!(b, DISABLED_BASE);
        assert_eq!(b % SEG_BYTES, 0);
        assert_eq!(page_of(b), Some(0));
        assert_eq!(page_of(b + 5 * PAGE + 17), Some(5));
        assert_eq!(page_of(b - 1), None);
        assert_eq!(page_of(b + NPAGES * PAGE), None);
    }
}
