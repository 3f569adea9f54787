//! Remote free: objects freed by a thread whose owner is not the object's owner.
//! They are stashed in the freeing thread's cache and reach the owner's central
//! cache in batches, on slow-path events only (a bank entry filling up, a refill,
//! thread exit, malloc_trim), never one lock per free.
//!
//! Owns the per-thread remote stash inside `TCache`. The `dense` stash is a bank
//! `[owner][class]` of intrusive lists (fast lane: few owners), plus a short list
//! of the non-empty entries so a flush never scans the whole bank.
//! Must not touch another thread's cache.

use crate::central;
use crate::config;
use crate::size_class::NCLS;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    head: *mut u8,
    count: u32,
}

const DIRTY_CAP: usize = 64;

#[repr(C)]
pub struct Stash {
    bank: [[Entry; NCLS]; config::OWNERS],
    dirty: [u16; DIRTY_CAP],
    ndirty: usize,
}

impl Stash {
    /// Resets a stash in place (the memory may be reused from an exited thread).
    pub fn init(&mut self) {
        for o in self.bank.iter_mut() {
            for e in o.iter_mut() {
                *e = Entry {
                    head: core::ptr::null_mut(),
                    count: 0,
                };
            }
        }
        self.ndirty = 0;
    }

    /// Stashes `p`, an object of (owner, cls).
    #[inline]
    pub fn push(&mut self, owner: usize, cls: usize, p: *mut u8) {
        let e = &mut self.bank[owner][cls];
        // SAFETY: `p` is a free block of at least 16 bytes owned by nobody else now.
        unsafe { *(p as *mut *mut u8) = e.head };
        e.head = p;
        e.count += 1;
        if e.count == 1 {
            if self.ndirty == DIRTY_CAP {
                // Flushes the others; this entry is not listed yet and stays.
                self.flush_all();
            }
            self.dirty[self.ndirty] = (owner * NCLS + cls) as u16;
            self.ndirty += 1;
        } else if e.count as usize >= config::REMOTE_BATCH {
            let head = e.head;
            e.head = core::ptr::null_mut();
            e.count = 0;
            central::flush(owner, cls, head);
            // The entry stays in the dirty list; an empty entry there is skipped.
        }
    }

    /// Sends every stashed object to its owner.
    pub fn flush_all(&mut self) {
        for i in 0..self.ndirty {
            let idx = self.dirty[i] as usize;
            let (owner, cls) = (idx / NCLS, idx % NCLS);
            let e = &mut self.bank[owner][cls];
            if e.count > 0 {
                let head = e.head;
                e.head = core::ptr::null_mut();
                e.count = 0;
                central::flush(owner, cls, head);
            }
        }
        self.ndirty = 0;
    }

    /// Budgeted flush on a slow-path event.
    #[inline]
    pub fn on_slow_event(&mut self) {
        if self.ndirty >= DIRTY_CAP / 2 {
            self.flush_all();
        }
    }
}
