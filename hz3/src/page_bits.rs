//! Word-at-a-time operations on the page bitmaps of a segment (one bit per
//! page, `SEG_PAGES` bits in `u64` words): set or clear a range, count the set
//! bits of a range, find the first run of set bits of a given length (or
//! learn the longest there is), the run around a bit. Each
//! costs a few instructions per 64-bit word (or per run of set bits), not per
//! page: `page_heap` runs them under an owner's page-heap lock on every
//! run-cache miss and every purge.
//!
//! Owns no state and no unsafe code; knows nothing of what the bits mean
//! (free, dirty). Must not touch the modules that give them a meaning or hold
//! the maps (`page_heap`, `span`, `central`).

use crate::arena::SEG_PAGES;

/// One segment's bitmap.
pub type Map = [u64; SEG_PAGES / 64];

/// Bits `lo..hi` of one word (`lo < hi <= 64`).
#[inline]
fn word_mask(lo: usize, hi: usize) -> u64 {
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & (u64::MAX << lo)
}

/// Calls `f(word, mask)` for each word that bits `first..first + n` touch,
/// with the mask of those bits in it.
#[inline]
fn for_words(first: usize, n: usize, mut f: impl FnMut(usize, u64)) {
    let end = first + n;
    let mut i = first;
    while i < end {
        let w = i / 64;
        let hi = (end - w * 64).min(64);
        f(w, word_mask(i % 64, hi));
        i = w * 64 + hi;
    }
}

/// Sets (`on`) or clears bits `first..first + n`.
pub fn set(map: &mut Map, first: usize, n: usize, on: bool) {
    for_words(first, n, |w, m| {
        if on {
            map[w] |= m;
        } else {
            map[w] &= !m;
        }
    });
}

/// Set bits among `first..first + n`.
pub fn count(map: &Map, first: usize, n: usize) -> usize {
    let mut c = 0;
    for_words(first, n, |w, m| c += (map[w] & m).count_ones() as usize);
    c
}

/// The first bit at or after `i` that equals `val`; `SEG_PAGES` when none.
#[inline]
pub fn next(map: &Map, i: usize, val: bool) -> usize {
    if i >= SEG_PAGES {
        return SEG_PAGES;
    }
    let flip = if val { 0 } else { u64::MAX };
    let mut w = i / 64;
    let mut bits = (map[w] ^ flip) & (u64::MAX << (i % 64));
    loop {
        if bits != 0 {
            return w * 64 + bits.trailing_zeros() as usize;
        }
        w += 1;
        if w == map.len() {
            return SEG_PAGES;
        }
        bits = map[w] ^ flip;
    }
}

/// The last bit before `i` that equals `val`, if any.
#[inline]
pub fn prev(map: &Map, i: usize, val: bool) -> Option<usize> {
    if i == 0 {
        return None;
    }
    let flip = if val { 0 } else { u64::MAX };
    let last = i - 1;
    let mut w = last / 64;
    let mut bits = (map[w] ^ flip) & (u64::MAX >> (63 - last % 64));
    loop {
        if bits != 0 {
            return Some(w * 64 + 63 - bits.leading_zeros() as usize);
        }
        if w == 0 {
            return None;
        }
        w -= 1;
        bits = map[w] ^ flip;
    }
}

/// The run of set bits that holds bit `i` (set): its first bit and its end.
pub fn run_around(map: &Map, i: usize) -> (usize, usize) {
    let start = prev(map, i, false).map_or(0, |z| z + 1);
    (start, next(map, i, false))
}

/// The first run of `n >= 1` set bits: `Ok(its first bit)`, else `Err(the
/// longest run there is)`. Visits each run of set bits before it once.
pub fn find_run(map: &Map, n: usize) -> Result<usize, usize> {
    let mut longest = 0;
    let mut i = 0;
    loop {
        let start = next(map, i, true);
        if start >= SEG_PAGES {
            return Err(longest);
        }
        let end = next(map, start, false);
        if end - start >= n {
            return Ok(start);
        }
        longest = longest.max(end - start);
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(map: &Map, i: usize) -> bool {
        map[i / 64] >> (i % 64) & 1 == 1
    }

    /// The bit-by-bit definitions the word-at-a-time versions must match.
    fn find_run_slow(map: &Map, n: usize) -> Result<usize, usize> {
        let (mut run, mut longest) = (0, 0);
        for i in 0..SEG_PAGES {
            if get(map, i) {
                run += 1;
                if run == n {
                    return Ok(i + 1 - n);
                }
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        Err(longest)
    }

    fn prev_slow(map: &Map, i: usize, val: bool) -> Option<usize> {
        (0..i).rev().find(|&j| get(map, j) == val)
    }

    fn next_slow(map: &Map, i: usize, val: bool) -> usize {
        (i..SEG_PAGES)
            .find(|&j| get(map, j) == val)
            .unwrap_or(SEG_PAGES)
    }

    /// xorshift: fixed-seed pseudo-random bitmaps with long and short runs.
    fn maps() -> impl Iterator<Item = Map> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..400).map(move |k| {
            let mut m = [0u64; SEG_PAGES / 64];
            // Runs of random lengths: dense maps for low k, sparse for high.
            let mut i = (rnd() % 64) as usize;
            while i < SEG_PAGES {
                let len = 1 + (rnd() % (1 + k as u64 % 97)) as usize;
                let len = len.min(SEG_PAGES - i);
                set(&mut m, i, len, true);
                i += len + 1 + (rnd() % (1 + (k as u64 * 7) % 131)) as usize;
            }
            m
        })
    }

    #[test]
    fn set_and_count_match_bit_by_bit() {
        let mut m = [0u64; SEG_PAGES / 64];
        set(&mut m, 60, 10, true);
        assert_eq!(m[0], 0xf << 60);
        assert_eq!(m[1], 0x3f);
        assert_eq!(count(&m, 0, SEG_PAGES), 10);
        assert_eq!(count(&m, 63, 2), 2);
        assert_eq!(count(&m, 70, 100), 0);
        set(&mut m, 0, SEG_PAGES, true);
        assert_eq!(m, [u64::MAX; SEG_PAGES / 64]);
        set(&mut m, 1, SEG_PAGES - 2, false);
        assert_eq!(count(&m, 0, SEG_PAGES), 2);
        assert!(get(&m, 0) && get(&m, SEG_PAGES - 1) && !get(&m, 1));
        for m in maps() {
            for (first, n) in [
                (0, 1),
                (5, 64),
                (63, 1),
                (64, 64),
                (100, 300),
                (0, SEG_PAGES),
            ] {
                let slow = (first..first + n).filter(|&i| get(&m, i)).count();
                assert_eq!(count(&m, first, n), slow);
            }
        }
    }

    #[test]
    fn next_and_find_run_match_bit_by_bit() {
        let mut m = [0u64; SEG_PAGES / 64];
        assert_eq!(find_run(&m, 1), Err(0));
        set(&mut m, 70, 3, true);
        set(&mut m, 200, 10, true);
        assert_eq!(find_run(&m, 1), Ok(70));
        assert_eq!(find_run(&m, 3), Ok(70));
        assert_eq!(find_run(&m, 4), Ok(200));
        assert_eq!(find_run(&m, 11), Err(10));
        assert_eq!(run_around(&m, 205), (200, 210));
        assert_eq!(run_around(&m, 70), (70, 73));
        assert_eq!(find_run(&[u64::MAX; SEG_PAGES / 64], SEG_PAGES), Ok(0));
        assert_eq!(run_around(&[u64::MAX; SEG_PAGES / 64], 300), (0, SEG_PAGES));
        for m in maps() {
            for n in [1, 2, 3, 5, 8, 17, 63, 64, 65, 100, 200, SEG_PAGES] {
                assert_eq!(find_run(&m, n), find_run_slow(&m, n), "n {n}");
            }
            for i in [0, 1, 63, 64, 65, 127, 128, 200, SEG_PAGES - 1, SEG_PAGES] {
                assert_eq!(next(&m, i, true), next_slow(&m, i, true));
                assert_eq!(next(&m, i, false), next_slow(&m, i, false));
                assert_eq!(prev(&m, i, true), prev_slow(&m, i, true));
                assert_eq!(prev(&m, i, false), prev_slow(&m, i, false));
                if i < SEG_PAGES && get(&m, i) {
                    let (a, b) = run_around(&m, i);
                    assert_eq!(a, prev_slow(&m, i, false).map_or(0, |z| z + 1));
                    assert_eq!(b, next_slow(&m, i, false));
                }
            }
        }
    }
}
