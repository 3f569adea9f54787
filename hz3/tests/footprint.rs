//! Per-thread footprint (issue 16): `c/footprint.c`, under the plain and the
//! hardened library of the lane under test (`HZ3_SO` / `HZ3_SO_HARDENED`, as
//! in `memory_return.rs`).
//!
//! * `a_thread_that_barely_allocates_costs_little`: 128 threads that each
//!   malloc and free one 16-byte block cost at most 10 KiB of RSS per thread
//!   more than 128 threads that make no call at all. A new thread writes only
//!   its bins and its outbox header: the dense remote bank `[owner][class]`
//!   (about 18 KiB in the fast lane) is touched only by the entries the thread
//!   uses. Fails when the bank is written at thread start (469bf68: 21.4 KiB
//!   per thread in fast, 11.5 in mem_mstress).

mod common;

use common::*;
use std::time::Duration;

#[test]
fn a_thread_that_barely_allocates_costs_little() {
    run_c_checks(
        "footprint.c",
        "threads",
        &["128"],
        &[],
        Duration::from_secs(120),
    );
}
