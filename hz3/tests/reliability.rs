//! Life cycle and environment (issue 17; see hz3/tests/HARDENING.md, section
//! "Life cycle and environment (issue 17)"). Each test runs a program from
//! `hz3/tests/c/` under the plain and the hardened library of the lane under
//! test (`HZ3_SO`/`HZ3_SO_HARDENED`, as `cargo xtask test` sets them for every
//! lane), each run with a timeout, so a hang fails instead of stalling CI.
//!
//! * `env_garbage_is_reported_once`: `HZ3_*` variables with garbage values
//!   print exactly one line naming the variable and the value used.
//! * `cxx_module_in_c_host_gets_new_handler_and_bad_alloc`: a C++ module
//!   dlopened into a C host (libstdc++ loaded after hz3): a failing operator
//!   new calls the new-handler and throws `std::bad_alloc`.
//! * `fork_with_atfork_handlers_registered_before_first_malloc`: the program's
//!   atfork handlers allocate in prepare and/or child; hz3's handlers
//!   (registered at load) wrap them, so fork finishes.
//! * `fork_while_another_thread_initialises`: a fork that lands while another
//!   thread is inside hz3's initialisation: fork() waits for it; a raw fork
//!   system call leaves a child that initialises again. No child spins.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Both libraries of the lane under test.
fn both() -> [Lib; 2] {
    let (plain, hardened) = libraries();
    [plain, hardened]
}

/// Runs `exe` under `lib` with `env` (and no other HZ3_* variable).
fn run_with(exe: &std::path::Path, args: &[&str], lib: &Lib, env: &[(&str, &str)]) -> RunResult {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("HZ3_") {
            cmd.env_remove(&k);
        }
    }
    preload(&mut cmd, lib);
    limits(&mut cmd, None);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, TIMEOUT)
}

// ------------------------------------------------------------------ item 8: environment

const GARBAGE: [&str; 5] = ["abc", "-5", "", "99999999999999999999", "2"];

/// hz3's lines on stderr that name `var`.
fn lines_naming<'a>(stderr: &'a str, var: &str) -> Vec<&'a str> {
    let pat = format!("hz3: {var}=");
    stderr.lines().filter(|l| l.starts_with(&pat)).collect()
}

/// "owners_in_use=N" from HZ3_PRINT_CONFIG's output.
fn owners_in_use(stderr: &str) -> (usize, usize) {
    let l = stderr
        .lines()
        .find(|l| l.contains("owners_in_use="))
        .unwrap_or_else(|| panic!("no owners_in_use line in:\n{stderr}"));
    let rest = &l[l.find("owners_in_use=").unwrap() + "owners_in_use=".len()..];
    let mut it = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let n = it.next().unwrap().parse().unwrap();
    let of = it.next().unwrap().parse().unwrap();
    (n, of)
}

#[test]
fn env_garbage_is_reported_once() {
    let exe = compile_c("env_probe.c");
    let mut failures = Vec::new();
    for lib in both() {
        // Flags: only 0 and 1; garbage is reported once and means 0.
        for var in ["HZ3_PRINT_STATS", "HZ3_PRINT_CONFIG", "HZ3_DISABLE_ARENA"] {
            for val in GARBAGE {
                let r = run_with(&exe, &[], &lib, &[(var, val)]);
                let err = r.stderr_str();
                let named = lines_naming(&err, var);
                let hz3_lines = err.lines().filter(|l| l.starts_with("hz3:")).count();
                let ok = r.success()
                    && named.len() == 1
                    && hz3_lines == 1
                    && named[0]
                        .starts_with(&format!("hz3: {var}=\"{}\"", &val[..val.len().min(64)]))
                    && named[0].ends_with("; using 0");
                if !ok {
                    failures.push(format!(
                        "{} {var}={val:?}: expected one line `hz3: {var}=\"{val}\" ...; using 0` and no other hz3 line\n{}",
                        lib.name,
                        r.describe()
                    ));
                }
            }
            for val in ["0", "1"] {
                let r = run_with(&exe, &[], &lib, &[(var, val)]);
                let err = r.stderr_str();
                if !r.success() || !lines_naming(&err, var).is_empty() {
                    failures.push(format!(
                        "{} {var}={val}: a valid value must be taken silently\n{}",
                        lib.name,
                        r.describe()
                    ));
                }
            }
        }
        // HZ3_OWNERS: decimal in 1..=owners; garbage gives the default, out of
        // range is clamped; the line names the value really used.
        let base = run_with(&exe, &[], &lib, &[("HZ3_PRINT_CONFIG", "1")]);
        assert!(base.success(), "{}", base.describe());
        let (default, max) = owners_in_use(&base.stderr_str());
        let cases: [(&str, usize); 8] = [
            ("abc", default),
            ("-5", default),
            ("", default),
            ("99999999999999999999", max),
            ("0", 1),
            ("100000", max),
            ("4x", default),
            (" 2", default),
        ];
        for (val, want) in cases {
            let r = run_with(
                &exe,
                &[],
                &lib,
                &[("HZ3_PRINT_CONFIG", "1"), ("HZ3_OWNERS", val)],
            );
            let err = r.stderr_str();
            let named = lines_naming(&err, "HZ3_OWNERS");
            let ok = r.success()
                && named.len() == 1
                && named[0].ends_with(&format!("; using {want}"))
                && owners_in_use(&err).0 == want;
            if !ok {
                failures.push(format!(
                    "{} HZ3_OWNERS={val:?}: expected one line `hz3: HZ3_OWNERS=\"{val}\" ...; using {want}` and owners_in_use={want}\n{}",
                    lib.name,
                    r.describe()
                ));
            }
        }
        let r = run_with(
            &exe,
            &[],
            &lib,
            &[("HZ3_PRINT_CONFIG", "1"), ("HZ3_OWNERS", "1")],
        );
        let err = r.stderr_str();
        if !r.success()
            || !lines_naming(&err, "HZ3_OWNERS").is_empty()
            || owners_in_use(&err).0 != 1
        {
            failures.push(format!(
                "{} HZ3_OWNERS=1 must be taken silently\n{}",
                lib.name,
                r.describe()
            ));
        }
        eprintln!("{}: environment parsing checked", lib.name);
    }
    assert!(
        failures.is_empty(),
        "{} environment case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ item 2: C++ in a C host

#[test]
fn cxx_module_in_c_host_gets_new_handler_and_bad_alloc() {
    let host = compile_c("cxx_host.c");
    let module = compile_cxx_shared("cxx_module.cpp");
    let module = module.to_string_lossy().into_owned();
    let mut failures = Vec::new();
    for lib in both() {
        let r = run_with(&host, &[&module], &lib, &[]);
        if !r.success() || !r.stdout_str().contains("cxx_host: ok") {
            failures.push(format!(
                "{}: a C++ module dlopened into a C host must get the new-handler and std::bad_alloc\n{}",
                lib.name,
                r.describe()
            ));
        } else {
            eprintln!(
                "{}: new-handler and std::bad_alloc work in a dlopened module",
                lib.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------------ item 1: fork

/// Runs `exe mode` under both libraries; each run must print `ok`.
fn run_modes(exe: &std::path::Path, modes: &[&str], what: &str) {
    run_modes_with(exe, modes, what, &[]);
}

/// `run_modes` with `env` set.
fn run_modes_with(exe: &std::path::Path, modes: &[&str], what: &str, env: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for lib in both() {
        for mode in modes {
            let r = run_with(exe, &[mode], &lib, env);
            if !r.success() || !r.stdout_str().contains(": ok") {
                failures.push(format!("{} {what} {mode}:\n{}", lib.name, r.describe()));
            } else {
                eprintln!("{} {what} {mode}: ok in {:.2?}", lib.name, r.elapsed);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fork_with_atfork_handlers_registered_before_first_malloc() {
    let exe = compile_c("atfork_early.c");
    run_modes(
        &exe,
        &["prepare", "child", "both"],
        "atfork handlers that allocate",
    );
}

#[test]
fn fork_while_another_thread_initialises() {
    // -rdynamic: the program's getenv must take hz3's calls (it holds the
    // initialising thread there).
    let exe = compile_c_with("fork_init.c", &["-rdynamic"]);
    // Without the purge thread, which the preload object starts at load
    // (creating it allocates, so hz3 would be initialised before main).
    run_modes_with(
        &exe,
        &["fork", "rawfork"],
        "fork during initialisation",
        &[("HZ3_BACKGROUND_PURGE", "0")],
    );
}

/// `HZ3_PRINT_STATS=json` prints the statistics at exit as one JSON object on
/// one line (the same text as `hz3_stats_json`); `1` prints key=value lines.
#[test]
fn print_stats_json_at_exit() {
    let exe = compile_c("env_probe.c");
    for lib in both() {
        let r = run_with(&exe, &[], &lib, &[("HZ3_PRINT_STATS", "json")]);
        assert!(r.success(), "{}", r.describe());
        let err = r.stderr_str();
        let json: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("{\"lane\":\""))
            .collect();
        assert_eq!(json.len(), 1, "{}: want one JSON line:\n{err}", lib.name);
        let j = json[0];
        let depth = j.bytes().fold(0i32, |d, b| match b {
            b'{' | b'[' => d + 1,
            b'}' | b']' => d - 1,
            _ => d,
        });
        assert!(
            j.ends_with("]}") && depth == 0 && j.contains("\"span_bytes\":"),
            "{}: not one complete JSON object: {j}",
            lib.name
        );
        assert!(
            !err.lines().any(|l| l.starts_with("hz3: span_bytes")),
            "{}: json must replace the key=value lines:\n{err}",
            lib.name
        );
        let r = run_with(&exe, &[], &lib, &[("HZ3_PRINT_STATS", "1")]);
        assert!(
            r.stderr_str()
                .lines()
                .any(|l| l.starts_with("hz3: span_bytes ")),
            "{}: HZ3_PRINT_STATS=1 prints key=value lines\n{}",
            lib.name,
            r.describe()
        );
    }
}
