//! The thread-local slot: one pointer to the thread's cache plus a state word, in
//! the initial-exec TLS model so that reading it is a `fs:`-relative load with no
//! call out of the library (stable Rust has no TLS-model switch, and a cdylib's
//! `thread_local!` goes through `__tls_get_addr` on every access).
//!
//! Owns the 16 bytes of static TLS and nothing else. Invariant: `tc` is null or
//! points to a live `TCache` owned by this thread. The slot is zero in every new
//! thread. With initial-exec TLS the `.so` must be loaded at start-up
//! (LD_PRELOAD or a link dependency); a `dlopen` works only while glibc's static
//! TLS surplus has 16 bytes left, which it normally has.

use crate::tcache::TCache;

/// Thread state (second TLS word).
pub const FRESH: usize = 0;
pub const ACTIVE: usize = 1;
/// Setting up the cache: allocations re-entering from pthread calls go direct.
pub const CREATING: usize = 2;
/// The cache was handed back at thread exit: later calls go direct.
pub const DEAD: usize = 3;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 4",
        "hz3_tls_slots:",
        ".zero 16",
        ".popsection",
    );

    #[inline(always)]
    pub fn get(i: usize) -> usize {
        let v: usize;
        // SAFETY: reads this thread's copy of the slot (initial-exec TLS).
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr [rip + hz3_tls_slots@GOTTPOFF]",
                "mov {v}, qword ptr fs:[{v} + {i}*8]",
                v = out(reg) v,
                i = in(reg) i,
                options(nostack, preserves_flags, readonly, pure)
            );
        }
        v
    }

    #[inline(always)]
    pub fn set(i: usize, val: usize) {
        // SAFETY: writes this thread's copy of the slot.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + hz3_tls_slots@GOTTPOFF]",
                "mov qword ptr fs:[{t} + {i}*8], {val}",
                t = out(reg) _,
                i = in(reg) i,
                val = in(reg) val,
                options(nostack, preserves_flags)
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    use core::cell::Cell;
    std::thread_local! {
        static SLOTS: [Cell<usize>; 2] = const { [Cell::new(0), Cell::new(0)] };
    }
    #[inline(always)]
    pub fn get(i: usize) -> usize {
        SLOTS.with(|s| s[i].get())
    }
    #[inline(always)]
    pub fn set(i: usize, val: usize) {
        SLOTS.with(|s| s[i].set(val))
    }
}

/// This thread's cache, or null.
#[inline(always)]
pub fn tc() -> *mut TCache {
    imp::get(0) as *mut TCache
}

#[inline(always)]
pub fn set_tc(t: *mut TCache) {
    imp::set(0, t as usize)
}

#[inline]
pub fn state() -> usize {
    imp::get(1)
}

#[inline]
pub fn set_state(s: usize) {
    imp::set(1, s)
}
