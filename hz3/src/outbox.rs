//! Outboxes: the outgoing side of the remote path. An object freed by a thread
//! whose owner is not the object's owner waits in the freeing thread's outbox
//! and reaches the owner's inbox (`inbox::deliver`) in batches, on slow-path
//! events only (a bank entry or the ring filling up, a refill, thread exit,
//! malloc_trim), never one lock or CAS per free.
//!
//! Owns the per-thread outbox inside `TCache`, in one of two shapes chosen by
//! the lane (`remote` in the manifest):
//! - `dense` (fast lane): a bank `[owner][class]` of intrusive lists plus a short
//!   list of the non-empty entries, so a flush never scans the whole bank.
//!   Per-thread size grows with the owner count.
//! - `ring` (scale lane): an outbox ring of packed (pointer, owner, class)
//!   entries, grouped by (owner, class) when drained. Per-thread size does not
//!   depend on the owner count.
//!
//! Must not touch another thread's cache, central caches or spans (`central`,
//! `span`, `page_heap`).

use crate::config;
use crate::inbox;

/// Objects of `cls` an outbox gathers for one owner before delivering them: the
/// lane's `remote_batch`, but never more than one refill batch of the class
/// (so big classes do not pile up megabytes in a freeing thread).
#[inline]
fn batch_of(cls: usize) -> usize {
    let b = crate::size_class::CLASSES[cls].batch as usize;
    if b < config::REMOTE_BATCH {
        b
    } else {
        config::REMOTE_BATCH
    }
}

/// Hands a batch `first ..= last` of `n` (owner, cls) objects to the owner's
/// inbox (`n` 0: not counted).
#[inline]
fn deliver(owner: usize, cls: usize, first: *mut u8, last: *mut u8, n: usize) {
    // SAFETY: the batch is ours, `last` is its final node, `n` its length or 0.
    unsafe { inbox::deliver(owner, cls, first, last, n) };
}

#[cfg(not(hz3_remote_ring))]
pub use dense::Dense as Outbox;
#[cfg(hz3_remote_ring)]
pub use ring::Ring as Outbox;

// Both shapes are always compiled (and unit-tested); the lane picks one.
#[cfg_attr(hz3_remote_ring, allow(dead_code))]
pub mod dense {
    use super::*;

    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Entry {
        head: *mut u8,
        tail: *mut u8,
        count: u32,
    }

    const DIRTY_CAP: usize = 64;

    /// The dense bank for `O` owners. The small header comes first and the
    /// bank last: a new thread writes only the header, and the bank's pages
    /// (about 2.3 KiB per owner) are touched only by the entries it uses.
    #[repr(C)]
    pub struct Bank<const O: usize> {
        ndirty: usize,
        /// Bytes of the objects in the bank: flushed past `config::REMOTE_KIB`.
        bytes: usize,
        dirty: [u16; DIRTY_CAP],
        bank: [[Entry; crate::size_class::NCLS]; O],
    }

    #[cfg(not(hz3_remote_ring))]
    pub type Dense = Bank<{ config::OWNERS }>;

    impl<const O: usize> Bank<O> {
        /// Readies an outbox for a new thread without writing the bank, whose
        /// ~18 KiB (8 owners) would otherwise be made resident in every thread,
        /// even one that never frees remotely.
        ///
        /// # Safety
        /// The bank is clean: every entry has `count` 0 and a null `head` (what
        /// `tail` holds does not matter: it is set whenever `count` goes from 0
        /// to 1). Fresh zeroed memory is clean, and so is an outbox after
        /// `flush_all` (an entry with objects is always on the dirty list, and
        /// flushing or delivering an entry nulls its head), which is how a
        /// thread's cache goes back to the pool.
        pub unsafe fn init(&mut self) {
            debug_assert!(self
                .bank
                .iter()
                .flatten()
                .all(|e| e.count == 0 && e.head.is_null()));
            self.ndirty = 0;
            self.bytes = 0;
        }

        /// Puts `p`, an object of (owner, cls), in the outbox.
        #[inline]
        pub fn push(&mut self, owner: usize, cls: usize, p: *mut u8) {
            let e = &mut self.bank[owner][cls];
            // SAFETY: `p` is a free block of at least 16 bytes owned by nobody else now.
            unsafe { *(p as *mut *mut u8) = e.head };
            if e.count == 0 {
                e.tail = p;
            }
            e.head = p;
            e.count += 1;
            self.bytes += crate::size_class::CLASSES[cls].size as usize;
            if self.bytes > config::REMOTE_KIB * 1024 {
                // Holding too much for others: everything goes now (this entry is
                // listed already unless it was empty, in which case list it first).
                if e.count == 1 {
                    if self.ndirty == DIRTY_CAP {
                        self.flush_all();
                    }
                    self.dirty[self.ndirty] = (owner * crate::size_class::NCLS + cls) as u16;
                    self.ndirty += 1;
                }
                self.flush_all();
                return;
            }
            if e.count == 1 {
                if self.ndirty == DIRTY_CAP {
                    // Flushes the others; this entry is not listed yet and stays.
                    self.flush_all();
                }
                self.dirty[self.ndirty] = (owner * crate::size_class::NCLS + cls) as u16;
                self.ndirty += 1;
            } else if e.count as usize >= batch_of(cls) {
                let (h, t, n) = (e.head, e.tail, e.count as usize);
                self.bytes -= n * crate::size_class::CLASSES[cls].size as usize;
                e.count = 0;
                e.head = core::ptr::null_mut();
                deliver(owner, cls, h, t, n);
                // The entry stays in the dirty list; an empty entry there is skipped.
            }
        }

        /// Sends every object in the outbox to its owner.
        pub fn flush_all(&mut self) {
            const N: usize = crate::size_class::NCLS;
            for i in 0..self.ndirty {
                let idx = self.dirty[i] as usize;
                let (owner, cls) = (idx / N, idx % N);
                let e = &mut self.bank[owner][cls];
                if e.count > 0 {
                    let (h, t, n) = (e.head, e.tail, e.count as usize);
                    e.count = 0;
                    e.head = core::ptr::null_mut();
                    deliver(owner, cls, h, t, n);
                }
            }
            self.ndirty = 0;
            self.bytes = 0;
        }

        /// Budgeted flush on a slow-path event.
        #[inline]
        pub fn on_slow_event(&mut self) {
            if self.ndirty >= DIRTY_CAP / 2 {
                self.flush_all();
            }
        }
    }
}

#[cfg_attr(not(hz3_remote_ring), allow(dead_code))]
pub mod ring {
    use super::*;

    const PTR_BITS: u32 = 48;
    /// Groups formed at once while draining.
    const GROUPS: usize = 32;

    /// The sparse outbox ring: `config::RING_SLOTS` packed entries, whatever the owner count.
    #[repr(C)]
    pub struct Ring {
        n: usize,
        /// Bytes of the objects in the ring: drained past `config::REMOTE_KIB`.
        bytes: usize,
        slots: [u64; config::RING_SLOTS],
    }

    #[derive(Clone, Copy)]
    struct Group {
        key: u32,
        first: *mut u8,
        last: *mut u8,
    }

    impl Ring {
        /// Readies the ring for a new thread (only the counters: slots are
        /// written before they are read).
        ///
        /// # Safety
        /// None beyond `&mut`; unsafe only to match `dense::Bank::init`.
        pub unsafe fn init(&mut self) {
            self.n = 0;
            self.bytes = 0;
        }

        #[inline]
        pub fn push(&mut self, owner: usize, cls: usize, p: *mut u8) {
            debug_assert!((p as u64) >> PTR_BITS == 0);
            self.slots[self.n] =
                p as u64 | (owner as u64) << PTR_BITS | (cls as u64) << (PTR_BITS + 8);
            self.n += 1;
            self.bytes += crate::size_class::CLASSES[cls].size as usize;
            if self.n == config::RING_SLOTS || self.bytes > config::REMOTE_KIB * 1024 {
                self.flush_all();
            }
        }

        /// Drains the ring: entries are grouped by (owner, class) and each group is
        /// delivered as one batch.
        pub fn flush_all(&mut self) {
            let mut groups = [Group {
                key: 0,
                first: core::ptr::null_mut(),
                last: core::ptr::null_mut(),
            }; GROUPS];
            let mut ng = 0;
            let mut hint = 0;
            for i in 0..self.n {
                let e = self.slots[i];
                let p = (e & ((1 << PTR_BITS) - 1)) as *mut u8;
                let key = (e >> PTR_BITS) as u32;
                let g = if ng > 0 && groups[hint].key == key {
                    hint
                } else if let Some(g) = groups[..ng].iter().position(|g| g.key == key) {
                    g
                } else {
                    if ng == GROUPS {
                        deliver_groups(&groups[..ng]);
                        ng = 0;
                    }
                    groups[ng] = Group {
                        key,
                        first: core::ptr::null_mut(),
                        last: p,
                    };
                    ng += 1;
                    ng - 1
                };
                hint = g;
                // SAFETY: `p` is a free block in this thread's outbox.
                unsafe { *(p as *mut *mut u8) = groups[g].first };
                groups[g].first = p;
            }
            deliver_groups(&groups[..ng]);
            self.n = 0;
            self.bytes = 0;
        }

        #[inline]
        pub fn on_slow_event(&mut self) {
            if self.n >= 64 {
                self.flush_all();
            }
        }
    }

    fn deliver_groups(gs: &[Group]) {
        for g in gs {
            deliver(
                (g.key & 0xff) as usize,
                (g.key >> 8) as usize,
                g.first,
                g.last,
                0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central;

    /// Free objects of (owner, cls) in its central cache, the owner's inbox
    /// (lanes with one) drained into it first.
    fn central_free(owner: usize, cls: usize) -> u64 {
        inbox::drain_class_to_central(owner, cls);
        central::counters(owner, cls).1
    }

    /// The dense outbox delivers an (owner, class) entry exactly when it
    /// reaches its batch, as one list whose tail is right (the owner counts
    /// every object of it), and `flush_all` sends the rest. Fails with the
    /// batch delivery or the tail of a first object left out of `push`.
    #[test]
    fn dense_outbox_delivers_whole_batches_and_flushes_the_rest() {
        crate::init::ensure();
        let owner = config::OWNERS - 6; // not the other unit tests' owners
        let cls = crate::size_class::class_of(700);
        let size = crate::size_class::CLASSES[cls].size as usize;
        let batch = batch_of(cls);
        // Two and a half batches, well under the byte bound (no flush by bytes).
        let n = (2 * batch + batch / 2 + 1).min(config::REMOTE_KIB * 1024 / 2 / size);
        // One object of every span stays out: no span becomes wholly free
        // (lanes without transfer lists release those, and their objects
        // would leave the count).
        let mut objs = std::vec::Vec::new();
        let mut kept: std::vec::Vec<(usize, *mut u8)> = std::vec::Vec::new();
        while objs.len() < n {
            let (mut h, k) = central::refill(owner, cls, 64, 0);
            assert!(k > 0, "no objects");
            for _ in 0..k {
                let o = h;
                // SAFETY: a list of free objects just handed out.
                h = unsafe { *(h as *mut *mut u8) };
                let (page, t) = crate::arena::lookup(o as usize).expect("an arena object");
                let span = page - t.page_off();
                if kept.iter().any(|&(s, _)| s == span) {
                    objs.push(o);
                } else {
                    kept.push((span, o));
                }
            }
        }
        let extra = objs.split_off(n);
        let before = central_free(owner, cls);
        // SAFETY: zeroed memory is a clean bank (see `init`).
        let mut bank: std::boxed::Box<dense::Bank<{ config::OWNERS }>> =
            unsafe { std::boxed::Box::new_zeroed().assume_init() };
        unsafe { bank.init() };
        for (i, &o) in objs.iter().enumerate() {
            bank.push(owner, cls, o);
            let delivered = ((i + 1) / batch * batch) as u64;
            assert_eq!(
                central_free(owner, cls) - before,
                delivered,
                "after {} pushes (batch {batch})",
                i + 1
            );
        }
        bank.flush_all();
        assert_eq!(
            central_free(owner, cls) - before,
            n as u64,
            "flush_all lost objects"
        );
        for o in extra.into_iter().chain(kept.into_iter().map(|(_, o)| o)) {
            // SAFETY: a free object of (owner, cls), now a one-element list.
            unsafe { *(o as *mut *mut u8) = core::ptr::null_mut() };
            central::flush(owner, cls, o);
        }
        central::release_empty(owner);
    }

    #[test]
    fn ring_footprint_does_not_depend_on_owners_but_dense_does() {
        // The ring holds no per-owner state at all: its size is the slots plus a counter.
        assert_eq!(
            core::mem::size_of::<ring::Ring>(),
            16 + 8 * config::RING_SLOTS
        );
        assert!(
            core::mem::size_of::<dense::Bank<32>>()
                >= 4 * core::mem::size_of::<dense::Bank<8>>() - 1024
        );
    }
}
