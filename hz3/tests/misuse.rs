//! Misuse suite (issue 17 item 4): every case of `c/misuse.cpp` runs in its own
//! process under the plain and the hardened library of the lane and under glibc
//! (no preload). Outcome per case:
//! * caught   — SIGABRT (the allocator diagnosed the misuse);
//! * survived — normal exit (status 3: a duplicate/misaligned/overlapping block
//!   was handed out afterwards; status 0: nothing visible went wrong);
//! * crashed  — any other signal or a timeout.
//!
//! The table goes to `hz3/tests/MISUSE.md` (per category, caught / survived /
//! crashed). Asserted: the hardened build catches every case the plain one
//! catches, and neither falls below its floor (`PLAIN_FLOOR`, `HARDENED_FLOOR`).
//! The issue-17 goals are `PLAIN_GOAL` / `HARDENED_GOAL` (of the 116
//! programs); the floors are what the checks reach on these 80.

mod common;

use common::*;
use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

/// What the checks catch (issue 17 item 4, every lane: fast, scale,
/// mem_mstress, mem_large); no change may regress below. Plain: the
/// double-free key and the 16-byte block-start test (`src/checks.rs`);
/// hardened: everything (`src/hardened.rs`): 80 on fast, scale and mem_large,
/// 78 on mem_mstress, where the 6000-byte overflow/underflow cases write
/// outside any free block (the block below `p` is not a free neighbour).
const PLAIN_FLOOR: usize = 45;
const HARDENED_FLOOR: usize = 78;
/// Issue 17 goals (scaled to 116 programs in the issue; reported in MISUSE.md).
const PLAIN_GOAL: usize = 40;
const HARDENED_GOAL: usize = 80;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Caught,
    Survived,
    Crashed,
}

fn outcome(r: &RunResult) -> Outcome {
    if r.timed_out {
        return Outcome::Crashed;
    }
    match r.status {
        Some(s) if s.signal() == Some(libc::SIGABRT) => Outcome::Caught,
        Some(s) if s.code().is_some() => Outcome::Survived,
        _ => Outcome::Crashed,
    }
}

fn run_case(bin: &std::path::Path, idx: &str, lib: Option<&Lib>) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.arg(idx);
    limits(&mut cmd, None);
    match lib {
        Some(l) => preload(&mut cmd, l),
        None => no_preload(&mut cmd),
    }
    outcome(&run(cmd, Duration::from_secs(20)))
}

#[test]
fn misuse_suite_plain_hardened_glibc() {
    let bin = compile_cxx("misuse.cpp");
    let (plain, hardened) = libraries();
    let mut list = Command::new(&bin);
    list.arg("list");
    no_preload(&mut list);
    let l = run(list, Duration::from_secs(20));
    assert_success(&l, "misuse list");
    let cases: Vec<(String, String, String)> = l
        .stdout_str()
        .lines()
        .map(|line| {
            let mut it = line.split_whitespace();
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
            )
        })
        .collect();
    assert!(cases.len() >= 80, "only {} cases", cases.len());

    let libs: [(&str, Option<&Lib>); 3] = [
        ("hz3 plain", Some(&plain)),
        ("hz3 hardened", Some(&hardened)),
        ("glibc", None),
    ];
    // results[lib][case]
    let results: Vec<Vec<Outcome>> = libs
        .iter()
        .map(|(_, lib)| cases.iter().map(|c| run_case(&bin, &c.0, *lib)).collect())
        .collect();

    let mut cats: Vec<&str> = Vec::new();
    for c in &cases {
        if !cats.contains(&c.1.as_str()) {
            cats.push(&c.1);
        }
    }
    let count = |li: usize, cat: Option<&str>, o: Outcome| {
        cases
            .iter()
            .zip(&results[li])
            .filter(|(c, r)| cat.is_none_or(|k| c.1 == k) && **r == o)
            .count()
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Misuse suite\n\nWritten by `hz3/tests/misuse.rs` (lane `{}`): {} cases of \
         `hz3/tests/c/misuse.cpp`, one process each. caught = SIGABRT, survived = normal exit, \
         crashed = other signal. Goal (issue 17): plain ≥ {PLAIN_GOAL}, hardened ≥ {HARDENED_GOAL}.\n",
        plain.name,
        cases.len()
    );
    let _ = writeln!(
        md,
        "| category | cases | {} |",
        libs.map(|l| l.0).join(" | ")
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    let mut rows: Vec<Option<&str>> = cats.iter().map(|c| Some(*c)).collect();
    rows.push(None);
    for cat in rows {
        let n = cases
            .iter()
            .filter(|c| cat.is_none_or(|k| c.1 == k))
            .count();
        let _ = write!(md, "| {} | {n} |", cat.unwrap_or("**total**"));
        for li in 0..libs.len() {
            let _ = write!(
                md,
                " {} / {} / {} |",
                count(li, cat, Outcome::Caught),
                count(li, cat, Outcome::Survived),
                count(li, cat, Outcome::Crashed)
            );
        }
        md.push('\n');
    }
    md.push_str("\nCells: caught / survived / crashed.\n");
    let out = manifest_dir().join("tests").join("MISUSE.md");
    std::fs::write(&out, &md).expect("write MISUSE.md");
    eprintln!("{md}");

    let mut missing = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if results[0][i] == Outcome::Caught && results[1][i] != Outcome::Caught {
            missing.push(c.2.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "hardened misses cases plain catches: {missing:?}"
    );
    let p = count(0, None, Outcome::Caught);
    let h = count(1, None, Outcome::Caught);
    assert!(p >= PLAIN_FLOOR, "plain caught {p} < floor {PLAIN_FLOOR}");
    assert!(
        h >= HARDENED_FLOOR,
        "hardened caught {h} < floor {HARDENED_FLOOR}"
    );
}
