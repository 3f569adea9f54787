//! The callgrind fast-path gate's measurement: instructions of the fastpath
//! driver under valgrind, per allocator.
//!
//! Owns: running valgrind and reading its summary. Must not touch: limits and
//! verdicts (gate.toml via gate.rs; the table in main.rs).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::peers::check_provider;
use crate::schema::{AllocKind, Allocator, FastpathOutput};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CallgrindRow {
    pub allocator: String,
    pub kind: AllocKind,
    pub ir_n1: Option<u64>,
    pub ir_n2: Option<u64>,
    pub ir_per_pair: Option<f64>,
    pub limit: Option<f64>,
    pub status: String,
    pub note: String,
}

/// Total instructions (`Collected :`) of the fastpath driver under callgrind.
pub fn callgrind_ir(driver: &Path, alloc: &Allocator, pairs: u64) -> Result<u64, String> {
    let out_file =
        std::env::temp_dir().join(format!("bench-matrix-callgrind-{}.out", std::process::id()));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(driver)
        .args(["fastpath", "--n", &pairs.to_string()]);
    cmd.env_remove("LD_PRELOAD");
    if let Some(so) = &alloc.path {
        cmd.env("LD_PRELOAD", so);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("valgrind: {e} (install it: bench-matrix/setup-peers.sh)"))?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = stdout.lines().find(|l| l.starts_with('{')) {
        let f: FastpathOutput =
            serde_json::from_str(line).map_err(|e| format!("bad fastpath JSON: {e}"))?;
        check_provider(alloc, &f.malloc_from)?;
    }
    parse_collected(&stderr).ok_or_else(|| "no 'Collected :' line in valgrind output".into())
}

/// Parse callgrind's `==pid== Collected : 123456` summary line.
pub fn parse_collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = l.split("Collected :").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callgrind_summary() {
        let s = "==12== Events    : Ir\n==12== Collected : 1234567\n==12==\n==12== I   refs:      1,234,567\n";
        assert_eq!(parse_collected(s), Some(1_234_567));
        assert_eq!(parse_collected("nothing"), None);
    }
}
