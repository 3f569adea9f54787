//! Process life cycle: lazy, race-free initialisation inside the first call,
//! the `HZ3_*` environment settings (parsed by `env`), the thread-exit hook (a pthread key
//! destructor), fork safety (pthread_atfork), and the report at exit.
//!
//! Owns: the init state machine and the settings read at init. Initialisation
//! makes no call that could allocate (mmap, getenv only); the pthread key and
//! the atfork handlers are registered later, from the first thread-cache
//! creation, when a re-entering malloc already finds a working allocator.
//! Must not touch allocation data structures except through their lock_all /
//! unlock_all functions in the fork handlers.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::arena;
use crate::central;
use crate::config;
use crate::env;
use crate::glibc_abi;
use crate::large;
use crate::os;
use crate::page_heap;
use crate::stats;
use crate::tcache;

const UNINIT: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static HOOKS: AtomicU8 = AtomicU8::new(UNINIT);
static KEY: AtomicUsize = AtomicUsize::new(0);
/// Settings read from the environment at init.
pub static PRINT_STATS: AtomicU8 = AtomicU8::new(0);

/// Makes sure the allocator is initialised. Returns true once it is (also when
/// the arena could not be reserved and everything runs on the large path).
#[inline]
pub fn ensure() -> bool {
    if STATE.load(Ordering::Acquire) == READY {
        return true;
    }
    init_slow()
}

#[cold]
fn init_slow() -> bool {
    if STATE
        .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire)
        .is_ok()
    {
        if page_heap::init() && !env::flag(c"HZ3_DISABLE_ARENA") {
            arena::reserve();
        }
        let cpus = os::cpus_available();
        let owners = env::number(
            c"HZ3_OWNERS",
            1,
            config::OWNERS,
            tcache::owners_in_use_for(None, cpus),
        );
        tcache::set_owners_in_use(tcache::owners_in_use_for(Some(owners), cpus));
        if env::flag(c"HZ3_PRINT_STATS") {
            PRINT_STATS.store(1, Ordering::Relaxed);
        }
        let want_config = env::flag(c"HZ3_PRINT_CONFIG");
        STATE.store(READY, Ordering::Release);
        if want_config {
            print_config();
        }
        return true;
    }
    while STATE.load(Ordering::Acquire) != READY {
        // SAFETY: plain syscall wrapper.
        unsafe { libc::sched_yield() };
    }
    true
}

/// Prints the lane and its configuration (HZ3_PRINT_CONFIG=1).
pub fn print_config() {
    let mut l = os::Line::new();
    l.s("hz3: lane=")
        .s(config::LANE)
        .s(" version=")
        .s(env!("CARGO_PKG_VERSION"))
        .s("\n");
    l.emit();
    let mut l = os::Line::new();
    l.s("hz3: config ").s(config::SUMMARY).s("\n");
    l.emit();
    let mut l = os::Line::new();
    l.s("hz3: owners_in_use=")
        .u(tcache::owners_in_use() as u64)
        .s(" of ")
        .u(config::OWNERS as u64)
        .s(" (cpus ")
        .u(os::cpus_available() as u64)
        .s(")\n");
    l.emit();
    let mut l = os::Line::new();
    l.s("hz3: arena reserved ")
        .u(((arena::RESERVED_PAGES.load(Ordering::Relaxed) * os::PAGE) >> 20) as u64)
        .s(" MiB at ")
        .hex(arena::base())
        .s("\n");
    l.emit();
}

extern "C" fn thread_exit(arg: *mut libc::c_void) {
    // SAFETY: glibc passes the value this thread registered: its own cache.
    unsafe { tcache::destroy(arg as *mut tcache::TCache) };
}

/// Registers `tc` for the thread-exit hook (and, the first time, the key and the fork handlers).
pub fn register_thread_exit(tc: *mut u8) {
    if HOOKS.load(Ordering::Acquire) != READY {
        if HOOKS
            .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: registering a destructor and fork handlers; both may allocate,
            // which re-enters through the caller's already-installed cache.
            unsafe {
                if glibc_abi::pthread_key_create(&mut key, Some(thread_exit)) == 0 {
                    KEY.store(key as usize + 1, Ordering::Relaxed);
                }
                libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
            }
            HOOKS.store(READY, Ordering::Release);
        } else {
            while HOOKS.load(Ordering::Acquire) != READY {
                // SAFETY: plain syscall wrapper.
                unsafe { libc::sched_yield() };
            }
        }
    }
    let k = KEY.load(Ordering::Relaxed);
    if k != 0 {
        // SAFETY: a valid key.
        unsafe {
            glibc_abi::pthread_setspecific(
                (k - 1) as libc::pthread_key_t,
                tc as *const libc::c_void,
            )
        };
    }
}

extern "C" fn fork_prepare() {
    if STATE.load(Ordering::Acquire) != READY {
        return;
    }
    central::lock_all();
    page_heap::lock_all();
    large::lock();
    tcache::lock_pool();
}

extern "C" fn fork_parent() {
    if STATE.load(Ordering::Acquire) != READY {
        return;
    }
    tcache::unlock_pool();
    large::unlock(false);
    page_heap::unlock_all(false);
    central::unlock_all(false);
}

extern "C" fn fork_child() {
    if STATE.load(Ordering::Acquire) != READY {
        return;
    }
    tcache::after_fork_child();
    large::unlock(true);
    page_heap::unlock_all(true);
    central::unlock_all(true);
    stats::after_fork_child();
}

extern "C" fn at_exit() {
    if PRINT_STATS.load(Ordering::Relaxed) != 0 {
        stats::print();
    }
}

#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;
