//! hz3: a multi-lane memory allocator.
//!
//! One core, several lanes (build configurations chosen by a manifest in
//! `lanes/`, see `config`). `alloc` has the call tree of malloc and free.
//!
//! Module order (layer order, lower first; a module calls down, and up only
//! where its head comment says so). Each module's head comment says what it
//! owns and what it must not touch; `tests/layers.rs` checks the "must not
//! touch" lists against the imports and that this list names every module.
//! 1. platform: `config` (lane constants), `os` (system calls), `sync`
//!    (futex lock), `tls` (thread pointer), `env` (HZ3_* parsing), `options`
//!    (run-time knobs), `glibc_abi` (versioned glibc symbols)
//! 2. `size_class` (class geometry), `stats` (global counters)
//! 3. `arena` (the reservation, the page-tag `Tag`, span-record memory)
//! 4. `page_bits` (word-at-a-time segment bitmaps), `page_heap` (page runs per
//!    owner, the segment pool, purging)
//! 5. `span` (span records, partial lists, carving)
//! 6. `central` (per (owner, class) caches and transfer lists)
//! 7. `inbox` (per-owner incoming remote frees)
//! 8. `owner` (the per-owner record; collect, fork locks)
//! 9. `outbox` (per-thread outgoing remote frees), `tcache` (thread caches)
//! 10. `hardened`, `checks` (integrity and misuse checks on the paths)
//! 11. `large` (mappings of their own for big blocks)
//! 12. `heartbeat` (the pass: departed owners collected, decay; run every
//!     256 frees of a thread or by the purge thread), `background` (the
//!     purge thread) and `init` (life cycle: init, thread exit, fork)
//! 13. `alloc` (malloc, free and the rest: the front end)
//! 14. `stats_json`, `global_alloc` (`Hz3`), `c_abi` (the C symbols, feature `c-abi`)
//!
//! The allocator never allocates: no `Vec`, `Box`, `format!` or panicking
//! formatting anywhere below; errors go out through write(2).

// No std: the library needs only core and libc, so the preload object links no
// unwinder (libgcc_s) and none of std's text. Unit tests and the portable
// thread-local slot of Rust programs (`tls`: targets other than x86-64 and
// aarch64 Linux, or feature `portable-tls`, without the C ABI) use std.
#![cfg_attr(not(test), no_std)]
#![allow(clippy::missing_safety_doc)]
// Lane settings are constants: a test like `PURGE_DECAY_MS > 0` is always true in
// one lane and always false in another, which is the point.
#![allow(clippy::absurd_extreme_comparisons)]

#[cfg(all(
    not(test),
    any(
        feature = "portable-tls",
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))
    ),
    any(not(target_os = "linux"), not(feature = "c-abi"))
))]
extern crate std;

pub mod config;

mod alloc;
mod arena;
mod background;
mod central;
mod checks;
mod env;
mod glibc_abi;
mod global_alloc;
mod hardened;
mod heartbeat;
mod inbox;
mod init;
mod large;
mod options;
mod os;
mod outbox;
mod owner;
mod page_bits;
mod page_heap;
mod size_class;
mod span;
mod stats;
mod stats_json;
mod sync;
mod tcache;
mod tls;

#[cfg(feature = "c-abi")]
pub mod c_abi;

pub use global_alloc::Hz3;
pub use stats::{print as print_stats, stats, ClassStats, Stats};
/// The statistics as one JSON object in `buf` (snprintf's contract: truncated
/// and NUL-terminated; returns the length the whole text needs).
pub use stats_json::write as stats_json;

/// True in the hardened build (feature `hardened`).
pub const HARDENED: bool = hardened::ENABLED;

/// Bytes of one thread's cache in this lane (bins and outbox).
pub const fn thread_cache_bytes() -> usize {
    core::mem::size_of::<tcache::TCache>()
}

/// How many owners threads are spread over in this process (see the lane's
/// `owners_per_cpu` and `HZ3_OWNERS`); the lane's `config::OWNERS` until the
/// allocator has initialised.
pub fn owners_in_use() -> usize {
    tcache::owners_in_use()
}

/// The owner of a live small block `p` (None for large blocks and foreign pointers).
pub fn owner_of(p: *const u8) -> Option<usize> {
    let (_, t) = arena::lookup(p as usize)?;
    if !t.is_valid() {
        return None;
    }
    Some(t.owner())
}

/// The raw allocation API (what the C ABI exports), for tests and embedders.
pub mod raw {
    pub use crate::alloc::{
        aligned_alloc, calloc, free, free_sized, malloc, realloc, trim, usable_size,
    };
    pub use crate::size_class::{class_of, class_size, MAX_SMALL, NCLS};
}
