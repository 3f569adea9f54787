//! Spans: a run of pages carved into objects of one size class, owned by one
//! (owner, class). A span's record sits at the index of its first page in the
//! span-record table (memory reserved and committed by `arena`).
//!
//! Owns: the record's contents (`Span`: its free list, its carving point, its
//! free count, its links), the partial lists (`Partial`: spans of one
//! (owner, class) that have free objects, linked through their records),
//! carving objects out of a span and putting them back, and making a span out
//! of a page run (tagging its pages) and a page run out of a span.
//! Locking: a span's record and the partial list it is on are guarded by the
//! central-cache lock of its (owner, class) (see `central`).
//! Must not touch thread caches or the central caches' own state (`tcache`,
//! `central`). A span is made from a run the page heap hands out and its
//! pages go back there, through the page heap's functions only.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::arena;
use crate::hardened;
use crate::os;
use crate::page_heap;
use crate::size_class::CLASSES;
use crate::stats;

/// Metadata of one span, stored at the index of its first page.
#[repr(C)]
pub struct Span {
    /// Free objects returned to this span (intrusive list through each object's first word).
    free: *mut u8,
    /// Objects of the span never handed out yet (carved from the start on demand).
    bump: u32,
    /// Free objects in the span (on `free` plus not yet carved).
    nfree: u32,
    cls: u8,
    owner: u8,
    in_partial: bool,
    npages: u16,
    /// Neighbours in the partial list of its (owner, class): page index + 1, 0 for none.
    prev: u32,
    next: u32,
}

const _: () = assert!(core::mem::size_of::<Span>() == arena::SPAN_RECORD_BYTES);

/// The record of the span whose first page is `page`.
///
/// # Safety
/// `page` < NPAGES is the first page of a live span (or one being made) and
/// the caller holds the central lock of its (owner, class).
#[inline]
#[allow(clippy::mut_from_ref)]
pub unsafe fn record(page: usize) -> &'static mut Span {
    &mut *(arena::span_record(page) as *mut Span)
}

/// A partial list: the spans of one (owner, class) that have free objects.
/// Its head is the first page + 1, 0 when empty.
pub struct Partial(u32);

impl Partial {
    pub const fn new() -> Partial {
        Partial(0)
    }

    /// First page of the first span on the list.
    #[inline]
    pub fn first(&self) -> Option<usize> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0 as usize - 1)
        }
    }

    /// Puts span `s` (first page `page`) at the front.
    ///
    /// # Safety
    /// The list's lock is held and `s` is the record of `page`, not on any list.
    pub unsafe fn push(&mut self, page: usize, s: &mut Span) {
        s.prev = 0;
        s.next = self.0;
        if self.0 != 0 {
            record(self.0 as usize - 1).prev = page as u32 + 1;
        }
        self.0 = page as u32 + 1;
        s.in_partial = true;
    }

    /// Takes span `s` off the list.
    ///
    /// # Safety
    /// The list's lock is held and `s` is on this list.
    pub unsafe fn unlink(&mut self, s: &mut Span) {
        if s.prev != 0 {
            record(s.prev as usize - 1).next = s.next;
        } else {
            self.0 = s.next;
        }
        if s.next != 0 {
            record(s.next as usize - 1).prev = s.prev;
        }
        s.prev = 0;
        s.next = 0;
        s.in_partial = false;
    }
}

impl Default for Partial {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes a span of (owner, cls) from a fresh page run of the owner's page
/// heap: tags its pages and writes its record. Returns its first page, None
/// when the arena is exhausted.
///
/// # Safety
/// The central lock of (owner, cls) is held.
pub unsafe fn create(owner: usize, cls: usize) -> Option<usize> {
    let info = CLASSES[cls];
    let pages = info.span_pages as usize;
    let page = page_heap::alloc_run(owner, pages)?;
    arena::set_span_tags(page, pages, owner, cls);
    *record(page) = Span {
        free: ptr::null_mut(),
        bump: 0,
        nfree: info.span_objs,
        cls: cls as u8,
        owner: owner as u8,
        in_partial: false,
        npages: pages as u16,
        prev: 0,
        next: 0,
    };
    Some(page)
}

/// What becomes of a released span's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// Free in the page heap, resident until its decay or bound purges them
    /// (`page_heap::free_run`): a span freed while its class is in use.
    Dirty,
    /// Back to the OS at once (`page_heap::free_run_purged`): a span of a
    /// class that sat idle through a whole period.
    Purged,
}

/// Gives the pages of span `s` (first page `first`, off every list) back to
/// the owner's page heap, resident or purged (`pages`).
///
/// # Safety
/// The central lock of the span's (owner, class) is held; `s` is the record
/// of `first` and holds no live object.
pub unsafe fn release(owner: usize, first: usize, s: &mut Span, pages: Pages) {
    debug_assert!(!s.in_partial);
    let n = s.npages as usize;
    arena::clear_tags(first, n);
    match pages {
        Pages::Dirty => page_heap::free_run(owner, first, n),
        Pages::Purged => page_heap::free_run_purged(owner, first, n),
    }
    stats::SPANS_RELEASED.fetch_add(1, Ordering::Relaxed);
}

impl Span {
    /// Free objects in the span.
    #[inline]
    pub fn nfree(&self) -> u32 {
        self.nfree
    }

    /// Pages the span covers.
    #[inline]
    pub fn npages(&self) -> usize {
        self.npages as usize
    }

    #[inline]
    pub fn in_partial(&self) -> bool {
        self.in_partial
    }

    /// First page of the next span on its partial list.
    #[inline]
    pub fn next_on_list(&self) -> Option<usize> {
        if self.next == 0 {
            None
        } else {
            Some(self.next as usize - 1)
        }
    }

    /// On its partial list with other spans.
    #[inline]
    pub fn has_neighbours(&self) -> bool {
        self.prev != 0 || self.next != 0
    }

    /// Carves up to `want` objects out of the span (first page `page`, class
    /// `cls`), each pushed onto the list at `*head`: returned ones first, then
    /// fresh ones from the carving point, at most `*fresh_left` of those (it
    /// counts them down). Returns how many.
    ///
    /// # Safety
    /// The span's central lock is held; `*head` is a list of the caller's.
    pub unsafe fn carve(
        &mut self,
        page: usize,
        cls: usize,
        want: usize,
        head: &mut *mut u8,
        fresh_left: &mut usize,
    ) -> usize {
        let size = CLASSES[cls].size as usize;
        let base = arena::page_addr(page);
        let mut got = 0;
        while got < want && self.nfree > 0 {
            let obj = if !self.free.is_null() {
                let o = self.free;
                self.free = *(o as *mut *mut u8);
                o
            } else {
                if *fresh_left == 0 {
                    break;
                }
                *fresh_left -= 1;
                let o = (base + self.bump as usize * size) as *mut u8;
                self.bump += 1;
                // Fresh blocks carry the free canary like freed ones.
                hardened::stamp(o, cls);
                o
            };
            *(obj as *mut *mut u8) = *head;
            *head = obj;
            self.nfree -= 1;
            got += 1;
        }
        got
    }

    /// Puts `obj`, a block of this span (first page `first`, class `cls`) by
    /// its tag, back; aborts when it is not a block start or the span would
    /// hold more free objects than it has (a double free).
    ///
    /// # Safety
    /// The span's central lock is held and `obj` lies in the span.
    pub unsafe fn put(&mut self, first: usize, cls: usize, obj: *mut u8) {
        let info = CLASSES[cls];
        let rel = obj as usize - arena::page_addr(first);
        if !rel.is_multiple_of(info.size as usize) {
            os::fatal(
                "free(): invalid pointer (not the start of a block)",
                obj as usize,
            );
        }
        if self.nfree >= info.span_objs {
            os::fatal("free(): double free detected", obj as usize);
        }
        *(obj as *mut *mut u8) = self.free;
        self.free = obj;
        self.nfree += 1;
    }

    /// `p` is on the span's free list.
    ///
    /// # Safety
    /// The span's central lock is held.
    pub unsafe fn holds_free(&self, p: *mut u8) -> bool {
        list_holds(self.free, self.nfree as usize, p)
    }
}

/// `p` is among the first `max` objects of the list at `head`.
///
/// # Safety
/// The list is a valid list of free objects (null-terminated or at least `max` long).
pub unsafe fn list_holds(mut head: *mut u8, max: usize, p: *mut u8) -> bool {
    let mut n = 0;
    while !head.is_null() && n < max {
        if head == p {
            return true;
        }
        head = *(head as *const *mut u8);
        n += 1;
    }
    false
}
