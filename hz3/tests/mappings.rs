//! Mappings, commit and large-block accounting under LD_PRELOAD (issue 17,
//! items 3, 5, 6, 7; rows in hz3/tests/HARDENING.md): `c/mappings.c`, one
//! process per mode, against the plain and the hardened library of the lane
//! (`HZ3_SO` / `HZ3_SO_HARDENED`, as in `hardening.rs`; missing libraries fail).
//!
//! * `aligned`: 150,000 x `posix_memalign(8192, 64)` all succeed with few
//!   mappings, threads can still be created, and alignments up to 64 KiB work
//!   through every aligned entry point.
//! * `munmap`: munmap refused, then allowed: no mapping is lost.
//! * `hblks`: `mallinfo2().hblks`/`hblkhd` count live large blocks only.
//! * `small5g`: more than 4 GiB of small blocks stay in the arena.
//! * `commit`: the writable private mappings (strict overcommit's charge) stay small.

mod common;

use common::*;
use std::time::Duration;

fn run_mode(mode: &str) {
    run_c_checks("mappings.c", mode, &[], &[], Duration::from_secs(300));
}

#[test]
fn aligned_blocks_do_not_map_one_region_each() {
    run_mode("aligned");
}

#[test]
fn refused_munmap_loses_no_mapping() {
    run_mode("munmap");
}

#[test]
fn mallinfo2_counts_live_large_blocks() {
    run_mode("hblks");
}

#[test]
fn more_than_4_gib_of_small_blocks_stay_in_the_arena() {
    run_mode("small5g");
}

#[test]
fn unused_arena_is_not_charged() {
    run_mode("commit");
}
