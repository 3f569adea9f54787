//! hz3: a multi-lane memory allocator.
//!
//! One core, several lanes (build configurations chosen by a manifest in
//! `lanes/`, see `config`). Front end (`alloc`): size classes
//! (`size_class`), per-thread caches (`tcache`) and remote frees (outgoing:
//! `outbox`, incoming: `inbox`);
//! middle: per-owner central caches (`central`); back end: page heaps and
//! spans (`page_heap`) in one reserved arena with a page-tag table (`arena`),
//! large mappings (`large`); platform: `os`, `sync`, `tls`; life cycle:
//! `init`; `stats`. The C ABI (`c_abi`, feature `c-abi`) and `Hz3`
//! (`GlobalAlloc`) are thin wrappers over `alloc`.
//!
//! The allocator never allocates: no `Vec`, `Box`, `format!` or panicking
//! formatting anywhere below; errors go out through write(2).

// No std: the library needs only core and libc, so the preload object links no
// unwinder (libgcc_s) and none of std's text. Unit tests and the non-x86_64
// thread-local fallback use std.
#![cfg_attr(not(test), no_std)]
#![allow(clippy::missing_safety_doc)]
// Lane settings are constants: a test like `PURGE_DECAY_MS > 0` is always true in
// one lane and always false in another, which is the point.
#![allow(clippy::absurd_extreme_comparisons)]

#[cfg(all(not(test), not(all(target_arch = "x86_64", target_os = "linux"))))]
extern crate std;

pub mod config;

mod alloc;
mod arena;
mod central;
mod checks;
mod env;
mod glibc_abi;
mod global_alloc;
mod hardened;
mod inbox;
mod init;
mod large;
mod options;
mod os;
mod outbox;
mod owner;
mod page_heap;
mod size_class;
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
