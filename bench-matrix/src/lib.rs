//! bench-matrix: hz3's lanes against glibc, jemalloc, mimalloc and tcmalloc.
//!
//! The library holds everything the two binaries share and everything worth
//! unit-testing: statistics, the results schema, verdicts, gate thresholds,
//! the markdown and HTML renderers.
//!
//! Running a matrix, by concern: `layout` (where things are), `peers` (which
//! allocators: lanes from `lanes/*.toml` through `lane_schema`, peers, .so
//! paths), `machine` (the machine header), `process` (spawning, timeouts,
//! killing, reaping: the one place), `progress` (the bar), `runner` (the
//! matrix itself), `callgrind` (the fast-path gate's measurement).

pub mod ab;
pub mod callgrind;
pub mod chooser;
pub mod cli_history;
pub mod dashboard;
pub mod gate;
pub mod history;
/// The lane manifest schema, shared with hz3's build script and xtask.
#[path = "../../hz3/lane_schema.rs"]
pub mod lane_schema;
pub mod layout;
pub mod machine;
pub mod markdown;
pub mod peers;
pub mod process;
pub mod programs;
pub mod progress;
pub mod runner;
pub mod schema;
pub mod stats;
pub mod trace;
pub mod verdict;
pub mod view_model;
pub mod workloads;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod tests;
