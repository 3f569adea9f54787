//! Large allocations: anything above the size classes (or with an alignment the
//! classes cannot give), each its own mapping, plus a budgeted cache of freed
//! mappings for reuse. Also the fallback for every size when the arena is
//! exhausted or could not be reserved.
//!
//! Owns: the registry of live large blocks (an open-addressing table in a
//! reserved region, keyed by the block address, which is always the mapping's
//! start), the cache of freed mappings, and their lock. A pointer not in the
//! registry is not a large block of ours.
//! Must not touch the arena, thread caches or central caches.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::config;
use crate::os::{self, PAGE};
use crate::stats;
use crate::sync::Locked;

const TABLE_CAP: usize = 1 << 20; // power of two
const EMPTY: usize = 0;
const TOMB: usize = 1;

#[derive(Clone, Copy)]
struct Entry {
    key: usize,
    len: usize,
}

#[derive(Clone, Copy)]
struct Cached {
    base: usize,
    len: usize,
}

struct State {
    table: *mut Entry,
    live: usize,
    tombs: usize,
    cache: [Cached; 1024],
    ncache: usize,
    cached_bytes: usize,
}
// SAFETY: guarded by its lock.
unsafe impl Send for State {}

static STATE: Locked<State> = Locked::new(State {
    table: ptr::null_mut(),
    live: 0,
    tombs: 0,
    cache: [Cached { base: 0, len: 0 }; 1024],
    ncache: 0,
    cached_bytes: 0,
});

pub static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn hash(k: usize) -> usize {
    ((k >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & (TABLE_CAP - 1)
}

impl State {
    fn ensure_table(&mut self) -> bool {
        if self.table.is_null() {
            let m = os::map(TABLE_CAP * core::mem::size_of::<Entry>());
            if m.is_null() {
                return false;
            }
            self.table = m as *mut Entry;
        }
        true
    }

    fn find(&self, key: usize) -> Option<usize> {
        if self.table.is_null() {
            return None;
        }
        let mut i = hash(key);
        for _ in 0..TABLE_CAP {
            // SAFETY: i < TABLE_CAP.
            let e = unsafe { *self.table.add(i) };
            if e.key == key {
                return Some(i);
            }
            if e.key == EMPTY {
                return None;
            }
            i = (i + 1) & (TABLE_CAP - 1);
        }
        None
    }

    fn insert(&mut self, key: usize, len: usize) -> bool {
        if !self.ensure_table() || self.live + self.tombs >= TABLE_CAP * 3 / 4 {
            if self.tombs > 0 {
                self.rehash();
            }
            if self.table.is_null() || self.live + self.tombs >= TABLE_CAP * 3 / 4 {
                return false;
            }
        }
        let mut i = hash(key);
        loop {
            // SAFETY: i < TABLE_CAP.
            let e = unsafe { &mut *self.table.add(i) };
            if e.key == EMPTY || e.key == TOMB {
                if e.key == TOMB {
                    self.tombs -= 1;
                }
                *e = Entry { key, len };
                self.live += 1;
                return true;
            }
            i = (i + 1) & (TABLE_CAP - 1);
        }
    }

    fn remove_at(&mut self, i: usize) {
        // SAFETY: i < TABLE_CAP.
        unsafe { (*self.table.add(i)).key = TOMB };
        self.live -= 1;
        self.tombs += 1;
    }

    /// Rebuilds the table without tombstones (into a new mapping).
    fn rehash(&mut self) {
        let bytes = TABLE_CAP * core::mem::size_of::<Entry>();
        let fresh = os::map(bytes) as *mut Entry;
        if fresh.is_null() {
            return;
        }
        let old = self.table;
        // SAFETY: both tables hold TABLE_CAP entries; the old one is ours alone under the lock.
        unsafe {
            for i in 0..TABLE_CAP {
                let e = *old.add(i);
                if e.key > TOMB {
                    let mut j = hash(e.key);
                    while (*fresh.add(j)).key != EMPTY {
                        j = (j + 1) & (TABLE_CAP - 1);
                    }
                    *fresh.add(j) = e;
                }
            }
            os::unmap(old as *mut u8, bytes);
        }
        self.table = fresh;
        self.tombs = 0;
    }

    /// Best-fitting cached mapping for `len` (at most 25% bigger).
    fn take_cached(&mut self, len: usize) -> Option<Cached> {
        let mut best = usize::MAX;
        for i in 0..self.ncache {
            let c = self.cache[i];
            if c.len >= len
                && c.len - len <= len / 4
                && (best == usize::MAX || c.len < self.cache[best].len)
            {
                best = i;
            }
        }
        if best == usize::MAX {
            return None;
        }
        let c = self.cache[best];
        self.ncache -= 1;
        self.cache[best] = self.cache[self.ncache];
        self.cached_bytes -= c.len;
        Some(c)
    }
}

fn round_pages(n: usize) -> Option<usize> {
    n.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
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
            if s.insert(c.base, c.len) {
                Some(c)
            } else {
                // SAFETY: the cached mapping is ours and unused.
                unsafe { os::unmap(c.base as *mut u8, c.len) };
                None
            }
        });
        if let Some(c) = hit {
            LIVE_BYTES.fetch_add(c.len, Ordering::Relaxed);
            stats::LARGE_CACHE_HITS.fetch_add(1, Ordering::Relaxed);
            return (c.base as *mut u8, false);
        }
    }
    let (base, len) = if align <= PAGE {
        let p = os::map(len);
        if p.is_null() {
            return (ptr::null_mut(), false);
        }
        (p as usize, len)
    } else {
        let Some(total) = len.checked_add(align) else {
            return (ptr::null_mut(), false);
        };
        let p = os::map(total);
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
    if !STATE.with(|s| s.insert(base, len)) {
        // SAFETY: our fresh mapping.
        unsafe { os::unmap(base as *mut u8, len) };
        return (ptr::null_mut(), false);
    }
    LIVE_BYTES.fetch_add(len, Ordering::Relaxed);
    stats::LARGE_MAPS.fetch_add(1, Ordering::Relaxed);
    (base as *mut u8, true)
}

/// Usable size of a large block, or None when `p` is not one.
pub fn usable_size(p: usize) -> Option<usize> {
    STATE.with(|s| s.find(p).map(|i| unsafe { (*s.table.add(i)).len }))
}

/// Frees a large block. Returns false when `p` is not a live large block.
pub fn free(p: usize) -> bool {
    let budget = config::LARGE_CACHE_MIB << 20;
    let slots = config::LARGE_CACHE_ENTRIES.min(1024);
    let r = STATE.with(|s| {
        let i = s.find(p)?;
        // SAFETY: i < TABLE_CAP.
        let len = unsafe { (*s.table.add(i)).len };
        s.remove_at(i);
        LIVE_BYTES.fetch_sub(len, Ordering::Relaxed);
        if len <= budget && s.ncache < slots {
            while s.cached_bytes + len > budget && s.ncache > 0 {
                // Evict the oldest entry (slot 0), outside the hot set.
                let c = s.cache[0];
                s.ncache -= 1;
                s.cache[0] = s.cache[s.ncache];
                s.cached_bytes -= c.len;
                // SAFETY: a cached mapping is unused.
                unsafe { os::unmap(c.base as *mut u8, c.len) };
            }
            let n = s.ncache;
            s.cache[n] = Cached { base: p, len };
            s.ncache += 1;
            s.cached_bytes += len;
            return Some(None);
        }
        Some(Some(len))
    });
    match r {
        None => false,
        Some(None) => true,
        Some(Some(len)) => {
            // SAFETY: the block was ours and is no longer registered.
            unsafe { os::unmap(p as *mut u8, len) };
            true
        }
    }
}

/// Resizes a large block to `new_size` (> the class limit), moving it if needed.
/// Returns null (block untouched) on failure or when `p` is not a large block.
pub fn realloc(p: usize, new_size: usize) -> *mut u8 {
    let Some(new_len) = round_pages(new_size) else {
        return ptr::null_mut();
    };
    STATE.with(|s| {
        let Some(i) = s.find(p) else {
            return ptr::null_mut();
        };
        // SAFETY: i < TABLE_CAP.
        let old_len = unsafe { (*s.table.add(i)).len };
        if new_len == old_len {
            return p as *mut u8;
        }
        // SAFETY: the whole mapping is ours (large blocks always start at their mapping).
        let q = unsafe { os::remap(p as *mut u8, old_len, new_len) };
        if q.is_null() {
            return ptr::null_mut();
        }
        s.remove_at(i);
        let ok = s.insert(q as usize, new_len);
        debug_assert!(ok, "a slot was just freed");
        LIVE_BYTES.fetch_add(new_len, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(old_len, Ordering::Relaxed);
        q
    })
}

/// Unmaps every cached mapping (malloc_trim). Returns the bytes released.
pub fn trim() -> usize {
    STATE.with(|s| {
        let mut n = 0;
        for i in 0..s.ncache {
            let c = s.cache[i];
            // SAFETY: cached mappings are unused.
            unsafe { os::unmap(c.base as *mut u8, c.len) };
            n += c.len;
        }
        s.ncache = 0;
        s.cached_bytes = 0;
        n
    })
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
