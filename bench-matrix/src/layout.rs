//! Where things are: the repository root, the lane manifests, the built lanes,
//! the driver binary, the default output and gate files.
//!
//! Owns: paths. Must not touch: what is at them (peers.rs reads lanes,
//! process.rs runs the driver).

use std::path::{Path, PathBuf};

/// Where things are. Lanes are always under `<root>/target/lanes/` (where
/// `cargo xtask build-lanes` puts them, whatever CARGO_TARGET_DIR says).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn discover(explicit_root: Option<&Path>) -> Layout {
        let root = explicit_root
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("BENCH_MATRIX_ROOT").map(PathBuf::from))
            .or_else(|| std::env::current_dir().ok().and_then(|d| find_root(&d)))
            .or_else(|| std::env::current_exe().ok().and_then(|e| find_root(&e)))
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
        Layout { root }
    }

    /// The lane manifests, `lanes/*.toml`.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("lanes")
    }

    /// The built lanes, `target/lanes/<lane>/`.
    pub fn lanes_dir(&self) -> PathBuf {
        self.root.join("target").join("lanes")
    }

    /// A lane's .so under its default artifact name (`peers::lane` uses the
    /// manifest's `artifact`).
    pub fn lane_so(&self, lane: &str) -> PathBuf {
        self.lanes_dir()
            .join(lane)
            .join(format!("libhz3_{lane}.so"))
    }

    pub fn default_out(&self) -> PathBuf {
        self.root.join("bench-matrix/results/latest")
    }

    pub fn gate_toml(&self) -> PathBuf {
        self.root.join("bench-matrix/gate.toml")
    }
}

fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("bench-matrix/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The driver binary: next to this executable.
pub fn driver_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let p = exe.with_file_name("hz3-bench-driver");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "driver not found at {} (build it: cargo build --release -p bench-matrix)",
            p.display()
        ))
    }
}
