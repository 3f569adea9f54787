//! Run-time options and mallopt (issue 18 item 5; `hz3/src/options.rs`). Each
//! test runs `hz3/tests/c/options_probe.c` under the lane's preload library
//! (`HZ3_SO`, as `cargo xtask test` sets it) with and without an option, and
//! compares hz3's counters read through `hz3_stats_json`. Every run pins the
//! options it does not test to values that do not interfere (no decay, the
//! largest purge bound), so the result does not depend on the lane's defaults.
//!
//! * `options_are_printed_and_bad_values_reported_once`: HZ3_PRINT_CONFIG shows
//!   the values in effect; a bad value gives one line and the fallback.
//! * `purge_owner_kib_bounds_free_dirty_memory`: HZ3_PURGE_OWNER_KIB=1024 makes
//!   freed pages go back to the OS (bytes_purged > 0, dirty_free_bytes at most
//!   twice the bound: purges above the bound are rate-limited up to twice it);
//!   at the largest bound nothing is purged.
//! * `purge_decay_ms_returns_idle_pages`: HZ3_PURGE_DECAY_MS=1 purges pages left
//!   free across two 30 ms pauses; HZ3_PURGE_DECAY_MS=3600000 does not.
//! * `large_cache_mib_zero_caches_nothing`: HZ3_LARGE_CACHE_MIB=0 leaves
//!   large_cached_bytes 0 after freeing large blocks; 1024 caches them.
//! * `mallopt_trim_threshold_and_arena_max`: mallopt(M_TRIM_THRESHOLD, 1 MiB)
//!   returns 1 and bounds free dirty memory like HZ3_PURGE_OWNER_KIB=1024;
//!   M_ARENA_MAX=1 returns 1 and shows as owners_in_use=1; M_MMAP_THRESHOLD
//!   returns 1 as in glibc (accepted, ignored); an unknown parameter and a
//!   negative threshold return 0.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Options that do not interfere: no decay, the largest purge bound.
const QUIET: [(&str, &str); 2] = [
    ("HZ3_PURGE_DECAY_MS", "3600000"),
    ("HZ3_PURGE_OWNER_KIB", "16777216"),
];

#[derive(Debug)]
struct Counters {
    bytes_purged: u64,
    dirty_free_bytes: u64,
    large_cached_bytes: u64,
    stdout: String,
    stderr: String,
}

/// Runs options_probe `mode` under the lane's library with QUIET overridden by `env`.
fn probe(mode: &str, env: &[(&str, &str)]) -> Counters {
    let exe = compile_c("options_probe.c");
    let lib = allocator();
    let mut cmd = Command::new(&exe);
    cmd.arg(mode);
    for (k, _) in std::env::vars() {
        if k.starts_with("HZ3_") {
            cmd.env_remove(&k);
        }
    }
    preload(&mut cmd, &lib);
    limits(&mut cmd, None);
    for (k, v) in QUIET.iter().chain(env) {
        cmd.env(k, v);
    }
    let r = run(cmd, TIMEOUT);
    assert_success(&r, &format!("options_probe {mode} {env:?}"));
    let stdout = r.stdout_str();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let get = |name: &str| -> u64 {
        let pat = format!("{name}=");
        let at = last
            .find(&pat)
            .unwrap_or_else(|| panic!("no {name} in {last:?}"));
        last[at + pat.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Counters {
        bytes_purged: get("bytes_purged"),
        dirty_free_bytes: get("dirty_free_bytes"),
        large_cached_bytes: get("large_cached_bytes"),
        stdout: stdout.clone(),
        stderr: r.stderr_str(),
    }
}

/// The `hz3: options ...` line of HZ3_PRINT_CONFIG.
fn options_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("hz3: options "))
        .unwrap_or_else(|| panic!("no options line in:\n{stderr}"))
        .to_string()
}

#[test]
fn options_are_printed_and_bad_values_reported_once() {
    let c = probe(
        "large",
        &[
            ("HZ3_PRINT_CONFIG", "1"),
            ("HZ3_PURGE_DECAY_MS", "7"),
            ("HZ3_PURGE_OWNER_KIB", "4096"),
            ("HZ3_LARGE_CACHE_MIB", "3"),
        ],
    );
    assert_eq!(
        options_line(&c.stderr),
        "hz3: options purge_decay_ms=7 purge_owner_kib=4096 large_cache_mib=3"
    );
    let c = probe(
        "large",
        &[
            ("HZ3_PRINT_CONFIG", "1"),
            ("HZ3_PURGE_DECAY_MS", "abc"),
            ("HZ3_PURGE_OWNER_KIB", "-5"),
            ("HZ3_LARGE_CACHE_MIB", "99999999"),
        ],
    );
    for (var, used) in [
        ("HZ3_PURGE_DECAY_MS", "is not a decimal number; using "),
        ("HZ3_PURGE_OWNER_KIB", "is not a decimal number; using "),
        (
            "HZ3_LARGE_CACHE_MIB",
            "is out of range 0..=65536; using 65536",
        ),
    ] {
        let pat = format!("hz3: {var}=");
        let lines: Vec<&str> = c.stderr.lines().filter(|l| l.starts_with(&pat)).collect();
        assert_eq!(lines.len(), 1, "{var}: {:?}\n{}", lines, c.stderr);
        assert!(lines[0].contains(used), "{var}: {}", lines[0]);
    }
    // Garbage falls back to the lane's value, out of range is clamped.
    let line = options_line(&c.stderr);
    assert!(line.ends_with(" large_cache_mib=65536"), "{line}");
    let lane = std::env::var("HZ3_LANE").unwrap_or_else(|_| "fast".into());
    let manifest = std::fs::read_to_string(workspace_dir().join(format!("lanes/{lane}.toml")))
        .expect("lane manifest");
    let lane_value = |key: &str| -> String {
        let l = manifest
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in lanes/{lane}.toml"));
        l.split('=')
            .nth(1)
            .unwrap()
            .split('#')
            .next()
            .unwrap()
            .trim()
            .to_string()
    };
    for key in ["purge_decay_ms", "purge_owner_kib"] {
        let want = format!(" {key}={}", lane_value(key));
        assert!(line.contains(&want), "{line} lacks {want}");
    }
}

#[test]
fn purge_owner_kib_bounds_free_dirty_memory() {
    let quiet = probe("pages", &[]);
    let bounded = probe("pages", &[("HZ3_PURGE_OWNER_KIB", "1024")]);
    assert_eq!(quiet.bytes_purged, 0, "{quiet:?}");
    assert!(quiet.dirty_free_bytes > 32 << 20, "{quiet:?}");
    assert!(bounded.bytes_purged > 32 << 20, "{bounded:?}");
    assert!(bounded.dirty_free_bytes <= 2 << 20, "{bounded:?}");
}

#[test]
fn purge_decay_ms_returns_idle_pages() {
    let quiet = probe("decay", &[]);
    let decayed = probe("decay", &[("HZ3_PURGE_DECAY_MS", "1")]);
    assert_eq!(quiet.bytes_purged, 0, "{quiet:?}");
    assert!(decayed.bytes_purged > 32 << 20, "{decayed:?}");
    assert!(
        decayed.dirty_free_bytes < quiet.dirty_free_bytes / 2,
        "{decayed:?} vs {quiet:?}"
    );
}

#[test]
fn large_cache_mib_zero_caches_nothing() {
    let cached = probe("large", &[("HZ3_LARGE_CACHE_MIB", "1024")]);
    let off = probe("large", &[("HZ3_LARGE_CACHE_MIB", "0")]);
    assert!(cached.large_cached_bytes >= 4 << 20, "{cached:?}");
    assert_eq!(off.large_cached_bytes, 0, "{off:?}");
}

#[test]
fn mallopt_trim_threshold_and_arena_max() {
    let c = probe("mallopt", &[("HZ3_PRINT_CONFIG", "1")]);
    assert!(
        c.stdout
            .contains("mallopt trim=1 arena_max=1 mmap_threshold=1 unknown=0 trim_negative=0"),
        "{}",
        c.stdout
    );
    // hz3_print_config after the mallopt calls: the values in effect.
    let lines: Vec<&str> = c
        .stderr
        .lines()
        .filter(|l| l.starts_with("hz3: options "))
        .collect();
    assert_eq!(lines.len(), 2, "{}", c.stderr);
    assert!(lines[1].contains(" purge_owner_kib=1024 "), "{}", lines[1]);
    let owners: Vec<&str> = c
        .stderr
        .lines()
        .filter(|l| l.starts_with("hz3: owners_in_use="))
        .collect();
    assert!(
        owners[1].starts_with("hz3: owners_in_use=1 of "),
        "{owners:?}"
    );
    assert!(c.bytes_purged > 32 << 20, "{c:?}");
    assert!(c.dirty_free_bytes <= 2 << 20, "{c:?}");
}
