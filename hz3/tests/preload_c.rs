//! glibc malloc-API semantics and the C++ operator new/delete family,
//! checked by C/C++ programs running with the hz3 `.so` in `LD_PRELOAD`.
//! See tests/README.md.  Needs the library: `cargo xtask build-lanes`.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Every semantic of the C ABI (edge.c), single-threaded and then in four
/// threads at once.  `--strict`: all exports must come from hz3, C23
/// free_sized/free_aligned_sized must exist, realloc(p, 0) frees and returns
/// NULL like glibc, and mallinfo2 must account for live bytes.
#[test]
fn edge_cases_under_preload() {
    let lib = allocator();
    let exe = compile_c("edge.c");
    let mut cmd = Command::new(&exe);
    cmd.args(["--expect-lib", &lib.name, "--strict", "--threads", "4"]);
    preload(&mut cmd, &lib);
    let r = run(cmd, Duration::from_secs(300));
    assert_success(&r, "edge.c under LD_PRELOAD");
    assert!(
        r.stdout_str().contains("edge: all checks passed"),
        "edge.c did not finish:\n{}",
        r.describe()
    );
}

/// The same program with more threads and another seed: sizes, data and
/// interleavings differ from the first run.
#[test]
fn edge_cases_eight_threads_other_seed() {
    let lib = allocator();
    let exe = compile_c("edge.c");
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &lib.name,
        "--strict",
        "--threads",
        "8",
        "--seed",
        "977",
    ]);
    preload(&mut cmd, &lib);
    let r = run(cmd, Duration::from_secs(300));
    assert_success(&r, "edge.c (8 threads, seed 977) under LD_PRELOAD");
}

/// operator new/delete: plain, sized, aligned (32 B .. 256 KiB), nothrow,
/// arrays; huge sizes throw std::bad_alloc (nothrow returns nullptr) and
/// call the new_handler; std containers churn in four threads.
#[test]
fn cxx_operators_under_preload() {
    let lib = allocator();
    let exe = compile_cxx("cxx.cpp");
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &lib.name,
        "--require-operators",
        "--threads",
        "4",
    ]);
    preload(&mut cmd, &lib);
    let r = run(cmd, Duration::from_secs(300));
    assert_success(&r, "cxx.cpp under LD_PRELOAD");
    assert!(
        r.stdout_str().contains("cxx: all checks passed"),
        "cxx.cpp did not finish:\n{}",
        r.describe()
    );
}

/// The library depends on libc alone (the core is no_std): preloading it into
/// a process loads no unwinder (libgcc_s) or other library the program did not
/// ask for. Read from the ELF dynamic section with `readelf -d`.
#[test]
fn library_needs_libc_alone() {
    let lib = allocator();
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib.path)
        .output()
        .expect("readelf (binutils) must be installed");
    assert!(
        out.status.success(),
        "readelf -d {} failed",
        lib.path.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries parsed from:\n{text}");
    assert!(
        needed.iter().all(|n| n.starts_with("libc.so")
                || n.starts_with("ld-linux")
                // glibc < 2.34 keeps the thread-key and dl calls there (src/glibc_abi.rs);
                // on newer glibc they are empty compatibility objects.
                || *n == "libpthread.so.0"
                || *n == "libdl.so.2"),
        "{} needs more than libc: {needed:?}",
        lib.name
    );
}

/// The harness itself: edge.c must pass on plain glibc, must fail when the
/// expected library is not loaded, and must fail against a deliberately
/// broken allocator (tests/c/broken_shim.c).  Does not need hz3.
#[test]
fn harness_self_test_checks_can_fail() {
    let exe = compile_c("edge.c");

    // 1. glibc itself (no preload) passes every check that applies to it.
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--glibc-realloc0",
        "--mallinfo-accounting",
        "--threads",
        "2",
    ]);
    no_preload(&mut cmd);
    let r = run(cmd, Duration::from_secs(300));
    assert_success(&r, "self-test: edge.c on glibc without preload");

    // 2. Claiming a library that is not loaded is caught.
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        "libhz3_not_loaded.so",
        "--threads",
        "0",
        "--skip",
        SKIP_ALL,
    ]);
    no_preload(&mut cmd);
    let r = run(cmd, Duration::from_secs(60));
    assert!(
        !r.success(),
        "self-test: edge.c passed although the expected library was not loaded\n{}",
        r.describe()
    );
    assert!(
        r.stderr_str().contains("is not mapped"),
        "self-test: no 'not mapped' failure:\n{}",
        r.describe()
    );

    // 3. A broken allocator is caught.
    let shim = compile_c_shared("broken_shim.c", "libhz3_broken_shim.so");
    let shim_lib = Lib {
        path: shim.clone(),
        name: "libhz3_broken_shim.so".into(),
    };
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &shim_lib.name,
        "--threads",
        "0",
        "--skip",
        "usable,aligned,calloc,valloc,c23,libc,realloc",
    ]);
    preload(&mut cmd, &shim_lib);
    let r = run(cmd, Duration::from_secs(60));
    assert!(
        !r.success(),
        "self-test: edge.c passed against the broken shim\n{}",
        r.describe()
    );
    assert!(
        r.stderr_str().contains("wrote *memptr"),
        "self-test: the posix_memalign bug of the shim was not reported:\n{}",
        r.describe()
    );
    // malloc_usable_size lies by 64 bytes: writing what it promises must
    // fail the run (a FAIL line or the heap falling over - either way not 0).
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--expect-lib",
        &shim_lib.name,
        "--threads",
        "0",
        "--skip",
        &skip_all_but("usable"),
    ]);
    preload(&mut cmd, &shim_lib);
    let r = run(cmd, Duration::from_secs(60));
    assert!(
        !r.success(),
        "self-test: the lying malloc_usable_size was not caught\n{}",
        r.describe()
    );
    eprintln!(
        "self-test: broken shim caught ({})",
        r.describe().lines().nth(1).unwrap_or("")
    );
}

const SECTIONS: &[&str] = &[
    "basic",
    "huge",
    "calloc",
    "reallocarray",
    "posix_memalign",
    "aligned",
    "valloc",
    "realloc",
    "usable",
    "c23",
    "libc",
    "mallctl",
];
const SKIP_ALL: &str =
    "basic,huge,calloc,reallocarray,posix_memalign,aligned,valloc,realloc,usable,c23,libc,mallctl";

fn skip_all_but(keep: &str) -> String {
    SECTIONS
        .iter()
        .filter(|s| **s != keep)
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}
