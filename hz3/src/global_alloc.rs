//! `hz3::Hz3`, the Rust `GlobalAlloc`. Small alignments take the plain
//! malloc/free fast paths; larger ones the aligned path. Owns no state.
//! Must not touch the allocator's internals (`tcache`, `arena`, `central`).

use core::alloc::{GlobalAlloc, Layout};

use crate::alloc;

/// The hz3 allocator as a Rust global allocator:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: hz3::Hz3 = hz3::Hz3;
/// let v: Vec<u64> = (0..1000).collect();
/// assert_eq!(v.iter().sum::<u64>(), 499500);
/// ```
pub struct Hz3;

const MIN_ALIGN: usize = 16;

unsafe impl GlobalAlloc for Hz3 {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            alloc::malloc(layout.size())
        } else {
            alloc::aligned_alloc(layout.align(), layout.size())
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        alloc::free_sized(ptr, layout.size())
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            alloc::calloc(1, layout.size())
        } else {
            let p = alloc::aligned_alloc(layout.align(), layout.size());
            if !p.is_null() {
                core::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            return alloc::realloc(ptr, new_size);
        }
        let q = alloc::aligned_alloc(layout.align(), new_size);
        if !q.is_null() {
            core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
            alloc::free(ptr);
        }
        q
    }
}
