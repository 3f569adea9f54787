//! Integrity checks of the hardened build (cargo feature `hardened`; the lane
//! builder's `--hardened` flag). With the feature off every function here is
//! empty and inlines to nothing.
//!
//! Checked on the fast paths: a pointer popped from a bin must be a block of
//! the bin's class (a use-after-free write into a freed block's link word is
//! caught at the next pop), a freed pointer must be the start of a block (not
//! inside one), and a freed block carries a canary in its second word (address
//! XOR a per-process secret) that malloc clears, so freeing a block that still
//! carries it is a double free, wherever the first free put it. Slower checks (the block's span and its free count) already run on
//! every flush in `central`. The free canary is written in a block's last word
//! too, and malloc checks both words (a write after free or an overflow into a
//! free block is caught when the block is handed out again); blocks carved
//! from a span are stamped by `central::refill`. Foreign pointers given to free
//! abort, and sized deletes are checked against the block.
//! Owns no state; must not change allocation state.
//! Must not touch caches or spans (`tcache`, `central`, `span`).

use crate::arena::{self, Tag};
use crate::os;
use crate::size_class::class_size;

pub const ENABLED: bool = cfg!(feature = "hardened");

/// `next`, read from a free block's link word, must be null or a free block of `cls`.
#[inline(always)]
pub fn check_link(cls: usize, next: *mut u8) {
    if ENABLED && !next.is_null() {
        let ok = match arena::lookup(next as usize) {
            Some((page, t)) => {
                t.is_valid() && t.class() == cls && is_block_start(next as usize, page, t)
            }
            None => false,
        };
        if !ok {
            os::fatal(
                "heap corruption: a free block's link was overwritten (use after free?)",
                next as usize,
            );
        }
    }
}

#[inline(always)]
fn canary(p: *mut u8) -> usize {
    // The secret differs per process with ASLR (the address of a static).
    static SECRET: u8 = 0;
    (p as usize) ^ (core::ptr::addr_of!(SECRET) as usize).rotate_left(29) ^ 0x5bd1_e995_9e37_79b9
}

/// `p` (in the arena, tag `t`, page `page`) is about to be freed.
#[inline(always)]
pub fn check_free(p: *mut u8, page: usize, t: Tag) {
    if ENABLED {
        if !is_block_start(p as usize, page, t) {
            os::fatal("free(): invalid pointer (inside a block)", p as usize);
        }
        // SAFETY: every block is at least 16 bytes; `p` is a block start.
        let w = unsafe { &mut *(p as *mut usize).add(1) };
        if *w == canary(p) {
            os::fatal("free(): double free detected", p as usize);
        }
        stamp(p, t.class());
    }
}

/// Writes the free canary of `p`, a block of class `cls` that becomes free:
/// in its second word and in its last word (the same word for 16-byte blocks).
#[inline(always)]
pub fn stamp(p: *mut u8, cls: usize) {
    if ENABLED {
        // SAFETY: `p` is a block of `class_size(cls)` >= 16 bytes.
        unsafe {
            *(p as *mut usize).add(1) = canary(p);
            *(p.add(class_size(cls) - 8) as *mut usize) = canary(p);
        }
    }
}

/// `p` (in the arena, tag `t`, page `page`) is passed to realloc: it must be
/// a block start that is not free.
#[inline(always)]
pub fn check_realloc(p: *mut u8, page: usize, t: Tag) {
    if ENABLED {
        if !is_block_start(p as usize, page, t) {
            os::fatal("realloc(): invalid pointer (inside a block)", p as usize);
        }
        // SAFETY: every block is at least 16 bytes; `p` is a block start.
        if unsafe { *(p as *const usize).add(1) } == canary(p) {
            os::fatal("realloc(): invalid pointer (a freed block)", p as usize);
        }
    }
}

/// `p`, a free block of class `cls`, is being handed out by malloc: both its
/// canaries must be intact (a write after free, or an overflow from the
/// block below or an underflow from the block above, breaks one); then the
/// second word is cleared.
#[inline(always)]
pub fn on_alloc(p: *mut u8, cls: usize) {
    if ENABLED {
        // SAFETY: `p` is a block of `class_size(cls)` >= 16 bytes, ours now.
        unsafe {
            let w = (p as *mut usize).add(1);
            if *w != canary(p) || *(p.add(class_size(cls) - 8) as *const usize) != canary(p) {
                os::fatal(
                    "malloc(): a free block was overwritten (use after free, or an overflow)",
                    p as usize,
                );
            }
            *w = 0;
        }
    }
}

#[inline(always)]
fn is_block_start(p: usize, page: usize, t: Tag) -> bool {
    let first = page - t.page_off();
    (p - arena::page_addr(first)).is_multiple_of(class_size(t.class()))
}
