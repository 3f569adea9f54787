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
//! segment is first taken (`commit_segment`).
//! Must not touch thread caches or central caches.

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

// Tag layout: bits 0..8 class, 8..16 owner, bit 16 VALID, bits 20..32 page offset in the span.
// An aligned run (a block with an alignment above a page, see `alloc::aligned_alloc`)
// is tagged ALIGNED instead of VALID (so the free fast path never matches it):
// bits 0..8 its pages - 1, 8..16 owner, bit 18 on the block's first page only.
pub const TAG_VALID: u32 = 1 << 16;
pub const TAG_CLASS_MASK: u32 = 0xff;
/// Mask of the bits the free fast path compares against the thread's `expect`.
pub const TAG_OWNER_MASK: u32 = TAG_VALID | 0xff00;
const TAG_OFF_SHIFT: u32 = 20;
pub const TAG_ALIGNED: u32 = 1 << 17;
pub const TAG_BLOCK_START: u32 = 1 << 18;
/// Longest aligned run (its page count - 1 is kept in 8 bits).
pub const ALIGNED_MAX_PAGES: usize = 256;

#[inline(always)]
pub const fn make_tag(owner: usize, cls: usize, page_off: usize) -> u32 {
    TAG_VALID | ((owner as u32) << 8) | cls as u32 | ((page_off as u32) << TAG_OFF_SHIFT)
}
/// Tag of page `page_off` of an aligned run of `npages` pages whose block starts at `block_off`.
pub const fn make_aligned_tag(
    owner: usize,
    npages: usize,
    page_off: usize,
    block_off: usize,
) -> u32 {
    let start = if page_off == block_off {
        TAG_BLOCK_START
    } else {
        0
    };
    TAG_ALIGNED
        | start
        | ((owner as u32) << 8)
        | (npages as u32 - 1)
        | ((page_off as u32) << TAG_OFF_SHIFT)
}
/// Pages of the aligned run a tag with TAG_ALIGNED belongs to.
#[inline(always)]
pub const fn aligned_run_pages(t: u32) -> usize {
    (t & TAG_CLASS_MASK) as usize + 1
}
#[inline(always)]
pub const fn tag_owner(t: u32) -> usize {
    ((t >> 8) & 0xff) as usize
}
#[inline(always)]
pub const fn tag_class(t: u32) -> usize {
    (t & TAG_CLASS_MASK) as usize
}
#[inline(always)]
pub const fn tag_page_off(t: u32) -> usize {
    (t >> TAG_OFF_SHIFT) as usize
}
#[inline(always)]
pub const fn expect_for_owner(owner: usize) -> u32 {
    TAG_VALID | ((owner as u32) << 8)
}

/// Base of the arena (DISABLED_BASE until initialised or when disabled).
pub static BASE: AtomicUsize = AtomicUsize::new(DISABLED_BASE);
/// Pages actually reserved (<= NPAGES).
pub static RESERVED_PAGES: AtomicUsize = AtomicUsize::new(0);

/// Reserves the arena. Called once, under the init lock. Returns false when
/// no arena could be had (the allocator then runs on the large path alone).
pub fn reserve() -> bool {
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
    // SAFETY: segment i and its table slice lie inside the reservation (i < reserved segments).
    unsafe {
        os::commit(tags_start as *mut u8, tags_end - tags_start)
            && os::commit((b + i * SEG_BYTES) as *mut u8, SEG_BYTES)
    }
}

#[inline(always)]
pub fn base() -> usize {
    BASE.load(Ordering::Relaxed)
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

#[inline(always)]
fn tag_slot(page: usize) -> &'static AtomicU32 {
    debug_assert!(page < NPAGES);
    // SAFETY: the table spans NPAGES u32 right below `base`, reserved by `reserve`
    // whenever `page_of` can return Some (base is DISABLED_BASE otherwise).
    unsafe { &*((base() - TAG_BYTES) as *const AtomicU32).add(page) }
}

#[inline(always)]
pub fn tag(page: usize) -> u32 {
    tag_slot(page).load(Ordering::Relaxed)
}

/// Tags every page of a span `[first, first + n)`.
pub fn set_span_tags(first: usize, n: usize, owner: usize, cls: usize) {
    for i in 0..n {
        tag_slot(first + i).store(make_tag(owner, cls, i), Ordering::Relaxed);
    }
}

pub fn set_tag(page: usize, t: u32) {
    tag_slot(page).store(t, Ordering::Relaxed);
}

pub fn clear_tags(first: usize, n: usize) {
    for i in 0..n {
        tag_slot(first + i).store(0, Ordering::Relaxed);
    }
}

/// The class of the block at `p`, a pointer into a live span of the arena.
#[inline(always)]
pub fn class_at(p: usize) -> usize {
    let page = (p - base()) >> PAGE_SHIFT;
    tag_class(tag(page))
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
                    let t = make_tag(owner, cls, off);
                    assert_eq!(tag_owner(t), owner);
                    assert_eq!(tag_class(t), cls);
                    assert_eq!(tag_page_off(t), off);
                    assert_eq!(t & TAG_OWNER_MASK, expect_for_owner(owner));
                    let free_page_tag: u32 = 0;
                    assert_ne!(free_page_tag & TAG_OWNER_MASK, expect_for_owner(owner));
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
