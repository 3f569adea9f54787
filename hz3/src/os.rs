//! The platform layer (Linux): virtual memory, diagnostics through write(2), abort.
//! Owns every system call the allocator makes except futex (see `sync`).
//! Must not touch allocator state and must never allocate.

use core::ptr;

pub const PAGE: usize = 4096;

/// Reserves `len` bytes of zeroed, lazily committed memory. Null on failure.
pub fn map(len: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Unmaps a range previously returned by `map` (or a page-aligned part of it).
///
/// # Safety
/// No live object may remain in the range.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    if len != 0 {
        libc::munmap(p as *mut libc::c_void, len);
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
    let r = libc::mremap(p as *mut libc::c_void, old, new, libc::MREMAP_MAYMOVE);
    if r == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
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
    pub fn u(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &b in &tmp[i..] {
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
