//! Run-time options: the lane settings that may change after the build, in one
//! table (like mimalloc's `options.c`): name, default (the lane manifest's
//! value), range, and what it means.
//!
//! Owns one atomic per option, initialised with the lane's compile-time value,
//! set once at init from the environment (through `env::number`, which reports a
//! bad value with one line) and later only by `mallopt`. Readers load them
//! Relaxed, and only on slow paths (page-heap purge, large-mapping cache): the
//! malloc/free fast path reads none of them. A value changed while another
//! thread runs a slow path takes effect at that thread's next slow-path event;
//! every value in range is valid at any time, so no ordering is needed.
//! Invariants: never allocates.
//! Must not touch allocation data structures (`arena`, `central`, `span`).

use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::config;
use crate::env;

static PURGE_DECAY_MS: AtomicUsize = AtomicUsize::new(config::PURGE_DECAY_MS);
static PURGE_OWNER_KIB: AtomicUsize = AtomicUsize::new(config::PURGE_OWNER_KIB);
static LARGE_CACHE_MIB: AtomicUsize = AtomicUsize::new(config::LARGE_CACHE_MIB);

/// One run-time option.
pub struct Opt {
    /// The environment variable.
    pub name: &'static CStr,
    /// The lane manifest key it overrides (printed by HZ3_PRINT_CONFIG).
    pub key: &'static str,
    pub cell: &'static AtomicUsize,
    /// The lane's value.
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

impl Opt {
    pub fn get(&self) -> usize {
        self.cell.load(Ordering::Relaxed)
    }
    /// Sets the value, clamped to the option's range.
    pub fn set(&self, v: usize) {
        self.cell
            .store(v.clamp(self.min, self.max), Ordering::Relaxed);
    }
}

/// Every run-time option (ranges as in the lane manifest's keys, `hz3/build.rs`).
pub static TABLE: [Opt; 3] = [
    // Free dirty pages older than this go back to the OS, and cached large
    // mappings unused this long are unmapped (0: only the size bounds).
    Opt {
        name: c"HZ3_PURGE_DECAY_MS",
        key: "purge_decay_ms",
        cell: &PURGE_DECAY_MS,
        default: config::PURGE_DECAY_MS,
        min: 0,
        max: 3_600_000,
    },
    // Free dirty KiB an owner keeps before madvise.
    Opt {
        name: c"HZ3_PURGE_OWNER_KIB",
        key: "purge_owner_kib",
        cell: &PURGE_OWNER_KIB,
        default: config::PURGE_OWNER_KIB,
        min: 0,
        max: 16_777_216,
    },
    // Budget of the large-mapping cache in MiB.
    Opt {
        name: c"HZ3_LARGE_CACHE_MIB",
        key: "large_cache_mib",
        cell: &LARGE_CACHE_MIB,
        default: config::LARGE_CACHE_MIB,
        min: 0,
        max: 65_536,
    },
];

/// Index of `purge_owner_kib` in TABLE (set by mallopt).
#[cfg(feature = "c-abi")]
const OWNER_KIB: usize = 1;

/// Departed return (`owner::after_thread_exit`): `HZ3_DEPARTED_RETURN` 0
/// (default) off, 1 on with churn detection, 2 on without it (every exit
/// returns). Off by default: the collection and purge at thread exits cost
/// 13 % of wall-clock throughput over the remote and churn cells at 8 and 32
/// threads (archive/departed-return-default: DR=0 against DR=1, GO [1.077,
/// 1.200]); a program that wants its exited threads' memory back at once
/// turns it on.
static DEPARTED_RETURN: AtomicUsize = AtomicUsize::new(0);

/// Heartbeat (`heartbeat`): `HZ3_HEARTBEAT` 1 (default) on, 0 off (idle
/// memory then goes back only on the slow-path beat, or from the background
/// thread).
static HEARTBEAT: AtomicUsize = AtomicUsize::new(1);

/// True when threads' free countdowns run the heartbeat's pass.
#[inline]
pub fn heartbeat() -> bool {
    HEARTBEAT.load(Ordering::Relaxed) != 0
}

/// Reads every option from the environment (once, from init).
pub fn read_env() {
    for o in &TABLE {
        o.set(env::number(o.name, o.min, o.max, o.default));
    }
    DEPARTED_RETURN.store(
        env::number(c"HZ3_DEPARTED_RETURN", 0, 2, 0),
        Ordering::Relaxed,
    );
    HEARTBEAT.store(env::number(c"HZ3_HEARTBEAT", 0, 1, 1), Ordering::Relaxed);
}

/// True when exiting threads hand their owners' memory back.
#[inline]
pub fn departed_return() -> bool {
    DEPARTED_RETURN.load(Ordering::Relaxed) != 0
}

/// True when churn (threads replaced at once) suspends the departed return.
#[inline]
pub fn churn_detection() -> bool {
    DEPARTED_RETURN.load(Ordering::Relaxed) == 1
}

/// `purge_decay_ms` in effect.
#[inline]
pub fn purge_decay_ms() -> u64 {
    PURGE_DECAY_MS.load(Ordering::Relaxed) as u64
}

/// `purge_owner_kib` in effect.
#[inline]
pub fn purge_owner_kib() -> usize {
    PURGE_OWNER_KIB.load(Ordering::Relaxed)
}

/// `large_cache_mib` in effect.
#[inline]
pub fn large_cache_mib() -> usize {
    LARGE_CACHE_MIB.load(Ordering::Relaxed)
}

/// glibc's `mallopt` parameters hz3 gives a meaning (M_MMAP_THRESHOLD is -3).
#[cfg(feature = "c-abi")]
const M_TRIM_THRESHOLD: i32 = -1;
#[cfg(feature = "c-abi")]
const M_ARENA_MAX: i32 = -8;

/// `mallopt(param, value)`: true when the setting took effect.
///
/// * `M_TRIM_THRESHOLD` (bytes, >= 0): the free dirty memory an owner keeps
///   before madvise (`purge_owner_kib` = value / 1024, clamped to its range).
/// * `M_ARENA_MAX` (> 0): the owners new threads are spread over (as
///   HZ3_OWNERS, clamped to 1..=the lane's `owners`). Safe at any time: the
///   number is read only when a thread cache is created; threads that already
///   have an owner keep it.
/// * glibc's other parameters (`M_MMAP_THRESHOLD`, `M_MXFAST`, `M_TOP_PAD`,
///   `M_MMAP_MAX`, `M_CHECK_ACTION`, `M_PERTURB`, `M_ARENA_TEST`): accepted
///   (true, as glibc), no effect: blocks above the largest size class always
///   get their own mapping, and the size classes are fixed at build time.
/// * A negative `M_TRIM_THRESHOLD`, `M_ARENA_MAX` <= 0, an unknown parameter:
///   false, no effect.
///
/// Initialises first, so a value set before the first allocation is not
/// overwritten by the environment read at init.
#[cfg(feature = "c-abi")]
pub fn mallopt(param: i32, value: i32) -> bool {
    crate::init::ensure();
    match param {
        M_TRIM_THRESHOLD if value >= 0 => {
            TABLE[OWNER_KIB].set(value as usize / 1024);
            true
        }
        M_ARENA_MAX if value > 0 => {
            crate::tcache::set_owners_in_use(value as usize);
            true
        }
        // glibc's other parameters (M_MXFAST 1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3,
        // M_MMAP_MAX -4, M_CHECK_ACTION -5, M_PERTURB -6, M_ARENA_TEST -7):
        // accepted and ignored, as glibc accepts them, so a program that
        // checks the result does not take hz3 for a failure.
        1 | -7..=-2 => true,
        _ => false,
    }
}
