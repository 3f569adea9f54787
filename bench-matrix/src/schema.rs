//! The data that crosses process and file boundaries: the driver's one JSON
//! line, and the versioned results file the runner writes (`"schema": 1`).
//!
//! Every field that can be absent is an `Option` or has a serde default, so an
//! older reader fails loudly on a newer *schema number* (checked in
//! [`Results::from_json`]) rather than on a missing field.

use serde::{Deserialize, Serialize};

use crate::stats::{ratio_ci, RatioCi, Stat};

/// Version of the results file format. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The single JSON line `hz3-bench-driver` prints on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverOutput {
    pub workload: String,
    pub threads: u32,
    pub iters_per_thread: u64,
    pub ws: u64,
    pub seed: u64,
    pub min_size: u64,
    pub max_size: u64,
    /// Requested share of frees handed to another thread (percent), remote workloads.
    #[serde(default)]
    pub remote_pct: u32,
    /// malloc + free calls in the timed region, all threads.
    pub ops: u64,
    pub wall_s: f64,
    pub ops_per_sec: f64,
    /// CPU time the worker threads spent in the timed region (all threads).
    #[serde(default)]
    pub cpu_s: f64,
    /// ops / cpu_s: less sensitive than ops/s to other load on the machine.
    #[serde(default)]
    pub ops_per_cpu_sec: f64,
    /// RSS before the workload started (KiB).
    pub baseline_rss_kib: u64,
    /// VmHWM at the end (KiB): the process's high-water mark.
    pub peak_rss_kib: u64,
    /// Mean of the sampled RSS during the timed region (KiB).
    pub mean_rss_kib: u64,
    /// RSS after every thread freed everything and exited (KiB).
    pub after_rss_kib: u64,
    /// Actual share of frees that went through a ring to another thread (0..1).
    pub remote_rate: f64,
    pub remote_frees: u64,
    pub total_frees: u64,
    /// Asked share of frees handed to another thread (0..1); 0 for local workloads.
    #[serde(default)]
    pub asked_remote_rate: f64,
    /// False when a hand-off cell at >= 8 threads missed the asked share by more
    /// than `REMOTE_TOLERANCE` (see `Measured::remote_valid`).
    #[serde(default = "yes")]
    pub remote_valid: bool,
    /// RSS after everything was freed and the process then did light
    /// allocation traffic for `--settle-ms` (KiB); 0 when not measured.
    #[serde(default)]
    pub settled_rss_kib: u64,
    /// Sum of the tags read back before each free: identical for every
    /// correct allocator at a given (workload, threads, seed).
    pub checksum: u64,
    /// Blocks whose tag did not survive until free (memory corruption).
    pub corrupt: u64,
    /// Number of RSS samples taken during the timed region.
    pub samples: u64,
    /// Shared object that provides `malloc` in the driver (from dladdr).
    pub malloc_from: String,
    /// Downsampled RSS timeline `[ms since start, KiB]` (mstress, or `--timeline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<[f64; 2]>>,
}

/// Output of `hz3-bench-driver fastpath`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FastpathOutput {
    pub workload: String,
    pub pairs: u64,
    pub checksum: u64,
    pub malloc_from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    pub ncpu: u32,
    pub mem_total_kib: u64,
    pub kernel: String,
    /// 1-minute load average when the run started and when it ended.
    #[serde(default)]
    pub loadavg_start: f64,
    #[serde(default)]
    pub loadavg_end: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AllocKind {
    /// The system allocator: no LD_PRELOAD.
    System,
    Peer,
    Lane,
    /// A .so given by path (A/B runs).
    Custom,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AllocStatus {
    Ok,
    /// Not found on this machine: reported loudly, never dropped.
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Allocator {
    pub name: String,
    pub kind: AllocKind,
    /// The preloaded shared object, `None` for glibc.
    pub path: Option<String>,
    pub status: AllocStatus,
    #[serde(default)]
    pub note: String,
    /// FNV-1a 64 of the .so file, to tell builds apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Allocator {
    pub fn is_hz3(&self) -> bool {
        self.kind == AllocKind::Lane || self.name.starts_with("hz3")
    }
    pub fn is_peer(&self) -> bool {
        matches!(self.kind, AllocKind::System | AllocKind::Peer)
    }
    pub fn ok(&self) -> bool {
        self.status == AllocStatus::Ok
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadInfo {
    pub name: String,
    /// The driver's workload (`remote` for every `remote_*` cell).
    pub driver: String,
    pub description: String,
    /// Extra driver arguments, e.g. `["--min","16","--max","2048"]`.
    pub args: Vec<String>,
    /// Total iterations over all threads of a cell (per-thread = total / threads).
    pub iters_total: u64,
    pub ws: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_index: u32,
    pub seed: u64,
    pub ops_per_sec: f64,
    pub wall_s: f64,
    #[serde(default)]
    pub ops_per_cpu_sec: f64,
    pub peak_rss_kib: u64,
    pub mean_rss_kib: u64,
    pub after_rss_kib: u64,
    pub baseline_rss_kib: u64,
    pub remote_rate: f64,
    #[serde(default)]
    pub asked_remote_rate: f64,
    #[serde(default = "yes")]
    pub remote_valid: bool,
    /// Settled RSS (KiB); absent when the run could not measure it (the
    /// driver without `--settle-ms`, every real program): views show "n/a".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_rss_kib: Option<u64>,
    pub checksum: u64,
    pub corrupt: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<[f64; 2]>>,
}

impl RunRecord {
    pub fn from_driver(run_index: u32, d: &DriverOutput) -> RunRecord {
        RunRecord {
            run_index,
            seed: d.seed,
            ops_per_sec: d.ops_per_sec,
            wall_s: d.wall_s,
            ops_per_cpu_sec: d.ops_per_cpu_sec,
            peak_rss_kib: d.peak_rss_kib,
            mean_rss_kib: d.mean_rss_kib,
            after_rss_kib: d.after_rss_kib,
            baseline_rss_kib: d.baseline_rss_kib,
            remote_rate: d.remote_rate,
            asked_remote_rate: d.asked_remote_rate,
            remote_valid: d.remote_valid,
            settled_rss_kib: (d.settled_rss_kib > 0).then_some(d.settled_rss_kib),
            checksum: d.checksum,
            corrupt: d.corrupt,
            timeline: d.timeline.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunFailure {
    pub run_index: u32,
    pub seed: u64,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CellSummary {
    pub ops_per_sec: Stat,
    #[serde(default)]
    pub ops_per_cpu_sec: Stat,
    pub peak_rss_kib: Stat,
    pub mean_rss_kib: Stat,
    pub after_rss_kib: Stat,
    pub remote_rate: Stat,
    /// Over the runs that measured it (`settled_rss_kib` > 0); `None` = n/a.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_rss_kib: Option<Stat>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub workload: String,
    pub threads: u32,
    pub allocator: String,
    pub runs: Vec<RunRecord>,
    #[serde(default)]
    pub failures: Vec<RunFailure>,
    /// `None` when no run succeeded.
    pub summary: Option<CellSummary>,
    /// RSS timeline of the run closest to the median throughput (mstress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<[f64; 2]>>,
}

impl Cell {
    /// Why this cell may not be compared with others, or `None` when it may:
    /// a hand-off cell where some successful run missed the asked remote
    /// share by more than `REMOTE_TOLERANCE` (`remote_valid` false) did not
    /// do the same work as the other allocators. Such a cell is marked
    /// INVALID in every view and never enters a ratio, a ranking or a verdict.
    pub fn invalid_reason(&self) -> Option<String> {
        let bad: Vec<&RunRecord> = self.runs.iter().filter(|r| !r.remote_valid).collect();
        let worst = bad.iter().max_by(|a, b| {
            let da = (a.remote_rate - a.asked_remote_rate).abs();
            let db = (b.remote_rate - b.asked_remote_rate).abs();
            da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
        })?;
        Some(format!(
            "remote rate {:.3} vs asked {:.2} (tolerance ±{REMOTE_TOLERANCE}) in {} of {} run(s)",
            worst.remote_rate,
            worst.asked_remote_rate,
            bad.len(),
            self.runs.len()
        ))
    }

    pub fn is_valid(&self) -> bool {
        self.runs.iter().all(|r| r.remote_valid)
    }
}

/// The one throughput metric every view ranks by: the dashboard, results.md,
/// the gate and A/B all take it from here and print its name. Both values are
/// always recorded; `Metric::DEFAULT` is what `run`, `report`, `gate` and `ab`
/// use unless `--metric` says otherwise, and the gate uses the results file's
/// metric, i.e. the one its dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// ops per wall-clock second: what users see; the default.
    #[default]
    Wall,
    /// ops per CPU-second of the worker threads: steadier on a loaded machine,
    /// but an allocator that sleeps on a lock looks better than it is.
    Cpu,
}

impl Metric {
    pub const DEFAULT: Metric = Metric::Wall;

    /// "wall" or "cpu", as in `--metric`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Wall => "wall",
            Metric::Cpu => "cpu",
        }
    }
    /// "ops/s" or "ops/CPU-s".
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Wall => "ops/s",
            Metric::Cpu => "ops/CPU-s",
        }
    }
    /// A phrase naming the metric in every output.
    pub fn describe(self) -> &'static str {
        match self {
            Metric::Wall => "ops per wall-clock second (--metric wall)",
            Metric::Cpu => "ops per CPU-second of the worker threads (--metric cpu)",
        }
    }
    /// The other metric (shown as a secondary figure).
    pub fn other(self) -> Metric {
        match self {
            Metric::Wall => Metric::Cpu,
            Metric::Cpu => Metric::Wall,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl CellSummary {
    /// Throughput statistic under `metric`.
    pub fn throughput(&self, metric: impl std::borrow::Borrow<Metric>) -> Stat {
        match metric.borrow() {
            Metric::Cpu => self.ops_per_cpu_sec,
            Metric::Wall => self.ops_per_sec,
        }
    }
}

impl RunRecord {
    pub fn throughput(&self, metric: impl std::borrow::Borrow<Metric>) -> f64 {
        match metric.borrow() {
            Metric::Cpu => self.ops_per_cpu_sec,
            Metric::Wall => self.ops_per_sec,
        }
    }
}

impl Cell {
    /// `(run index, throughput under metric)` of every successful run, for
    /// the bootstrap (runs of different allocators with the same index ran
    /// back to back).
    pub fn run_values(&self, metric: Metric) -> Vec<(u32, f64)> {
        self.runs
            .iter()
            .map(|r| (r.run_index, r.throughput(metric)))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub mode: String,
    pub runs: u32,
    pub threads: Vec<u32>,
    pub seeds: Vec<u64>,
    pub pinned: bool,
    #[serde(default)]
    pub pin_cpus: Option<String>,
    pub interleaved: bool,
    /// Throughput metric the tables, charts, gate and verdicts use: "wall"
    /// (ops per wall-clock second, the default) or "cpu" (ops per CPU-second
    /// of the worker threads). Both are always recorded.
    #[serde(default)]
    pub metric: Metric,
    /// Settle time of the runs that measured `settled_rss_kib` (0: none did).
    #[serde(default)]
    pub settle_ms: u64,
    /// Whether every run settled, or only the first run of each cell.
    #[serde(default)]
    pub settle_every_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema: u32,
    pub tool: String,
    pub created_unix: u64,
    pub git_rev: String,
    pub git_dirty: bool,
    pub machine: Machine,
    pub config: Config,
    pub allocators: Vec<Allocator>,
    pub workloads: Vec<WorkloadInfo>,
    pub cells: Vec<Cell>,
    /// Loud, human-readable problems: missing peers, failed runs, checksum mismatches.
    #[serde(default)]
    pub warnings: Vec<String>,
    pub duration_s: f64,
}

impl Results {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialise")
    }

    pub fn from_json(s: &str) -> Result<Results, String> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("results file is not JSON: {e}"))?;
        match v.get("schema").and_then(|x| x.as_u64()) {
            Some(n) if n == SCHEMA_VERSION as u64 => {}
            Some(n) => {
                return Err(format!(
                    "results schema {n} is not supported (this bench-matrix reads schema {SCHEMA_VERSION})"
                ))
            }
            None => return Err("results file has no \"schema\" field".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("results file does not match schema 1: {e}"))
    }

    pub fn cell(&self, workload: &str, threads: u32, allocator: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.workload == workload && c.threads == threads && c.allocator == allocator)
    }

    pub fn allocator(&self, name: &str) -> Option<&Allocator> {
        self.allocators.iter().find(|a| a.name == name)
    }

    /// Throughput statistic of a cell under the configured metric.
    pub fn thr(&self, c: &Cell) -> Option<Stat> {
        c.summary.as_ref().map(|s| s.throughput(self.config.metric))
    }

    /// Median throughput of a cell for comparisons: `None` when the cell has
    /// no successful run or is invalid ([`Cell::invalid_reason`]), so an
    /// invalid cell never wins, never is the best peer and never gets a ratio.
    pub fn median_of(&self, c: &Cell) -> Option<f64> {
        if !c.is_valid() {
            return None;
        }
        self.thr(c).map(|s| s.median)
    }

    /// The reason a (workload, threads, allocator) cell is invalid, if it is.
    pub fn invalid(&self, workload: &str, threads: u32, allocator: &str) -> Option<String> {
        self.cell(workload, threads, allocator)?.invalid_reason()
    }

    /// "ops/s" or "ops/CPU-s".
    pub fn metric_unit(&self) -> &'static str {
        self.config.metric.unit()
    }

    /// Thread counts present, in config order.
    pub fn thread_counts(&self) -> Vec<u32> {
        self.config.threads.clone()
    }

    /// The best peer (glibc/jemalloc/mimalloc/tcmalloc) by median throughput
    /// for a (workload, threads): `(name, ops/s)`.
    pub fn best_peer(&self, workload: &str, threads: u32) -> Option<(String, f64)> {
        self.peer_by(workload, threads, |c| self.median_of(c), |m, best| m > best)
    }

    /// The working peer whose `value` of the (workload, threads) cell wins
    /// under `better(candidate, best so far)`, with that value; peers without
    /// a value, and invalid cells, are skipped.
    pub fn peer_by(
        &self,
        workload: &str,
        threads: u32,
        value: impl Fn(&Cell) -> Option<f64>,
        better: impl Fn(f64, f64) -> bool,
    ) -> Option<(String, f64)> {
        let mut best: Option<(String, f64)> = None;
        for a in self.allocators.iter().filter(|a| a.is_peer() && a.ok()) {
            if let Some(m) = self
                .cell(workload, threads, &a.name)
                .filter(|c| c.is_valid())
                .and_then(&value)
            {
                if best.as_ref().is_none_or(|b| better(m, b.1)) {
                    best = Some((a.name.clone(), m));
                }
            }
        }
        best
    }

    /// Ratio of an allocator's median throughput to the best peer's.
    pub fn ratio_to_best_peer(&self, allocator: &str, workload: &str, threads: u32) -> Option<f64> {
        let (_, best) = self.best_peer(workload, threads)?;
        let mine = self.median_of(self.cell(workload, threads, allocator)?)?;
        if best > 0.0 {
            Some(mine / best)
        } else {
            None
        }
    }

    /// An allocator's median throughput ÷ the best peer's, with a bootstrap
    /// interval over the runs (paired by run index: the runner ran them back
    /// to back): `(best peer, ratio and interval)`. The ratio is the same as
    /// [`Results::ratio_to_best_peer`]; `significant()` tells a real
    /// difference from noise.
    pub fn ratio_ci_to_best_peer(
        &self,
        allocator: &str,
        workload: &str,
        threads: u32,
    ) -> Option<(String, RatioCi)> {
        let (peer, _) = self.best_peer(workload, threads)?;
        let mine = self.cell(workload, threads, allocator)?;
        self.median_of(mine)?;
        let theirs = self.cell(workload, threads, &peer)?;
        let m = self.config.metric;
        let ci = ratio_ci(&theirs.run_values(m), &mine.run_values(m))?;
        Some((peer, ci))
    }

    /// The winner by median throughput among every allocator that ran.
    pub fn winner(&self, workload: &str, threads: u32) -> Option<(String, f64)> {
        let mut best: Option<(String, f64)> = None;
        for a in self.allocators.iter().filter(|a| a.ok()) {
            if let Some(m) = self
                .cell(workload, threads, &a.name)
                .and_then(|c| self.median_of(c))
            {
                if best.as_ref().is_none_or(|b| m > b.1) {
                    best = Some((a.name.clone(), m));
                }
            }
        }
        best
    }

    pub fn lanes(&self) -> Vec<&Allocator> {
        self.allocators.iter().filter(|a| a.is_hz3()).collect()
    }
}

fn yes() -> bool {
    true
}

/// A hand-off cell is invalid when its measured remote rate is further than
/// this from the asked one (at 8 threads and more).
pub const REMOTE_TOLERANCE: f64 = 0.02;

/// The per-run record every driver workload reports (shared by the classic
/// workloads and the stress shapes): what share of frees was asked to go to
/// another thread, what went, and the settled RSS.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    pub threads: u32,
    /// Asked share of frees handed off (0..1).
    pub asked_remote_rate: f64,
    pub remote_frees: u64,
    pub total_frees: u64,
    pub settled_rss_kib: u64,
}

impl Measured {
    pub fn remote_rate(&self) -> f64 {
        if self.total_frees > 0 {
            self.remote_frees as f64 / self.total_frees as f64
        } else {
            0.0
        }
    }

    /// The remote-rate rule: at 8 threads and more a hand-off cell must hand
    /// off the asked share within `REMOTE_TOLERANCE`.
    pub fn remote_valid(&self) -> bool {
        if self.threads < 8 || self.asked_remote_rate <= 0.0 {
            return true;
        }
        (self.remote_rate() - self.asked_remote_rate).abs() <= REMOTE_TOLERANCE
    }

    /// Copy the record into a driver output line.
    pub fn report(&self, out: &mut DriverOutput) {
        out.asked_remote_rate = self.asked_remote_rate;
        out.remote_rate = self.remote_rate();
        out.remote_frees = self.remote_frees;
        out.total_frees = self.total_frees;
        out.remote_valid = self.remote_valid();
        out.settled_rss_kib = self.settled_rss_kib;
    }
}
