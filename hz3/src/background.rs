//! Background purge (lane key `background_purge`): one detached thread that
//! ends due decay epochs of every page heap and lets the large-mapping cache
//! decay, a few times per `purge_decay_ms`, so idle memory goes back to the
//! OS while the program sleeps (a program doing only fast-path traffic gets
//! the same pass from its threads' free countdown, `heartbeat`).
//!
//! Off unless asked for: the lane key is the default (false in every lane
//! shipped) and `HZ3_BACKGROUND_PURGE=1` or `=0` overrides it at run time.
//! Owns: the thread's start state. The preload object starts the thread from
//! its load-time constructor, before `main`; a Rust program using `Hz3` as its
//! global allocator starts it lazily, at the end of a thread cache's refill
//! (see `ensure_started` for why not both ways). After `fork` the child has no
//! such thread (a Rust child starts its own at its next refill). It never
//! allocates, has every signal blocked and a 64 KiB stack (the default size
//! when the program's static TLS needs more). Each wake-up it runs the
//! heartbeat's pass (`heartbeat::pass`: owners whose threads are all gone
//! collected by `owner::collect_departed`, then `owner::decay_tick`: idle
//! classes' kept spans and `page_heap::decay_tick`; and `large::decay_tick`), which threads' free countdowns run too; all of them
//! take their own locks (so `fork`'s prepare handler, which takes
//! every lock, never forks it in the middle of a pass).
//! Must not touch thread caches, central caches, inboxes or spans (`tcache`,
//! `central`, `inbox`, `span`, `outbox`). It reaches them only through the
//! owner records.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::config;
use crate::glibc_abi;

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
/// `pthread_create` refused (thread limit, sandbox): never retried.
const FAILED: u8 = 2;
/// Not wanted (lane key off, or `HZ3_BACKGROUND_PURGE=0`).
const OFF: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);

/// Rust `GlobalAlloc` use: starts the purge thread if it is wanted
/// (`wanted`) and not running. Called at the end of a refill, where the
/// calling thread's cache is consistent (the thread creation re-enters the
/// allocator). The preload object (feature `c-abi`) never starts it here: its
/// malloc may be called from inside libc (`pthread_create` allocating a new
/// thread's TLS vector, `dlopen`) with libc's own locks held, and a
/// `pthread_create` there deadlocks on them. A Rust program's global
/// allocator is only called from Rust code, never from inside libc.
#[inline]
pub fn ensure_started() {
    if cfg!(feature = "c-abi") || STATE.load(Ordering::Relaxed) != NOT_STARTED {
        return;
    }
    decide_and_start();
}

/// The preload object's load-time constructor (before `main`, before the
/// program can have made a thread or holds a libc lock): starts the thread
/// when it is wanted. Off by default: a preloaded program that never asked
/// for a thread must not find one (`unshare(CLONE_NEWUSER)` refuses a
/// multi-threaded process, and libc turns its single-thread shortcuts off).
#[cfg(feature = "c-abi")]
pub fn start_at_load() {
    if STATE.load(Ordering::Relaxed) == NOT_STARTED {
        decide_and_start();
    }
}

#[cold]
fn decide_and_start() {
    if wanted() {
        start();
    } else {
        // Decided once: the environment is not read again.
        let _ = STATE.compare_exchange(NOT_STARTED, OFF, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The lane's `background_purge`, unless the environment says
/// `HZ3_BACKGROUND_PURGE=1` (on) or `HZ3_BACKGROUND_PURGE=0` (off). Scans
/// `environ` itself: at load time a program's own `getenv` (which may
/// interpose libc's) must not run yet, and std's reader allocates.
fn wanted() -> bool {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is the process's NULL-terminated array of
    // NUL-terminated strings; it is read before `main` (preload) or from a
    // refill (Rust), where a concurrent `setenv` is the program's own race
    // with every other reader of the environment.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return config::BACKGROUND_PURGE;
        }
        while !(*p).is_null() {
            match core::ffi::CStr::from_ptr(*p).to_bytes() {
                b"HZ3_BACKGROUND_PURGE=1" => return true,
                b"HZ3_BACKGROUND_PURGE=0" => return false,
                _ => {}
            }
            p = p.add(1);
        }
    }
    config::BACKGROUND_PURGE
}

#[cold]
fn start() {
    if STATE
        .compare_exchange(NOT_STARTED, RUNNING, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // SAFETY: plain libc calls on local, initialised structures.
    let ok = unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        let mut tid: libc::pthread_t = 0;
        libc::pthread_attr_init(&mut attr);
        glibc_abi::pthread_attr_setstacksize(&mut attr, 64 * 1024);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        // The new thread inherits the mask: no signal of the program's is ever
        // delivered to it.
        libc::sigfillset(&mut all);
        glibc_abi::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut rc =
            glibc_abi::pthread_create(&mut tid, &attr, purge_thread, core::ptr::null_mut());
        if rc != 0 {
            // glibc puts the static TLS inside the stack: a program with a
            // lot of it needs more than 64 KiB. Retry with the default size
            // (virtual; only the pages touched become resident).
            libc::pthread_attr_destroy(&mut attr);
            libc::pthread_attr_init(&mut attr);
            libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            rc = glibc_abi::pthread_create(&mut tid, &attr, purge_thread, core::ptr::null_mut());
        }
        glibc_abi::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        rc == 0
    };
    if !ok {
        STATE.store(FAILED, Ordering::Relaxed);
    }
}

extern "C" fn purge_thread(_: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: naming the calling thread (best effort).
    unsafe { libc::prctl(libc::PR_SET_NAME, c"hz3-purge".as_ptr()) };
    let mut idle = false;
    loop {
        // Nothing left to purge last time: sleep four times longer (up to 1 s).
        let period = crate::heartbeat::period_ms();
        let ms = if idle { (period * 4).min(1000) } else { period };
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: valid timespec; an early wake-up (EINTR) only runs a pass sooner.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        // The heartbeat's pass: departed owners collected, page heaps and
        // the large cache decayed (skipped when a thread's beat runs one).
        crate::heartbeat::pass(crate::os::now_ms());
        idle = !crate::page_heap::any_dirty() && crate::large::cached_bytes() == 0;
    }
}

/// Fork child: the thread did not survive the fork. A Rust program's next
/// refill starts one; the preload object's child goes on without it (starting
/// a thread from inside malloc could deadlock in libc, see `ensure_started`):
/// its idle memory goes back on the slow-path beat, as in a lane without the
/// thread.
pub fn after_fork_child() {
    if STATE.load(Ordering::Relaxed) == RUNNING {
        let next = if cfg!(feature = "c-abi") {
            FAILED
        } else {
            NOT_STARTED
        };
        STATE.store(next, Ordering::Relaxed);
    }
}
