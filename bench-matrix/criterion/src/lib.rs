//! Workloads for the criterion benches: each calls a `GlobalAlloc` directly
//! (not as the global allocator), so several allocators run side by side in one
//! process. Sizes and free order come from a fixed-seed generator.

use std::alloc::{GlobalAlloc, Layout};

/// A size range with a name, as in the bench matrix.
pub struct Pattern {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
}

pub const PATTERNS: [Pattern; 3] = [
    Pattern {
        name: "small",
        min: 16,
        max: 2048,
    },
    Pattern {
        name: "medium",
        min: 4096,
        max: 32768,
    },
    Pattern {
        name: "mixed",
        min: 16,
        max: 32768,
    },
];

/// Random malloc/free over a working set of `ws` slots: a full slot is freed,
/// an empty one gets a block of a random size in the pattern. Returns a checksum.
pub fn churn<A: GlobalAlloc>(a: &A, p: &Pattern, ops: usize, ws: usize, seed: u64) -> u64 {
    let mut slots: Vec<(usize, usize)> = vec![(0, 0); ws];
    let mut x = seed | 1;
    let mut sum = 0u64;
    for _ in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % ws as u64) as usize;
        let (ptr, size) = slots[k];
        if ptr != 0 {
            // SAFETY: allocated below with this layout.
            unsafe { a.dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(size, 16)) };
            slots[k] = (0, 0);
        } else {
            let size = p.min + ((x >> 20) as usize) % (p.max - p.min + 1);
            // SAFETY: non-zero size, valid alignment.
            let q = unsafe { a.alloc(Layout::from_size_align_unchecked(size, 16)) };
            assert!(!q.is_null());
            // SAFETY: q has `size` bytes.
            unsafe { *q = x as u8 };
            sum = sum.wrapping_add(q as u64 & 0xff);
            slots[k] = (q as usize, size);
        }
    }
    for (ptr, size) in slots {
        if ptr != 0 {
            // SAFETY: as above.
            unsafe { a.dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(size, 16)) };
        }
    }
    sum
}
