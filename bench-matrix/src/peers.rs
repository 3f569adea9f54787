//! The allocators a run compares: hz3's lanes (found in `lanes/*.toml` with
//! the lane schema, built under `target/lanes/`), the peers (Debian's
//! jemalloc, mimalloc, tcmalloc; glibc), and A/B operands (.so paths).
//!
//! Owns: allocator discovery and identity (fingerprints), and the check that
//! malloc came from the allocator preloaded. Must not touch: running them
//! (process.rs), results.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::lane_schema::{self, Lane};
use crate::layout::Layout;
use crate::schema::{AllocKind, AllocStatus, Allocator};

/// Debian's peer allocators (packages libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4).
pub const PEERS: &[(&str, &str, &str)] = &[
    (
        "jemalloc",
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "libjemalloc2",
    ),
    (
        "mimalloc",
        "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
        "libmimalloc2.0",
    ),
    (
        "tcmalloc",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
    ),
];

pub const ALL_PEERS: &[&str] = &["glibc", "jemalloc", "mimalloc", "tcmalloc"];

fn fingerprint(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Some(format!("{h:016x}"))
}

pub fn glibc() -> Allocator {
    Allocator {
        name: "glibc".into(),
        kind: AllocKind::System,
        path: None,
        status: AllocStatus::Ok,
        note: "system malloc, no LD_PRELOAD".into(),
        fingerprint: None,
    }
}

pub fn peer(name: &str) -> Option<Allocator> {
    if name == "glibc" || name == "system" {
        return Some(glibc());
    }
    let &(n, path, pkg) = PEERS.iter().find(|p| p.0 == name)?;
    let p = Path::new(path);
    Some(if p.is_file() {
        Allocator {
            name: n.into(),
            kind: AllocKind::Peer,
            path: Some(path.into()),
            status: AllocStatus::Ok,
            note: String::new(),
            fingerprint: fingerprint(p),
        }
    } else {
        Allocator {
            name: n.into(),
            kind: AllocKind::Peer,
            path: Some(path.into()),
            status: AllocStatus::Missing,
            note: format!(
                "{path} not found: install Debian package {pkg} (bench-matrix/setup-peers.sh)"
            ),
            fingerprint: None,
        }
    })
}

/// The lanes the project defines: every `lanes/*.toml`, `fast` first.
pub fn defined_lanes(layout: &Layout) -> Vec<String> {
    lane_schema::manifests(&layout.manifests_dir())
        .map(|v| v.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

/// `require_lanes` of a gate file with `"*"` expanded to every lane defined
/// in `lanes/*.toml` (so gate.toml does not repeat the lane list).
pub fn required_lanes(layout: &Layout, listed: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    for l in listed {
        if l == "*" {
            v.extend(defined_lanes(layout));
        } else {
            v.push(l.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|l| seen.insert(crate::gate::lane_key(l).to_string()));
    v
}

/// One lane as an allocator: its .so (the manifest's `artifact`) under
/// `target/lanes/<lane>/`, or loudly missing with the reason (not built, not
/// defined, or a manifest the schema refuses).
pub fn lane(layout: &Layout, lane: &str) -> Allocator {
    let lane = crate::gate::lane_key(lane);
    let toml = layout.manifests_dir().join(format!("{lane}.toml"));
    let manifest = toml.is_file().then(|| Lane::load(&toml));
    let so = match &manifest {
        Some(Ok(l)) => layout.lanes_dir().join(lane).join(&l.artifact),
        _ => layout.lane_so(lane),
    };
    let name = format!("hz3-{lane}");
    if so.is_file() {
        Allocator {
            name,
            kind: AllocKind::Lane,
            path: Some(so.display().to_string()),
            status: AllocStatus::Ok,
            note: lane_info_note(&so),
            fingerprint: fingerprint(&so),
        }
    } else {
        let note = match manifest {
            Some(Ok(_)) => format!("{} not built: run `cargo xtask build-lanes`", so.display()),
            Some(Err(e)) => format!("bad lane manifest: {e}"),
            None => format!(
                "lane not defined (no lanes/{lane}.toml) and {} absent",
                so.display()
            ),
        };
        Allocator {
            name,
            kind: AllocKind::Lane,
            path: Some(so.display().to_string()),
            status: AllocStatus::Missing,
            note,
            fingerprint: None,
        }
    }
}

/// Description and build revision from the `lane-info.json` xtask writes beside the .so.
fn lane_info_note(so: &Path) -> String {
    let Some(text) = so
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("lane-info.json")).ok())
    else {
        return String::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return String::new();
    };
    let desc = v.get("description").and_then(|x| x.as_str()).unwrap_or("");
    match v.get("git_rev").and_then(|x| x.as_str()) {
        Some(rev) => format!("{desc} (built from {rev})"),
        None => desc.to_string(),
    }
}

/// Lanes for a run: the requested ones, or every defined or built lane.
pub fn lanes(layout: &Layout, requested: Option<&[String]>) -> Vec<Allocator> {
    let mut names: Vec<String> = match requested {
        Some(r) => r
            .iter()
            .map(|s| crate::gate::lane_key(s).to_string())
            .collect(),
        None => {
            // Every defined lane (built or loudly missing), then lanes built
            // under target/lanes/ without a manifest.
            let mut v = defined_lanes(layout);
            if let Ok(rd) = std::fs::read_dir(layout.lanes_dir()) {
                for e in rd.flatten() {
                    if let Some(s) = e.file_name().to_str() {
                        if layout.lane_so(s).is_file() {
                            v.push(s.to_string());
                        }
                    }
                }
            }
            v
        }
    };
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names.iter().map(|n| lane(layout, n)).collect()
}

/// Resolve an A/B operand: a lane name, a peer name, or a path to a .so.
pub fn resolve_spec(layout: &Layout, spec: &str) -> Result<Allocator, String> {
    if let Some(p) = peer(spec) {
        return Ok(p);
    }
    let path = Path::new(spec);
    if spec.contains('/') || spec.ends_with(".so") || path.is_file() {
        if !path.is_file() {
            return Err(format!("{spec}: no such file"));
        }
        let abs = std::fs::canonicalize(path).map_err(|e| format!("{spec}: {e}"))?;
        let name = abs
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("custom")
            .to_string();
        return Ok(Allocator {
            name,
            kind: AllocKind::Custom,
            path: Some(abs.display().to_string()),
            status: AllocStatus::Ok,
            note: String::new(),
            fingerprint: fingerprint(&abs),
        });
    }
    let l = lane(layout, spec);
    if l.ok() {
        Ok(l)
    } else {
        Err(format!("'{spec}' is not a peer (glibc/jemalloc/mimalloc/tcmalloc), a built lane, or a .so path: {}", l.note))
    }
}

/// Check that `malloc` really came from the allocator we preloaded.
pub fn check_provider(alloc: &Allocator, malloc_from: &str) -> Result<(), String> {
    match &alloc.path {
        None => {
            if malloc_from.contains("libc.so") {
                Ok(())
            } else {
                Err(format!("expected glibc's malloc, got {malloc_from}"))
            }
        }
        Some(so) => {
            let want = std::fs::canonicalize(so).unwrap_or_else(|_| PathBuf::from(so));
            let got =
                std::fs::canonicalize(malloc_from).unwrap_or_else(|_| PathBuf::from(malloc_from));
            if want == got {
                Ok(())
            } else {
                Err(format!(
                    "LD_PRELOAD did not take: malloc came from {malloc_from}, not {so}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_check() {
        let g = glibc();
        assert!(check_provider(&g, "/lib/x86_64-linux-gnu/libc.so.6").is_ok());
        assert!(check_provider(&g, "/usr/lib/libjemalloc.so.2").is_err());
    }

    #[test]
    fn lanes_are_the_manifests_in_lanes_dir() {
        // A root with one manifest, copied from fast under another name (and
        // another artifact): that lane, and no list of names from elsewhere.
        let root = std::env::temp_dir().join(format!("bm-lanes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lanes")).unwrap();
        std::fs::create_dir_all(root.join("target/lanes/tiny")).unwrap();
        let fast = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lanes/fast.toml");
        let text = std::fs::read_to_string(fast)
            .unwrap()
            .replace("libhz3_fast.so", "libtiny.so");
        std::fs::write(root.join("lanes/tiny.toml"), &text).unwrap();
        let layout = Layout::discover(Some(&root));
        let names = |v: Vec<Allocator>| v.into_iter().map(|a| a.name).collect::<Vec<_>>();
        let missing = lanes(&layout, None);
        assert_eq!(names(missing.clone()), ["hz3-tiny"]);
        assert!(missing[0].note.contains("not built"), "{}", missing[0].note);
        // Built under the manifest's artifact name.
        std::fs::write(root.join("target/lanes/tiny/libtiny.so"), b"x").unwrap();
        let built = lane(&layout, "tiny");
        assert!(built.ok(), "{}", built.note);
        assert!(built.path.unwrap().ends_with("libtiny.so"));
        // A manifest the schema refuses is a loud MISSING lane saying why.
        std::fs::write(root.join("lanes/bad.toml"), text + "bogus = 1\n").unwrap();
        let bad = lane(&layout, "bad");
        assert!(
            !bad.ok() && bad.note.contains("unknown field `bogus`"),
            "{}",
            bad.note
        );
        assert_eq!(defined_lanes(&layout), ["bad", "tiny"]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn repository_lanes_start_with_fast() {
        let layout = Layout::discover(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")));
        let v = defined_lanes(&layout);
        assert_eq!(v[0], "fast");
        assert!(v.len() >= 4 && v.iter().any(|l| l == "scale"), "{v:?}");
        // gate.toml requires every defined lane through "*".
        let g = crate::gate::GateConfig::parse(include_str!("../gate.toml")).unwrap();
        assert_eq!(required_lanes(&layout, &g.require_lanes), v);
        let named = ["hz3-scale".to_string(), "*".to_string()];
        let r = required_lanes(&layout, &named);
        assert_eq!(r[0], "hz3-scale");
        assert_eq!(r.len(), v.len(), "{r:?}");
    }
}
