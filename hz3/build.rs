//! Build script: turns a lane manifest (`lanes/<name>.toml`) into compile-time
//! constants (`$OUT_DIR/lane_config.rs`). A lane is a manifest, not a fork of the code.
//!
//! Lane selection, first match wins: `HZ3_LANE_FILE=<path>` (any manifest),
//! `HZ3_LANE=<name>`, a `lane-<name>` cargo feature (`lane-mem-mstress` for
//! `mem_mstress`); the default is `fast`. `<name>` is looked up in the workspace's
//! `lanes/` and then in the packaged crate's own copy.
//! An unknown key or an invalid value is a build error naming the file and the key.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// (key, kind, min, max, what it means). kind: "int", "bool", "remote".
#[rustfmt::skip]
const KEYS: &[(&str, &str, i64, i64, &str)] = &[
    ("owners", "int", 1, 255, "number of owners (heaps); threads map onto them"),
    ("owners_per_cpu", "int", 0, 255, "owners in use per CPU the process may run on, at most `owners` (0 = all); HZ3_OWNERS overrides at run time"),
    ("remote", "remote", 0, 0, "remote-free stash: \"dense\" or \"ring\""),
    ("owner_stash", "bool", 0, 1, "remote frees reach their owner through a lock-free per-(owner, class) stash"),
    ("remote_batch", "int", 1, 4096, "objects per remote bank entry before it is flushed"),
    ("ring_slots", "int", 16, 65536, "outbox ring entries (ring stash only)"),
    ("remote_kib", "int", 16, 1048576, "bytes of remote-freed objects a thread holds before sending them all, in KiB"),
    ("arena_gib", "int", 1, 256, "reserved virtual arena in GiB"),
    ("tiny_max", "int", 128, 1024, "largest request of the 16-byte-step size classes, a power of two (above it: classes_per_doubling classes per doubling); smaller means fewer classes, so less memory held per class"),
    ("classes_per_doubling", "int", 2, 8, "size classes per doubling above tiny_max, a power of two (2, 4 or 8): fewer classes hold less memory apart, a coarser fit wastes more inside each block"),
    ("tcache_class_kib", "int", 4, 65536, "per-thread bound of one size class in KiB"),
    ("tcache_kib", "int", 64, 1048576, "per-thread budget of all cached objects in KiB (enforced on slow-path events)"),
    ("tcache_total_mib", "int", 1, 65536, "budget of all threads' caches together in MiB (shared out per live thread)"),
    ("transfer_kib", "int", 0, 65536, "KiB of whole freed lists an owner's central caches keep for the next refills, all classes together (0 = off): refill and flush without walking spans"),
    ("purge_owner_kib", "int", 0, 16777216, "free dirty KiB an owner keeps before madvise; HZ3_PURGE_OWNER_KIB or mallopt(M_TRIM_THRESHOLD) overrides at run time"),
    ("purge_decay_ms", "int", 0, 3600000, "free dirty pages older than this go back to the OS, and cached large mappings unused this long are unmapped (0: only the size bounds); HZ3_PURGE_DECAY_MS overrides at run time"),
    ("large_cache_mib", "int", 0, 65536, "budget of the large-mapping cache in MiB; HZ3_LARGE_CACHE_MIB overrides at run time"),
    ("large_cache_entries", "int", 0, 1024, "slots of the large-mapping cache"),
    ("large_fit_pct", "int", 0, 400, "how much bigger than a request a cached large mapping may be and still serve it, in percent (more hits, more of a reused mapping left unused)"),
];

fn fail(file: &str, msg: &str) -> ! {
    eprintln!("error: hz3 lane manifest {file}: {msg}");
    panic!("hz3 lane manifest {file}: {msg}");
}

/// The lane named by a `lane-*` cargo feature (features are additive, so two
/// different ones, from two crates in one build, are a build error), or `fast`.
fn lane_from_features() -> String {
    const FEATURES: [(&str, &str); 4] = [
        ("CARGO_FEATURE_LANE_FAST", "fast"),
        ("CARGO_FEATURE_LANE_SCALE", "scale"),
        ("CARGO_FEATURE_LANE_MEM_MSTRESS", "mem_mstress"),
        ("CARGO_FEATURE_LANE_MEM_LARGE", "mem_large"),
    ];
    let on: Vec<&str> = FEATURES
        .iter()
        .filter(|(var, _)| env::var_os(var).is_some())
        .map(|&(_, lane)| lane)
        .collect();
    match on.as_slice() {
        [] => "fast".to_string(),
        [one] => one.to_string(),
        many => fail(
            "Cargo.toml",
            &format!(
                "more than one lane feature is enabled ({}): hz3 is built for one lane; \
                 pick one, or set HZ3_LANE=<name> to override",
                many.join(", ")
            ),
        ),
    }
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=HZ3_LANE");
    println!("cargo:rerun-if-env-changed=HZ3_LANE_FILE");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(hz3_remote_ring)");
    let path = match env::var("HZ3_LANE_FILE") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let lane = match env::var("HZ3_LANE") {
                Ok(l) if !l.is_empty() => l,
                _ => lane_from_features(),
            };
            let in_ws = manifest_dir
                .join("..")
                .join("lanes")
                .join(format!("{lane}.toml"));
            let in_pkg = manifest_dir.join("lanes").join(format!("{lane}.toml"));
            if in_ws.exists() {
                in_ws
            } else {
                in_pkg
            }
        }
    };
    let file = path.display().to_string();
    println!("cargo:rerun-if-changed={file}");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| fail(&file, &format!("cannot read the manifest: {e}")));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| fail(&file, &format!("not valid TOML: {e}")));

    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let mut description = String::new();
    let mut artifact = format!("libhz3_{name}.so");
    let mut config: Option<&toml::Table> = None;
    for (k, v) in &doc {
        match k.as_str() {
            "description" => {
                description = v
                    .as_str()
                    .unwrap_or_else(|| fail(&file, "key `description` must be a string"))
                    .to_string()
            }
            "artifact" => {
                artifact = v
                    .as_str()
                    .unwrap_or_else(|| fail(&file, "key `artifact` must be a string"))
                    .to_string()
            }
            "config" => {
                config = Some(
                    v.as_table()
                        .unwrap_or_else(|| fail(&file, "`config` must be a table")),
                )
            }
            other => fail(
                &file,
                &format!(
                    "unknown top-level key `{other}` (known: description, artifact, [config])"
                ),
            ),
        }
    }
    let config = config.unwrap_or_else(|| fail(&file, "missing the [config] table"));
    let mut out = String::new();
    writeln!(out, "/// Lane name (file stem of the manifest).").unwrap();
    writeln!(out, "pub const LANE: &str = {name:?};").unwrap();
    writeln!(out, "/// Lane description from the manifest.").unwrap();
    writeln!(out, "pub const DESCRIPTION: &str = {description:?};").unwrap();
    writeln!(out, "/// Artifact file name of the lane's shared object.").unwrap();
    writeln!(out, "pub const ARTIFACT: &str = {artifact:?};").unwrap();
    for (k, _) in config {
        if !KEYS.iter().any(|(n, ..)| n == k) {
            let known: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
            fail(
                &file,
                &format!("unknown key `config.{k}` (known: {})", known.join(", ")),
            );
        }
    }
    let mut summary = String::new();
    for (key, kind, min, max, doc) in KEYS {
        let v = config
            .get(*key)
            .unwrap_or_else(|| fail(&file, &format!("missing key `config.{key}` ({doc})")));
        match *kind {
            "int" => {
                let n = v.as_integer().unwrap_or_else(|| {
                    fail(&file, &format!("key `config.{key}` must be an integer"))
                });
                if n < *min || n > *max {
                    fail(
                        &file,
                        &format!("key `config.{key}` = {n} is out of range {min}..={max}"),
                    );
                }
                if matches!(*key, "tiny_max" | "classes_per_doubling")
                    && (n as u64).count_ones() != 1
                {
                    fail(
                        &file,
                        &format!("key `config.{key}` = {n} must be a power of two"),
                    );
                }
                writeln!(out, "/// {doc}").unwrap();
                writeln!(out, "pub const {}: usize = {n};", key.to_uppercase()).unwrap();
                write!(summary, " {key}={n}").unwrap();
            }
            "bool" => {
                let b = v.as_bool().unwrap_or_else(|| {
                    fail(&file, &format!("key `config.{key}` must be true or false"))
                });
                writeln!(out, "/// {doc}").unwrap();
                writeln!(out, "pub const {}: bool = {b};", key.to_uppercase()).unwrap();
                write!(summary, " {key}={b}").unwrap();
            }
            "remote" => {
                let s = v.as_str().unwrap_or_else(|| {
                    fail(&file, &format!("key `config.{key}` must be a string"))
                });
                let ring = match s {
                    "dense" => false,
                    "ring" => true,
                    _ => fail(
                        &file,
                        &format!("key `config.{key}` = {s:?}: expected \"dense\" or \"ring\""),
                    ),
                };
                if ring {
                    println!("cargo:rustc-cfg=hz3_remote_ring");
                }
                writeln!(out, "/// {doc}: true for the sparse outbox ring").unwrap();
                writeln!(out, "pub const REMOTE_RING: bool = {ring};").unwrap();
                write!(summary, " {key}={s}").unwrap();
            }
            _ => unreachable!(),
        }
    }
    writeln!(
        out,
        "/// One line naming every setting, printed by HZ3_PRINT_CONFIG."
    )
    .unwrap();
    writeln!(out, "pub const SUMMARY: &str = {:?};", summary.trim()).unwrap();
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("lane_config.rs");
    fs::write(dest, out).unwrap();
}
