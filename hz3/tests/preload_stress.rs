//! Multi-thread stress, fork safety and thread-churn RSS, as C programs
//! running with the hz3 `.so` in `LD_PRELOAD`.  See tests/README.md.
//! `HZ3_TEST_LONG=1` runs the long variants (100k threads, 2000 forks, ...).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn mt_stress(threads: u32, ops: u32, churn_rounds: u32) {
    let lib = allocator();
    let exe = compile_c("mt_stress.c");
    let scale = if long_mode() { 10 } else { 1 };
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &lib.name,
        "--threads",
        &threads.to_string(),
        "--ops",
        &(ops * scale).to_string(),
        "--churn-rounds",
        &(churn_rounds * scale).to_string(),
    ]);
    preload(&mut cmd, &lib);
    let r = run(
        cmd,
        Duration::from_secs(if long_mode() { 1800 } else { 300 }),
    );
    assert_success(&r, &format!("mt_stress --threads {threads}"));
    let out = r.stdout_str();
    assert!(
        out.contains("mt_stress: all checks passed"),
        "mt_stress did not finish:\n{}",
        r.describe()
    );
    eprint!("{out}");
}

/// 8 threads, 1 B .. 300 KiB, half of the blocks freed by another thread,
/// then 40 rounds of 16 short-lived threads sharing a pool.
#[test]
fn mt_stress_8_threads() {
    mt_stress(8, 60_000, 40);
}

/// 32 threads: more threads than cores (and likely than owners/shards).
#[test]
fn mt_stress_32_threads() {
    mt_stress(32, 15_000, 40);
}

/// 200 threads at once: far past the 63-thread limit of the C hz3.
#[test]
fn mt_stress_200_threads() {
    mt_stress(200, 2_000, 20);
}

/// 200 forks (2000 in long mode) from a thread and from main while three
/// threads allocate and free across each other; children allocate, check
/// inherited blocks, start a thread and exit.  A deadlock fails by alarm().
#[test]
fn fork_while_allocating() {
    let lib = allocator();
    let exe = compile_c("fork_stress.c");
    let forks = if long_mode() { 2000 } else { 200 };
    let timeout = if long_mode() { 1200 } else { 120 };
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &lib.name,
        "--forks",
        &forks.to_string(),
        "--workers",
        "3",
        "--timeout",
        &timeout.to_string(),
    ]);
    preload(&mut cmd, &lib);
    let r = run(cmd, Duration::from_secs(timeout + 60));
    assert_success(&r, "fork_stress");
    let out = r.stdout_str();
    assert!(
        out.contains("fork_stress: all checks passed"),
        "fork_stress did not finish:\n{}",
        r.describe()
    );
    eprint!("{out}");
}

/// 20k threads (100k in long mode), each allocating and leaving a few
/// objects for later threads to free: peak RSS below 200 MB, and RSS must
/// not keep growing from the first fifth of the run to the end.
#[test]
fn thread_churn_rss_bounded() {
    let lib = allocator();
    let exe = compile_c("thread_churn.c");
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &lib.name,
        "--max-hwm-mb",
        "200",
        "--max-growth-mb",
        "48",
    ]);
    if long_mode() {
        cmd.arg("--long");
    }
    preload(&mut cmd, &lib);
    let r = run(
        cmd,
        Duration::from_secs(if long_mode() { 900 } else { 300 }),
    );
    assert_success(&r, "thread_churn");
    let out = r.stdout_str();
    assert!(
        out.contains("thread_churn: all checks passed"),
        "thread_churn did not finish:\n{}",
        r.describe()
    );
    eprint!("{out}");
}
