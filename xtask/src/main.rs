//! hz3 developer tasks.
//!
//! `cargo xtask build-lanes [--lane NAME]... [--hardened]` builds each lane's
//! LD_PRELOAD library into `target/lanes/<name>/<artifact>` with a
//! `lane-info.json` beside it (`--hardened`: `libhz3_<name>_hardened.so`, with
//! the integrity checks of the `hardened` feature; `--dlopen`:
//! `libhz3_<name>_dlopen.so`, global-dynamic TLS for hosts that dlopen it;
//! `--portable-tls`: `libhz3_<name>_portable.so`, the portable TLS slot other
//! architectures use; see `TLS`).
//! `--target TRIPLE` cross-builds for another target (e.g.
//! `aarch64-unknown-linux-gnu`, linked with `aarch64-linux-gnu-gcc` unless
//! `CARGO_TARGET_<TRIPLE>_LINKER` says otherwise) into
//! `target/lanes-<TRIPLE>/<name>/`; `.ci/aarch64-check.sh` runs such a build
//! under qemu. `cargo xtask lanes` lists the lanes. `cargo xtask test [--lane NAME]...` runs the
//! whole test suite (unit, model, GlobalAlloc and LD_PRELOAD tests) per lane
//! (`--hardened`, `--dlopen`, `--portable-tls`: against that build).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::sync::OnceLock;

/// The TLS flavour of the builds (hz3/src/tls.rs), from `--dlopen` or
/// `--portable-tls`: (preload feature, artifact and build-directory suffix).
/// None is the default initial-exec slot. Set once by `lanes_from_args`.
static TLS: OnceLock<Option<(&'static str, &'static str)>> = OnceLock::new();

fn tls_flavour() -> Option<(&'static str, &'static str)> {
    *TLS.get_or_init(|| None)
}

/// `--target TRIPLE` (build-lanes only); None builds for the host. Set once by
/// `lanes_from_args`.
static TARGET: OnceLock<Option<String>> = OnceLock::new();

fn cross_target() -> Option<&'static str> {
    TARGET.get_or_init(|| None).as_deref()
}

fn host_target() -> String {
    format!("{}-unknown-linux-gnu", env::consts::ARCH)
}

#[path = "../../hz3/lane_schema.rs"]
mod lane_schema;

use lane_schema::Lane;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn die(msg: &str) -> ! {
    eprintln!("xtask: error: {msg}");
    exit(1)
}

/// All lane names (`lanes/*.toml`), sorted with `fast` first.
fn all_lanes() -> Vec<String> {
    lane_schema::manifests(&root().join("lanes"))
        .unwrap_or_else(|e| die(&e))
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Lanes named by `--lane` (all when none) and whether `--hardened` was given.
fn lanes_from_args(args: &[String]) -> (Vec<String>, bool) {
    let mut lanes = Vec::new();
    let mut hardened = false;
    let mut tls = None;
    let mut target = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--hardened" => hardened = true,
            "--dlopen" => tls = DLOPEN,
            "--portable-tls" => tls = Some(("portable-tls", "portable")),
            "--target" => {
                i += 1;
                let t = args
                    .get(i)
                    .unwrap_or_else(|| die("--target needs a triple"));
                // The host's own triple is the ordinary build.
                target = Some(t.clone()).filter(|t| *t != host_target());
            }
            "--lane" => {
                i += 1;
                let name = args.get(i).unwrap_or_else(|| die("--lane needs a name"));
                lanes.extend(name.split(',').map(str::to_string));
            }
            other => die(&format!("unknown argument `{other}`")),
        }
        i += 1;
    }
    TLS.set(tls).ok();
    TARGET.set(target).ok();
    let known = all_lanes();
    for l in &lanes {
        if !known.contains(l) {
            die(&format!("unknown lane `{l}` (known: {})", known.join(", ")));
        }
    }
    (if lanes.is_empty() { known } else { lanes }, hardened)
}

fn run(cmd: &mut Command) {
    eprintln!("xtask: running {cmd:?}");
    let st = cmd
        .status()
        .unwrap_or_else(|e| die(&format!("cannot run {cmd:?}: {e}")));
    if !st.success() {
        die(&format!("command failed ({st}): {cmd:?}"));
    }
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn git_rev() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `lane-info.json`: what the lane is and the configuration it was built
/// with (every key, defaults filled in; `config` keys sorted by name).
fn lane_info(lane: &Lane, artifact: &str, git_rev: &str) -> String {
    #[derive(serde::Serialize)]
    struct LaneInfo<'a> {
        schema: u32,
        lane: &'a str,
        description: &'a str,
        artifact: &'a str,
        version: &'a str,
        git_rev: &'a str,
        target: &'a str,
        /// A JSON object (sorted keys), not the struct (declaration order).
        config: serde_json::Value,
    }
    let target = cross_target().map_or_else(host_target, str::to_string);
    let info = LaneInfo {
        schema: 1,
        lane: &lane.name,
        description: &lane.description,
        artifact,
        version: env!("CARGO_PKG_VERSION"),
        git_rev,
        target: &target,
        config: serde_json::to_value(&lane.config).unwrap(),
    };
    serde_json::to_string_pretty(&info).unwrap() + "\n"
}

/// Builds one lane (with the hardened checks when `hardened`) in the TLS
/// flavour of the command line; returns the path of its shared object.
fn build_lane(name: &str, hardened: bool) -> PathBuf {
    build_lane_tls(name, hardened, tls_flavour())
}

/// `--dlopen`'s flavour (see `TLS`).
const DLOPEN: Option<(&str, &str)> = Some(("dlopen", "dlopen"));

fn build_lane_tls(name: &str, hardened: bool, tls: Option<(&str, &str)>) -> PathBuf {
    let root = root();
    let lane =
        Lane::load(&root.join("lanes").join(format!("{name}.toml"))).unwrap_or_else(|e| die(&e));
    let artifact = lane.artifact.clone();
    let (artifact, build_dir) = if hardened {
        (
            artifact.replace(".so", "_hardened.so"),
            format!("{name}-hardened"),
        )
    } else {
        (artifact, name.to_string())
    };
    let (artifact, build_dir) = match tls {
        Some((_, sfx)) => (
            artifact.replace(".so", &format!("_{sfx}.so")),
            format!("{build_dir}-{sfx}"),
        ),
        None => (artifact, build_dir),
    };
    let target_dir = root.join("target").join("lane-build").join(build_dir);
    let mut build = cargo();
    build
        .args(["build", "--release", "-p", "hz3-preload", "--target-dir"])
        .arg(&target_dir);
    if hardened {
        build.args(["--features", "hardened"]);
    }
    if let Some((feature, _)) = tls {
        build.args(["--features", feature]);
    }
    let (lanes_dir, release_dir) = match cross_target() {
        Some(t) => {
            build.args(["--target", t]);
            let linker = format!("CARGO_TARGET_{}_LINKER", t.to_uppercase().replace('-', "_"));
            if env::var_os(&linker).is_none() {
                let arch = t.split('-').next().unwrap_or(t);
                build.env(&linker, format!("{arch}-linux-gnu-gcc"));
            }
            (format!("lanes-{t}"), target_dir.join(t).join("release"))
        }
        None => ("lanes".to_string(), target_dir.join("release")),
    };
    run(build.env("HZ3_LANE", name).current_dir(&root));
    let out_dir = root.join("target").join(lanes_dir).join(name);
    fs::create_dir_all(&out_dir).unwrap();
    let so = out_dir.join(&artifact);
    let tmp = out_dir.join(format!(".{artifact}.tmp"));
    fs::copy(release_dir.join("libhz3_preload.so"), &tmp)
        .unwrap_or_else(|e| die(&format!("copying the built library: {e}")));
    fs::rename(&tmp, &so).unwrap();
    let info = lane_info(&lane, &artifact, &git_rev());
    if !hardened && tls.is_none() {
        fs::write(out_dir.join("lane-info.json"), info).unwrap();
    }
    eprintln!("xtask: lane {name} -> {}", so.display());
    so
}

/// The hz3 feature behind a preload feature of `Tls`.
fn hz3_feature(preload_feature: &str) -> &'static str {
    match preload_feature {
        "dlopen" => "dlopen-tls",
        _ => "portable-tls",
    }
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: cargo xtask <build-lanes|lanes|test> [--lane NAME]... [--hardened] [--dlopen|--portable-tls] [--target TRIPLE]");
        exit(2)
    };
    match cmd.as_str() {
        "lanes" => {
            for l in all_lanes() {
                println!("{l}");
            }
        }
        "build-lanes" => {
            let (lanes, hardened) = lanes_from_args(&args[1..]);
            for l in lanes {
                build_lane(&l, hardened);
            }
        }
        "test" => {
            let (lanes, hardened) = lanes_from_args(&args[1..]);
            if let Some(t) = cross_target() {
                die(&format!(
                    "`test --target {t}`: the suite runs on the host only; \
                     `bash .ci/aarch64-check.sh` runs a cross build under qemu"
                ));
            }
            // The C/C++ test programs need gcc, g++, python3 and git: install what is missing.
            run(Command::new("bash").arg(root().join(".ci").join("setup.sh")));
            for l in &lanes {
                let so = build_lane(l, hardened);
                // The hardening tests compare the plain and the hardened build of the lane.
                let hardened_so = if hardened {
                    so.clone()
                } else {
                    build_lane(l, true)
                };
                // The dlopen tests (hz3/tests/dlopen.rs) load the dlopen build too.
                let dlopen_so = build_lane_tls(l, hardened, DLOPEN);
                eprintln!(
                    "xtask: === tests of lane {l}{} ===",
                    if hardened { " (hardened)" } else { "" }
                );
                let mut test = cargo();
                let mut dir = if hardened {
                    format!("{l}-hardened")
                } else {
                    l.clone()
                };
                if let Some((_, sfx)) = tls_flavour() {
                    dir = format!("{dir}-{sfx}");
                }
                test.args(["test", "--release", "-p", "hz3", "--target-dir"])
                    .arg(root().join("target").join("lane-test").join(dir))
                    .env("HZ3_LANE", l)
                    .env("HZ3_SO", &so)
                    .env("HZ3_SO_HARDENED", &hardened_so)
                    .env("HZ3_SO_DLOPEN", &dlopen_so)
                    .current_dir(root());
                if hardened {
                    test.args(["--features", "hardened"]);
                }
                if let Some((feature, _)) = tls_flavour() {
                    // The in-process tests (unit, GlobalAlloc) take the same TLS path.
                    test.args(["--features", hz3_feature(feature)]);
                }
                run(&mut test);
            }
            eprintln!("xtask: all tests passed for lanes: {}", lanes.join(", "));
        }
        other => die(&format!("unknown command `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lane_info_has_every_key_of_the_resolved_config() {
        let lane = super::Lane::load(&super::root().join("lanes/fast.toml")).unwrap();
        let text = super::lane_info(&lane, &lane.artifact, "abc");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["lane"], "fast");
        assert_eq!(v["schema"], 1);
        let config = v["config"].as_object().unwrap();
        assert_eq!(config.len(), super::lane_schema::KEYS.len());
        // Dense lanes leave ring_slots out; lane-info shows the value built in.
        assert_eq!(config["ring_slots"], 1024);
        assert_eq!(config["remote"], "dense");
        let keys: Vec<&String> = config.keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }
}
