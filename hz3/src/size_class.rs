//! Size classes: the mapping from a request size to a class and each class's
//! geometry (object size, span pages, refill batch, per-thread cache bound).
//! Pure arithmetic and constant tables; owns no state.
//!
//! Classes 1..=TINY_CLASSES are 16..=MAX_TINY B in 16 B steps (class id =
//! (size + 15) / 16, so the fast path needs one add and one shift); the classes
//! above cover MAX_TINY..256 KiB with STEPS classes per doubling. Both come
//! from the lane (`tiny_max`, `classes_per_doubling`; 256 and 8 in the speed
//! lanes): every class holds its own half-used spans and cached objects in
//! every owner, so fewer classes hold less memory apart (and an RSS-first lane
//! trades a coarser fit for fewer still). Class 0 is never used, so its
//! per-thread bin stays empty and `malloc(0)` drops into the slow path.
//! Internal fragmentation: at most 15 B for requests up to 128 B, at most
//! 1/STEPS of the request above that.
//! Must not touch allocator state (`arena`, `tcache`, `central`).

use crate::config;
use crate::os::PAGE;

/// Largest request served by the 16-byte-step classes (a power of two, 128..=1024).
pub const MAX_TINY: usize = config::TINY_MAX;
const TINY_LG: usize = MAX_TINY.trailing_zeros() as usize;
/// Classes of 16-byte steps.
pub const TINY_CLASSES: usize = MAX_TINY / 16;
/// Largest request served from size classes; above it allocations are "large".
pub const MAX_SMALL: usize = 256 * 1024;
/// Number of class ids (0 unused).
pub const NCLS: usize = TINY_CLASSES + 1 + STEPS * (MAX_SMALL.trailing_zeros() as usize - TINY_LG);
/// Class slots in the statistics (the C header's HZ3_NCLS): the most any lane has.
pub const STATS_NCLS: usize = 129;
/// Classes per doubling above MAX_TINY (a power of two, 2..=8).
pub const STEPS: usize = config::CLASSES_PER_DOUBLING;
const STEPS_LG: usize = STEPS.trailing_zeros() as usize;
const _: () = assert!(MAX_TINY.is_power_of_two() && MAX_TINY >= 128 && MAX_TINY <= 1024);
const _: () = assert!(STEPS.is_power_of_two() && STEPS >= 2 && STEPS <= 8);
const _: () = assert!(NCLS <= STATS_NCLS);
/// Largest span in pages (a span never crosses a segment; the page tag stores a
/// page's offset in its span in 12 bits).
pub const MAX_SPAN_PAGES: usize = 512;

/// Object size of class `c` (c in 1..NCLS).
pub const fn class_size(c: usize) -> usize {
    if c <= TINY_CLASSES {
        c * 16
    } else {
        let g = (c - TINY_CLASSES - 1) / STEPS;
        let k = (c - TINY_CLASSES - 1) % STEPS;
        let base = MAX_TINY << g;
        base + (base / STEPS) * (k + 1)
    }
}

/// Class of a request of `size` bytes, for 1 <= size <= MAX_SMALL.
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    if size <= MAX_TINY {
        (size + 15) >> 4
    } else {
        class_of_big(size)
    }
}

/// Class of a request in (MAX_TINY, MAX_SMALL].
#[inline(always)]
pub fn class_of_big(size: usize) -> usize {
    class_of_big_unbiased(size).wrapping_sub(CLASS_OF_BIG_BIAS)
}

/// What `class_of_big` subtracts from `class_of_big_unbiased` (wrapping: it
/// is negative in lanes whose tiny classes go up to 1024 B).
pub const CLASS_OF_BIG_BIAS: usize = (TINY_LG * STEPS + STEPS).wrapping_sub(TINY_CLASSES + 1);

/// `class_of_big(size) + CLASS_OF_BIG_BIAS`: malloc folds the constant into
/// its bin addresses.
#[inline(always)]
pub fn class_of_big_unbiased(size: usize) -> usize {
    debug_assert!(size > MAX_TINY && size <= MAX_SMALL);
    // floor(log2(s)) >= TINY_LG. `s` is not 0, which `NonZero` tells the
    // compiler: a bare `bsr`, without the zero fix-up of `leading_zeros`.
    let s = size - 1;
    // SAFETY: size > MAX_TINY >= 128, so s > 0.
    let mut lg = unsafe { core::num::NonZeroUsize::new_unchecked(s) }.ilog2() as usize;
    // Kept opaque, LLVM computes `lg - STEPS_LG` as `K - leading_zeros`,
    // which costs an xor, a move and a subtract more than `bsr` and one `lea`.
    crate::os::opaque(&mut lg);
    // `s >> (lg - STEPS_LG)` is the top STEPS_LG + 1 bits of `s`, in
    // [STEPS, 2 * STEPS): its leading 1 is folded into the constant instead of
    // masked off, so the class is a shift and one `lea` (base + lg * STEPS + m).
    (s >> (lg - STEPS_LG)) + lg * STEPS
}

/// The geometry of one class.
#[derive(Clone, Copy)]
pub struct ClassInfo {
    pub size: u32,
    /// Pages in one span of this class.
    pub span_pages: u16,
    /// Objects in one span.
    pub span_objs: u32,
    /// Objects moved per refill from / flush to the central cache.
    pub batch: u32,
    /// Most objects one thread keeps cached for this class.
    pub limit: u32,
}

/// Pages of one span of objects of `size` bytes. Small classes get spans of at
/// least 16 KiB (many objects per span op); from 16 KiB up a span holds at
/// least the lane's `big_span_objs` objects (1: as few as fit with little tail
/// waste, often one, so a sparse class pins little memory; more: fewer
/// page-heap runs per refill and per freed batch). The first page count from
/// the minimum that wastes at most 1/16 wins; failing that, the least wasteful
/// up to twice the minimum.
const fn span_pages_for(size: usize) -> usize {
    let min_bytes = if size <= 1024 {
        16 * 1024
    } else if size < 16 * 1024 {
        if size * 4 < 16 * 1024 {
            16 * 1024
        } else {
            size * 4
        }
    } else {
        // The lane's `big_span_objs` objects, within the largest span.
        let want = size * config::BIG_SPAN_OBJS;
        if want <= MAX_SPAN_PAGES * PAGE {
            want
        } else if size <= MAX_SPAN_PAGES * PAGE {
            MAX_SPAN_PAGES * PAGE / size * size
        } else {
            size
        }
    };
    let base = min_bytes.div_ceil(PAGE);
    let mut best = base;
    let mut best_waste_num = (base * PAGE) % size;
    let mut best_den = base * PAGE;
    let mut n = base;
    while n <= 2 * base && n <= MAX_SPAN_PAGES {
        let waste = (n * PAGE) % size;
        if waste * 16 <= n * PAGE {
            return n;
        }
        // waste/(n*PAGE) < best_waste_num/best_den
        if waste * best_den < best_waste_num * n * PAGE {
            best = n;
            best_waste_num = waste;
            best_den = n * PAGE;
        }
        n += 1;
    }
    best
}

const fn clamp(v: usize, lo: usize, hi: usize) -> usize {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

const fn info(c: usize) -> ClassInfo {
    if c == 0 {
        return ClassInfo {
            size: 0,
            span_pages: 0,
            span_objs: 0,
            batch: 0,
            limit: 0,
        };
    }
    let size = class_size(c);
    let pages = span_pages_for(size);
    let objs = pages * PAGE / size;
    let batch = clamp(256 * 1024 / size, 2, 64);
    let limit = clamp(config::TCACHE_CLASS_KIB * 1024 / size, 2, 4 * batch);
    let batch = if batch > limit / 2 {
        if limit / 2 == 0 {
            1
        } else {
            limit / 2
        }
    } else {
        batch
    };
    ClassInfo {
        size: size as u32,
        span_pages: pages as u16,
        span_objs: objs as u32,
        batch: batch as u32,
        limit: limit as u32,
    }
}

const fn build() -> [ClassInfo; NCLS] {
    let mut t = [ClassInfo {
        size: 0,
        span_pages: 0,
        span_objs: 0,
        batch: 0,
        limit: 0,
    }; NCLS];
    let mut c = 0;
    while c < NCLS {
        t[c] = info(c);
        c += 1;
    }
    t
}

/// Geometry of every class, computed at compile time.
pub static CLASSES: [ClassInfo; NCLS] = build();

/// The smallest class at or above `size` whose object size is a multiple of `align`
/// (so every object of a page-aligned span is aligned). `align` <= PAGE.
pub fn class_for_aligned(size: usize, align: usize) -> Option<usize> {
    let size = if size == 0 { 1 } else { size };
    let need = (size + align - 1) & !(align - 1);
    if need > MAX_SMALL {
        return None;
    }
    let mut c = class_of(need);
    while c < NCLS {
        if class_size(c).is_multiple_of(align) {
            return Some(c);
        }
        c += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_increasing_and_16_aligned() {
        for c in 1..NCLS {
            assert_eq!(class_size(c) % 16, 0, "class {c}");
            if c > 1 {
                assert!(class_size(c) > class_size(c - 1), "class {c}");
            }
        }
        assert_eq!(class_size(NCLS - 1), MAX_SMALL);
    }

    #[test]
    fn class_of_is_the_smallest_fitting_class() {
        for size in 1..=MAX_SMALL {
            let c = class_of(size);
            assert!((1..NCLS).contains(&c), "size {size}");
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 1 {
                assert!(
                    class_size(c - 1) < size,
                    "size {size} class {c} not smallest"
                );
            }
        }
    }

    #[test]
    fn internal_fragmentation_is_bounded() {
        for size in 1..=MAX_SMALL {
            let waste = class_size(class_of(size)) - size;
            if size <= 128 {
                assert!(waste <= 15, "size {size}");
            } else {
                assert!(waste * STEPS <= size, "size {size} wastes {waste}");
            }
        }
    }

    #[test]
    fn spans_fit_the_tag_and_hold_objects() {
        for (c, &i) in CLASSES.iter().enumerate().skip(1) {
            assert!(i.span_pages as usize >= 1 && i.span_pages as usize <= MAX_SPAN_PAGES);
            assert!(i.span_objs >= 1, "class {c}");
            assert_eq!(
                i.span_objs as usize,
                i.span_pages as usize * PAGE / i.size as usize
            );
            // tail waste of a span at most 1/8
            let tail = i.span_pages as usize * PAGE - i.span_objs as usize * i.size as usize;
            assert!(
                tail * 8 <= i.span_pages as usize * PAGE,
                "class {c} tail {tail}"
            );
            assert!(
                i.batch >= 1 && i.limit >= 2 && i.batch <= i.limit,
                "class {c}"
            );
        }
    }

    #[test]
    fn aligned_classes_are_multiples() {
        for align in [16usize, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
            for size in [1usize, 15, 16, 17, 100, 1000, 4095, 4097, 70000] {
                if let Some(c) = class_for_aligned(size, align) {
                    assert_eq!(class_size(c) % align, 0);
                    assert!(class_size(c) >= size);
                }
            }
        }
        assert_eq!(class_for_aligned(MAX_SMALL + 1, 16), None);
    }
}
