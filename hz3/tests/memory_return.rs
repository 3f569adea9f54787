//! Idle memory given back (issue 16): `c/memory_return.c`, one process per
//! mode, under the plain and the hardened library of the lane under test
//! (`HZ3_SO` / `HZ3_SO_HARDENED`, as in `mappings.rs`).
//!
//! * `decay_is_driven_by_time`: a 100 MiB burst of 1 KiB blocks, freed by a
//!   thread that then idles, goes back to the OS within 2 x `purge_decay_ms`
//!   (+ slack) while another thread does light malloc/free traffic: decay is
//!   checked on a clock, not only inside the burst owner's own frees.
//! * `departed_owner_frees_come_back`: 100,000 blocks of a thread that exited,
//!   freed by main, leave mallinfo2's in-use and span bytes without
//!   `malloc_trim` (the owner's remote stash is drained although none of its
//!   threads is left to refill from it).
//! * `carving_touches_only_what_is_handed_out`: one untouched block of every
//!   class from 4 KiB to 256 KiB grows RSS by about a page per block, not a
//!   page per object of each refill batch.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Decay period the decay test runs with (the lane's own is 50-1000 ms).
const DECAY_MS: &str = "500";

fn run_mode(mode: &str, args: &[&str], env: &[(&str, &str)]) {
    let exe = compile_c("memory_return.c");
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        let mut cmd = Command::new(&exe);
        cmd.arg(mode).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("HZ3_") && k != "HZ3_SO" && k != "HZ3_SO_HARDENED" {
                cmd.env_remove(&k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        limits(&mut cmd, None);
        preload(&mut cmd, lib);
        let r = run(cmd, Duration::from_secs(120));
        let what = format!("memory_return {mode} ({})", lib.name);
        assert_success(&r, &what);
        let out = r.stdout_str();
        assert!(
            out.contains("all checks passed"),
            "{what} did not finish:\n{}",
            r.describe()
        );
        eprint!("{what}:\n{out}");
    }
}

#[test]
fn decay_is_driven_by_time() {
    run_mode("decay", &[DECAY_MS], &[("HZ3_PURGE_DECAY_MS", DECAY_MS)]);
}

#[test]
fn departed_owner_frees_come_back() {
    run_mode("departed", &[], &[]);
}

#[test]
fn carving_touches_only_what_is_handed_out() {
    run_mode("carve", &[], &[]);
}
