//! bench-matrix: hz3's lanes against glibc, jemalloc, mimalloc and tcmalloc.
//!
//! The library holds everything the two binaries share and everything worth
//! unit-testing: statistics, the results schema, verdicts, gate thresholds,
//! the markdown and HTML renderers. `runner` is the part that spawns processes.

pub mod ab;
pub mod chooser;
pub mod cli_history;
pub mod dashboard;
pub mod gate;
pub mod history;
pub mod markdown;
pub mod programs;
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
