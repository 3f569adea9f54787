//! The C allocation ABI exported by the LD_PRELOAD `.so` (feature `c-abi`):
//! the malloc family with glibc's argument checks and errno, glibc's `__libc_*`
//! names, C23 sized frees, the mallinfo/mallopt/malloc_trim family, and the C++
//! `operator new`/`delete` family.
//!
//! Owns only argument checking and symbol names; all work is in `alloc`.
//! The throwing `operator new` variants are naked functions so that a
//! `std::bad_alloc` (thrown by libstdc++'s `std::__throw_bad_alloc`, called as a
//! tail jump once our frame is gone) or an exception from a new-handler unwinds
//! through frames with correct CFI. The library has no C++ dependency: both
//! libstdc++ functions are looked up when an allocation fails (`cxx_sym`), so a
//! C host that loads libstdc++ later with dlopen still gets them.
//! Must not touch caches or spans (`tcache`, `central`, `span`).

use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::alloc;
use crate::os::{self, PAGE};

#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    alloc::malloc(size) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    alloc::free(p as *mut u8)
}

#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    alloc::free(p as *mut u8)
}

#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    alloc::free_sized(p as *mut u8, size)
}

#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, size: usize) {
    alloc::free_sized(p as *mut u8, size)
}

#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    alloc::calloc(n, size) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    alloc::realloc(p as *mut u8, size) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => alloc::realloc(p as *mut u8, total) as *mut c_void,
        None => {
            os::set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

#[no_mangle]
pub extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    alloc::usable_size(p as *mut u8)
}

/// glibc's memalign: alignments up to 16 are plain malloc, others are rounded up
/// to a power of two; an alignment beyond half the address space is EINVAL.
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    if align <= 16 {
        return alloc::malloc(size) as *mut c_void;
    }
    if align > usize::MAX / 2 + 1 {
        os::set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    alloc::aligned_alloc(align.next_power_of_two(), size) as *mut c_void
}

/// C11 aligned_alloc (glibc >= 2.38 semantics): the alignment must be a power of two.
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        os::set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    alloc::aligned_alloc(align, size) as *mut c_void
}

/// POSIX: EINVAL unless the alignment is a power of two multiple of
/// sizeof(void*); ENOMEM on exhaustion; `*memptr` is written only on success.
///
/// # Safety
/// `memptr` must be writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    if !align.is_power_of_two() || align < core::mem::size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    let p = alloc::aligned_alloc(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    *memptr = p as *mut c_void;
    0
}

#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    alloc::aligned_alloc(PAGE, size) as *mut c_void
}

#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(rounded) = size.checked_add(PAGE - 1) else {
        os::set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    let rounded = (rounded & !(PAGE - 1)).max(PAGE);
    alloc::aligned_alloc(PAGE, rounded) as *mut c_void
}

// glibc's internal names: some libraries call them directly.
#[no_mangle]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc(size)
}
#[no_mangle]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    free(p)
}
#[no_mangle]
pub extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    calloc(n, size)
}
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    realloc(p, size)
}
#[no_mangle]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}
#[no_mangle]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc(size)
}
#[no_mangle]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc(size)
}

/// Hands cached memory back to the OS. Returns 1 if memory was released.
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    alloc::trim() as c_int
}

/// Returns 1 when the setting took effect, `M_TRIM_THRESHOLD` (the free dirty
/// bytes an owner keeps) and `M_ARENA_MAX` (owners new threads use), and for
/// glibc's other parameters, which hz3 accepts and ignores as glibc accepts
/// them; 0 for an invalid value or an unknown parameter. See `options::mallopt`.
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    crate::options::mallopt(param, value) as c_int
}

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct MallInfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

/// glibc's legacy `struct mallinfo` (int fields, saturated).
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct MallInfo {
    pub arena: c_int,
    pub ordblks: c_int,
    pub smblks: c_int,
    pub hblks: c_int,
    pub hblkhd: c_int,
    pub usmblks: c_int,
    pub fsmblks: c_int,
    pub uordblks: c_int,
    pub fordblks: c_int,
    pub keepcost: c_int,
}

/// mallinfo2: `arena` = bytes of arena pages in spans, `hblkhd`/`hblks` = bytes
/// and number of live large blocks (freed ones no longer count), `uordblks` = bytes in use (span bytes less the free objects
/// in spans, plus large blocks; objects cached by threads count as in use),
/// `fordblks` = free bytes held (free objects in spans plus cached large mappings).
#[no_mangle]
pub extern "C" fn mallinfo2() -> MallInfo2 {
    let s = crate::stats::stats();
    let free_in_spans: u64 = s.classes.iter().map(|c| c.free_objects * c.size).sum();
    MallInfo2 {
        arena: s.span_bytes as usize,
        ordblks: s.classes.iter().map(|c| c.spans).sum::<u64>() as usize,
        hblks: crate::large::LIVE_BLOCKS.load(core::sync::atomic::Ordering::Relaxed),
        hblkhd: s.large_live_bytes as usize,
        uordblks: (s.span_bytes.saturating_sub(free_in_spans) + s.large_live_bytes) as usize,
        fordblks: (free_in_spans + s.large_cached_bytes) as usize,
        ..Default::default()
    }
}

#[no_mangle]
pub extern "C" fn mallinfo() -> MallInfo {
    let m = mallinfo2();
    let c = |v: usize| v.min(c_int::MAX as usize) as c_int;
    MallInfo {
        arena: c(m.arena),
        ordblks: c(m.ordblks),
        smblks: c(m.smblks),
        hblks: c(m.hblks),
        hblkhd: c(m.hblkhd),
        usmblks: c(m.usmblks),
        fsmblks: c(m.fsmblks),
        uordblks: c(m.uordblks),
        fordblks: c(m.fordblks),
        keepcost: c(m.keepcost),
    }
}

/// glibc's malloc_stats: prints statistics to stderr.
#[no_mangle]
pub extern "C" fn malloc_stats() {
    crate::stats::print()
}

/// Copies the statistics into `*out` (layout: `hz3::Stats`, see hz3.h). Returns its size.
///
/// # Safety
/// `out` must point to writable memory of at least the returned size, or be null.
#[no_mangle]
pub unsafe extern "C" fn hz3_stats_get(out: *mut crate::stats::Stats) -> usize {
    if !out.is_null() {
        *out = crate::stats::stats();
    }
    core::mem::size_of::<crate::stats::Stats>()
}

/// The statistics as one JSON object (process counters, the calling thread's
/// cache, per-class counters) in `buf`, as snprintf does: at most `len` bytes
/// written, NUL-terminated when `len > 0`; returns the length of the whole text.
///
/// # Safety
/// `buf` must point to `len` writable bytes, or be null with `len == 0`.
#[no_mangle]
pub unsafe extern "C" fn hz3_stats_json(buf: *mut u8, len: usize) -> usize {
    if buf.is_null() || len == 0 {
        return crate::stats_json::write(&mut []);
    }
    crate::stats_json::write(core::slice::from_raw_parts_mut(buf, len))
}

/// Prints the lane's configuration to stderr.
#[no_mangle]
pub extern "C" fn hz3_print_config() {
    crate::init::ensure();
    crate::init::print_config()
}

// ---- C++ operators -------------------------------------------------------

extern "C" fn cxx_alloc(size: usize, align: usize) -> *mut u8 {
    if align <= 16 {
        alloc::malloc(size)
    } else {
        alloc::aligned_alloc(align, size)
    }
}

#[cold]
extern "C" fn cxx_no_bad_alloc() -> ! {
    os::fatal(
        "operator new: out of memory and std::bad_alloc is not available",
        0,
    )
}

/// Cached addresses of libstdc++'s `std::get_new_handler` and
/// `std::__throw_bad_alloc` (0: not found yet).
static GET_NEW_HANDLER: AtomicUsize = AtomicUsize::new(0);
static THROW_BAD_ALLOC: AtomicUsize = AtomicUsize::new(0);

/// The address of a libstdc++ function, 0 when libstdc++ is not loaded. Looked up
/// only when an allocation failed: in the global scope first, then in a
/// libstdc++ that a dlopen brought in locally (RTLD_NOLOAD: never loads it;
/// RTLD_NODELETE: the cached address stays valid). A hit is cached; a miss is
/// not, since libstdc++ may come later. dlsym/dlopen may call malloc, which is
/// fine here: no hz3 lock is held.
#[cold]
fn cxx_sym(cache: &AtomicUsize, name: &core::ffi::CStr) -> usize {
    let v = cache.load(Ordering::Acquire);
    if v != 0 {
        return v;
    }
    // SAFETY: plain dynamic-linker look-ups with NUL-terminated names.
    let p = unsafe {
        let mut p = crate::glibc_abi::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
        if p.is_null() {
            let h = crate::glibc_abi::dlopen(
                c"libstdc++.so.6".as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
            if !h.is_null() {
                p = crate::glibc_abi::dlsym(h, name.as_ptr());
            }
        }
        p as usize
    };
    if p != 0 {
        cache.store(p, Ordering::Release);
    }
    p
}

/// The current new-handler (`std::get_new_handler()`), 0 when there is none.
extern "C" fn cxx_new_handler() -> usize {
    let f = cxx_sym(&GET_NEW_HANDLER, c"_ZSt15get_new_handlerv");
    if f == 0 {
        return 0;
    }
    // SAFETY: `f` is std::get_new_handler: `new_handler get_new_handler() noexcept`.
    let get: extern "C" fn() -> usize = unsafe { core::mem::transmute(f) };
    get()
}

/// The address of `std::__throw_bad_alloc`, 0 when libstdc++ is not loaded.
extern "C" fn cxx_throw_bad_alloc() -> usize {
    cxx_sym(&THROW_BAD_ALLOC, c"_ZSt17__throw_bad_allocv")
}

/// operator new: allocate; on failure call the new-handler and retry; with no
/// handler, throw std::bad_alloc (THROW) or return null (nothrow).
/// rdi = size, rsi = alignment (set to 16 by the unaligned entry points).
#[cfg(target_arch = "x86_64")]
macro_rules! cxx_new {
    ($name:ident, $sym:literal, aligned, throw) => {
        cxx_new!(
            $name,
            $sym,
            aligned,
            // The frame is still there (stack aligned) for the look-up; the throw is a tail jump.
            "call {throw}\nadd rsp, 8\npop r12\npop rbx\ntest rax, rax\njz {fail}\njmp rax"
        );
    };
    ($name:ident, $sym:literal, aligned, nothrow) => {
        cxx_new!(
            $name,
            $sym,
            aligned,
            // The trailing call and jump are unreachable; they keep one operand list for both variants.
            "add rsp, 8\npop r12\npop rbx\nxor eax, eax\nret\ncall {throw}\njmp {fail}"
        );
    };
    ($name:ident, $sym:literal, aligned, $on_fail:literal) => {
        #[unsafe(naked)]
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(_size: usize, _align: usize) -> *mut c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "push rbx",
                ".cfi_adjust_cfa_offset 8",
                ".cfi_rel_offset rbx, 0",
                "push r12",
                ".cfi_adjust_cfa_offset 8",
                ".cfi_rel_offset r12, 0",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 8",
                "mov rbx, rdi",
                "mov r12, rsi",
                "2:",
                "mov rdi, rbx",
                "mov rsi, r12",
                "call {alloc}",
                "test rax, rax",
                "jz 3f",
                "add rsp, 8",
                "pop r12",
                "pop rbx",
                "ret",
                "3:",
                "call {handler}",
                "test rax, rax",
                "jz 4f",
                "call rax",
                "jmp 2b",
                "4:",
                $on_fail,
                ".cfi_endproc",
                alloc = sym cxx_alloc,
                handler = sym cxx_new_handler,
                throw = sym cxx_throw_bad_alloc,
                fail = sym cxx_no_bad_alloc,
            )
        }
    };
    ($name:ident, $sym:literal, plain, $aligned:ident) => {
        #[unsafe(naked)]
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(_size: usize) -> *mut c_void {
            core::arch::naked_asm!("mov esi, 16", "jmp {aligned}", aligned = sym $aligned)
        }
    };
}

/// The same on aarch64: x0 = size, x1 = alignment; x19/x20 keep them across
/// the calls, x29/x30 the frame, and the throw is a tail branch once the frame is
/// popped. (Assembled here with llvm-mc; run on GitHub's arm64 runners.)
#[cfg(target_arch = "aarch64")]
macro_rules! cxx_new {
    ($name:ident, $sym:literal, aligned, throw) => {
        cxx_new!(
            $name,
            $sym,
            aligned,
            "bl {throw}\nmov x16, x0\nldp x19, x20, [sp, #16]\nldp x29, x30, [sp], #32\ncbnz x16, 5f\nb {fail}\n5:\nbr x16"
        );
    };
    ($name:ident, $sym:literal, aligned, nothrow) => {
        cxx_new!(
            $name,
            $sym,
            aligned,
            // The trailing branches are unreachable; they keep one operand list for both variants.
            "ldp x19, x20, [sp, #16]\nldp x29, x30, [sp], #32\nmov x0, xzr\nret\nbl {throw}\nb {fail}"
        );
    };
    ($name:ident, $sym:literal, aligned, $on_fail:literal) => {
        #[unsafe(naked)]
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(_size: usize, _align: usize) -> *mut c_void {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "stp x29, x30, [sp, #-32]!",
                ".cfi_def_cfa_offset 32",
                ".cfi_offset x29, -32",
                ".cfi_offset x30, -24",
                "mov x29, sp",
                "stp x19, x20, [sp, #16]",
                ".cfi_offset x19, -16",
                ".cfi_offset x20, -8",
                "mov x19, x0",
                "mov x20, x1",
                "2:",
                "mov x0, x19",
                "mov x1, x20",
                "bl {alloc}",
                "cbz x0, 3f",
                "ldp x19, x20, [sp, #16]",
                "ldp x29, x30, [sp], #32",
                "ret",
                "3:",
                "bl {handler}",
                "cbz x0, 4f",
                "blr x0",
                "b 2b",
                "4:",
                $on_fail,
                ".cfi_endproc",
                alloc = sym cxx_alloc,
                handler = sym cxx_new_handler,
                throw = sym cxx_throw_bad_alloc,
                fail = sym cxx_no_bad_alloc,
            )
        }
    };
    ($name:ident, $sym:literal, plain, $aligned:ident) => {
        #[unsafe(naked)]
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(_size: usize) -> *mut c_void {
            core::arch::naked_asm!("mov x1, #16", "b {aligned}", aligned = sym $aligned)
        }
    };
}

cxx_new!(op_new_aligned, "_ZnwmSt11align_val_t", aligned, throw);
cxx_new!(op_new_array_aligned, "_ZnamSt11align_val_t", aligned, throw);
cxx_new!(
    op_new_aligned_nothrow,
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    aligned,
    nothrow
);
cxx_new!(
    op_new_array_aligned_nothrow,
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    aligned,
    nothrow
);
cxx_new!(op_new, "_Znwm", plain, op_new_aligned);
cxx_new!(op_new_array, "_Znam", plain, op_new_array_aligned);
cxx_new!(
    op_new_nothrow,
    "_ZnwmRKSt9nothrow_t",
    plain,
    op_new_aligned_nothrow
);
cxx_new!(
    op_new_array_nothrow,
    "_ZnamRKSt9nothrow_t",
    plain,
    op_new_array_aligned_nothrow
);

macro_rules! cxx_delete {
    ($($name:ident $sym:literal ($($arg:ident: $t:ty),*);)*) => {$(
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(p: *mut c_void $(, $arg: $t)*) {
            $(let _ = $arg;)*
            alloc::free(p as *mut u8)
        }
    )*};
}

cxx_delete! {
    op_delete "_ZdlPv" ();
    op_delete_array "_ZdaPv" ();
    op_delete_aligned "_ZdlPvSt11align_val_t" (align: usize);
    op_delete_array_aligned "_ZdaPvSt11align_val_t" (align: usize);
    op_delete_nothrow "_ZdlPvRKSt9nothrow_t" (nt: *const c_void);
    op_delete_array_nothrow "_ZdaPvRKSt9nothrow_t" (nt: *const c_void);
    op_delete_aligned_nothrow "_ZdlPvSt11align_val_tRKSt9nothrow_t" (align: usize, nt: *const c_void);
    op_delete_array_aligned_nothrow "_ZdaPvSt11align_val_tRKSt9nothrow_t" (align: usize, nt: *const c_void);
}

// Sized deletes: the hardened build checks the size against the block.
macro_rules! cxx_delete_sized {
    ($($name:ident $sym:literal ($($arg:ident: $t:ty),*);)*) => {$(
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(p: *mut c_void, size: usize $(, $arg: $t)*) {
            $(let _ = $arg;)*
            alloc::free_sized(p as *mut u8, size)
        }
    )*};
}

cxx_delete_sized! {
    op_delete_sized "_ZdlPvm" ();
    op_delete_array_sized "_ZdaPvm" ();
    op_delete_sized_aligned "_ZdlPvmSt11align_val_t" (align: usize);
    op_delete_array_sized_aligned "_ZdaPvmSt11align_val_t" (align: usize);
}
