//! Process life cycle: lazy, race-free initialisation inside the first call,
//! the `HZ3_*` environment settings (parsed by `env`), the thread-exit hook (a pthread key
//! destructor), fork safety (pthread_atfork), and the report at exit.
//!
//! Owns: the init state machine and the settings read at init. Initialisation
//! makes no call that could allocate (mmap, getenv only) and takes no lock.
//!
//! The pthread key and the atfork handlers are registered at load, by an ELF
//! constructor of the preload object (feature `c-abi`), before the program's
//! `main` can register handlers of its own: so hz3's prepare handler runs after
//! the program's (which may allocate) and its child handler before the
//! program's (which may allocate in the child). Without the constructor (the
//! `GlobalAlloc`), they are registered at the first thread-cache creation.
//!
//! Fork during init: `STATE` holds the pid of the process whose thread is
//! initialising, with the running bit. The prepare handler waits until another
//! thread's init in this process has finished, so the child inherits a ready
//! allocator; a child that still inherits an init in progress (a fork without
//! hz3's handlers: a raw fork system call, or one before they were registered)
//! sees a foreign pid and initialises again (the parent's half-done mappings are
//! left unused). Must not touch allocation data structures (`central`, `span`,
//! `inbox`, `outbox`, `large`). The fork handlers take and release every lock
//! through `owner::lock_all` / `unlock_all`.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use crate::arena;
use crate::config;
use crate::env;
use crate::glibc_abi;
use crate::options;
use crate::os;
use crate::owner;
use crate::page_heap;
use crate::stats;
use crate::tcache;

/// `STATE`: UNINIT, READY, or `pid << 2 | RUNNING` while a thread of process
/// `pid` initialises.
const UNINIT: usize = 0;
const READY: usize = 1;
const RUNNING: usize = 2;

static STATE: AtomicUsize = AtomicUsize::new(UNINIT);
/// `HOOKS`: UNINIT, READY, or RUNNING while `HOOKS_TID` registers them.
static HOOKS: AtomicUsize = AtomicUsize::new(UNINIT);
static HOOKS_TID: AtomicUsize = AtomicUsize::new(0);
static KEY: AtomicUsize = AtomicUsize::new(0);
/// Set by the prepare handler when it took the locks; the parent and child
/// handlers release them only then (init may finish in between).
static FORK_LOCKED: AtomicBool = AtomicBool::new(false);
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

/// This process's running mark for `STATE`.
fn running_mark() -> usize {
    // SAFETY: plain syscall wrapper.
    let pid = unsafe { libc::getpid() } as usize;
    pid << 2 | RUNNING
}

#[cold]
fn init_slow() -> bool {
    let me = running_mark();
    loop {
        let s = STATE.load(Ordering::Acquire);
        if s == READY {
            return true;
        }
        if s == me {
            // Another thread of this process is initialising.
            // SAFETY: plain syscall wrapper.
            unsafe { libc::sched_yield() };
            continue;
        }
        // UNINIT, or an init in progress in the parent at the fork: (re)start it.
        if STATE
            .compare_exchange(s, me, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            run_init();
            return true;
        }
    }
}

fn run_init() {
    if page_heap::init() && !env::flag(c"HZ3_DISABLE_ARENA") && arena::reserve() {
        page_heap::init_run_links();
    }
    let cpus = os::cpus_available();
    let owners = env::number(
        c"HZ3_OWNERS",
        1,
        config::OWNERS,
        tcache::owners_in_use_for(None, cpus),
    );
    tcache::set_owners_in_use(tcache::owners_in_use_for(Some(owners), cpus));
    options::read_env();
    // 0: nothing; 1: key=value lines; 2: one JSON object (stats_json).
    let print_stats = env::choice(c"HZ3_PRINT_STATS", &["0", "1", "json"], 0);
    PRINT_STATS.store(print_stats as u8, Ordering::Relaxed);
    let want_config = env::flag(c"HZ3_PRINT_CONFIG");
    STATE.store(READY, Ordering::Release);
    if want_config {
        print_config();
    }
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
    // The run-time options in effect (lane value unless HZ3_* or mallopt set them).
    let mut l = os::Line::new();
    l.s("hz3: options");
    for o in &options::TABLE {
        l.s(" ").s(o.key).s("=").u(o.get() as u64);
    }
    l.s("\n");
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

fn gettid() -> usize {
    // SAFETY: plain syscall wrapper.
    // (gettid through syscall: the libc function needs GLIBC_2.30.)
    unsafe { libc::syscall(libc::SYS_gettid) as usize }
}

/// Registers the thread-exit key and the fork handlers, once. The key comes
/// first: pthread_atfork may allocate, and a thread cache created by that
/// re-entering malloc registers itself with the key (it does not wait for the
/// registration its own thread is doing).
fn install_hooks() {
    if HOOKS.load(Ordering::Acquire) == READY {
        return;
    }
    if HOOKS
        .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire)
        .is_ok()
    {
        HOOKS_TID.store(gettid(), Ordering::Relaxed);
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: registering a destructor and fork handlers.
        unsafe {
            if glibc_abi::pthread_key_create(&mut key, Some(thread_exit)) == 0 {
                KEY.store(key as usize + 1, Ordering::Release);
            }
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        }
        HOOKS.store(READY, Ordering::Release);
        return;
    }
    if HOOKS_TID.load(Ordering::Relaxed) == gettid() {
        return;
    }
    while HOOKS.load(Ordering::Acquire) != READY {
        // SAFETY: plain syscall wrapper.
        unsafe { libc::sched_yield() };
    }
}

/// Registers `tc` for the thread-exit hook (registering the key and the fork
/// handlers first if the load-time constructor did not).
pub fn register_thread_exit(tc: *mut u8) {
    install_hooks();
    let k = KEY.load(Ordering::Acquire);
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
    // Let another thread's init finish first, so the child does not inherit it
    // half done. Not initialised (or an init left over from our own parent):
    // nothing to lock.
    let me = running_mark();
    loop {
        let s = STATE.load(Ordering::Acquire);
        if s == READY {
            break;
        }
        if s != me {
            return;
        }
        // SAFETY: plain syscall wrapper.
        unsafe { libc::sched_yield() };
    }
    owner::lock_all();
    FORK_LOCKED.store(true, Ordering::Relaxed);
}

extern "C" fn fork_parent() {
    if !FORK_LOCKED.swap(false, Ordering::Relaxed) {
        return;
    }
    owner::unlock_all(false);
}

extern "C" fn fork_child() {
    if !FORK_LOCKED.swap(false, Ordering::Relaxed) {
        return;
    }
    owner::unlock_all(true);
    crate::background::after_fork_child();
    crate::heartbeat::after_fork_child();
    stats::after_fork_child();
}

/// Load-time constructor of the preload object: registers the key and the
/// fork handlers before the program's `main` runs (see the module comment).
#[cfg(feature = "c-abi")]
extern "C" fn at_load() {
    install_hooks();
    crate::background::start_at_load();
}

#[cfg(feature = "c-abi")]
#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;

extern "C" fn at_exit() {
    match PRINT_STATS.load(Ordering::Relaxed) {
        1 => stats::print(),
        2 => crate::stats_json::print(),
        _ => {}
    }
}

#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;
