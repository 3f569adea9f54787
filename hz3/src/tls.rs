//! The thread-local slot: one pointer to the thread's cache plus a state word.
//!
//! Owns the 16 bytes of TLS and nothing else. Invariant: the cache slot points
//! to this thread's live `TCache` or to `tcache::EMPTY`, a shared cache whose
//! bins are all empty and whose owner tag matches no block, so the fast paths
//! need no null test: they fall into the slow path by themselves. Every new
//! thread starts with the slot pointing to `EMPTY` (TLS initialisation image,
//! relocated by the dynamic loader before it is copied).
//!
//! Three ways to reach the slot, chosen at build time (stable Rust has no
//! TLS-model switch, and a cdylib's `thread_local!` goes through
//! `__tls_get_addr` on every access):
//! - `ie` (x86-64 Linux, the default): initial-exec, an `fs:`-relative load
//!   through one GOT word, no call. The `.so` is marked STATIC_TLS: it must be
//!   loaded at start-up (LD_PRELOAD or a link dependency); a `dlopen` works
//!   only while glibc's static TLS surplus has 16 bytes left, and fails with
//!   "cannot allocate memory in static TLS block" once other libraries used it up.
//! - `gd` (x86-64 Linux, feature `dlopen-tls`): global-dynamic through a TLS
//!   descriptor (the `gnu2` dialect): `lea` + one indirect call whose resolver
//!   clobbers only `rax`. While the module sits in static TLS glibc's resolver is
//!   two instructions; after a late `dlopen` it finds the dynamic block. Loads
//!   with `dlopen` whatever the static TLS state.
//! - `portable` (any other target, or feature `portable-tls` on x86-64 for
//!   testing it): std's `thread_local!` with a const initialiser and no
//!   destructor, i.e. a plain `#[thread_local]` static in the target's default
//!   model (global-dynamic in a `.so`). Zero (the image) means `EMPTY`.
//! Must not touch central caches or spans (`central`, `span`).

use crate::tcache::TCache;

/// Thread state (second TLS word).
pub const FRESH: usize = 0;
pub const ACTIVE: usize = 1;
/// Setting up the cache: allocations re-entering from pthread calls go direct.
pub const CREATING: usize = 2;
/// The cache was handed back at thread exit: later calls go direct.
pub const DEAD: usize = 3;

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "portable-tls")
))]
core::arch::global_asm!(
    ".pushsection .tdata,\"awT\",@progbits",
    ".p2align 4",
    // Global (hidden: not exported from a cdylib) so that code inlined into
    // other codegen units or crates links without LTO.
    ".globl hz3_tls_slots",
    ".hidden hz3_tls_slots",
    "hz3_tls_slots:",
    ".quad {empty}",
    ".quad 0",
    ".popsection",
    empty = sym crate::tcache::EMPTY,
);

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "portable-tls"),
    not(feature = "dlopen-tls")
))]
mod imp {
    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        let v: usize;
        // SAFETY: reads this thread's copy of the slot (initial-exec TLS).
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr [rip + hz3_tls_slots@GOTTPOFF]",
                "mov {v}, qword ptr fs:[{v} + {off}]",
                v = out(reg) v,
                off = const I * 8,
                options(nostack, preserves_flags, readonly, pure)
            );
        }
        v
    }

    #[inline(always)]
    pub fn set<const I: usize>(val: usize) {
        // SAFETY: writes this thread's copy of the slot.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + hz3_tls_slots@GOTTPOFF]",
                "mov qword ptr fs:[{t} + {off}], {val}",
                t = out(reg) _,
                off = const I * 8,
                val = in(reg) val,
                options(nostack, preserves_flags)
            );
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    feature = "dlopen-tls",
    not(feature = "portable-tls")
))]
mod imp {
    // TLS descriptor call (x86-64 psABI, "TLS descriptors"): `rax` holds the
    // descriptor's address on entry and the slot's offset from the thread pointer
    // on return; every other register is preserved. The call pushes a return
    // address, so the asm may use the stack (no `nostack`: the compiler keeps
    // the stack aligned and leaves the red zone alone). The linker needs this
    // exact `lea rax` / `call [rax]` pair.
    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        let v: usize;
        // SAFETY: reads this thread's copy of the slot (global-dynamic TLS).
        unsafe {
            core::arch::asm!(
                "lea rax, [rip + hz3_tls_slots@TLSDESC]",
                "call qword ptr [rax + hz3_tls_slots@TLSCALL]",
                "mov rax, qword ptr fs:[rax + {off}]",
                off = const I * 8,
                out("rax") v,
                options(readonly, pure)
            );
        }
        v
    }

    #[inline(always)]
    pub fn set<const I: usize>(val: usize) {
        // SAFETY: writes this thread's copy of the slot.
        unsafe {
            core::arch::asm!(
                "lea rax, [rip + hz3_tls_slots@TLSDESC]",
                "call qword ptr [rax + hz3_tls_slots@TLSCALL]",
                "mov qword ptr fs:[rax + {off}], {val}",
                off = const I * 8,
                val = in(reg) val,
                out("rax") _,
            );
        }
    }
}

#[cfg(any(
    feature = "portable-tls",
    not(all(target_arch = "x86_64", target_os = "linux"))
))]
mod imp {
    use core::cell::Cell;
    std::thread_local! {
        static SLOTS: [Cell<usize>; 2] = const { [Cell::new(0), Cell::new(0)] };
    }
    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        let v = SLOTS.with(|s| s[I].get());
        if I == 0 && v == 0 {
            core::ptr::addr_of!(crate::tcache::EMPTY) as usize
        } else {
            v
        }
    }
    #[inline(always)]
    pub fn set<const I: usize>(val: usize) {
        SLOTS.with(|s| s[I].set(val))
    }
}

/// This thread's cache or `EMPTY` (for the fast paths: never null).
#[inline(always)]
pub fn tc_raw() -> *mut TCache {
    imp::get::<0>() as *mut TCache
}

/// This thread's cache, or null when it has none.
#[inline(always)]
pub fn tc() -> *mut TCache {
    let t = tc_raw();
    if t == crate::tcache::empty() {
        core::ptr::null_mut()
    } else {
        t
    }
}

/// Installs `t` as this thread's cache; null installs `EMPTY`.
#[inline(always)]
pub fn set_tc(t: *mut TCache) {
    let t = if t.is_null() {
        crate::tcache::empty()
    } else {
        t
    };
    imp::set::<0>(t as usize)
}

#[inline]
pub fn state() -> usize {
    imp::get::<1>()
}

#[inline]
pub fn set_state(s: usize) {
    imp::set::<1>(s)
}
