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
//! - `ie` (x86-64 and aarch64 Linux, the default): initial-exec, one GOT word
//!   holding the slot's offset from the thread pointer, no call (x86-64: an
//!   `fs:`-relative load; aarch64: `adrp`/`ldr :gottprel:` + `mrs tpidr_el0`).
//!   The `.so` takes static TLS (x86-64: marked STATIC_TLS; aarch64: its
//!   `R_AARCH64_TLS_TPREL64` relocation): it must be loaded at start-up
//!   (LD_PRELOAD or a link dependency); a `dlopen` works
//!   only while glibc's static TLS surplus has 16 bytes left, and fails with
//!   "cannot allocate memory in static TLS block" once other libraries used it up.
//!   No `__tls_get_addr`, so no malloc re-entered from glibc's DTV update when a
//!   library with dynamic TLS is dlopened later (glibc warns about mallocs whose
//!   own TLS is dynamic).
//! - `gd` (x86-64 and aarch64 Linux, feature `dlopen-tls`): global-dynamic
//!   through a TLS descriptor (x86-64: the `gnu2` dialect, `lea` + one indirect
//!   call whose resolver clobbers only `rax`; aarch64: `adrp`/`ldr`/`add
//!   :tlsdesc:` + `blr`, the resolver clobbers `x0`, `x30` and the flags).
//!   While the module sits in static TLS glibc's resolver is two instructions;
//!   after a late `dlopen` it finds the dynamic block. Loads with `dlopen`
//!   whatever the static TLS state.
//! - portable (any other target, e.g. riscv64, or feature `portable-tls` on
//!   x86-64 and aarch64 for testing it), two forms:
//!   - `tls_get_addr`, in the C-ABI `.so` on Linux (feature `c-abi`): the same
//!     `.tdata` slot (target-neutral assembler directives), reached through
//!     glibc's `__tls_get_addr({module, 0})`, a plain C call on every ELF target.
//!     The module id comes once from `dl_iterate_phdr` (the object whose segments
//!     hold this code); the slot is at offset 0 because it is the object's only
//!     TLS (checked: its PT_TLS is 16 bytes, else a fatal error). Global-dynamic,
//!     so dlopen-safe; no std, so the `.so` still needs only libc (and glibc 2.17).
//!   - `std_tls`, in Rust programs (`hz3::Hz3`, which have std anyway) and unit
//!     tests: std's `thread_local!` with a const initialiser and no destructor, a
//!     plain `#[thread_local]` static. Zero (the initial value) means `EMPTY`.
//!
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
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
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

// The portable `.so`'s copy: no instruction names the slot, so the section is
// marked retained ("R", SHF_GNU_RETAIN), or the linker would drop it as unused.
#[cfg(all(
    any(
        feature = "portable-tls",
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))
    ),
    target_os = "linux",
    feature = "c-abi",
    not(test)
))]
core::arch::global_asm!(
    ".pushsection .tdata.hz3,\"awTR\",@progbits",
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
    // exact `lea rax` / `call [rax]` pair. glibc before 2.40 (BZ #31372) lets
    // the dynamic resolver's first call in a thread (which allocates the
    // module's TLS block) clobber vector registers: they are declared clobbered.
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
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
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
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            );
        }
    }
}

#[cfg(all(
    target_arch = "aarch64",
    target_os = "linux",
    not(feature = "portable-tls"),
    not(feature = "dlopen-tls")
))]
mod imp {
    // Initial-exec (AArch64 ELF ABI): the slot's offset from the thread pointer
    // (`tpidr_el0`) sits in a GOT word the loader fills once; `adrp` + `ldr` with
    // the `gottprel` operators is the sequence the linker knows (and relaxes to
    // `movz`/`movk` in an executable). No call, flags untouched.
    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        let v: usize;
        // SAFETY: reads this thread's copy of the slot (initial-exec TLS).
        unsafe {
            core::arch::asm!(
                "adrp {v}, :gottprel:hz3_tls_slots",
                "ldr {v}, [{v}, #:gottprel_lo12:hz3_tls_slots]",
                "mrs {tp}, tpidr_el0",
                "add {v}, {v}, {tp}",
                "ldr {v}, [{v}, #{off}]",
                v = out(reg) v,
                tp = out(reg) _,
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
                "adrp {t}, :gottprel:hz3_tls_slots",
                "ldr {t}, [{t}, #:gottprel_lo12:hz3_tls_slots]",
                "mrs {tp}, tpidr_el0",
                "add {t}, {t}, {tp}",
                "str {val}, [{t}, #{off}]",
                t = out(reg) _,
                tp = out(reg) _,
                off = const I * 8,
                val = in(reg) val,
                options(nostack, preserves_flags)
            );
        }
    }
}

#[cfg(all(
    target_arch = "aarch64",
    target_os = "linux",
    feature = "dlopen-tls",
    not(feature = "portable-tls")
))]
mod imp {
    // TLS descriptor call (AArch64 ELF ABI, "TLS descriptors"): `x0` holds the
    // descriptor's address on entry and the slot's offset from `tpidr_el0` on
    // return; the resolver is reached by `blr x1` and keeps every other general
    // register. The linker needs this exact `adrp`/`ldr`/`add`/`.tlsdesccall`/`blr`
    // sequence on `x0`/`x1` (it relaxes it in an executable). Declared clobbered
    // beyond `x0`, `x1` and the link register `x30`: the flags (glibc's dynamic
    // resolver compares) and the caller-saved vector registers (v0-v7, v16-v31;
    // the resolver's slow path calls C code), as the x86-64 form does for BZ #31372.
    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        let v: usize;
        // SAFETY: reads this thread's copy of the slot (global-dynamic TLS).
        unsafe {
            core::arch::asm!(
                "adrp x0, :tlsdesc:hz3_tls_slots",
                "ldr x1, [x0, #:tlsdesc_lo12:hz3_tls_slots]",
                "add x0, x0, #:tlsdesc_lo12:hz3_tls_slots",
                ".tlsdesccall hz3_tls_slots",
                "blr x1",
                "mrs x1, tpidr_el0",
                "add x0, x0, x1",
                "ldr x0, [x0, #{off}]",
                off = const I * 8,
                out("x0") v, out("x1") _, out("x30") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
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
                "adrp x0, :tlsdesc:hz3_tls_slots",
                "ldr x1, [x0, #:tlsdesc_lo12:hz3_tls_slots]",
                "add x0, x0, #:tlsdesc_lo12:hz3_tls_slots",
                ".tlsdesccall hz3_tls_slots",
                "blr x1",
                "mrs x1, tpidr_el0",
                "add x0, x0, x1",
                "str {val}, [x0, #{off}]",
                off = const I * 8,
                val = in(reg) val,
                out("x0") _, out("x1") _, out("x30") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            );
        }
    }
}

/// The portable slot of the C-ABI `.so`: `__tls_get_addr` (see the head comment).
#[cfg(all(
    any(
        feature = "portable-tls",
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))
    ),
    target_os = "linux",
    feature = "c-abi",
    not(test)
))]
mod imp {
    use core::ffi::{c_int, c_void};
    use core::sync::atomic::{AtomicUsize, Ordering};

    #[repr(C)]
    struct TlsIndex {
        module: usize,
        offset: usize,
    }

    extern "C" {
        // glibc's dynamic linker (GLIBC_2.3 on x86-64, GLIBC_2.17 on aarch64).
        fn __tls_get_addr(ti: *const TlsIndex) -> *mut usize;
    }

    /// This object's TLS module id; 0 until found (ids start at 1).
    static MODULE: AtomicUsize = AtomicUsize::new(0);

    /// The object containing `MODULE`'s address; sets its TLS module id.
    unsafe extern "C" fn find(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        let info = &*info;
        let me = core::ptr::addr_of!(MODULE) as usize;
        let phdrs = core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
        let mine = phdrs.iter().any(|p| {
            let start = info.dlpi_addr as usize + p.p_vaddr as usize;
            p.p_type == libc::PT_LOAD && me >= start && me - start < p.p_memsz as usize
        });
        if !mine {
            return 0;
        }
        let tls = phdrs.iter().find(|p| p.p_type == libc::PT_TLS);
        // Offset 0 is the slot only when the slot is all of the object's TLS.
        *(data as *mut usize) = match tls {
            Some(p) if p.p_memsz == 16 => info.dlpi_tls_modid,
            _ => usize::MAX,
        };
        1
    }

    #[cold]
    fn module_slow() -> usize {
        let mut m: usize = 0;
        // SAFETY: `find` only reads the loader's program headers.
        unsafe { libc::dl_iterate_phdr(Some(find), core::ptr::addr_of_mut!(m).cast()) };
        if m == 0 || m == usize::MAX {
            crate::os::fatal(
                "portable TLS: the object's TLS is not hz3's 16-byte slot alone",
                m,
            );
        }
        MODULE.store(m, Ordering::Relaxed);
        m
    }

    #[inline(always)]
    fn slots() -> *mut usize {
        let mut m = MODULE.load(Ordering::Relaxed);
        if m == 0 {
            m = module_slow();
        }
        let ti = TlsIndex {
            module: m,
            offset: 0,
        };
        // SAFETY: `m` is this object's module id and offset 0 its 16-byte slot.
        unsafe { __tls_get_addr(&ti) }
    }

    #[inline(always)]
    pub fn get<const I: usize>() -> usize {
        // SAFETY: this thread's slot (two words).
        unsafe { *slots().add(I) }
    }

    #[inline(always)]
    pub fn set<const I: usize>(val: usize) {
        // SAFETY: this thread's slot (two words).
        unsafe { *slots().add(I) = val }
    }
}

/// The portable slot of Rust programs and unit tests: std's thread_local!.
#[cfg(all(
    any(
        feature = "portable-tls",
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))
    ),
    any(not(target_os = "linux"), not(feature = "c-abi"), test)
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
