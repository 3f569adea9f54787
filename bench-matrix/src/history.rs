//! The benchmark history: one compact record per matrix run (rev, date,
//! machine, metric, and per cell the median with its interval and the runs
//! under the record's metric), kept as JSON lines in
//! `bench-matrix/history/history.jsonl` and, by bench.yml, on the Pages
//! branch. This module owns the record format, reading and appending; it
//! draws nothing (dashboard.rs) and judges nothing (view_model.rs, gate.rs).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::schema::{Metric, Results};
use crate::stats::{ratio_ci, RatioCi, Runs};

/// Version of one history line. Bump on any incompatible change.
pub const HISTORY_SCHEMA: u32 = 1;

/// A change between two history points smaller than this (relative) is noise
/// whatever its interval says: the dashboard does not mark it and the gate's
/// regression rule does not fail on it (gate.toml `[regression] noise_band`
/// overrides it for the gate).
pub const NOISE_BAND: f64 = 0.05;

/// The repository's history file below a checkout root.
pub fn default_path(root: &Path) -> PathBuf {
    root.join("bench-matrix/history/history.jsonl")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistMachine {
    pub hostname: String,
    pub cpu_model: String,
    pub ncpu: u32,
    pub loadavg_start: f64,
    pub loadavg_end: f64,
}

/// One (workload, threads, allocator) cell of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistCell {
    pub workload: String,
    pub threads: u32,
    pub allocator: String,
    /// "lane" (hz3) or "peer".
    pub kind: String,
    /// Median throughput under the record's metric, and the min-max of the runs.
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    /// `[run index, throughput]` of every successful run (the seeds are fixed
    /// per run index, so run r of two records ran the same work).
    pub runs: Vec<(u32, f64)>,
    /// Median peak RSS (VmHWM) and settled RSS, KiB; `None` = not measured.
    pub peak_rss_kib: Option<f64>,
    pub settled_rss_kib: Option<f64>,
    /// `[run index, KiB]` of the runs that measured peak / settled RSS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peak_runs: Vec<(u32, f64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled_runs: Vec<(u32, f64)>,
    /// False when the cell failed, corrupted memory or missed its remote share:
    /// such a cell is never compared.
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub history_schema: u32,
    pub rev: String,
    pub dirty: bool,
    /// When the run started (unix seconds, UTC).
    pub date_unix: u64,
    pub machine: HistMachine,
    pub metric: Metric,
    pub mode: String,
    pub runs: u32,
    pub pin_cpus: Option<String>,
    pub cells: Vec<HistCell>,
}

impl Record {
    /// The record of a results file, under the results' metric.
    pub fn from_results(r: &Results) -> Record {
        let m = r.config.metric;
        let mut cells = Vec::new();
        for c in &r.cells {
            let Some(a) = r.allocator(&c.allocator) else {
                continue;
            };
            if !a.ok() {
                continue;
            }
            let Some(s) = &c.summary else {
                continue;
            };
            let st = s.throughput(m);
            let corrupt: u64 = c.runs.iter().map(|x| x.corrupt).sum();
            cells.push(HistCell {
                workload: c.workload.clone(),
                threads: c.threads,
                allocator: c.allocator.clone(),
                kind: if a.is_hz3() { "lane" } else { "peer" }.into(),
                median: st.median,
                lo: st.min,
                hi: st.max,
                runs: c.run_values(m),
                peak_rss_kib: (s.peak_rss_kib.n > 0).then_some(s.peak_rss_kib.median),
                settled_rss_kib: s.settled_rss_kib.map(|x| x.median),
                peak_runs: c
                    .runs
                    .iter()
                    .filter(|x| x.peak_rss_kib > 0)
                    .map(|x| (x.run_index, x.peak_rss_kib as f64))
                    .collect(),
                settled_runs: c
                    .runs
                    .iter()
                    .filter_map(|x| x.settled_rss_kib.map(|k| (x.run_index, k as f64)))
                    .filter(|x| x.1 > 0.0)
                    .collect(),
                valid: c.is_valid() && c.failures.is_empty() && corrupt == 0,
            });
        }
        Record {
            history_schema: HISTORY_SCHEMA,
            rev: r.git_rev.clone(),
            dirty: r.git_dirty,
            date_unix: r.created_unix,
            machine: HistMachine {
                hostname: r.machine.hostname.clone(),
                cpu_model: r.machine.cpu_model.clone(),
                ncpu: r.machine.ncpu,
                loadavg_start: r.machine.loadavg_start,
                loadavg_end: r.machine.loadavg_end,
            },
            metric: m,
            mode: r.config.mode.clone(),
            runs: r.config.runs,
            pin_cpus: r.config.pin_cpus.clone(),
            cells,
        }
    }

    pub fn cell(&self, workload: &str, threads: u32, allocator: &str) -> Option<&HistCell> {
        self.cells
            .iter()
            .find(|c| c.workload == workload && c.threads == threads && c.allocator == allocator)
    }

    /// Lane names in first-seen order.
    pub fn lanes(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for c in self.cells.iter().filter(|c| c.kind == "lane") {
            if !v.contains(&c.allocator) {
                v.push(c.allocator.clone());
            }
        }
        v
    }

    /// The fastest valid peer cell of (workload, threads).
    pub fn best_peer(&self, workload: &str, threads: u32) -> Option<&HistCell> {
        self.cells
            .iter()
            .filter(|c| {
                c.kind == "peer" && c.valid && c.workload == workload && c.threads == threads
            })
            .max_by(|a, b| a.median.total_cmp(&b.median))
    }

    /// The valid peer cell with the lowest RSS under `get`.
    pub fn lowest_peer_by(
        &self,
        workload: &str,
        threads: u32,
        get: impl Fn(&HistCell) -> Option<f64>,
    ) -> Option<(&HistCell, f64)> {
        self.cells
            .iter()
            .filter(|c| {
                c.kind == "peer" && c.valid && c.workload == workload && c.threads == threads
            })
            .filter_map(|c| get(c).filter(|v| *v > 0.0).map(|v| (c, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// A lane's median ÷ the best peer's, with the paired bootstrap interval:
    /// `(best peer, ratio)`. `None` for an invalid or absent cell.
    pub fn ratio_to_best_peer(
        &self,
        lane: &str,
        workload: &str,
        threads: u32,
    ) -> Option<(String, RatioCi)> {
        let mine = self.cell(workload, threads, lane).filter(|c| c.valid)?;
        let peer = self.best_peer(workload, threads)?;
        Some((peer.allocator.clone(), ratio_ci(&peer.runs, &mine.runs)?))
    }

    /// Per run index, lane ÷ best peer (the runner ran them back to back):
    /// what the change between two records is bootstrapped over.
    pub fn run_ratios(&self, lane: &str, workload: &str, threads: u32) -> Option<Runs> {
        let mine = self.cell(workload, threads, lane).filter(|c| c.valid)?;
        let peer = self.best_peer(workload, threads)?;
        let v: Runs = mine
            .runs
            .iter()
            .filter_map(|(i, x)| {
                peer.runs
                    .iter()
                    .find(|p| p.0 == *i)
                    .filter(|p| p.1 > 0.0)
                    .map(|p| (*i, x / p.1))
            })
            .collect();
        (!v.is_empty()).then_some(v)
    }

    /// The (workload, threads) pairs in first-seen order.
    pub fn cells_wt(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = Vec::new();
        for c in &self.cells {
            if !v.iter().any(|(w, t)| *w == c.workload && *t == c.threads) {
                v.push((c.workload.clone(), c.threads));
            }
        }
        v
    }

    /// One JSON line.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("history record serialises")
    }
}

/// How a lane's ratio to the best peer moved from one record to the next:
/// `ci` is (ratio now) ÷ (ratio before), bootstrapped over the per-run ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub ci: RatioCi,
    /// The interval excludes 1 and the point moved by more than the noise band.
    pub significant: bool,
}

/// The change of `lane`'s ratio at (workload, threads) from `prev` to `cur`.
pub fn change(
    prev: &Record,
    cur: &Record,
    lane: &str,
    workload: &str,
    threads: u32,
    noise_band: f64,
) -> Option<Change> {
    let a = prev.run_ratios(lane, workload, threads)?;
    let b = cur.run_ratios(lane, workload, threads)?;
    let ci = ratio_ci(&a, &b)?;
    let significant = ci.significant() && (ci.ratio - 1.0).abs() > noise_band;
    Some(Change { ci, significant })
}

/// Parse a history file; blank lines are skipped, a bad line is an error
/// naming its number.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("history line {}: not JSON: {e}", i + 1))?;
        match v.get("history_schema").and_then(|x| x.as_u64()) {
            Some(n) if n == HISTORY_SCHEMA as u64 => {}
            other => {
                return Err(format!(
                    "history line {}: history_schema {other:?} (this bench-matrix reads {HISTORY_SCHEMA})",
                    i + 1
                ))
            }
        }
        out.push(serde_json::from_value(v).map_err(|e| format!("history line {}: {e}", i + 1))?);
    }
    Ok(out)
}

/// Read a history file; a missing file is an empty history.
pub fn load(path: &Path) -> Result<Vec<Record>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Append one record as a line (creating the file and its directory).
pub fn append(path: &Path, rec: &Record) -> Result<(), String> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{}", rec.to_line()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The point a run is judged against: the latest record of another commit
/// with the same metric, preferring one from the same machine. `None` when the
/// history has no such record; the string says why a cross-machine one was
/// refused.
pub fn previous_point<'a>(history: &'a [Record], cur: &Record) -> Result<&'a Record, String> {
    let same = |r: &&Record| r.rev != cur.rev && r.metric == cur.metric;
    match history
        .iter()
        .rev()
        .filter(same)
        .find(|r| r.machine.hostname == cur.machine.hostname)
    {
        Some(r) => Ok(r),
        None if history.iter().any(|r| same(&r)) => Err(format!(
            "no earlier record from machine '{}' (ratios from other machines are not comparable)",
            cur.machine.hostname
        )),
        None => Err("no earlier record of another commit with the same metric".into()),
    }
}
