//! Large allocations: anything above the size classes (or with an alignment the
//! classes cannot give), each its own mapping, plus a budgeted cache of freed
//! mappings for reuse. Also the fallback for every size when the arena is
//! exhausted or could not be reserved.
//!
//! Owns: the registry of live large blocks (a two-level radix map from the
//! block's start page, which is always the mapping's start, to its length:
//! direct lookup, no hash walk), the cache of freed mappings, and their lock. A pointer not in the
//! registry is not a large block of ours.
//! Cached mappings decay like the page heap's free pages: one that sits unused
//! for the lane's `purge_decay_ms` is unmapped at the next large-block event or
//! thread-cache scavenge check after that (`decay_tick`), so a big cache buys
//! reuse while a program allocates large blocks and holds no memory once it
//! stops. A mapping, registration or resize the system refuses is retried
//! once after emptying the cache: cached memory never makes an allocation fail.
//! Must not touch the arena, thread caches or central caches (`arena`,
//! `tcache`, `central`).

use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::config;
use crate::options;
use crate::os::{self, PAGE};
use crate::stats;
use crate::sync::Locked;

/// The registry of live large blocks is a two-level radix map from a block's
/// start page to its length: one load for the 1 GiB region's leaf, one for the
/// page's entry. No hashing and no probing: a free or `usable_size` finds its
/// block (or learns the pointer is not one) in two loads. Leaves (2 MiB of
/// lengths for 1 GiB of address space) are mapped on first use and only the
/// pages holding live entries become resident.
const VA_BITS: u32 = 47;
const LEAF_SHIFT: u32 = 30;
const LEAF_ENTRIES: usize = 1 << (LEAF_SHIFT - 12);
const ROOT_ENTRIES: usize = 1 << (VA_BITS - LEAF_SHIFT);

#[derive(Clone, Copy)]
struct Cached {
    base: usize,
    len: usize,
    /// When it was cached (`os::now_ms`).
    cached_ms: u64,
}

const NO_ENTRY: Cached = Cached {
    base: 0,
    len: 0,
    cached_ms: 0,
};

struct State {
    /// ROOT_ENTRIES leaf pointers (null: no large block in that GiB), mapped on first use.
    root: *mut *mut usize,
    /// A leaf mapped in advance, so a realloc that moves a block can always
    /// register it at its new address.
    spare: *mut usize,
    cache: [Cached; 1024],
    ncache: usize,
    cached_bytes: usize,
}
// SAFETY: guarded by its lock.
unsafe impl Send for State {}

impl State {
    /// No registry yet and an empty cache.
    const EMPTY: State = State {
        root: ptr::null_mut(),
        spare: ptr::null_mut(),
        cache: [NO_ENTRY; 1024],
        ncache: 0,
        cached_bytes: 0,
    };
}

static STATE: Locked<State> = Locked::new(State::EMPTY);

/// When the oldest cached mapping is due to decay (`u64::MAX`: cache empty or
/// no decay). Read without the lock by `decay_tick`, written under it.
static NEXT_DECAY_MS: AtomicU64 = AtomicU64::new(u64::MAX);

pub static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Live large blocks (made and not yet freed: mallinfo2's `hblks`).
pub static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

/// (root index, leaf index) of a block start, or None for an address no large
/// block can start at (not page-aligned, or outside user space).
#[inline]
fn slot_of(p: usize) -> Option<(usize, usize)> {
    if p == 0 || p & (PAGE - 1) != 0 || p >> VA_BITS != 0 {
        return None;
    }
    Some((p >> LEAF_SHIFT, (p >> 12) & (LEAF_ENTRIES - 1)))
}

impl State {
    /// The length registered for a block starting at `p`, if any.
    fn find(&self, p: usize) -> Option<usize> {
        let (r, l) = slot_of(p)?;
        if self.root.is_null() {
            return None;
        }
        // SAFETY: r < ROOT_ENTRIES and l < LEAF_ENTRIES (slot_of); leaves hold LEAF_ENTRIES.
        unsafe {
            let leaf = *self.root.add(r);
            if leaf.is_null() {
                return None;
            }
            match *leaf.add(l) {
                0 => None,
                len => Some(len),
            }
        }
    }

    /// Registers a block; false when the map cannot be extended (out of memory).
    fn insert(&mut self, p: usize, len: usize) -> bool {
        let Some((r, l)) = slot_of(p) else {
            return false;
        };
        if self.root.is_null() {
            let m = os::map(ROOT_ENTRIES * core::mem::size_of::<*mut usize>());
            if m.is_null() {
                return false;
            }
            self.root = m as *mut *mut usize;
        }
        // SAFETY: indices in range (slot_of); the map is ours under the lock.
        unsafe {
            let slot = self.root.add(r);
            if (*slot).is_null() {
                let mut m = os::map(LEAF_ENTRIES * core::mem::size_of::<usize>()) as *mut usize;
                if m.is_null() {
                    m = core::mem::replace(&mut self.spare, ptr::null_mut());
                    if m.is_null() {
                        return false;
                    }
                }
                *slot = m;
            }
            *(*slot).add(l) = len;
        }
        true
    }

    /// Makes sure a spare leaf is mapped; false when none can be.
    fn ensure_spare(&mut self) -> bool {
        if self.spare.is_null() {
            self.spare = os::map(LEAF_ENTRIES * core::mem::size_of::<usize>()) as *mut usize;
        }
        !self.spare.is_null()
    }

    /// Unmaps every cached mapping. Returns the bytes released.
    fn release_cache(&mut self) -> usize {
        let mut n = 0;
        for c in &self.cache[..self.ncache] {
            // SAFETY: cached mappings are unused and registered nowhere.
            unsafe { os::unmap(c.base as *mut u8, c.len) };
            n += c.len;
        }
        self.ncache = 0;
        self.cached_bytes = 0;
        NEXT_DECAY_MS.store(u64::MAX, Ordering::Relaxed);
        n
    }

    /// `insert`; when the registry cannot grow (no room left for a new leaf
    /// and the spare already used), the cached mappings are unmapped to make
    /// room and the insert tried once more. Cached memory must never make an
    /// allocation fail: under an exhausted address space (RLIMIT_AS) a fresh
    /// block's mapping can fit while the 2 MiB leaf to register it does not.
    fn insert_making_room(&mut self, p: usize, len: usize) -> bool {
        self.insert(p, len) || (self.release_cache() > 0 && self.insert(p, len))
    }

    /// Resizes the registered block at `p` to `new_len` bytes (page-rounded),
    /// moving it if needed; null (block untouched) on failure or when `p` is
    /// not registered. Like `insert_making_room`, a resize the system refuses
    /// is retried once after unmapping the cached mappings.
    fn resize(&mut self, p: usize, new_len: usize) -> *mut u8 {
        let Some(old_len) = self.find(p) else {
            return ptr::null_mut();
        };
        if new_len == old_len {
            return p as *mut u8;
        }
        // A moved block must be registrable: a spare leaf before moving anything.
        let spare = self.ensure_spare() || (self.release_cache() > 0 && self.ensure_spare());
        if !spare {
            return ptr::null_mut();
        }
        // SAFETY: the whole mapping is ours (large blocks always start at their mapping).
        let mut q = unsafe { os::remap(p as *mut u8, old_len, new_len) };
        if q.is_null() && self.release_cache() > 0 {
            // SAFETY: as above; the failed remap left the mapping as it was.
            q = unsafe { os::remap(p as *mut u8, old_len, new_len) };
        }
        if q.is_null() {
            return ptr::null_mut();
        }
        if q as usize != p {
            self.remove(p);
        }
        let ok = self.insert(q as usize, new_len);
        debug_assert!(ok, "root exists and a spare leaf was mapped");
        LIVE_BYTES.fetch_add(new_len, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(old_len, Ordering::Relaxed);
        q
    }

    /// Unregisters the block starting at `p` (which `find` returned).
    fn remove(&mut self, p: usize) {
        if let Some((r, l)) = slot_of(p) {
            // SAFETY: `find(p)` succeeded, so root and leaf exist.
            unsafe { *(*self.root.add(r)).add(l) = 0 };
        }
    }

    /// Best-fitting cached mapping for `len` (at most the lane's `large_fit_pct` bigger).
    fn take_cached(&mut self, len: usize) -> Option<Cached> {
        let slack = len / 100 * config::LARGE_FIT_PCT;
        let mut best = usize::MAX;
        for i in 0..self.ncache {
            let c = self.cache[i];
            if c.len >= len
                && c.len - len <= slack
                && (best == usize::MAX || c.len < self.cache[best].len)
            {
                best = i;
            }
        }
        if best == usize::MAX {
            return None;
        }
        Some(self.remove_cached(best))
    }

    /// Takes cache entry `i` out (the last entry moves into its slot).
    fn remove_cached(&mut self, i: usize) -> Cached {
        let c = self.cache[i];
        self.ncache -= 1;
        self.cache[i] = self.cache[self.ncache];
        self.cached_bytes -= c.len;
        c
    }

    /// Takes out up to `out.len()` entries cached at least `decay_ms` before
    /// `now`. Returns how many, and when the next of those left is due
    /// (`u64::MAX`: none left).
    fn take_decayed(&mut self, now: u64, decay_ms: u64, out: &mut [Cached]) -> (usize, u64) {
        let mut n = 0;
        let mut i = 0;
        let mut next = u64::MAX;
        while i < self.ncache {
            let due = self.cache[i].cached_ms.saturating_add(decay_ms);
            if due <= now && n < out.len() {
                out[n] = self.remove_cached(i);
                n += 1;
                continue; // slot i now holds another entry
            }
            next = next.min(due);
            i += 1;
        }
        (n, next)
    }
}

/// Unmaps every cached mapping that sat unused for the decay period. Cheap
/// when nothing is due (one atomic load and a coarse clock read); called on
/// large-block events and on every thread cache's scavenge check (each 64th
/// slow-path event).
pub fn decay_tick() {
    os::retry_unmaps();
    // Decay period of the cache (`purge_decay_ms` in effect; 0: no decay).
    let decay_ms = options::purge_decay_ms();
    if decay_ms == 0 {
        return;
    }
    let due = NEXT_DECAY_MS.load(Ordering::Relaxed);
    if due == u64::MAX {
        return;
    }
    let now = os::now_ms();
    if now < due {
        return;
    }
    // Every due mapping goes in this call, EVICT_MAX at a time (the lock is
    // not held across the unmaps): a pass comes only every quarter of the
    // decay period, and 8 per pass left a burst of 128 freed blocks resident
    // for about 6 x the period (2.9 s at 500 ms, measured by
    // memory_return.rs). Bounded by the cache's entries.
    loop {
        let mut evicted = [NO_ENTRY; EVICT_MAX];
        let n = STATE.with(|s| {
            let (n, next) = s.take_decayed(now, decay_ms, &mut evicted);
            NEXT_DECAY_MS.store(next, Ordering::Relaxed);
            n
        });
        for c in &evicted[..n] {
            // SAFETY: taken out of the cache: unused and registered nowhere.
            unsafe { os::unmap(c.base as *mut u8, c.len) };
        }
        stats::LARGE_CACHE_DECAYED.fetch_add(n, Ordering::Relaxed);
        if n < EVICT_MAX {
            break;
        }
    }
}

fn round_pages(n: usize) -> Option<usize> {
    n.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// Maps `len` fresh bytes. When the system refuses (address-space limit,
/// overcommit) while the cache holds mappings that did not fit the request,
/// unmaps them all and tries once more: cached memory must never make an
/// allocation fail.
fn map_or_trim(len: usize) -> *mut u8 {
    let p = os::map(len);
    if !p.is_null() || trim() == 0 {
        return p;
    }
    os::map(len)
}

/// Allocates a large block of at least `size` bytes aligned to `align` (a power of two).
/// Returns (pointer, fresh): `fresh` says the memory is known to be zero. Null on failure.
pub fn alloc(size: usize, align: usize) -> (*mut u8, bool) {
    let Some(len) = round_pages(if size == 0 { 1 } else { size }) else {
        return (ptr::null_mut(), false);
    };
    if len > isize::MAX as usize / 2 {
        return (ptr::null_mut(), false);
    }
    if align <= PAGE {
        let hit = STATE.with(|s| {
            let c = s.take_cached(len)?;
            if s.insert_making_room(c.base, c.len) {
                Some(Ok(c))
            } else {
                Some(Err(c))
            }
        });
        match hit {
            Some(Ok(c)) => {
                LIVE_BYTES.fetch_add(c.len, Ordering::Relaxed);
                LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
                stats::LARGE_CACHE_HITS.fetch_add(1, Ordering::Relaxed);
                decay_tick();
                return (c.base as *mut u8, false);
            }
            // SAFETY: the cached mapping is ours and unused (unmapped outside the lock).
            Some(Err(c)) => unsafe { os::unmap(c.base as *mut u8, c.len) },
            None => {}
        }
    }
    decay_tick();
    let (base, len) = if align <= PAGE {
        let p = map_or_trim(len);
        if p.is_null() {
            return (ptr::null_mut(), false);
        }
        (p as usize, len)
    } else {
        let Some(total) = len.checked_add(align) else {
            return (ptr::null_mut(), false);
        };
        let p = map_or_trim(total);
        if p.is_null() {
            return (ptr::null_mut(), false);
        }
        let raw = p as usize;
        let start = (raw + align - 1) & !(align - 1);
        // SAFETY: trimming the unused head and tail of our own fresh mapping.
        unsafe {
            os::unmap(raw as *mut u8, start - raw);
            os::unmap((start + len) as *mut u8, raw + total - (start + len));
        }
        (start, len)
    };
    if !STATE.with(|s| s.insert_making_room(base, len)) {
        // SAFETY: our fresh mapping.
        unsafe { os::unmap(base as *mut u8, len) };
        return (ptr::null_mut(), false);
    }
    LIVE_BYTES.fetch_add(len, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    stats::LARGE_MAPS.fetch_add(1, Ordering::Relaxed);
    (base as *mut u8, true)
}

/// A mapping for a block that realloc grows out of the size classes (growth
/// goes on, so a bigger mapping is worth reusing): the smallest cached mapping
/// of at least `size` bytes, whatever its size, its tail beyond twice `size`
/// unmapped (those pages go back to the system); else a fresh one as `alloc`.
/// Without it a growing block would map afresh while the cache keeps the
/// bigger mappings of earlier growths resident. Null on failure.
pub fn alloc_growing(size: usize) -> *mut u8 {
    let Some(len) = round_pages(size) else {
        return ptr::null_mut();
    };
    let keep = len.saturating_mul(2);
    // Some((base, kept length, cut tail length)), or None: no cached mapping fits.
    let hit = STATE.with(|s| {
        let mut best = usize::MAX;
        for i in 0..s.ncache {
            let c = s.cache[i];
            if c.len >= len && (best == usize::MAX || c.len < s.cache[best].len) {
                best = i;
            }
        }
        if best == usize::MAX {
            return None;
        }
        let c = s.remove_cached(best);
        let kept = c.len.min(keep);
        if s.insert_making_room(c.base, kept) {
            Some((c.base, kept, c.len - kept, true))
        } else {
            Some((c.base, 0, c.len, false))
        }
    });
    match hit {
        Some((base, kept, cut, true)) => {
            if cut > 0 {
                // SAFETY: the tail of a mapping we own, registered nowhere.
                unsafe { os::unmap((base + kept) as *mut u8, cut) };
            }
            LIVE_BYTES.fetch_add(kept, Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
            stats::LARGE_CACHE_HITS.fetch_add(1, Ordering::Relaxed);
            decay_tick();
            base as *mut u8
        }
        Some((base, _, len, false)) => {
            // SAFETY: a cached mapping we own, registered nowhere.
            unsafe { os::unmap(base as *mut u8, len) };
            alloc(size, 16).0
        }
        None => alloc(size, 16).0,
    }
}

/// Usable size of a large block, or None when `p` is not one.
pub fn usable_size(p: usize) -> Option<usize> {
    STATE.with(|s| s.find(p))
}

/// Evicted mappings unmapped per free at most (outside the lock).
const EVICT_MAX: usize = 8;

/// Frees a large block. Returns false when `p` is not a live large block.
pub fn free(p: usize) -> bool {
    let budget = options::large_cache_mib() << 20;
    let slots = config::LARGE_CACHE_ENTRIES.min(1024);
    let mut evicted = [NO_ENTRY; EVICT_MAX];
    let mut nev = 0;
    // Some(true): cached; Some(false): to unmap; None: not ours.
    let r = STATE.with(|s| {
        let len = s.find(p)?;
        s.remove(p);
        LIVE_BYTES.fetch_sub(len, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        if len > budget || slots == 0 {
            return Some((false, len));
        }
        // Make room: evict the oldest entries (slot 0 and on, outside the hot set).
        while (s.cached_bytes + len > budget || s.ncache >= slots)
            && s.ncache > 0
            && nev < EVICT_MAX
        {
            evicted[nev] = s.remove_cached(0);
            nev += 1;
        }
        if s.cached_bytes + len > budget || s.ncache >= slots {
            return Some((false, len));
        }
        let n = s.ncache;
        let now = os::now_ms();
        s.cache[n] = Cached {
            base: p,
            len,
            cached_ms: now,
        };
        s.ncache += 1;
        s.cached_bytes += len;
        let decay_ms = options::purge_decay_ms();
        if decay_ms > 0 && n == 0 {
            // The cache was empty: this entry is the next to decay. (Otherwise
            // an older entry is due first and the deadline stands.)
            NEXT_DECAY_MS.store(now.saturating_add(decay_ms), Ordering::Relaxed);
        }
        Some((true, len))
    });
    // System calls outside the lock.
    for c in &evicted[..nev] {
        // SAFETY: evicted mappings are unused and no longer registered anywhere.
        unsafe { os::unmap(c.base as *mut u8, c.len) };
    }
    decay_tick();
    match r {
        None => false,
        Some((true, _)) => true,
        Some((false, len)) => {
            // SAFETY: the block was ours and is no longer registered.
            unsafe { os::unmap(p as *mut u8, len) };
            true
        }
    }
}

/// Resizes a large block to `new_size` (alloc::realloc keeps blocks from
/// REALLOC_MAP_MIN up in their mappings), moving it if needed.
/// Returns null (block untouched) on failure or when `p` is not a large block.
pub fn realloc(p: usize, new_size: usize) -> *mut u8 {
    let Some(new_len) = round_pages(new_size) else {
        return ptr::null_mut();
    };
    STATE.with(|s| s.resize(p, new_len))
}

/// Unmaps every cached mapping (malloc_trim), and retries the unmaps the
/// system refused before. Returns the bytes released.
pub fn trim() -> usize {
    os::retry_unmaps();
    STATE.with(|s| s.release_cache())
}

pub fn cached_bytes() -> usize {
    STATE.with(|s| s.cached_bytes)
}

pub fn lock() {
    STATE.lock.lock();
}
pub fn unlock(child: bool) {
    if child {
        STATE.lock.reset_after_fork();
    } else {
        STATE.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached mapping serves a request up to the lane's `large_fit_pct`
    /// bigger than it, the smallest such first, and nothing bigger.
    #[test]
    fn cache_fit_follows_the_lane() {
        let len = 4 << 20;
        let slack = len / 100 * config::LARGE_FIT_PCT;
        let mut s = State::EMPTY;
        let put = |s: &mut State, base: usize, l: usize| {
            s.cache[s.ncache] = Cached {
                base,
                len: l,
                cached_ms: 0,
            };
            s.ncache += 1;
            s.cached_bytes += l;
        };
        put(&mut s, 0x1000_0000, len + slack + PAGE);
        assert!(
            s.take_cached(len).is_none(),
            "a mapping beyond the fit was taken"
        );
        put(&mut s, 0x2000_0000, len + slack);
        put(&mut s, 0x3000_0000, len + PAGE);
        let c = s.take_cached(len).expect("a mapping within the fit");
        assert_eq!(c.base, 0x3000_0000, "not the best fit");
        let c = s
            .take_cached(len)
            .expect("the largest mapping within the fit");
        assert_eq!(c.base, 0x2000_0000);
        assert_eq!(s.ncache, 1);
        assert_eq!(s.cached_bytes, len + slack + PAGE);
    }

    /// Decay takes exactly the entries cached at least the period ago, at most
    /// as many as asked per call, and reports when the next one left is due.
    #[test]
    fn decay_takes_only_entries_idle_for_the_period() {
        let mut s = State::EMPTY;
        for (i, t) in [100u64, 900, 400, 1000, 50].into_iter().enumerate() {
            s.cache[i] = Cached {
                base: 0x1000_0000 * (i + 1),
                len: PAGE,
                cached_ms: t,
            };
            s.ncache += 1;
            s.cached_bytes += PAGE;
        }
        let mut out = [NO_ENTRY; 2];
        // At 1400 with a period of 1000: 100, 400 and 50 are due; two per call
        // (100 and 50, the order of the slots), so 400 is left and due at once.
        let (n, next) = s.take_decayed(1400, 1000, &mut out);
        assert_eq!(n, 2);
        assert_eq!(next, 1400, "the due entry left over must come next");
        let (n2, next2) = s.take_decayed(1400, 1000, &mut out[..1]);
        assert_eq!(n2, 1);
        assert_eq!(next2, 1900, "900 + 1000");
        assert_eq!(s.ncache, 2);
        assert_eq!(s.cached_bytes, 2 * PAGE);
        let mut left: [u64; 2] = [s.cache[0].cached_ms, s.cache[1].cached_ms];
        left.sort();
        assert_eq!(left, [900, 1000], "only the entries idle for the period go");
        assert_eq!(s.take_decayed(1899, 1000, &mut out), (0, 1900));
        assert_eq!(s.take_decayed(5000, 1000, &mut out), (2, u64::MAX));
        assert_eq!((s.ncache, s.cached_bytes), (0, 0));
    }

    /// The registry finds exactly the live blocks, by their start only, and
    /// forgets them when they are freed.
    #[test]
    fn registry_finds_live_blocks_by_start_only() {
        let sizes = [300 * 1024, 1 << 20, 5 << 20, 64 << 20];
        let blocks: [(usize, usize); 4] = core::array::from_fn(|i| {
            let (p, _) = alloc(sizes[i], 16);
            assert!(!p.is_null());
            (p as usize, sizes[i])
        });
        for &(p, size) in &blocks {
            assert!(usable_size(p).unwrap() >= size);
            assert_eq!(usable_size(p + PAGE), None, "interior page is not a block");
            assert_eq!(
                usable_size(p + 16),
                None,
                "unaligned pointer is not a block"
            );
        }
        let stack = 0u64;
        assert!(!free(&stack as *const u64 as usize & !(PAGE - 1)));
        assert!(!free(usize::MAX & !(PAGE - 1)), "beyond user space");
        for &(p, _) in &blocks {
            assert!(free(p));
            assert!(!free(p), "a freed block is no longer registered");
            assert_eq!(usable_size(p), None);
        }
    }

    /// A State of the test's own with `n` real mappings of `len` bytes cached.
    fn state_with_cache(n: usize, len: usize) -> State {
        let mut s = State::EMPTY;
        for i in 0..n {
            let p = os::map(len);
            assert!(!p.is_null());
            s.cache[i] = Cached {
                base: p as usize,
                len,
                cached_ms: 0,
            };
            s.ncache += 1;
            s.cached_bytes += len;
        }
        s
    }

    /// Unmaps a test State's registry (root, leaves, spare) and cache.
    fn drop_state(mut s: State) {
        s.release_cache();
        unsafe {
            if !s.root.is_null() {
                for r in 0..ROOT_ENTRIES {
                    let leaf = *s.root.add(r);
                    if !leaf.is_null() {
                        os::unmap(leaf as *mut u8, LEAF_ENTRIES * 8);
                    }
                }
                os::unmap(s.root as *mut u8, ROOT_ENTRIES * 8);
            }
            if !s.spare.is_null() {
                os::unmap(s.spare as *mut u8, LEAF_ENTRIES * 8);
            }
        }
    }

    const LEAF_BYTES: usize = LEAF_ENTRIES * core::mem::size_of::<usize>();

    /// Under an exhausted address space, registering a block that needs a new
    /// registry leaf (spare already used) unmaps the cached mappings to make
    /// room instead of failing the allocation (exhaust.cpp's 16 MiB
    /// `operator new` threw bad_alloc in 1-2 % of runs under RLIMIT_AS).
    #[test]
    fn registering_under_a_full_address_space_makes_room_from_the_cache() {
        let mut s = state_with_cache(2, 1 << 20);
        // The root exists (a first block registered, unlimited).
        let a = 0x4000_0000usize;
        assert!(s.insert(a, PAGE));
        // 1 MiB of address space left: no room for a leaf (2 MiB) until the
        // cache (2 MiB) is given back.
        os::address_limit::set(LEAF_BYTES / 2);
        let b = 0x7_0000_0000usize; // another GiB: a new leaf is needed
        assert!(
            s.insert_making_room(b, 1 << 20),
            "the cached mappings were not given back to register the block"
        );
        assert_eq!((s.ncache, s.cached_bytes), (0, 0));
        assert_eq!(s.find(b), Some(1 << 20));
        assert_eq!(s.find(a), Some(PAGE));
        // With nothing cached, a failure stays a failure (no loop).
        os::address_limit::set(0);
        assert!(!s.insert_making_room(0x9_0000_0000, PAGE));
        os::address_limit::set(usize::MAX);
        drop_state(s);
    }

    /// Under an exhausted address space, a realloc that needs a spare leaf or
    /// room to grow unmaps the cached mappings instead of failing.
    #[test]
    fn resizing_under_a_full_address_space_makes_room_from_the_cache() {
        for spare_first in [false, true] {
            let mut s = state_with_cache(2, 4 << 20);
            let p = os::map(1 << 20) as usize;
            assert!(p != 0 && s.insert(p, 1 << 20));
            unsafe { *(p as *mut u64) = 0x5eed };
            if spare_first {
                // The spare exists: the remap itself is what does not fit.
                assert!(s.ensure_spare());
            }
            os::address_limit::set(1 << 20);
            let q = s.resize(p, 6 << 20) as usize;
            assert_ne!(
                q,
                0,
                "resize failed with {} MiB cached (spare first: {spare_first})",
                s.cached_bytes >> 20
            );
            assert_eq!(s.ncache, 0);
            assert_eq!(unsafe { *(q as *const u64) }, 0x5eed);
            assert_eq!(s.find(q), Some(6 << 20));
            // Nothing cached and no room: the block stays as it was.
            os::address_limit::set(0);
            assert!(s.resize(q, 64 << 20).is_null());
            assert_eq!(s.find(q), Some(6 << 20));
            os::address_limit::set(usize::MAX);
            // resize counted the growth in the global figure: take it back.
            LIVE_BYTES.fetch_sub((6 << 20) - (1 << 20), Ordering::Relaxed);
            unsafe { os::unmap(q as *mut u8, 6 << 20) };
            drop_state(s);
        }
    }

    /// realloc moves a block's registration with it.
    #[test]
    fn realloc_reregisters_a_moved_block() {
        let (p, _) = alloc(1 << 20, 16);
        assert!(!p.is_null());
        unsafe { *(p as *mut u64) = 0x5eed };
        let q = realloc(p as usize, 40 << 20) as usize;
        assert_ne!(q, 0);
        assert_eq!(unsafe { *(q as *const u64) }, 0x5eed);
        assert!(usable_size(q).unwrap() >= 40 << 20);
        if q != p as usize {
            assert_eq!(usable_size(p as usize), None);
        }
        assert!(free(q));
    }
}
