//! Hardening tests under LD_PRELOAD (see hz3/tests/HARDENING.md):
//!
//! * exhaustion: `c/exhaust.cpp` under an address-space limit (RLIMIT_AS, set
//!   before exec), once with the arena hz3 can still reserve under the limit
//!   and once with no arena at all (`HZ3_DISABLE_ARENA=1`). Every entry point
//!   must fail with NULL/ENOMEM (`std::bad_alloc` for operator new) and the
//!   process must recover after freeing.
//! * faults: `c/faults.c`, one process per bad input or heap fault, under the
//!   plain and the hardened library of the lane. Each outcome (survived,
//!   reported and ignored, detected, crashed) must be the expected one, so a
//!   regression fails; the table is written to `target/hardening-table.md`.
//!
//! Libraries: the plain one as in the other preload tests (`HZ3_SO`, else
//! `target/lanes/<HZ3_LANE>/libhz3_<lane>.so`); the hardened one from
//! `HZ3_SO_HARDENED`, else `libhz3_<lane>_hardened.so` beside the plain one
//! (`cargo xtask build-lanes --lane <lane> --hardened`). Missing libraries fail.

mod common;

use common::*;
use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

// ------------------------------------------------------------------ libraries

/// Lane name from a library file name (`libhz3_<lane>[_hardened].so`).
fn lane_of(lib: &Lib) -> String {
    let n = lib.name.trim_end_matches(".so");
    let n = n.strip_suffix("_hardened").unwrap_or(n);
    n.strip_prefix("libhz3_").unwrap_or(n).to_string()
}

// ------------------------------------------------------------------ exhaustion

/// The arena size hz3 reports with HZ3_PRINT_CONFIG=1 ("arena reserved N MiB").
fn arena_mib(stderr: &str) -> Option<u64> {
    let l = stderr.lines().find(|l| l.contains("arena reserved"))?;
    l.split_whitespace()
        .skip_while(|w| *w != "reserved")
        .nth(1)?
        .parse()
        .ok()
}

/// The lane's configured arena in GiB (`arena_gib=N` in HZ3_PRINT_CONFIG's output).
fn lane_arena_gib(exe: &Path, lib: &Lib) -> u64 {
    let mut cmd = Command::new(exe);
    cmd.arg("--probe").env("HZ3_PRINT_CONFIG", "1");
    preload(&mut cmd, lib);
    let r = run(cmd, Duration::from_secs(60));
    assert_success(&r, "exhaust --probe");
    let err = r.stderr_str();
    err.split_whitespace()
        .find_map(|w| w.strip_prefix("arena_gib="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no arena_gib=N in the HZ3_PRINT_CONFIG output:\n{err}"))
}

/// Address-space limit of the exhaustion runs: 448 MiB for the program,
/// libstdc++, hz3's large-block registry and a fallback arena, plus the
/// tables sized by the lane's full arena (tags 1 MiB and span records 8 MiB
/// per GiB); far below the full reservation of every lane.
fn limit_mib(arena_gib: u64) -> u64 {
    448 + 9 * arena_gib
}

fn exhaust(disable_arena: bool) {
    let lib = allocator();
    let exe = compile_cxx("exhaust.cpp");
    let arena_gib = lane_arena_gib(&exe, &lib);
    let limit = limit_mib(arena_gib);
    let mut cmd = Command::new(&exe);
    cmd.args(["--expect-lib", &lib.name, "--max-mib", "4096"])
        .env("HZ3_PRINT_CONFIG", "1");
    if disable_arena {
        cmd.env("HZ3_DISABLE_ARENA", "1");
    } else {
        cmd.env_remove("HZ3_DISABLE_ARENA");
    }
    limits(&mut cmd, Some(limit << 20));
    preload(&mut cmd, &lib);
    let what = format!(
        "exhaust ({}, RLIMIT_AS {limit} MiB, {})",
        lib.name,
        if disable_arena {
            "HZ3_DISABLE_ARENA=1"
        } else {
            "fallback arena"
        }
    );
    let r = run(cmd, Duration::from_secs(240));
    assert_success(&r, &what);
    let out = r.stdout_str();
    assert!(
        out.contains("exhaust: all checks passed"),
        "{what} did not finish:\n{}",
        r.describe()
    );
    let err = r.stderr_str();
    let arena = arena_mib(&err).unwrap_or_else(|| {
        panic!("{what}: no `arena reserved` line with HZ3_PRINT_CONFIG=1:\n{err}")
    });
    if disable_arena {
        assert_eq!(
            arena, 0,
            "{what}: HZ3_DISABLE_ARENA=1 but an arena was reserved"
        );
    } else {
        assert!(
            arena > 0 && arena < arena_gib << 10,
            "{what}: expected a fallback arena smaller than the lane's {arena_gib} GiB, got {arena} MiB \
             (0: the limit left no room for one; see limit_mib)"
        );
    }
    eprint!("{what}: arena {arena} MiB\n{out}");
}

/// Under RLIMIT_AS the full arena cannot be reserved: hz3 falls back to a
/// smaller one, fills it, then the large path runs out too.
#[test]
fn exhaustion_with_fallback_arena() {
    exhaust(false);
}

/// With no arena at all every block is its own mapping, until none is left.
#[test]
fn exhaustion_without_arena() {
    exhaust(true);
}

// ------------------------------------------------------------------ faults

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// Exit 0, nothing on stderr from hz3 (correct result, or the fault went unnoticed).
    Survived,
    /// Exit 0 after an `hz3:` report: the bad pointer was reported and ignored.
    Reported,
    /// Abort with an `hz3:` message.
    Detected,
    /// Killed by a signal without an hz3 message (segfault, ...).
    Crashed,
    /// The program's own checks failed (wrong result) or it hung.
    Wrong,
}
use Outcome::*;

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Survived => "survived",
            Reported => "reported, ignored",
            Detected => "detected (abort)",
            Crashed => "CRASHED",
            Wrong => "WRONG RESULT",
        }
    }
}

struct Case {
    mode: &'static str,
    fault: &'static str,
    /// Accepted outcomes with the plain and the hardened library. Two entries
    /// where the plain build makes no promise: a double free or an interior
    /// free is either unnoticed or caught later, when the block reaches a span
    /// check in the central cache, depending on cache flush timing.
    plain: &'static [Outcome],
    hardened: &'static [Outcome],
}

const fn case(
    mode: &'static str,
    fault: &'static str,
    plain: &'static [Outcome],
    hardened: &'static [Outcome],
) -> Case {
    Case {
        mode,
        fault,
        plain,
        hardened,
    }
}

const S: &[Outcome] = &[Survived];
const R: &[Outcome] = &[Reported];
const D: &[Outcome] = &[Detected];
/// Not promised by the plain build: unnoticed, or caught at a later flush.
const LATER: &[Outcome] = &[Survived, Detected];
/// The plain build follows a corrupted link: a crash (or, better, a detection).
const CRASH: &[Outcome] = &[Crashed, Detected];

/// Expected outcomes (every lane).
#[rustfmt::skip]
const CASES: &[Case] = &[
    case("malloc_size_max", "`malloc(SIZE_MAX)`", S, S),
    case("calloc_overflow", "`calloc` with `nmemb * size` overflow", S, S),
    case("reallocarray_overflow", "`reallocarray` overflow", S, S),
    case("aligned_alloc_align_0", "`aligned_alloc` alignment 0", S, S),
    case("aligned_alloc_align_3", "`aligned_alloc` alignment 3", S, S),
    case("aligned_alloc_align_24", "`aligned_alloc` alignment 24", S, S),
    case("aligned_alloc_align_huge", "`aligned_alloc` alignment 2^63", S, S),
    case("posix_memalign_align_0", "`posix_memalign` alignment 0", S, S),
    case("posix_memalign_align_3", "`posix_memalign` alignment 3", S, S),
    case("posix_memalign_align_24", "`posix_memalign` alignment 24", S, S),
    case("posix_memalign_align_huge", "`posix_memalign` alignment 2^63", S, S),
    case("memalign_align_0", "`memalign` alignment 0", S, S),
    case("memalign_align_3", "`memalign` alignment 3", S, S),
    case("memalign_align_24", "`memalign` alignment 24", S, S),
    case("memalign_align_huge", "`memalign` alignment 2^63", S, S),
    case("free_null", "`free(NULL)`", S, S),
    case("double_free", "double free, immediate (`free(a); free(a)`)", D, D),
    case("double_free_aba", "double free with a free in between (`a, b, a`)", D, D),
    case("double_free_cross_thread", "double free, first free by another thread", LATER, D),
    case("double_free_large", "double free of a large block (1 MiB)", R, D),
    case("free_interior", "free of a pointer inside a block (+16)", LATER, D),
    case("free_stack", "free of a stack pointer", R, D),
    case("free_mmap", "free of a pointer from a private `mmap`", R, D),
    case("free_arena_unallocated", "free of a never-allocated address inside the arena", D, D),
    case("free_arena_unallocated_uncached", "the same, by a thread that has no thread cache yet", D, D),
    case("uaf_link_garbage", "write after free (free-list link := garbage), then malloc", CRASH, D),
    case("uaf_link_to_live", "write after free (link := a live block), then malloc", S, D),
    case("uaf_link_to_zeroed_live", "write after free (link := a live block whose first word is 0)", S, D),
    case("uaf_payload_write", "write after free into the payload (not the link)", S, D),
    case("realloc_stack", "`realloc` of a stack pointer", D, D),
    case("realloc_interior", "`realloc` of a pointer inside a block (+16)", LATER, D),
    case("usable_size_stack", "`malloc_usable_size` of a stack pointer", S, S),
];

fn labels(v: &[Outcome]) -> String {
    v.iter().map(|o| o.label()).collect::<Vec<_>>().join(" or ")
}

/// `0x7f12...` -> `0x...`: addresses differ from run to run.
fn without_addresses(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        let n = rest
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len());
        if n > 0 {
            out.push_str("...");
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

struct Ran {
    outcome: Outcome,
    detail: String,
    status: String,
}

fn run_fault(exe: &Path, lib: &Lib, mode: &str) -> Ran {
    let mut cmd = Command::new(exe);
    cmd.arg(mode);
    limits(&mut cmd, None);
    preload(&mut cmd, lib);
    let r = run(cmd, Duration::from_secs(60));
    let err = r.stderr_str();
    let out = r.stdout_str();
    let hz3_msg = err
        .lines()
        .find(|l| l.starts_with("hz3:"))
        .map(str::to_string);
    let notes: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("note: "))
        .collect();
    let (outcome, status) = if r.timed_out {
        (Wrong, "timed out".to_string())
    } else {
        match r.status {
            Some(s) if s.code() == Some(0) => (
                if hz3_msg.is_some() {
                    Reported
                } else {
                    Survived
                },
                "exit 0".to_string(),
            ),
            Some(s) if s.code().is_some() => (Wrong, format!("exit {}", s.code().unwrap())),
            Some(s) => {
                let sig = s.signal().unwrap_or(0);
                (
                    if sig == libc::SIGABRT && hz3_msg.is_some() {
                        Detected
                    } else {
                        Crashed
                    },
                    format!(
                        "signal {sig}{}",
                        match sig {
                            libc::SIGABRT => " (SIGABRT)",
                            libc::SIGSEGV => " (SIGSEGV)",
                            libc::SIGBUS => " (SIGBUS)",
                            _ => "",
                        }
                    ),
                )
            }
            None => (Wrong, "no status".to_string()),
        }
    };
    let mut detail = String::new();
    for n in &notes {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(n);
    }
    if let Some(m) = &hz3_msg {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        let _ = write!(detail, "`{m}`");
    }
    for l in out.lines().chain(err.lines()) {
        if l.starts_with("WRONG") || l.starts_with("FAIL") {
            let _ = write!(detail, "; {l}");
        }
    }
    if detail.is_empty() {
        detail = status.clone();
    }
    Ran {
        outcome,
        detail: without_addresses(&detail).replace('|', "\\|"),
        status,
    }
}

/// Every bad input and heap fault in `c/faults.c`, each in its own process,
/// under the plain and the hardened library: outcomes must match `CASES`.
#[test]
fn fault_table_plain_and_hardened() {
    let (plain, hardened) = libraries();
    let lane = lane_of(&plain);
    let exe = compile_c("faults.c");

    // faults.c and CASES must list the same modes.
    let r = run(
        {
            let mut c = Command::new(&exe);
            c.arg("--list");
            c
        },
        Duration::from_secs(30),
    );
    assert_success(&r, "faults --list");
    let listed: Vec<String> = r.stdout_str().lines().map(str::to_string).collect();
    let known: Vec<&str> = CASES.iter().map(|c| c.mode).collect();
    for m in &listed {
        assert!(
            known.contains(&m.as_str()),
            "faults.c mode {m} has no expected outcome in CASES"
        );
    }
    for m in &known {
        assert!(
            listed.iter().any(|l| l == m),
            "CASES lists {m}, which faults.c does not have"
        );
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "## Faults and bad input: lane `{lane}`\n\n\
         Plain: `{}`; hardened: `{}`. One process per row (hz3/tests/c/faults.c).\n\n\
         | fault | plain | hardened | what happened (plain / hardened) |\n|---|---|---|---|",
        plain.name, hardened.name
    );
    let mut bad = Vec::new();
    let mut counts = [[0usize; 5]; 2];
    for c in CASES {
        let p = run_fault(&exe, &plain, c.mode);
        let h = run_fault(&exe, &hardened, c.mode);
        for (ran, want, which, idx) in [(&p, c.plain, "plain", 0), (&h, c.hardened, "hardened", 1)]
        {
            counts[idx][ran.outcome as usize] += 1;
            if !want.contains(&ran.outcome) {
                bad.push(format!(
                    "{} ({which}): expected {}, got {} [{}]: {}",
                    c.mode,
                    labels(want),
                    ran.outcome.label(),
                    ran.status,
                    ran.detail
                ));
            }
        }
        let detail = if p.detail == h.detail {
            p.detail.clone()
        } else {
            format!("{} / {}", p.detail, h.detail)
        };
        let _ = writeln!(
            table,
            "| {} (`{}`) | {} | {} | {} |",
            c.fault,
            c.mode,
            p.outcome.label(),
            h.outcome.label(),
            detail
        );
    }
    for (idx, which) in [(0, "plain"), (1, "hardened")] {
        let k = counts[idx];
        let _ = write!(
            table,
            "{}{which}: {} faults tried: {} survived, {} reported and ignored, {} detected, {} crashed, {} wrong",
            if idx == 0 { "\n" } else { "; " },
            CASES.len(),
            k[Survived as usize],
            k[Reported as usize],
            k[Detected as usize],
            k[Crashed as usize],
            k[Wrong as usize]
        );
    }
    table.push_str(".\n");
    let target = workspace_dir().join("target");
    let _ = std::fs::create_dir_all(&target);
    for name in [
        "hardening-table.md".to_string(),
        format!("hardening-table-{lane}.md"),
    ] {
        let path = target.join(&name);
        std::fs::write(&path, &table).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    eprintln!("{table}");
    eprintln!(
        "(written to {})",
        target.join("hardening-table.md").display()
    );
    assert!(
        bad.is_empty(),
        "{} outcome(s) differ from the expected ones (see hz3/tests/HARDENING.md):\n{}",
        bad.len(),
        bad.join("\n")
    );
}
