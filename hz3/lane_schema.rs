//! The lane manifest schema (`lanes/<name>.toml`): the one definition of what a
//! lane may say, read by hz3's build script (which turns it into constants),
//! by `cargo xtask` (which writes `lane-info.json` from it) and by bench-matrix
//! (which finds the lanes with it).
//!
//! Owns: the keys, their types, ranges, defaults, the rules across keys, and
//! lane discovery in a `lanes/` directory. Must not touch: anything at run time
//! of the allocator (this file is compiled only into the build script and
//! tools, never into the allocator), the file system beyond reading manifests.
//!
//! Why one source file and not a crate: hz3 is published, and a build script
//! can only use crates.io dependencies in the published crate. So this file is
//! in hz3's package (`include` in hz3/Cargo.toml), the build script includes it
//! with `#[path]`, and xtask and bench-matrix include the same file by path.
//! It needs `serde` (derive) and `toml` (serde, parse) in each includer.
//!
//! Errors name the manifest file and the key: unknown keys and bad types come
//! from serde (`deny_unknown_fields`; toml points at the line), ranges and the
//! rules across keys from [`Manifest::validate`].

#![allow(dead_code)] // each includer uses a part

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How remote frees travel to their owner (`config.remote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remote {
    /// Per-thread bank `[owner][class]`.
    Dense,
    /// Sparse outbox ring of `ring_slots` entries, whatever the owner count.
    Ring,
}

impl Remote {
    pub fn name(self) -> &'static str {
        match self {
            Remote::Dense => "dense",
            Remote::Ring => "ring",
        }
    }
}

/// `ring_slots` when a ring lane leaves it out. Dense lanes also get it in the
/// generated constants (the ring type is compiled, unused, in every lane).
pub const DEFAULT_RING_SLOTS: u64 = 1024;

fn default_false() -> bool {
    false
}
fn default_zero() -> u64 {
    0
}
fn default_one() -> u64 {
    1
}

/// A manifest as written. Top level: `description`, `artifact`, `[config]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One line on what the lane is for (default: empty).
    #[serde(default)]
    pub description: String,
    /// File name of the LD_PRELOAD library (default: `libhz3_<lane>.so`).
    #[serde(default)]
    pub artifact: Option<String>,
    pub config: RawConfig,
}

/// `[config]` as written: `ring_slots` belongs to `remote = "ring"` only;
/// `owner_stash` (false) and `transfer_kib` (0, off) have defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub owners: u64,
    pub owners_per_cpu: u64,
    pub remote: Remote,
    #[serde(default = "default_false")]
    pub owner_stash: bool,
    pub remote_batch: u64,
    #[serde(default)]
    pub ring_slots: Option<u64>,
    pub remote_kib: u64,
    pub arena_gib: u64,
    pub tiny_max: u64,
    pub classes_per_doubling: u64,
    pub tcache_class_kib: u64,
    pub tcache_kib: u64,
    pub tcache_total_mib: u64,
    #[serde(default = "default_zero")]
    pub transfer_kib: u64,
    #[serde(default = "default_false")]
    pub remote_transfer: bool,
    pub purge_owner_kib: u64,
    pub purge_decay_ms: u64,
    pub large_cache_mib: u64,
    pub large_cache_entries: u64,
    #[serde(default = "default_false")]
    pub background_purge: bool,
    pub large_fit_pct: u64,
    #[serde(default = "default_one")]
    pub big_span_objs: u64,
}

/// The resolved configuration a lane is built with: every key has its value
/// (defaults filled in). Serialises to the `config` object of `lane-info.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub owners: u64,
    pub owners_per_cpu: u64,
    pub remote: Remote,
    pub owner_stash: bool,
    pub remote_batch: u64,
    pub ring_slots: u64,
    pub remote_kib: u64,
    pub arena_gib: u64,
    pub tiny_max: u64,
    pub classes_per_doubling: u64,
    pub tcache_class_kib: u64,
    pub tcache_kib: u64,
    pub tcache_total_mib: u64,
    pub transfer_kib: u64,
    pub remote_transfer: bool,
    pub purge_owner_kib: u64,
    pub purge_decay_ms: u64,
    pub large_cache_mib: u64,
    pub large_cache_entries: u64,
    pub background_purge: bool,
    pub large_fit_pct: u64,
    pub big_span_objs: u64,
}

/// One value of a key, for the generated constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Int(u64),
    Bool(bool),
    Remote(Remote),
}

/// A key of `[config]`: its name, what it means, and its range (ints).
pub struct Key {
    pub name: &'static str,
    pub doc: &'static str,
    pub min: u64,
    pub max: u64,
}

const fn key(name: &'static str, min: u64, max: u64, doc: &'static str) -> Key {
    Key {
        name,
        doc,
        min,
        max,
    }
}

/// Every `[config]` key, in the order of the generated constants.
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    key("owners", 1, 255, "number of owners (heaps); threads map onto them"),
    key("owners_per_cpu", 0, 255, "owners in use per CPU the process may run on, at most `owners` (0 = all); HZ3_OWNERS overrides at run time"),
    key("remote", 0, 0, "remote-free stash: \"dense\" or \"ring\""),
    key("owner_stash", 0, 1, "remote frees reach their owner through a lock-free per-(owner, class) stash"),
    key("remote_batch", 1, 4096, "objects per remote bank entry before it is flushed"),
    key("ring_slots", 16, 65536, "outbox ring entries (ring stash only)"),
    key("remote_kib", 16, 1048576, "bytes of remote-freed objects a thread holds before sending them all, in KiB"),
    key("arena_gib", 1, 256, "reserved virtual arena in GiB"),
    key("tiny_max", 128, 1024, "largest request of the 16-byte-step size classes, a power of two (above it: classes_per_doubling classes per doubling); smaller means fewer classes, so less memory held per class"),
    key("classes_per_doubling", 2, 8, "size classes per doubling above tiny_max, a power of two (2, 4 or 8): fewer classes hold less memory apart, a coarser fit wastes more inside each block"),
    key("tcache_class_kib", 4, 65536, "per-thread bound of one size class in KiB"),
    key("tcache_kib", 64, 1048576, "per-thread budget of all cached objects in KiB (enforced on slow-path events)"),
    key("tcache_total_mib", 1, 65536, "budget of all threads' caches together in MiB (shared out per live thread)"),
    key("transfer_kib", 0, 65536, "KiB of whole freed lists an owner's central caches keep for the next refills, all classes together (0 = off): refill and flush without walking spans"),
    key("remote_transfer", 0, 1, "remote batches a thread sends to an owner's central cache are kept whole as transfer lists too (within transfer_kib; dense outbox, owner_stash = false): the owner's next refill takes the batch in O(1) instead of the objects going into their spans and out again, one cache miss each, under the owner's lock"),
    key("purge_owner_kib", 0, 16777216, "free dirty KiB an owner keeps before madvise; HZ3_PURGE_OWNER_KIB or mallopt(M_TRIM_THRESHOLD) overrides at run time"),
    key("purge_decay_ms", 0, 3600000, "free dirty pages older than this go back to the OS, and cached large mappings unused this long are unmapped (0: only the size bounds); HZ3_PURGE_DECAY_MS overrides at run time"),
    key("large_cache_mib", 0, 65536, "budget of the large-mapping cache in MiB; HZ3_LARGE_CACHE_MIB overrides at run time"),
    key("large_cache_entries", 0, 1024, "slots of the large-mapping cache"),
    key("background_purge", 0, 1, "a background thread ends due decay epochs a few times per purge_decay_ms and collects owners whose threads are gone, so idle memory goes back while the program sleeps or does only fast-path traffic (one extra thread per process, started at load; HZ3_BACKGROUND_PURGE=1 or =0 overrides the lane's value at run time)"),
    key("large_fit_pct", 0, 400, "how much bigger than a request a cached large mapping may be and still serve it, in percent (more hits, more of a reused mapping left unused)"),
    key("big_span_objs", 1, 8, "objects a span of a class from 16 KiB up holds at least (default 1: one where it fits with little waste); more means fewer page-heap runs per refill and per freed batch, and more memory pinned by a sparsely used class"),
];

impl Config {
    /// `(key, value)` of every key, in [`KEYS`] order.
    pub fn values(&self) -> [(&'static Key, Value); 22] {
        use Value::{Bool, Int};
        let v = [
            Int(self.owners),
            Int(self.owners_per_cpu),
            Value::Remote(self.remote),
            Bool(self.owner_stash),
            Int(self.remote_batch),
            Int(self.ring_slots),
            Int(self.remote_kib),
            Int(self.arena_gib),
            Int(self.tiny_max),
            Int(self.classes_per_doubling),
            Int(self.tcache_class_kib),
            Int(self.tcache_kib),
            Int(self.tcache_total_mib),
            Int(self.transfer_kib),
            Bool(self.remote_transfer),
            Int(self.purge_owner_kib),
            Int(self.purge_decay_ms),
            Int(self.large_cache_mib),
            Int(self.large_cache_entries),
            Bool(self.background_purge),
            Int(self.large_fit_pct),
            Int(self.big_span_objs),
        ];
        let mut i = 0;
        v.map(|x| {
            i += 1;
            (&KEYS[i - 1], x)
        })
    }
}

/// A lane: its name (the manifest's file stem) and its validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub name: String,
    pub description: String,
    pub artifact: String,
    pub config: Config,
}

impl Manifest {
    /// Parses a manifest's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Manifest, String> {
        toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim_end()))
    }

    /// Checks ranges and the rules across keys, fills in the defaults.
    pub fn validate(self, file: &str, name: &str) -> Result<Lane, String> {
        let err = |msg: String| Err(format!("{file}: {msg}"));
        let c = &self.config;
        let ring_slots = match (c.remote, c.ring_slots) {
            (Remote::Dense, Some(_)) => {
                return err(
                    "key `config.ring_slots` belongs to `remote = \"ring\"`; this lane has \
                     `remote = \"dense\"`: remove it"
                        .into(),
                )
            }
            (Remote::Dense, None) | (Remote::Ring, None) => DEFAULT_RING_SLOTS,
            (Remote::Ring, Some(n)) => n,
        };
        let config = Config {
            owners: c.owners,
            owners_per_cpu: c.owners_per_cpu,
            remote: c.remote,
            owner_stash: c.owner_stash,
            remote_batch: c.remote_batch,
            ring_slots,
            remote_kib: c.remote_kib,
            arena_gib: c.arena_gib,
            tiny_max: c.tiny_max,
            classes_per_doubling: c.classes_per_doubling,
            tcache_class_kib: c.tcache_class_kib,
            tcache_kib: c.tcache_kib,
            tcache_total_mib: c.tcache_total_mib,
            transfer_kib: c.transfer_kib,
            remote_transfer: c.remote_transfer,
            purge_owner_kib: c.purge_owner_kib,
            purge_decay_ms: c.purge_decay_ms,
            large_cache_mib: c.large_cache_mib,
            large_cache_entries: c.large_cache_entries,
            background_purge: c.background_purge,
            large_fit_pct: c.large_fit_pct,
            big_span_objs: c.big_span_objs,
        };
        for (k, v) in config.values() {
            let Value::Int(n) = v else { continue };
            if n < k.min || n > k.max {
                return err(format!(
                    "key `config.{}` = {n} is out of range {}..={} ({})",
                    k.name, k.min, k.max, k.doc
                ));
            }
            if matches!(k.name, "tiny_max" | "classes_per_doubling") && !n.is_power_of_two() {
                return err(format!(
                    "key `config.{}` = {n} must be a power of two",
                    k.name
                ));
            }
        }
        // Rules across keys.
        if config.owners_per_cpu > config.owners {
            return err(format!(
                "key `config.owners_per_cpu` = {} exceeds `config.owners` = {}: \
                 owners in use per CPU are at most the owners there are",
                config.owners_per_cpu, config.owners
            ));
        }
        if config.tcache_class_kib > config.tcache_kib {
            return err(format!(
                "key `config.tcache_class_kib` = {} exceeds `config.tcache_kib` = {}: \
                 one class cannot hold more than the thread's whole cache",
                config.tcache_class_kib, config.tcache_kib
            ));
        }
        if config.tcache_kib > config.tcache_total_mib * 1024 {
            return err(format!(
                "key `config.tcache_kib` = {} exceeds `config.tcache_total_mib` = {} MiB: \
                 one thread's cache cannot hold more than all threads' together",
                config.tcache_kib, config.tcache_total_mib
            ));
        }
        if (config.large_cache_mib == 0) != (config.large_cache_entries == 0) {
            return err(format!(
                "keys `config.large_cache_mib` = {} and `config.large_cache_entries` = {}: \
                 both 0 (no large cache) or both above 0",
                config.large_cache_mib, config.large_cache_entries
            ));
        }
        let artifact = self.artifact.unwrap_or_else(|| format!("libhz3_{name}.so"));
        if artifact.is_empty() || artifact.contains('/') {
            return err(format!("key `artifact` = {artifact:?} must be a file name"));
        }
        Ok(Lane {
            name: name.to_string(),
            description: self.description,
            artifact,
            config,
        })
    }
}

impl Lane {
    /// Reads, parses and validates the manifest at `path`; the lane is named
    /// after the file stem.
    pub fn load(path: &Path) -> Result<Lane, String> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{file}: cannot read the manifest: {e}"))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{file}: no file name"))?;
        Lane::from_text(&file, &name, &text)
    }

    pub fn from_text(file: &str, name: &str, text: &str) -> Result<Lane, String> {
        Manifest::parse(file, text)?.validate(file, name)
    }
}

/// The manifests in `dir` (`<dir>/*.toml`), sorted by lane name with `fast`
/// (the default lane) first.
pub fn manifests(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut v: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect();
    v.sort_by(|a, b| (a.0 != "fast", &a.0).cmp(&(b.0 != "fast", &b.0)));
    Ok(v)
}

/// Every lane in `dir`, loaded and validated (the first bad manifest is the error).
pub fn discover(dir: &Path) -> Result<Vec<Lane>, String> {
    manifests(dir)?.iter().map(|(_, p)| Lane::load(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes_dir() -> PathBuf {
        // xtask/ and bench-matrix/ both sit next to lanes/.
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../lanes")
    }

    fn fast_text() -> String {
        std::fs::read_to_string(lanes_dir().join("fast.toml")).unwrap()
    }

    /// fast.toml with `from` replaced by `to` (which must occur).
    fn edited(from: &str, to: &str) -> String {
        let t = fast_text();
        let line = t
            .lines()
            .find(|l| l.starts_with(from))
            .unwrap_or_else(|| panic!("fast.toml has no line starting {from:?}"));
        t.replace(line, to)
    }

    fn error_of(text: &str) -> String {
        Lane::from_text("lanes/t.toml", "t", text).unwrap_err()
    }

    #[test]
    fn every_lane_in_the_repository_is_valid() {
        let lanes = discover(&lanes_dir()).unwrap();
        let names: Vec<&str> = lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[0], "fast");
        assert!(names.contains(&"scale") && names.len() >= 4, "{names:?}");
        let scale = lanes.iter().find(|l| l.name == "scale").unwrap();
        assert_eq!(scale.config.remote, Remote::Ring);
        assert_eq!(scale.artifact, "libhz3_scale.so");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = error_of(&(fast_text() + "bogus_key = 1\n"));
        assert!(e.starts_with("lanes/t.toml: "), "{e}");
        assert!(e.contains("unknown field `bogus_key`"), "{e}");
        let e = error_of(&format!("colour = \"red\"\n{}", fast_text()));
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = error_of(&edited("owners =", "owners = \"many\""));
        assert!(e.contains("invalid type") && e.contains("owners"), "{e}");
        let e = error_of(&edited("remote =", "remote = \"mesh\""));
        assert!(e.contains("unknown variant `mesh`"), "{e}");
        let e = error_of(&edited("owners =", "owners = 0"));
        assert!(
            e.contains("`config.owners` = 0 is out of range 1..=255"),
            "{e}"
        );
        let e = error_of(&edited("tiny_max", "tiny_max = 384"));
        assert!(
            e.contains("`config.tiny_max` = 384 must be a power of two"),
            "{e}"
        );
        let e = error_of(&edited("owners =", "owners = -3"));
        assert!(e.contains("owners"), "{e}");
        let e = error_of(&edited("owners =", ""));
        assert!(e.contains("missing field `owners`"), "{e}");
    }

    #[test]
    fn ring_slots_belongs_to_ring_lanes() {
        let e = error_of(&edited("remote =", "remote = \"dense\"\nring_slots = 512"));
        assert!(
            e.contains("`config.ring_slots` belongs to `remote = \"ring\"`"),
            "{e}"
        );
        // On a ring lane it is allowed, and defaults when left out.
        let ring = edited("remote =", "remote = \"ring\"\nring_slots = 512");
        assert_eq!(
            Lane::from_text("t", "t", &ring).unwrap().config.ring_slots,
            512
        );
        let ring = edited("remote =", "remote = \"ring\"");
        assert_eq!(
            Lane::from_text("t", "t", &ring).unwrap().config.ring_slots,
            DEFAULT_RING_SLOTS
        );
        let e = error_of(&edited("remote =", "remote = \"ring\"\nring_slots = 8"));
        assert!(e.contains("`config.ring_slots` = 8 is out of range"), "{e}");
    }

    #[test]
    fn rules_across_keys() {
        let e = error_of(&edited("owners_per_cpu", "owners_per_cpu = 9"));
        assert!(
            e.contains("`config.owners_per_cpu` = 9 exceeds `config.owners` = 8"),
            "{e}"
        );
        let e = error_of(&edited("tcache_class_kib", "tcache_class_kib = 32768"));
        assert!(
            e.contains("`config.tcache_class_kib` = 32768 exceeds"),
            "{e}"
        );
        let e = error_of(&edited("tcache_total_mib", "tcache_total_mib = 8"));
        assert!(
            e.contains("`config.tcache_kib` = 16384 exceeds `config.tcache_total_mib` = 8"),
            "{e}"
        );
        let e = error_of(&edited("large_cache_entries", "large_cache_entries = 0"));
        assert!(e.contains("both 0 (no large cache) or both above 0"), "{e}");
    }

    #[test]
    fn defaults_fill_optional_keys() {
        let t = edited("owner_stash", "");
        let t = t.replace(
            t.lines().find(|l| l.starts_with("transfer_kib")).unwrap(),
            "",
        );
        let t = t
            .lines()
            .filter(|l| !l.starts_with("description") && !l.starts_with("artifact"))
            .collect::<Vec<_>>()
            .join("\n");
        let lane = Lane::from_text("lanes/t.toml", "t", &t).unwrap();
        assert!(!lane.config.owner_stash);
        assert_eq!(lane.config.transfer_kib, 0);
        assert_eq!(lane.artifact, "libhz3_t.so");
        assert_eq!(lane.description, "");
    }
}
