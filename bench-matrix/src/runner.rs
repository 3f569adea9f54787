//! The matrix: every (workload, threads, allocator) cell run `runs` times,
//! interleaved, settling runs collected in the background, checksums and
//! program outputs compared, everything gathered into [`Results`].
//!
//! Owns: the run order and the results. Must not touch: how a process is
//! spawned or killed (process.rs), which allocators exist (peers.rs), the
//! machine header (machine.rs), the display (progress.rs), callgrind
//! (callgrind.rs).

use std::time::{Duration, Instant};

use crate::layout::{driver_path, Layout};
use crate::machine::{git_info, loadavg, machine_info, now_unix};
use crate::peers::check_provider;
use crate::process::{Pin, Running};
use crate::programs;
use crate::progress::Progress;
use crate::schema::*;
use crate::stats::Stat;
use crate::workloads::{seed_for_run, Mode, WorkloadDef};

pub struct Plan<'a> {
    pub mode: Mode,
    pub runs: u32,
    pub threads: Vec<u32>,
    pub workloads: Vec<&'a WorkloadDef>,
    pub allocators: Vec<Allocator>,
    pub pin: Option<Pin>,
    pub label: String,
    /// What the outputs rank by (both are recorded).
    pub metric: Metric,
    /// Settled-RSS measurement (`--settle-ms`).
    pub settle: Settle,
}

/// Which runs measure the settled RSS, and for how long they settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// Light traffic after the workload for this long (0: no settled RSS).
    pub ms: u64,
    /// Every run settles (full matrix), or only the first run of each cell
    /// (quick matrix: a 2 s settle in each of 3 runs would be most of its time).
    pub every_run: bool,
}

/// Default settle time: longer than every lane's `purge_decay_ms` (the
/// longest is 1000 ms; a test checks `lanes/*.toml`).
pub const SETTLE_MS: u64 = 2000;

impl Settle {
    pub const OFF: Settle = Settle {
        ms: 0,
        every_run: false,
    };
    pub fn for_mode(mode: Mode, ms: u64) -> Settle {
        Settle {
            ms,
            every_run: mode == Mode::Full,
        }
    }
    pub fn applies(&self, run_index: u32) -> bool {
        self.ms > 0 && (self.every_run || run_index == 0)
    }
}

/// Run every (workload, threads, allocator) cell `runs` times. Repetition is
/// the outer loop and allocators the inner one (rotated each repetition), so
/// slow drift of the machine spreads over all allocators alike.
pub fn run_plan(plan: &Plan, layout: &Layout) -> Result<Results, String> {
    let driver = driver_path()?;
    let t_start = Instant::now();
    let mut machine = machine_info();
    let (git_rev, git_dirty) = git_info(&layout.root);
    let mut warnings: Vec<String> = Vec::new();
    for a in &plan.allocators {
        if !a.ok() {
            warnings.push(format!("MISSING allocator {}: {}", a.name, a.note));
        }
    }
    let active: Vec<&Allocator> = plan.allocators.iter().filter(|a| a.ok()).collect();
    // Programs run in the smallest thread column only (programs.rs).
    let runs_at = |w: &WorkloadDef, t: u32| programs::runs_at(w, t, &plan.threads);
    let cells_per_rep: usize = plan
        .workloads
        .iter()
        .map(|w| plan.threads.iter().filter(|&&t| runs_at(w, t)).count())
        .sum();
    let total = plan.runs as usize * cells_per_rep * active.len();
    let inputs = programs::Inputs::prepare(&plan.workloads, plan.mode)?;
    let mut progress = Progress::new(total, &plan.label);
    for w in &warnings {
        progress.note(&format!("\x1b[1;31m!! {w}\x1b[0m"));
    }

    // cells[(w, t, a)] in a flat vector
    let idx = |wi: usize, ti: usize, ai: usize| (wi * plan.threads.len() + ti) * active.len() + ai;
    let mut runs: Vec<Vec<(RunRecord, String)>> =
        vec![Vec::new(); plan.workloads.len() * plan.threads.len() * active.len()];
    let mut fails: Vec<Vec<RunFailure>> = vec![Vec::new(); runs.len()];
    // Normalised outputs of program runs: (run index, output) per cell.
    let mut outputs: Vec<Vec<(u32, Vec<u8>)>> = vec![Vec::new(); runs.len()];
    let timeout = Duration::from_secs(plan.mode.timeout_s());
    // Runs whose result is in and which are settling in the background:
    // (cell index, run index, process, seed).
    let mut settling: Vec<Settling> = Vec::new();

    for r in 0..plan.runs {
        let seed = seed_for_run(r);
        for (wi, w) in plan.workloads.iter().enumerate() {
            for (ti, &t) in plan.threads.iter().enumerate() {
                if !runs_at(w, t) {
                    continue;
                }
                for k in 0..active.len() {
                    let ai = (k + r as usize) % active.len();
                    let a = active[ai];
                    progress.show(&format!(
                        "run {}/{} {} t{} {}",
                        r + 1,
                        plan.runs,
                        w.name,
                        t,
                        a.name
                    ));
                    if programs::is_program(w) {
                        let res =
                            programs::run(w, a, plan.mode, &inputs, plan.pin.as_ref(), r, timeout);
                        match res {
                            Ok((rec, out)) => {
                                runs[idx(wi, ti, ai)].push((rec, String::new()));
                                outputs[idx(wi, ti, ai)].push((r, out));
                            }
                            Err(e) => {
                                progress.note(&format!(
                                    "\x1b[1;31mFAILED\x1b[0m {} {}: {e}",
                                    w.name, a.name
                                ));
                                fails[idx(wi, ti, ai)].push(RunFailure {
                                    run_index: r,
                                    seed: programs::INPUT_SEED,
                                    error: e,
                                });
                            }
                        }
                        progress.step();
                        continue;
                    }
                    let mut args = w.driver_args(plan.mode, t, seed);
                    let settle_this = plan.settle.applies(r);
                    if settle_this {
                        args.extend(["--settle-ms".into(), plan.settle.ms.to_string()]);
                    }
                    // Collect the settled processes that are done; keep at
                    // most MAX_SETTLING of them in the background.
                    let mut i = 0;
                    while i < settling.len() {
                        if settling[i].2.exited() {
                            let s = settling.remove(i);
                            finish_settle(s, &mut runs, &mut fails, &mut progress);
                        } else {
                            i += 1;
                        }
                    }
                    while settling.len() >= MAX_SETTLING {
                        let s = settling.remove(0);
                        finish_settle(s, &mut runs, &mut fails, &mut progress);
                    }
                    let res = Running::spawn(&driver, a, &args, t, plan.pin.as_ref()).and_then(
                        |mut p| {
                            let line = match p.result_line(timeout) {
                                Ok(l) => l,
                                Err(e) => {
                                    let _ = p.finish(Duration::from_secs(5));
                                    return Err(e);
                                }
                            };
                            let d: DriverOutput = serde_json::from_str(&line)
                                .map_err(|e| format!("bad driver JSON ({e}): {line}"))?;
                            check_provider(a, &d.malloc_from)?;
                            if d.corrupt > 0 {
                                let _ = p.finish(Duration::from_secs(5));
                                return Err(format!("{} corrupted blocks", d.corrupt));
                            }
                            if settle_this {
                                Ok((d, Some(p)))
                            } else {
                                p.finish(Duration::from_secs(30))?;
                                Ok((d, None))
                            }
                        },
                    );
                    match res {
                        Ok((d, p)) => {
                            runs[idx(wi, ti, ai)]
                                .push((RunRecord::from_driver(r, &d), d.malloc_from));
                            if let Some(p) = p {
                                settling.push((idx(wi, ti, ai), r, p, seed));
                            }
                        }
                        Err(e) => {
                            progress.note(&format!(
                                "\x1b[1;31mFAILED\x1b[0m {} t{} {} seed {seed}: {e}",
                                w.name, t, a.name
                            ));
                            fails[idx(wi, ti, ai)].push(RunFailure {
                                run_index: r,
                                seed,
                                error: e,
                            });
                        }
                    }
                    progress.step();
                }
            }
        }
    }
    if !settling.is_empty() {
        progress.note(&format!(
            "waiting for {} run(s) to settle ({} ms each)",
            settling.len(),
            plan.settle.ms
        ));
    }
    for s in settling.drain(..) {
        finish_settle(s, &mut runs, &mut fails, &mut progress);
    }
    progress.finish();

    let mut cells = Vec::new();
    for (wi, w) in plan.workloads.iter().enumerate() {
        for (ti, &t) in plan.threads.iter().enumerate() {
            if !runs_at(w, t) {
                continue;
            }
            if programs::is_program(w) {
                // Outputs must agree: a differing run becomes a failure.
                let (lo, hi) = (idx(wi, ti, 0), idx(wi, ti, 0) + active.len());
                let names: Vec<String> = active.iter().map(|a| a.name.clone()).collect();
                warnings.extend(programs::enforce_equal_outputs(
                    w.name,
                    &names,
                    &mut runs[lo..hi],
                    &mut fails[lo..hi],
                    &outputs[lo..hi],
                ));
            }
            // Checksums must agree across allocators at each seed.
            for r in 0..plan.runs {
                let mut sums: Vec<(u64, &str)> = Vec::new();
                for (ai, a) in active.iter().enumerate() {
                    if let Some((rec, _)) =
                        runs[idx(wi, ti, ai)].iter().find(|(x, _)| x.run_index == r)
                    {
                        sums.push((rec.checksum, &a.name));
                    }
                }
                if let Some(majority) = majority(&sums.iter().map(|s| s.0).collect::<Vec<_>>()) {
                    for (c, name) in &sums {
                        if *c != majority {
                            warnings.push(format!(
                                "CHECKSUM MISMATCH {} t{} run {}: {name} read back different data ({c:#x} vs {majority:#x})",
                                w.name, t, r
                            ));
                        }
                    }
                }
            }
            for (ai, a) in active.iter().enumerate() {
                let recs: Vec<RunRecord> =
                    runs[idx(wi, ti, ai)].iter().map(|x| x.0.clone()).collect();
                let f = fails[idx(wi, ti, ai)].clone();
                if !f.is_empty() {
                    warnings.push(format!(
                        "FAILED RUNS {} t{} {}: {} of {} ({})",
                        w.name,
                        t,
                        a.name,
                        f.len(),
                        plan.runs,
                        f[0].error
                    ));
                }
                let cell = make_cell(w.name, t, &a.name, recs, f);
                if let Some(why) = cell.invalid_reason() {
                    warnings.push(format!(
                        "INVALID CELL {} t{} {}: {why}; not compared with any other cell",
                        w.name, t, a.name
                    ));
                }
                cells.push(cell);
            }
            for a in plan.allocators.iter().filter(|a| !a.ok()) {
                cells.push(make_cell(w.name, t, &a.name, Vec::new(), Vec::new()));
            }
        }
    }

    machine.loadavg_end = loadavg();
    let busy = machine.loadavg_start.max(machine.loadavg_end);
    if busy > machine.ncpu as f64 {
        warnings.push(format!(
            "BUSY MACHINE: load average {busy:.1} on {} CPUs during the run; wall-clock throughput is noisy \
             (ops per CPU-second, `bench-matrix report --metric cpu`, is steadier)",
            machine.ncpu
        ));
    }
    Ok(Results {
        schema: SCHEMA_VERSION,
        tool: format!("bench-matrix {}", env!("CARGO_PKG_VERSION")),
        created_unix: now_unix(),
        git_rev,
        git_dirty,
        machine,
        config: Config {
            mode: plan.mode.name().into(),
            runs: plan.runs,
            threads: plan.threads.clone(),
            seeds: (0..plan.runs).map(seed_for_run).collect(),
            pinned: plan.pin.is_some(),
            pin_cpus: plan.pin.as_ref().map(|p| p.describe()),
            interleaved: true,
            metric: plan.metric,
            settle_ms: plan.settle.ms,
            settle_every_run: plan.settle.every_run,
        },
        allocators: plan.allocators.clone(),
        workloads: plan.workloads.iter().map(|w| w.info(plan.mode)).collect(),
        cells,
        warnings,
        duration_s: t_start.elapsed().as_secs_f64(),
    })
}

/// How many runs may settle in the background while the next runs go on.
/// A settling process sleeps between tiny allocations (about 1 % of a CPU
/// each), so a few of them barely touch the run in the foreground.
pub const MAX_SETTLING: usize = 12;

type Settling = (usize, u32, Running, u64);

/// Wait for a settling run and store its settled RSS in its record; a run
/// that crashes while settling becomes a failed run.
fn finish_settle(
    s: Settling,
    runs: &mut [Vec<(RunRecord, String)>],
    fails: &mut [Vec<RunFailure>],
    progress: &mut Progress,
) {
    let (ci, r, p, seed) = s;
    match p.finish(Duration::from_secs(60)) {
        Ok(settled) => {
            if let Some(rec) = runs[ci].iter_mut().find(|x| x.0.run_index == r) {
                rec.0.settled_rss_kib = settled.filter(|&k| k > 0);
            }
        }
        Err(e) => {
            runs[ci].retain(|x| x.0.run_index != r);
            let e = format!("while settling: {e}");
            progress.note(&format!("\x1b[1;31mFAILED\x1b[0m seed {seed}: {e}"));
            fails[ci].push(RunFailure {
                run_index: r,
                seed,
                error: e,
            });
        }
    }
}

fn majority(v: &[u64]) -> Option<u64> {
    let mut best: Option<(u64, usize)> = None;
    for &x in v {
        let n = v.iter().filter(|&&y| y == x).count();
        if best.is_none_or(|b| n > b.1) {
            best = Some((x, n));
        }
    }
    best.map(|b| b.0)
}

/// Summarise one cell's runs (pure; also used by tests).
pub fn make_cell(
    workload: &str,
    threads: u32,
    allocator: &str,
    runs: Vec<RunRecord>,
    failures: Vec<RunFailure>,
) -> Cell {
    let summary = if runs.is_empty() {
        None
    } else {
        let f = |g: &dyn Fn(&RunRecord) -> f64| {
            Stat::of(&runs.iter().map(g).collect::<Vec<_>>()).unwrap_or_default()
        };
        Some(CellSummary {
            ops_per_sec: f(&|r| r.ops_per_sec),
            ops_per_cpu_sec: f(&|r| r.ops_per_cpu_sec),
            peak_rss_kib: f(&|r| r.peak_rss_kib as f64),
            mean_rss_kib: f(&|r| r.mean_rss_kib as f64),
            after_rss_kib: f(&|r| r.after_rss_kib as f64),
            remote_rate: f(&|r| r.remote_rate),
            settled_rss_kib: Stat::of(
                &runs
                    .iter()
                    .filter_map(|r| r.settled_rss_kib)
                    .filter(|&k| k > 0)
                    .map(|k| k as f64)
                    .collect::<Vec<_>>(),
            ),
        })
    };
    // Keep the timeline of the run closest to the median throughput; drop the rest.
    let timeline = summary.as_ref().and_then(|s| {
        runs.iter()
            .filter(|r| r.timeline.is_some())
            .min_by(|a, b| {
                let da = (a.ops_per_sec - s.ops_per_sec.median).abs();
                let db = (b.ops_per_sec - s.ops_per_sec.median).abs();
                da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
            })
            .and_then(|r| r.timeline.clone())
    });
    let runs = runs.into_iter().map(|mut r| {
        r.timeline = None;
        r
    });
    Cell {
        workload: workload.into(),
        threads,
        allocator: allocator.into(),
        runs: runs.collect(),
        failures,
        summary,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_vote() {
        assert_eq!(majority(&[1, 2, 2]), Some(2));
        assert_eq!(majority(&[]), None);
    }
}
