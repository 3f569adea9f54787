//! The platform layer (Linux): virtual memory, diagnostics through write(2), abort.
//! Owns every system call the allocator makes except futex (see `sync`).
//! Must not touch allocator state and must never allocate (`arena`, `tcache`,
//! `central`, `page_heap`).

use core::ptr;

pub const PAGE: usize = 4096;

/// An anonymous private `MAP_NORESERVE` mapping of `len` bytes with `prot`; null on failure.
fn map_anon(len: usize, prot: libc::c_int) -> *mut u8 {
    #[cfg(test)]
    if !address_limit::take(len) {
        return ptr::null_mut();
    }
    // SAFETY: anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        #[cfg(test)]
        address_limit::give(len);
        ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Reserves `len` bytes of zeroed, lazily committed memory. Null on failure.
pub fn map(len: usize) -> *mut u8 {
    map_anon(len, libc::PROT_READ | libc::PROT_WRITE)
}

/// Reserves `len` bytes of address space without access and without commit
/// charge (PROT_NONE, MAP_NORESERVE): nothing is usable until `commit`. Null on failure.
pub fn reserve(len: usize) -> *mut u8 {
    map_anon(len, libc::PROT_NONE)
}

/// Makes a page-aligned part of a `reserve`d range readable and writable
/// (under strict overcommit this is where it is charged). False when refused.
///
/// # Safety
/// The range lies inside a mapping of ours.
pub unsafe fn commit(p: *mut u8, len: usize) -> bool {
    len == 0
        || libc::mprotect(
            p as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
        ) == 0
}

/// Makes a page-aligned part of a `reserve`d range readable only (reads as
/// zero; no commit charge, since it is not writable). False when refused.
///
/// # Safety
/// The range lies inside a mapping of ours and holds nothing.
pub unsafe fn read_only(p: *mut u8, len: usize) -> bool {
    len == 0 || libc::mprotect(p as *mut libc::c_void, len, libc::PROT_READ) == 0
}

/// Unmaps a range previously returned by `map` (or a page-aligned part of it).
/// When the system refuses (munmap fails, e.g. ENOMEM when splitting a mapping
/// would exceed `vm.max_map_count`), the range is remembered in a fixed list
/// and unmapped by a later `retry_unmaps` (every successful unmap and every
/// large-block event tries), so a mapping is never forgotten.
///
/// # Safety
/// No live object may remain in the range.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    if len == 0 {
        return;
    }
    #[cfg(test)]
    address_limit::give(len);
    if libc::munmap(p as *mut libc::c_void, len) != 0 {
        pending::remember(p as usize, len);
    } else {
        retry_unmaps();
    }
}

/// Unmaps the ranges an earlier munmap refused. One atomic load when there are none.
#[inline]
pub fn retry_unmaps() {
    if pending::COUNT.load(core::sync::atomic::Ordering::Relaxed) != 0 {
        pending::retry();
    }
}

/// Ranges whose munmap was refused: a fixed array of words (no allocation, no
/// lock, so fork and signal handlers cannot deadlock on it), each 0 (empty) or
/// `page number | pages << PAGES_SHIFT` of one range. A slot is filled by a
/// compare-and-swap from 0 and emptied by a compare-and-swap to 0 by whoever
/// then unmaps it, so each range is unmapped by one thread only.
pub mod pending {
    use core::sync::atomic::{AtomicUsize, Ordering};

    pub const SLOTS: usize = 1024;
    const PAGE_SHIFT: u32 = 12;
    /// Page numbers of user addresses fit in 35 bits (47-bit address space).
    const PAGES_SHIFT: u32 = 35;
    /// Longest range one slot holds (longer ones take several slots).
    const MAX_PAGES: usize = (1 << (64 - PAGES_SHIFT)) - 1;

    static SLOT: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    /// Filled slots (a hint: the fast check of `retry_unmaps`).
    pub static COUNT: AtomicUsize = AtomicUsize::new(0);
    static LOST_REPORTED: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn remember(mut base: usize, len: usize) {
        let mut pages = len.div_ceil(super::PAGE);
        while pages > 0 {
            let n = pages.min(MAX_PAGES);
            if !put((base >> PAGE_SHIFT) | (n << PAGES_SHIFT)) {
                if LOST_REPORTED.fetch_add(1, Ordering::Relaxed) == 0 {
                    let mut l = super::Line::new();
                    l.s("hz3: munmap refused and ")
                        .u(SLOTS as u64)
                        .s(" ranges already wait for a retry: ")
                        .u((pages * super::PAGE) as u64)
                        .s(" bytes at ")
                        .hex(base)
                        .s(" stay mapped\n");
                    l.emit();
                }
                return;
            }
            base += n * super::PAGE;
            pages -= n;
        }
    }

    fn put(v: usize) -> bool {
        for s in SLOT.iter() {
            if s.load(Ordering::Relaxed) == 0
                && s.compare_exchange(0, v, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                COUNT.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Tries every remembered range once; those refused again stay remembered.
    #[cold]
    pub(super) fn retry() {
        for s in SLOT.iter() {
            let v = s.load(Ordering::Relaxed);
            if v == 0
                || s.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            COUNT.fetch_sub(1, Ordering::Relaxed);
            let base = (v & ((1 << PAGES_SHIFT) - 1)) << PAGE_SHIFT;
            let len = (v >> PAGES_SHIFT) * super::PAGE;
            // SAFETY: the range was being unmapped (nothing lives in it) and
            // this thread took it out of the list alone.
            if unsafe { libc::munmap(base as *mut libc::c_void, len) } != 0 {
                // Still refused: back in (a slot is free: this one was).
                remember(base, len);
                // Stop for now: the system refuses, more attempts now would too.
                return;
            }
        }
    }
}

/// Hands the physical pages of a range back to the OS; the range stays mapped and reads as zero.
///
/// # Safety
/// No live object may remain in the range.
pub unsafe fn purge(p: *mut u8, len: usize) {
    if len != 0 {
        libc::madvise(p as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Grows or shrinks a mapping, possibly moving it. Null on failure.
///
/// # Safety
/// `p`/`old` must describe a whole mapping made by `map`.
pub unsafe fn remap(p: *mut u8, old: usize, new: usize) -> *mut u8 {
    #[cfg(test)]
    if new > old && !address_limit::take(new - old) {
        return ptr::null_mut();
    }
    let r = libc::mremap(p as *mut libc::c_void, old, new, libc::MREMAP_MAYMOVE);
    if r == libc::MAP_FAILED {
        #[cfg(test)]
        address_limit::give(new.saturating_sub(old));
        ptr::null_mut()
    } else {
        #[cfg(test)]
        address_limit::give(old.saturating_sub(new));
        r as *mut u8
    }
}

/// Monotonic milliseconds (coarse clock: a vDSO read, no syscall).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Writes raw bytes to stderr (fd 2). Never allocates.
pub fn write_err(b: &[u8]) {
    let mut off = 0;
    while off < b.len() {
        // SAFETY: valid slice.
        let n = unsafe { libc::write(2, b[off..].as_ptr() as *const libc::c_void, b.len() - off) };
        if n <= 0 {
            break;
        }
        off += n as usize;
    }
}

/// A fixed-capacity line buffer for messages built without allocating.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

/// The decimal digits of `v`, written at the end of `tmp` (no allocation).
pub fn decimal(mut v: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &tmp[i..];
        }
    }
}

impl Line {
    pub const fn new() -> Self {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }
    pub fn s(&mut self, s: &str) -> &mut Self {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }
    pub fn u(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        for &b in decimal(v, &mut tmp) {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }
    pub fn hex(&mut self, v: usize) -> &mut Self {
        self.s("0x");
        let mut started = false;
        for i in (0..16).rev() {
            let d = (v >> (i * 4)) & 0xf;
            if d != 0 || started || i == 0 {
                started = true;
                let c = if d < 10 {
                    b'0' + d as u8
                } else {
                    b'a' + d as u8 - 10
                };
                if self.len < self.buf.len() {
                    self.buf[self.len] = c;
                    self.len += 1;
                }
            }
        }
        self
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn emit(&self) {
        write_err(self.as_bytes());
    }
    /// The text so far ("" if a cut split a UTF-8 character).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// Reports a fatal heap error (`hz3: <what> <ptr>`) and aborts. Never allocates.
#[cold]
pub fn fatal(what: &str, ptr: usize) -> ! {
    let mut l = Line::new();
    l.s("hz3: ").s(what).s(" (pointer ").hex(ptr).s(")\n");
    l.emit();
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// CPUs this process may run on (its affinity mask; the online count if that
/// cannot be read), at least 1.
pub fn cpus_available() -> usize {
    // SAFETY: the kernel fills a fixed-size set on our stack.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        if libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
        let n = libc::sysconf(libc::_SC_NPROCESSORS_ONLN);
        if n > 0 {
            n as usize
        } else {
            1
        }
    }
}

/// Hides `v`'s origin from the optimiser (an empty `asm!` that "may change"
/// it): no instruction is emitted, but later code is compiled for any value.
/// Used where LLVM would rewrite a comparison into a costlier equivalent.
#[inline(always)]
pub fn opaque(v: &mut usize) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty instruction sequence: reads and writes nothing.
    unsafe {
        core::arch::asm!(
            "/* {0} */",
            inout(reg) * v,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = v;
}

/// Tests only: an address-space limit for the calling thread, like
/// RLIMIT_AS, so a test can make exactly the mappings it wants fail. Off
/// (unlimited) unless a test sets it; `map`, `reserve`, `unmap` and `remap` of
/// that thread count against it.
#[cfg(test)]
pub mod address_limit {
    use core::cell::Cell;

    std::thread_local! {
        static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    /// Leaves `bytes` of address space to this thread's next mappings (`usize::MAX`: no limit).
    pub fn set(bytes: usize) {
        LEFT.with(|l| l.set(bytes));
    }

    /// Takes `len` bytes; false (nothing taken) when they do not fit.
    pub(super) fn take(len: usize) -> bool {
        LEFT.with(|l| match l.get() {
            usize::MAX => true,
            left if len <= left => {
                l.set(left - len);
                true
            }
            _ => false,
        })
    }

    pub(super) fn give(len: usize) {
        LEFT.with(|l| {
            if l.get() != usize::MAX {
                l.set(l.get().saturating_add(len).min(usize::MAX - 1));
            }
        });
    }
}
