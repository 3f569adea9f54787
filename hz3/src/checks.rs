//! Cheap misuse checks of the plain build (issue 17 item 4). The hardened
//! build replaces the double-free key with its canary (`hardened.rs`), which
//! catches everything the key does and more.
//!
//! * Double-free key (glibc tcache style): a block freed into its thread's bin
//!   gets the address of the thread's cache (`key`) in its second word; malloc
//!   clears that word when it hands the block out. A free that finds the key
//!   already there goes to `confirm_double_free`, which looks for the block in
//!   the thread's bin and in its span's free list (and the central transfer
//!   lists): found, it aborts ("free(): double free detected"); not found (the
//!   program stored that value itself), the free goes on. Cost on the fast
//!   paths: a compare and a store on free, a store on malloc.
//! * Block alignment: every block starts on 16 bytes (class sizes are
//!   multiples of 16, spans start on pages), so `free` folds `p & 15` into its
//!   arena range check (`alloc::free`); a misaligned arena pointer is caught
//!   in `alloc::free_outside`.
//!
//! Owns no state. Must not change allocation state except the key word of the
//! block being freed or allocated.
//! Must not touch spans or page heaps (`span`, `page_heap`).

use crate::arena;
use crate::central;
use crate::hardened;
use crate::os;
use crate::tcache::{self, TCache};

/// The plain double-free key is on (off in the hardened build, whose canary
/// lives in the same word).
pub const KEY: bool = !hardened::ENABLED;

/// The block `p` is being freed into the bin of `t` (this thread's live
/// cache): true when it carries the key already (the caller then tail-calls
/// `free_suspect`, which keeps the fast path free of register saves and moves); else
/// the key is stored.
///
/// # Safety
/// `p` is a block of at least 16 bytes of this allocator, at a block start.
#[inline(always)]
pub unsafe fn key_seen(t: *mut TCache, p: *mut u8) -> bool {
    if KEY {
        let w = (p as *mut usize).add(1);
        if *w == t as usize {
            return true;
        }
        *w = t as usize;
    }
    false
}

/// The free of `p` (into the own bin) found the key of `t`: aborts when `p`
/// is free, else frees it.
///
/// # Safety
/// As for `key_seen`; `t` is this thread's live cache and `p` in one of its spans.
#[cold]
#[inline(never)]
pub unsafe fn free_suspect(p: *mut u8, t: *mut TCache) {
    let cls = arena::class_at(p as usize);
    confirm_double_free(t, cls, p, "free(): double free detected");
    tcache::free_local(t, p, cls);
}

/// The free of `p`, a block of another owner of class `cls`, found the key
/// of `t`: aborts when `p` is free (the caller then frees it).
///
/// # Safety
/// As for `free_suspect`, with `p` in a span of another owner.
#[cold]
#[inline(never)]
pub unsafe fn confirm_not_free(p: *mut u8, t: *mut TCache, cls: usize) {
    confirm_double_free(t, cls, p, "free(): double free detected");
}

/// `p` is being handed out by malloc: clears its key word.
///
/// # Safety
/// `p` is a free block of at least 16 bytes, now owned by the caller.
#[inline(always)]
pub unsafe fn on_alloc(p: *mut u8) {
    if KEY {
        *(p as *mut usize).add(1) = 0;
    }
}

/// `p` (a block start of class `cls` in a live span) is passed to realloc:
/// aborts when it is a free block of this thread (the key says so and the
/// thread's bin or its span confirms it).
///
/// # Safety
/// `p` is a block start of at least 16 bytes in a live span of class `cls`.
pub unsafe fn check_realloc(p: *mut u8, cls: usize) {
    if KEY {
        let t = crate::tls::tc();
        if !t.is_null() && *(p as *const usize).add(1) == t as usize {
            confirm_double_free(t, cls, p, "realloc(): invalid pointer (a freed block)");
        }
    }
}

/// The key of `t` was found in `p`: aborts with `what` when `p` is a free
/// block (in the bin of `cls` of `t`, or free in its span or central cache).
#[cold]
unsafe fn confirm_double_free(t: *mut TCache, cls: usize, p: *mut u8, what: &str) {
    // The bin holds at most its limit (a few hundred blocks).
    let b = &(*t).bins;
    let mut cur = b.head[cls];
    let mut n = 0usize;
    while !cur.is_null() && n <= b.limit[cls] as usize && arena::page_of(cur as usize).is_some() {
        if cur == p {
            os::fatal(what, p as usize);
        }
        cur = *(cur as *const *mut u8);
        n += 1;
    }
    if central::holds_free(cls, p) {
        os::fatal(what, p as usize);
    }
}
