//! Build script: turns a lane manifest (`lanes/<name>.toml`) into compile-time
//! constants (`$OUT_DIR/lane_config.rs`). A lane is a manifest, not a fork of the code.
//!
//! Lane selection, first match wins: `HZ3_LANE_FILE=<path>` (any manifest),
//! `HZ3_LANE=<name>`, a `lane-<name>` cargo feature (`lane-mem-mstress` for
//! `mem_mstress`); the default is `fast`. `<name>` is looked up in the workspace's
//! `lanes/` and then in the packaged crate's own copy.
//! The manifest is read with the one lane schema (`lane_schema.rs`, shared with
//! xtask and bench-matrix): an unknown key, an invalid value or a broken rule
//! across keys is a build error naming the file and the key.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

#[path = "lane_schema.rs"]
mod lane_schema;

use lane_schema::{Lane, Remote, Value};

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

/// The constants of `lane`, as Rust source (the file `config.rs` includes).
fn generate(lane: &Lane) -> String {
    let mut out = String::new();
    writeln!(out, "/// Lane name (file stem of the manifest).").unwrap();
    writeln!(out, "pub const LANE: &str = {:?};", lane.name).unwrap();
    writeln!(out, "/// Lane description from the manifest.").unwrap();
    writeln!(out, "pub const DESCRIPTION: &str = {:?};", lane.description).unwrap();
    writeln!(out, "/// Artifact file name of the lane's shared object.").unwrap();
    writeln!(out, "pub const ARTIFACT: &str = {:?};", lane.artifact).unwrap();
    let mut summary = String::new();
    for (key, value) in lane.config.values() {
        let (name, doc) = (key.name, key.doc);
        match value {
            Value::Int(n) => {
                writeln!(out, "/// {doc}").unwrap();
                writeln!(out, "pub const {}: usize = {n};", name.to_uppercase()).unwrap();
                write!(summary, " {name}={n}").unwrap();
            }
            Value::Bool(b) => {
                writeln!(out, "/// {doc}").unwrap();
                writeln!(out, "pub const {}: bool = {b};", name.to_uppercase()).unwrap();
                write!(summary, " {name}={b}").unwrap();
            }
            Value::Remote(r) => {
                writeln!(out, "/// {doc}: true for the sparse outbox ring").unwrap();
                writeln!(out, "pub const REMOTE_RING: bool = {};", r == Remote::Ring).unwrap();
                write!(summary, " {name}={}", r.name()).unwrap();
            }
        }
    }
    writeln!(
        out,
        "/// One line naming every setting, printed by HZ3_PRINT_CONFIG."
    )
    .unwrap();
    writeln!(out, "pub const SUMMARY: &str = {:?};", summary.trim()).unwrap();
    out
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=HZ3_LANE");
    println!("cargo:rerun-if-env-changed=HZ3_LANE_FILE");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=lane_schema.rs");
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
    let lane = Lane::load(&path).unwrap_or_else(|e| {
        // The schema's message starts with the file name already.
        let msg = e.strip_prefix(&format!("{file}: ")).unwrap_or(&e);
        fail(&file, msg)
    });
    if lane.config.remote == Remote::Ring {
        println!("cargo:rustc-cfg=hz3_remote_ring");
    }
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("lane_config.rs");
    fs::write(dest, generate(&lane)).unwrap();
}
