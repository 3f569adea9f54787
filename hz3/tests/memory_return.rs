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
//! * `background_purge_gives_back_while_the_program_sleeps`: the same burst
//!   while main only sleeps: with the purge thread on (`HZ3_BACKGROUND_PURGE=1`)
//!   it goes back within the same time; with it off (`=0`) it stays, which
//!   shows that the purge thread is what gives it back.
//! * `fast_path_traffic_drives_decay`: the same burst while main does one
//!   malloc/free pair per millisecond, which its warm bins serve with no
//!   refill or flush: the heartbeat (a free countdown on the fast path that
//!   runs the decay pass) gives it back within the same time; with it off
//!   (`HZ3_HEARTBEAT=0`) it stays.
//! * `exited_threads_leave_nothing_behind`: four threads allocate and free
//!   16 MiB each and exit; after 3 x the decay the span bytes are under 2 MiB:
//!   the purge thread (`HZ3_BACKGROUND_PURGE=1`) collected the exited owners'
//!   transfer lists and kept spans.
//! * `exited_threads_memory_is_back_at_once`: four threads write and free
//!   16 MiB each (half of it freed by the next thread, after the owner's
//!   thread may have exited, the last quarter by main) and exit: RSS is back
//!   right after the joins, before any decay could run (departed return;
//!   fails with `HZ3_DEPARTED_RETURN=0`).
//! * `replaced_threads_find_their_pages`: three generations of two threads,
//!   each started as the previous one exited: the third faults in at most a
//!   quarter of its pages (churn detection suspends the departed return,
//!   run with `HZ3_DEPARTED_RETURN=1`; fails with `=2`).
//! * `segment_metadata_goes_back_with_the_pages`: 256 MiB of 1 KiB blocks
//!   written, freed and trimmed leave RSS within 1 MiB of where it was: the
//!   span records, tags and run-cache links of the segments that went back
//!   to the pool are not resident (with them kept, 2.5 MiB stay).
//! * `idle_classes_give_back_their_kept_spans`: four threads on main's owner
//!   (`HZ3_OWNERS=1`) use every class up to 16 KiB and exit; with the purge
//!   thread on, 3 x the decay later the span bytes are under 256 KiB
//!   although main's thread (and so the owner) lives: the empty spans the
//!   central caches keep per class go back once nobody refills the class.
//! * `idle_owners_are_purged_when_collected`: four threads write and free
//!   16 MiB each and exit; with the purge thread on (decay 2 s), RSS is back
//!   0.9 x the decay after the joins, before decay alone could purge it:
//!   the purge thread's collect of an owner idle for two passes purges its
//!   free pages too.
//! * `idle_classes_drain_their_stash`: 16 MiB of a live, idle thread freed
//!   by main (stashed in its owner's inboxes in lanes with an owner stash):
//!   with the purge thread on, 3 x the decay later the span bytes are under
//!   2 MiB (scale without the drain: 16,793,600).
//! * `forked_child_drains_departed_stashes`: blocks of a live thread freed by
//!   main (stashed for the thread's owner where the lane keeps a stash), then
//!   a fork: in the child, where the thread is gone, they are not in use
//!   (run with `HZ3_DEPARTED_RETURN=1`, off by default; fails with `=0` in
//!   `scale`).
//! * `cached_large_blocks_decay_together`: 128 freed 1 MiB blocks in the
//!   large cache (as many as it has entries), then one malloc/free pair per
//!   millisecond: they go back within the decay limit, all due mappings
//!   unmapped in one pass (8 per pass: 2949 ms at decay 500, about 6 x).
//! * `carving_touches_only_what_is_handed_out`: one untouched block of every
//!   class from 4 KiB to 256 KiB grows RSS by about a page per block, not a
//!   page per object of each refill batch.

mod common;

use common::*;
use std::time::Duration;

/// Decay period the decay test runs with (the lane's own is 50-1000 ms).
const DECAY_MS: &str = "500";

/// A purge bound above the 100 MiB burst (mem_mstress keeps only 2 MiB of
/// free pages per owner and would purge the burst at its free): only decay
/// may give it back in the tests that time decay.
const KEEP_BURST: (&str, &str) = ("HZ3_PURGE_OWNER_KIB", "262144");

fn run_mode(mode: &str, args: &[&str], env: &[(&str, &str)]) {
    run_c_checks("memory_return.c", mode, args, env, Duration::from_secs(120));
}

#[test]
fn decay_is_driven_by_time() {
    run_mode(
        "decay",
        &[DECAY_MS],
        &[("HZ3_PURGE_DECAY_MS", DECAY_MS), KEEP_BURST],
    );
}

#[test]
fn departed_owner_frees_come_back() {
    run_mode("departed", &[], &[]);
}

#[test]
fn forked_child_drains_departed_stashes() {
    // Departed return is off by default (archive/departed-return-default).
    run_mode("forkdrain", &[], &[("HZ3_DEPARTED_RETURN", "1")]);
}

#[test]
fn segment_metadata_goes_back_with_the_pages() {
    run_mode("trimmeta", &[], &[]);
}

#[test]
fn idle_classes_give_back_their_kept_spans() {
    run_mode(
        "keptidle",
        &[DECAY_MS],
        &[
            ("HZ3_PURGE_DECAY_MS", DECAY_MS),
            ("HZ3_BACKGROUND_PURGE", "1"),
            ("HZ3_OWNERS", "1"),
            ("HZ3_DEPARTED_RETURN", "0"),
        ],
    );
}

#[test]
fn idle_owners_are_purged_when_collected() {
    run_mode(
        "idlepurge",
        &["2000"],
        &[
            // Main and each worker on an owner of its own (mem_mstress
            // would put them on 2): the workers' owners are left idle.
            ("HZ3_OWNERS", "8"),
            ("HZ3_PURGE_DECAY_MS", "2000"),
            KEEP_BURST,
            ("HZ3_BACKGROUND_PURGE", "1"),
            ("HZ3_DEPARTED_RETURN", "0"),
        ],
    );
}

#[test]
fn idle_classes_drain_their_stash() {
    run_mode(
        "stashidle",
        &[DECAY_MS],
        &[
            ("HZ3_OWNERS", "8"),
            ("HZ3_PURGE_DECAY_MS", DECAY_MS),
            KEEP_BURST,
            ("HZ3_BACKGROUND_PURGE", "1"),
            ("HZ3_DEPARTED_RETURN", "0"),
        ],
    );
}

#[test]
fn carving_touches_only_what_is_handed_out() {
    run_mode("carve", &[], &[]);
}

#[test]
fn background_purge_gives_back_while_the_program_sleeps() {
    let exe = compile_c("memory_return.c");
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        // `HZ3_BACKGROUND_PURGE` overrides the lane's key (false in every
        // lane shipped) either way: on, the sleeping program's burst goes
        // back; off, nothing else gives it back while it sleeps.
        for on in [true, false] {
            let cmd = c_mode(
                &exe,
                lib,
                "idle",
                &[DECAY_MS],
                &[
                    ("HZ3_PURGE_DECAY_MS", DECAY_MS),
                    KEEP_BURST,
                    ("HZ3_BACKGROUND_PURGE", if on { "1" } else { "0" }),
                ],
            );
            let r = run(cmd, Duration::from_secs(120));
            let what = format!("memory_return idle ({}, background_purge={on})", lib.name);
            let back = r.stdout_str().contains("all checks passed");
            if on {
                assert_success(&r, &what);
                assert!(
                    back,
                    "{what}: the purge thread did not give the burst back:\n{}",
                    r.describe()
                );
            } else {
                assert!(
                    !back && r.stderr_str().contains("stayed resident"),
                    "{what}: without the purge thread the burst went back while the program \
                     slept (what else purges it?):\n{}",
                    r.describe()
                );
            }
            eprint!("{what}:\n{}", r.stdout_str());
        }
    }
}

#[test]
fn fast_path_traffic_drives_decay() {
    let exe = compile_c("memory_return.c");
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        // No purge thread either way: on, the free countdown alone runs the
        // decay; off, nothing on the fast path does.
        for on in [true, false] {
            let cmd = c_mode(
                &exe,
                lib,
                "quiet",
                &[DECAY_MS],
                &[
                    ("HZ3_PURGE_DECAY_MS", DECAY_MS),
                    KEEP_BURST,
                    ("HZ3_BACKGROUND_PURGE", "0"),
                    ("HZ3_HEARTBEAT", if on { "1" } else { "0" }),
                ],
            );
            let r = run(cmd, Duration::from_secs(120));
            let what = format!("memory_return quiet ({}, heartbeat={on})", lib.name);
            let back = r.stdout_str().contains("all checks passed");
            if on {
                assert_success(&r, &what);
                assert!(
                    back,
                    "{what}: fast-path traffic did not give the burst back:\n{}",
                    r.describe()
                );
            } else {
                assert!(
                    !back && r.stderr_str().contains("stayed resident"),
                    "{what}: without the heartbeat the burst went back under fast-path \
                     traffic (what else purges it?):\n{}",
                    r.describe()
                );
            }
            eprint!("{what}:\n{}", r.stdout_str());
        }
    }
}

#[test]
fn cached_large_blocks_decay_together() {
    // As many blocks as the lane's cache has entries, up to 128 (mem_mstress
    // keeps 8), with a budget that holds them all.
    let n = hz3::config::LARGE_CACHE_ENTRIES.min(128).to_string();
    run_mode(
        "largedecay",
        &[DECAY_MS, &n],
        &[
            ("HZ3_PURGE_DECAY_MS", DECAY_MS),
            ("HZ3_LARGE_CACHE_MIB", "1024"),
            ("HZ3_BACKGROUND_PURGE", "0"),
        ],
    );
}

#[test]
fn exited_threads_leave_nothing_behind() {
    run_mode(
        "exited",
        &[DECAY_MS],
        &[
            ("HZ3_PURGE_DECAY_MS", DECAY_MS),
            ("HZ3_BACKGROUND_PURGE", "1"),
        ],
    );
}

#[test]
fn exited_threads_memory_is_back_at_once() {
    run_mode("gone", &[], &[("HZ3_DEPARTED_RETURN", "1")]);
}

#[test]
fn replaced_threads_find_their_pages() {
    // Decay and the purge bound out of the way (mem_mstress's would purge
    // between the generations whatever the exits do).
    run_mode(
        "regen",
        &[],
        &[
            ("HZ3_PURGE_DECAY_MS", "10000"),
            KEEP_BURST,
            ("HZ3_DEPARTED_RETURN", "1"),
        ],
    );
}
