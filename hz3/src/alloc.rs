//! The front end: malloc, free, calloc, realloc, aligned allocation and usable
//! size, with glibc semantics, as plain Rust functions that the C ABI and
//! `GlobalAlloc` wrap. The fast paths live here: a malloc is a class
//! computation and a pop from the thread's bin; a free is a range check, one
//! page-tag load, an owner compare and a push. Everything else is `#[cold]`.
//!
//! Owns no state. Must not take locks on the fast paths. Must not touch span
//! records, inboxes, outboxes or locks directly (`span`, `inbox`, `outbox`,
//! `sync`). They are reached through the thread cache and the central caches.
//!
//! The call tree (fast paths first; `[cold]` marks a function out of line):
//!
//! ```text
//! malloc(size)
//! ├─ size <= MAX_SMALL: class (tiny: (size+15)>>4, else class_of_big)
//! │  └─ tcache::pop(tls::tc_raw(), cls)          -> the block           (fast path)
//! └─ malloc_slow [cold]
//!    ├─ size > MAX_SMALL: large_alloc -> large::alloc (cache, else mmap)
//!    └─ alloc_class(cls)
//!       ├─ tcache::get_or_create        (first call of a thread: init::ensure, pick an owner)
//!       ├─ tcache::pop
//!       └─ tcache::refill [cold]
//!          ├─ outbox::on_slow_event, scavenge every 64 events (large::decay_tick)
//!          ├─ inbox::take(owner, cls)   -> bin            (lane with inboxes)
//!          └─ central::refill(owner, cls)
//!             ├─ a whole transfer list, O(1)
//!             └─ span::carve from the partial list, else span::create
//!                -> page_heap::alloc_run (run cache, bitmaps, pool segment)
//!
//! free(p)
//! ├─ page of p in the arena (one subtract and rotate), tag = arena::tag_in
//! │  ├─ tcache::local_class(t, tag): checks::key_seen, then
//! │  │  └─ tcache::free_local -> bin push, free countdown                   (fast path)
//! │  │     ├─ beat [cold] every 256 frees -> heartbeat::on_beat (clock; pass:
//! │  │     │  owner::collect_departed, page_heap / large decay_tick)
//! │  │     └─ overflow_at [cold] -> flush one batch -> central::flush_counted
//! │  │        (a transfer list, else central::to_spans -> span::put,
//! │  │         a wholly free span -> span::release -> page_heap::free_run)
//! │  └─ free_arena_miss [cold] -> free_arena_slow
//! │     ├─ aligned run: free_aligned -> page_heap::free_run
//! │     ├─ own owner: tcache::free_local
//! │     ├─ other owner: tcache::free_remote -> adopted into the bin while it
//! │     │  has room (sent to its owner when the bin flushes), else outbox (a
//! │     │  batch -> inbox::deliver: the owner's lock-free inbox, or
//! │     │  central::flush under its lock)
//! │     └─ no thread cache: central::flush
//! └─ free_outside [cold]: null, large::free, else a foreign pointer (reported)
//!
//! trim -> tcache::drain (own cache), large::trim, owner::collect_all
//! ```

use core::ptr;

use crate::arena::{self, Tag, NPAGES, PAGE_SHIFT};
use crate::central;
use crate::checks;
use crate::hardened;
use crate::init;
use crate::large;
use crate::os::{self, PAGE};
use crate::owner;
use crate::page_heap;
use crate::size_class::{
    class_for_aligned, class_of, class_of_big_unbiased, class_size, CLASS_OF_BIG_BIAS, MAX_SMALL,
    MAX_TINY,
};
use crate::tcache;
use crate::tls;

/// Largest request the allocator will try (glibc: PTRDIFF_MAX).
const MAX_REQUEST: usize = isize::MAX as usize - 2 * PAGE;

/// malloc: a block of at least `size` bytes, 16-byte aligned; null with ENOMEM on failure.
#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    // Each branch has a pop of its own: the tiny one falls through to its
    // return instead of jumping to a shared tail, and the other folds the
    // constant of `class_of_big` into its bin addresses (the two tails
    // differ, so they are not merged back).
    if size <= MAX_TINY {
        return malloc_class(size, (size + 15) >> 4);
    }
    if size <= MAX_SMALL {
        // Kept opaque, the class's sum stays one register the three bin
        // accesses index with the constant in their displacement (seen
        // through, LLVM computes it again after the pop's null test).
        let mut c = class_of_big_unbiased(size);
        os::opaque(&mut c);
        return malloc_class(size, c.wrapping_sub(CLASS_OF_BIG_BIAS));
    }
    malloc_slow(size)
}

/// malloc's fast path for a request of `size` bytes of class `cls`.
#[inline(always)]
fn malloc_class(size: usize, cls: usize) -> *mut u8 {
    let t = tls::tc_raw();
    // SAFETY: `t` is this thread's live cache or EMPTY (all bins empty, never
    // written); bins hold free blocks of their class; cls < NCLS.
    unsafe {
        let h = tcache::pop(t, cls);
        if !h.is_null() {
            hardened::on_alloc(h, cls);
            checks::on_alloc(h);
            return h;
        }
    }
    malloc_slow(size)
}

#[cold]
#[inline(never)]
fn malloc_slow(size: usize) -> *mut u8 {
    if size > MAX_SMALL {
        return large_alloc(size, 16).0;
    }
    let cls = class_of(if size == 0 { 1 } else { size });
    let p = alloc_class(cls);
    if !p.is_null() {
        return p;
    }
    // Arena exhausted or unavailable: serve from a mapping of its own.
    large_alloc(class_size(cls), 16).0
}

/// One object of class `cls` (null when the arena is exhausted).
fn alloc_class(cls: usize) -> *mut u8 {
    let t = tcache::get_or_create();
    let p = if t.is_null() {
        if !init::ensure() {
            return ptr::null_mut();
        }
        let (h, n) = central::refill(tcache::direct_owner(), cls, 1, 1);
        if n == 0 {
            ptr::null_mut()
        } else {
            h
        }
    } else {
        // SAFETY: this thread's cache.
        unsafe {
            let h = tcache::pop(t, cls);
            if h.is_null() {
                tcache::refill(t, cls)
            } else {
                h
            }
        }
    };
    if !p.is_null() {
        hardened::on_alloc(p, cls);
        // SAFETY: `p` is a block of at least 16 bytes, now the caller's.
        unsafe { checks::on_alloc(p) };
    }
    p
}

fn large_alloc(size: usize, align: usize) -> (*mut u8, bool) {
    if size > MAX_REQUEST || !init::ensure() {
        os::set_errno(libc::ENOMEM);
        return (ptr::null_mut(), false);
    }
    let r = large::alloc(size, align);
    if r.0.is_null() {
        os::set_errno(libc::ENOMEM);
    }
    r
}

/// free: returns a block from any of the allocation functions; null is ignored.
///
/// # Safety
/// `p` is null or a live block of this allocator, not used afterwards.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    let base = arena::base();
    // The low 4 bits rotated to the top: a pointer that is not 16-aligned (no
    // block start is, `checks`) fails the range check and is diagnosed in
    // `free_outside`, at no cost on this path.
    let mut page = (p as usize).wrapping_sub(base).rotate_right(4) >> (PAGE_SHIFT - 4);
    // Hides how `page` was made, so the range check stays one compare with
    // NPAGES: seen through, LLVM tests the unshifted value's top bits instead,
    // which costs a register copy (no instruction is emitted for this).
    os::opaque(&mut page);
    if page < NPAGES {
        // SAFETY: page < NPAGES and `base` is `arena::base()`.
        let tag = unsafe { arena::tag_in(base, page) };
        let t = tls::tc_raw();
        // SAFETY: `t` is this thread's live cache or EMPTY (which matches no
        // tag); a class from `local_class` proves `p` is a block of this owner
        // of that class (a VALID tag holds a class id < NCLS, set only by
        // `central::refill`).
        unsafe {
            if let Some(cls) = tcache::local_class(t, tag) {
                hardened::check_free(p, page, tag);
                if checks::key_seen(t, p) {
                    return checks::free_suspect(p, t);
                }
                tcache::free_local(t, p, cls);
                return;
            }
        }
        return free_arena_miss(p, page, t);
    }
    free_outside(p)
}

/// Sized free (C23 `free_sized`, `GlobalAlloc::dealloc`): `size` is the size
/// the block was requested with. Debug builds check it against the block.
///
/// # Safety
/// As for `free`.
#[inline(always)]
pub unsafe fn free_sized(p: *mut u8, size: usize) {
    if (cfg!(debug_assertions) || hardened::ENABLED) && !p.is_null() && usable_size(p) < size {
        os::fatal("free_sized(): size larger than the block", p as usize);
    }
    free(p)
}

/// `free` of an arena pointer that is not a block of this thread's owner: the
/// fast path's tail call passes the page and the thread cache it read, so a
/// remote free does not compute them again (nor call `tcache::get_or_create`):
/// about 35 instructions less per remote free (callgrind, remote t8). Not the
/// tag: keeping it for the call would cost the fast path an instruction (its
/// xor with the cache's key then reads a register, not memory).
#[cold]
#[inline(never)]
fn free_arena_miss(p: *mut u8, page: usize, t: *mut tcache::TCache) {
    if !arena::is_reserved(page) {
        // In the arena's address range but beyond what could be reserved.
        return free_outside(p);
    }
    free_arena_slow(p, page, arena::tag(page), t)
}

/// `free` of a block in the arena that is not a block of this thread's owner
/// (or no thread cache yet): `page` and `tag` are the block's page (reserved)
/// and its tag as the fast path read them, `t` the thread's cache or `EMPTY`.
fn free_arena_slow(p: *mut u8, page: usize, tag: Tag, t: *mut tcache::TCache) {
    if !tag.is_valid() {
        if tag.is_aligned() {
            return free_aligned(p, tag);
        }
        os::fatal(
            "free(): invalid pointer (not a live hz3 block; double free?)",
            p as usize,
        );
    }
    hardened::check_free(p, page, tag);
    let owner = tag.owner();
    let cls = tag.class();
    // The cache the fast path read, unless it was EMPTY (none yet, or none any more).
    let t = if t == tcache::empty() {
        tcache::get_or_create()
    } else {
        t
    };
    if t.is_null() {
        // SAFETY: `p` is a free block now; it becomes a one-element list.
        unsafe { *(p as *mut *mut u8) = ptr::null_mut() };
        central::flush(owner, cls, p);
        return;
    }
    // SAFETY: this thread's cache.
    unsafe {
        if tcache::owner(t) == owner {
            if checks::key_seen(t, p) {
                return checks::free_suspect(p, t);
            }
            tcache::free_local(t, p, cls);
        } else {
            // A block of another owner may be adopted into this thread's bin:
            // the same key check as a local free.
            if checks::key_seen(t, p) {
                checks::confirm_not_free(p, t, cls);
            }
            tcache::free_remote(t, owner, cls, p);
        }
    }
}

/// Frees a block served as an aligned run (`aligned_run`): its whole run goes
/// back to the page heap of the owner that made it.
#[cold]
fn free_aligned(p: *mut u8, tag: Tag) {
    let Some(page) = arena::page_of(p as usize) else {
        return free_outside(p);
    };
    if !tag.is_block_start() || p as usize & (PAGE - 1) != 0 {
        os::fatal("free(): invalid pointer (inside a block)", p as usize);
    }
    let n = tag.aligned_pages();
    let first = page - tag.page_off();
    arena::clear_tags(first, n);
    page_heap::free_run(tag.owner(), first, n);
}

/// A block of `size` bytes aligned to `align` (PAGE < align, a power of two)
/// from a run of arena pages, not a mapping of its own (a mapping per block
/// would exhaust `vm.max_map_count`). The run has `align / PAGE - 1` pages of
/// slack so an aligned start lies in it wherever it falls; the block goes from
/// that start to the end of the run. Null when the request is too big for a
/// run or the arena has no room.
fn aligned_run(size: usize, align: usize) -> *mut u8 {
    let need = size.max(1).div_ceil(PAGE);
    let slack = align / PAGE - 1;
    if need + slack > arena::ALIGNED_MAX_PAGES || !init::ensure() {
        return ptr::null_mut();
    }
    let n = need + slack;
    let t = tcache::get_or_create();
    let owner = if t.is_null() {
        tcache::direct_owner()
    } else {
        // SAFETY: this thread's cache.
        unsafe { tcache::owner(t) }
    };
    let Some(first) = page_heap::alloc_run(owner, n) else {
        return ptr::null_mut();
    };
    let start = (arena::page_addr(first) + align - 1) & !(align - 1);
    let block_off = (start - arena::page_addr(first)) / PAGE;
    arena::set_aligned_tags(first, n, owner, block_off);
    start as *mut u8
}

#[cold]
#[inline(never)]
fn free_outside(p: *mut u8) {
    if p.is_null() {
        return;
    }
    if arena::page_of(p as usize).is_some() {
        // Only a pointer that is not 16-aligned comes here from the arena.
        os::fatal(
            "free(): invalid pointer (not the start of a block)",
            p as usize,
        );
    }
    if large::free(p as usize) {
        return;
    }
    if hardened::ENABLED {
        os::fatal(
            "free(): invalid pointer (not allocated by hz3, or already freed)",
            p as usize,
        );
    }
    foreign_pointer("free", p as usize);
}

/// A pointer that is neither in the arena nor a live large block: it may come
/// from another allocator (nothing to do) or be a double free of a large block
/// (already unmapped). Either way nothing can be done safely; report and ignore.
#[cold]
fn foreign_pointer(what: &str, p: usize) {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static REPORTS: AtomicUsize = AtomicUsize::new(0);
    if REPORTS.fetch_add(1, Ordering::Relaxed) < 8 {
        let mut l = os::Line::new();
        l.s("hz3: ")
            .s(what)
            .s("(): pointer ")
            .hex(p)
            .s(" was not allocated by hz3 (or was already freed); ignored\n");
        l.emit();
    }
}

/// Usable size of a live block (0 for null or unknown pointers).
pub fn usable_size(p: *mut u8) -> usize {
    if let Some((_, t)) = arena::lookup(p as usize) {
        if !t.is_valid() {
            if t.is_aligned() && t.is_block_start() {
                return (t.aligned_pages() - t.page_off()) * PAGE;
            }
            return 0;
        }
        return class_size(t.class());
    }
    if p.is_null() {
        return 0;
    }
    large::usable_size(p as usize).unwrap_or(0)
}

/// calloc: zeroed memory for `n * size` bytes; null with ENOMEM on overflow.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(size) else {
        os::set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    if total > MAX_SMALL {
        let (p, fresh) = large_alloc(total, 16);
        if !p.is_null() && !fresh {
            // SAFETY: `p` has at least `total` bytes.
            unsafe { ptr::write_bytes(p, 0, total) };
        }
        return p;
    }
    let p = malloc(total);
    if !p.is_null() {
        // SAFETY: `p` has at least `total` bytes.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// A realloc that grows a block to this size or more gives it a mapping of its
/// own (a large block), and a large block shrunk by realloc stays one down to
/// this size: from there on growing or shrinking it is an `mremap` (page tables
/// move, bytes are not copied), as glibc does for its mmapped chunks, instead
/// of a copy into a bigger size class each time the class is outgrown.
const REALLOC_MAP_MIN: usize = 64 * 1024;

/// The least a block of `old` bytes outgrowing its class moves to (below
/// `REALLOC_MAP_MIN`): a quarter more, so a block grown in small steps moves
/// every few classes, not at every one (tcmalloc's hysteresis); from a page
/// up, twice as much. Every class a thread's block passes through keeps a
/// touched span of its own in the thread's owner (the block's bytes, copied
/// there, and the cached object after it moves on), so a string appended to
/// from 4 KiB to 64 KiB in 25 % steps left about 330 KiB resident per owner
/// against about 60 KiB in doubling steps (the classes vector doubling uses
/// anyway). The move copies only the old bytes: the tail of a fresh object of
/// a page or more stays untouched until the program writes it. (Sending a
/// block of 32 KiB or more straight into a mapping instead of the class below
/// 64 KiB was worse: realloc t8 peak 6.3 -> 8.7 MiB and half the speed, the
/// large cache keeping every such mapping's pages.)
#[inline]
fn realloc_grown(old: usize) -> usize {
    let grown = if old >= PAGE { old * 2 } else { old + old / 4 };
    grown.min(REALLOC_MAP_MIN - 1)
}

/// realloc with glibc semantics: null `p` is malloc, size 0 frees and returns
/// null, failure returns null and leaves the block untouched.
///
/// # Safety
/// `p` is null or a live block of this allocator.
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        free(p);
        return ptr::null_mut();
    }
    if size > MAX_REQUEST {
        os::set_errno(libc::ENOMEM);
        return ptr::null_mut();
    }
    let old = if let Some((page, t)) = arena::lookup(p as usize) {
        let old = if t.is_valid() {
            if p as usize & 15 != 0 {
                os::fatal(
                    "realloc(): invalid pointer (not the start of a block)",
                    p as usize,
                );
            }
            hardened::check_realloc(p, page, t);
            // SAFETY: a 16-aligned pointer in a live span of the class is inside a
            // block of at least 16 bytes (its start, unless the hardened check is off).
            unsafe { checks::check_realloc(p, t.class()) };
            class_size(t.class())
        } else {
            // An aligned block (a tagged page run) or not a live block at all.
            match usable_size(p) {
                0 => os::fatal(
                    "realloc(): invalid pointer (not a live hz3 block)",
                    p as usize,
                ),
                n => n,
            }
        };
        // Keep the block when the new size fits and would not waste more than half.
        if size <= old && size > old / 2 {
            return p;
        }
        if size > old && size >= REALLOC_MAP_MIN {
            // Growing past REALLOC_MAP_MIN: into a mapping of its own, which
            // later growth and shrinking resize with mremap instead of copying.
            let q = large::alloc_growing(size);
            if q.is_null() {
                // No mapping to be had (RLIMIT_AS, vm.max_map_count, strict
                // overcommit): a size the arena serves still moves into a class.
                return move_block(p, old, size);
            }
            // SAFETY: `q` holds `size` > `old` bytes and does not overlap `p`.
            unsafe { ptr::copy_nonoverlapping(p, q, old) };
            free(p);
            return q;
        }
        if size > old {
            let grown = realloc_grown(old);
            if size < grown {
                return move_block(p, old, grown);
            }
        }
        old
    } else {
        let Some(old) = large::usable_size(p as usize) else {
            os::fatal(
                "realloc(): invalid pointer (not allocated by hz3)",
                p as usize,
            );
        };
        // A mapping stays one while the block is at least REALLOC_MAP_MIN:
        // mremap moves page tables, not bytes.
        if size >= REALLOC_MAP_MIN {
            if size <= old && size > old / 2 {
                return p;
            }
            let q = large::realloc(p as usize, size);
            if !q.is_null() {
                return q;
            }
            if size > MAX_SMALL {
                os::set_errno(libc::ENOMEM);
                return q;
            }
            // mremap refused (`p` is untouched): a size the arena serves moves
            // into a class instead.
        }
        old
    };
    move_block(p, old, size)
}

/// realloc's move: a new block of `size`, the first min(`old`, `size`) bytes
/// copied, the old block `p` freed (untouched when no block could be had).
///
/// # Safety
/// `p` is a live block of at least `old` bytes.
unsafe fn move_block(p: *mut u8, old: usize, size: usize) -> *mut u8 {
    let q = malloc(size);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks hold at least min(old, size) bytes and do not overlap.
    unsafe { ptr::copy_nonoverlapping(p, q, old.min(size)) };
    free(p);
    q
}

/// A block of `size` bytes aligned to `align` (a power of two). Null with ENOMEM on failure.
pub fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    if align <= 16 {
        return malloc(size);
    }
    if align <= PAGE && size <= MAX_SMALL {
        if let Some(cls) = class_for_aligned(size, align) {
            let p = alloc_class(cls);
            if !p.is_null() {
                return p;
            }
        }
    }
    if align > PAGE {
        let p = aligned_run(size, align);
        if !p.is_null() {
            return p;
        }
    }
    large_alloc(size, align).0
}

/// malloc_trim: hands back what the caches hold. True when anything was released.
pub fn trim() -> bool {
    if !init::ensure() {
        return false;
    }
    let t = tls::tc();
    if !t.is_null() {
        // SAFETY: our own cache.
        unsafe { tcache::drain(t) };
    }
    let released = large::trim() + owner::collect_all();
    released > 0
}
