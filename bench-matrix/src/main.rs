//! bench-matrix: the runner CLI. See bench-matrix/README.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bench_matrix::ab;
use bench_matrix::dashboard;
use bench_matrix::gate::{self, CheckStatus, GateConfig};
use bench_matrix::layout::{self, Layout};
use bench_matrix::markdown;
use bench_matrix::process::{self, Pin};
use bench_matrix::runner::{self, Plan, Settle};
use bench_matrix::schema::{AllocKind, Allocator, Metric, Results};
use bench_matrix::verdict::{Thresholds, Verdict};
use bench_matrix::workloads::{self, Mode};
use bench_matrix::{callgrind, cli_history, machine, peers, progress};
use clap::{Args, Parser, Subcommand};

/// The synopsis and notes, shown after clap's help of `bench-matrix`.
const USAGE: &str = "\
USAGE:
  bench-matrix run [--quick|--full] [--lanes fast,scale,..] [--peers glibc,jemalloc,..]
                   [--threads 1,8,32] [--workloads small,mixed,..] [--runs N]
                   [--pin] [--pin-cpus LIST] [--metric wall|cpu] [--settle-ms MS] [--out DIR]
  bench-matrix ab --a X --b Y [--quick|--full] [--runs N] [--workloads ..] [--threads ..]
                   [--threshold PCT] [--metric wall|cpu] [--settle-ms MS] [--pin] [--out DIR]
  bench-matrix gate [--results FILE] [--thresholds FILE] [--metric wall|cpu] [--history FILE|none]
  bench-matrix history-append [--results FILE] [--history FILE]
  bench-matrix readme [--write] [--history FILE] [--readme FILE]
  bench-matrix readme-check [--history FILE] [--readme FILE] [--thresholds FILE]
  bench-matrix callgrind-gate [--lanes ..] [--peers ..] [--thresholds FILE] [--out DIR]
  bench-matrix report [--results FILE] [--out DIR] [--metric wall|cpu] [--history FILE]
  bench-matrix list

  X / Y for ab: a lane name (fast), a peer (glibc, jemalloc, mimalloc, tcmalloc)
  or a path to a .so. Workload names: see `bench-matrix list`; also all, quick, remote.
  Defaults: --quick, 3 runs (30 with --full), threads 1,8,32, out bench-matrix/results/latest.
  --settle-ms: after its result each run does light traffic this long, then records
  settled_rss_kib (run: 2000, longer than every lane's purge_decay_ms; quick settles the
  first run of each cell, full every run; ab: 0 = off). Settling overlaps the next runs.
  History: bench-matrix/history/history.jsonl (one line per run; run and report draw its
  trends into the dashboard; gate judges a regression against its previous point).
  Exit codes: run/report 0 when results were written; ab 0 for GO/SOFT GO, 3 for NO-GO/INVALID;
  gate/callgrind-gate 1 when a threshold is crossed; 2 for usage errors.
";

/// Options every matrix command (run, ab) takes.
#[derive(Args, Debug)]
struct MatrixArgs {
    /// The quick matrix (the default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// The full matrix (30 runs).
    #[arg(long)]
    full: bool,
    /// Runs per cell (default 3; 30 with --full; ab: 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runs: Option<u32>,
    /// Thread counts (default 1,8,32).
    #[arg(long, value_name = "1,8,32", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<Vec<u32>>,
    /// Workloads (see `bench-matrix list`; also all, quick, remote).
    #[arg(long, value_name = "small,mixed,..", value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// Pin the runs with taskset (1-thread cells on the last CPU).
    #[arg(long)]
    pin: bool,
    /// Pin every run to this taskset CPU list (implies --pin).
    #[arg(long, value_name = "LIST")]
    pin_cpus: Option<String>,
    /// Throughput metric the outputs rank by.
    #[arg(long, value_enum, default_value_t = Metric::DEFAULT)]
    metric: Metric,
    /// After its result each run does light traffic this long, then records
    /// settled_rss_kib (run: 2000; ab: 0 = off).
    #[arg(long, value_name = "MS")]
    settle_ms: Option<u64>,
    /// Output directory (default bench-matrix/results/latest).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    root: RootArg,
}

/// The repository root (found from the working directory or the executable).
#[derive(Args, Debug)]
struct RootArg {
    #[arg(long, hide = true)]
    root: Option<PathBuf>,
}

impl RootArg {
    fn layout(&self) -> Layout {
        Layout::discover(self.root.as_deref())
    }
}

#[derive(Args, Debug)]
struct AllocArgs {
    /// hz3 lanes (default: every lanes/*.toml; none = no lane).
    #[arg(long, value_name = "fast,scale,..", value_delimiter = ',')]
    lanes: Option<Vec<String>>,
    /// Peers (default: glibc,jemalloc,mimalloc,tcmalloc; none = no peer).
    #[arg(long, value_name = "glibc,jemalloc,..", value_delimiter = ',')]
    peers: Option<Vec<String>>,
}

#[derive(Parser, Debug)]
#[command(
    name = "bench-matrix",
    about = "bench-matrix — hz3 lanes against glibc, jemalloc, mimalloc and tcmalloc",
    after_help = USAGE,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the bench matrix and write results.json, results.md, dashboard.html.
    Run {
        #[command(flatten)]
        m: MatrixArgs,
        #[command(flatten)]
        alloc: AllocArgs,
    },
    /// A/B two allocators: GO / SOFT GO / NO-GO per workload (exit 3 for NO-GO/INVALID).
    Ab {
        /// A: a lane name (fast), a peer (glibc, jemalloc, mimalloc, tcmalloc) or a path to a .so.
        #[arg(long = "a", value_name = "X")]
        a: String,
        /// B: as A.
        #[arg(long = "b", value_name = "Y")]
        b: String,
        /// Smallest change that counts (default 1%).
        #[arg(long, value_name = "PCT", value_parser = parse_threshold)]
        threshold: Option<f64>,
        #[command(flatten)]
        m: MatrixArgs,
    },
    /// Check a results file against the thresholds (exit 1 when one is crossed).
    Gate {
        /// Results file (default bench-matrix/results/latest/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// Thresholds (default bench-matrix/gate.toml).
        #[arg(long, value_name = "FILE")]
        thresholds: Option<PathBuf>,
        /// Rank by this metric instead of the results file's.
        #[arg(long, value_enum)]
        metric: Option<Metric>,
        /// History to judge regressions against (default
        /// bench-matrix/history/history.jsonl; none = no regression check).
        #[arg(long, value_name = "FILE|none")]
        history: Option<String>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Instructions per malloc+free pair under callgrind (exit 1 above a lane's limit).
    CallgrindGate {
        #[command(flatten)]
        alloc: AllocArgs,
        /// Thresholds (default bench-matrix/gate.toml).
        #[arg(long, value_name = "FILE")]
        thresholds: Option<PathBuf>,
        /// Output directory (default bench-matrix/results/callgrind).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Render results.md and dashboard.html again from a results file.
    Report {
        /// Results file (default bench-matrix/results/latest/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// Output directory (default: the results file's).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Rank by this metric (rewrites the results file's).
        #[arg(long, value_enum)]
        metric: Option<Metric>,
        /// History whose trends the dashboard draws (default bench-matrix/history/history.jsonl).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Append one record of a results file to the history.
    HistoryAppend {
        /// Results file (default bench-matrix/results/latest/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// History (default bench-matrix/history/history.jsonl).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Print (or --write) the README's lane figures from the last history record.
    Readme {
        /// Write them into the README (and gate.toml's generated rules).
        #[arg(long)]
        write: bool,
        /// History (default bench-matrix/history/history.jsonl).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// README (default README.md).
        #[arg(long, value_name = "FILE")]
        readme: Option<PathBuf>,
        #[command(flatten)]
        root: RootArg,
    },
    /// Check the README's claims against the last history record.
    ReadmeCheck {
        /// History (default bench-matrix/history/history.jsonl).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// README (default README.md).
        #[arg(long, value_name = "FILE")]
        readme: Option<PathBuf>,
        /// Thresholds (default bench-matrix/gate.toml).
        #[arg(long, value_name = "FILE")]
        thresholds: Option<PathBuf>,
        #[command(flatten)]
        root: RootArg,
    },
    /// List the workloads, programs and allocators.
    List {
        #[command(flatten)]
        root: RootArg,
    },
    /// Internal: the runner measures real programs through it (process.rs).
    #[command(hide = true, disable_help_flag = true)]
    ExecMeasured {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Options as argv for the commands that parse their own (cli_history.rs).
fn argv(opts: &[(&str, Option<PathBuf>)], flags: &[(&str, bool)]) -> Vec<String> {
    let mut v = Vec::new();
    for (name, val) in opts {
        if let Some(val) = val {
            v.push(name.to_string());
            v.push(val.display().to_string());
        }
    }
    for (name, on) in flags {
        if *on {
            v.push(name.to_string());
        }
    }
    v
}

/// `--threshold 2` or `2%`: a fraction.
fn parse_threshold(s: &str) -> Result<f64, String> {
    s.trim_end_matches('%')
        .parse::<f64>()
        .map(|p| p / 100.0)
        .map_err(|_| format!("bad --threshold '{s}'"))
}

fn main() -> ExitCode {
    // Usage errors exit 2 and help 0 (clap's codes, as before).
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Run { m, alloc } => cmd_run(m, alloc),
        Cmd::Ab { a, b, threshold, m } => cmd_ab(&a, &b, threshold.unwrap_or(0.01), m),
        Cmd::Gate {
            results,
            thresholds,
            metric,
            root,
            history,
        } => cmd_gate(results, thresholds, metric, history, root.layout()),
        Cmd::CallgrindGate {
            alloc,
            thresholds,
            out,
            root,
        } => cmd_callgrind(alloc, thresholds, out, root.layout()),
        Cmd::Report {
            results,
            out,
            metric,
            history,
            root,
        } => cmd_report(results, out, metric, history, root.layout()),
        // history.rs's commands (cli_history.rs) take their options as argv.
        Cmd::HistoryAppend {
            results,
            history,
            root,
        } => cli_history::append(&mut argv(
            &[
                ("--results", results),
                ("--history", history),
                ("--root", root.root),
            ],
            &[],
        )),
        Cmd::Readme {
            write,
            history,
            readme,
            root,
        } => cli_history::readme(&mut argv(
            &[
                ("--history", history),
                ("--readme", readme),
                ("--root", root.root),
            ],
            &[("--write", write)],
        )),
        Cmd::ReadmeCheck {
            history,
            readme,
            thresholds,
            root,
        } => cli_history::readme_check(&mut argv(
            &[
                ("--history", history),
                ("--readme", readme),
                ("--thresholds", thresholds),
                ("--root", root.root),
            ],
            &[],
        )),
        Cmd::List { root } => cmd_list(root.layout()),
        Cmd::ExecMeasured { args } => {
            return ExitCode::from(process::exec_measured_main(&args).clamp(0, 255) as u8)
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("bench-matrix: {e}");
            ExitCode::from(2)
        }
    }
}

struct Common {
    layout: Layout,
    mode: Mode,
    runs: u32,
    threads: Vec<u32>,
    workloads: Vec<&'static workloads::WorkloadDef>,
    pin: Option<Pin>,
    out: Option<PathBuf>,
    metric: Metric,
    settle_ms: Option<u64>,
}

fn common(m: MatrixArgs, default_runs: Option<u32>) -> Result<Common, String> {
    let layout = m.root.layout();
    let mode = if m.full { Mode::Full } else { Mode::Quick };
    let runs = match (m.runs, default_runs, mode) {
        (Some(n), ..) => n,
        (None, _, Mode::Full) => mode.default_runs(),
        (None, Some(d), _) => d,
        (None, None, _) => mode.default_runs(),
    };
    let threads = m.threads.unwrap_or_else(|| vec![1, 8, 32]);
    let workloads = workloads::select(trimmed(m.workloads).as_deref(), mode)?;
    let pin = if m.pin || m.pin_cpus.is_some() {
        if std::process::Command::new("taskset")
            .arg("--version")
            .output()
            .is_err()
        {
            return Err("--pin needs taskset (util-linux)".into());
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        Some(Pin::new(m.pin_cpus.as_deref(), ncpu))
    } else {
        None
    };
    Ok(Common {
        settle_ms: m.settle_ms,
        layout,
        mode,
        runs,
        threads,
        workloads,
        pin,
        out: m.out,
        metric: m.metric,
    })
}

/// A comma list's names, trimmed, empty ones dropped.
fn trimmed(v: Option<Vec<String>>) -> Option<Vec<String>> {
    v.map(|v| {
        v.into_iter()
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

/// The lanes and peers named (every lane and peer by default; `none` = none).
fn select_allocators(layout: &Layout, alloc: AllocArgs) -> Result<Vec<Allocator>, String> {
    let lanes = trimmed(alloc.lanes);
    let mut v = if lanes
        .as_ref()
        .is_some_and(|l| l.iter().any(|x| x == "none"))
    {
        Vec::new()
    } else {
        peers::lanes(layout, lanes.as_deref())
    };
    v.extend(select_peers(trimmed(alloc.peers))?);
    Ok(v)
}

fn select_peers(list: Option<Vec<String>>) -> Result<Vec<Allocator>, String> {
    let names: Vec<String> =
        list.unwrap_or_else(|| peers::ALL_PEERS.iter().map(|s| s.to_string()).collect());
    names
        .iter()
        .filter(|n| n.as_str() != "none")
        .map(|n| {
            peers::peer(n).ok_or_else(|| {
                format!("unknown peer '{n}' (glibc, jemalloc, mimalloc, tcmalloc, none)")
            })
        })
        .collect()
}

fn write_outputs(results: &Results, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let w = |name: &str, text: &str| {
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("write {}: {e}", out.join(name).display()))
    };
    w("results.json", &results.to_json())?;
    w("results.md", &markdown::render(results))?;
    // Trends over the repository's history (empty without one).
    let root = Layout::discover(None).root;
    let hist = bench_matrix::history::load(&bench_matrix::history::default_path(&root))?;
    w(
        "dashboard.html",
        &dashboard::render_with_history(results, &hist),
    )?;
    Ok(())
}

/// A loud line on stderr: red and bold on a terminal, plain in logs.
fn shout(msg: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[1;31m{msg}\x1b[0m");
    } else {
        eprintln!("{msg}");
    }
}

fn loud_missing(results: &Results) {
    for a in results.allocators.iter().filter(|a| !a.ok()) {
        shout(&format!("!! MISSING {}: {}", a.name, a.note));
    }
}

fn cmd_run(m: MatrixArgs, alloc: AllocArgs) -> Result<u8, String> {
    let c = common(m, None)?;
    let allocators = select_allocators(&c.layout, alloc)?;
    let plan = Plan {
        mode: c.mode,
        runs: c.runs,
        threads: c.threads,
        workloads: c.workloads,
        allocators,
        pin: c.pin,
        label: format!("bench-matrix {}", c.mode.name()),
        metric: c.metric,
        settle: Settle::for_mode(c.mode, c.settle_ms.unwrap_or(runner::SETTLE_MS)),
    };
    let active = plan.allocators.iter().filter(|a| a.ok()).count();
    // Real programs run in the smallest thread column only.
    let cells: usize = plan
        .workloads
        .iter()
        .map(|w| {
            plan.threads
                .iter()
                .filter(|&&t| bench_matrix::programs::runs_at(w, t, &plan.threads))
                .count()
        })
        .sum();
    eprintln!(
        "bench-matrix: {} workloads × {} thread counts × {} allocators × {} runs = {} processes",
        plan.workloads.len(),
        plan.threads.len(),
        active,
        plan.runs,
        cells * active * plan.runs as usize
    );
    let est = workloads::estimate_s(
        &plan.workloads,
        plan.threads.len(),
        active,
        plan.runs,
        plan.mode,
        plan.settle.ms,
    );
    eprintln!(
        "bench-matrix: estimated {} on an idle 2-core machine ({} mode; load average now {:.1}: a busy machine takes longer)",
        progress::fmt_dur(est),
        plan.mode.name(),
        machine::loadavg()
    );
    let results = runner::run_plan(&plan, &c.layout)?;
    let out = c.out.unwrap_or_else(|| c.layout.default_out());
    write_outputs(&results, &out)?;
    loud_missing(&results);
    let bad = results
        .warnings
        .iter()
        .filter(|w| !w.starts_with("MISSING"))
        .count();
    if bad > 0 {
        shout(&format!("!! {bad} warning(s): see results.md"));
    }
    println!("results:   {}", out.join("results.json").display());
    println!("markdown:  {}", out.join("results.md").display());
    println!("dashboard: {}", out.join("dashboard.html").display());
    Ok(0)
}

fn cmd_ab(a_spec: &str, b_spec: &str, threshold: f64, m: MatrixArgs) -> Result<u8, String> {
    let c = common(m, Some(5))?;
    let metric = c.metric;
    let mut a = peers::resolve_spec(&c.layout, a_spec)?;
    let mut b = peers::resolve_spec(&c.layout, b_spec)?;
    if a.name == b.name {
        a.name = format!("A:{}", a.name);
        b.name = format!("B:{}", b.name);
    }
    if a.kind == AllocKind::Custom && a.name.starts_with("libhz3") {
        a.kind = AllocKind::Lane;
    }
    if b.kind == AllocKind::Custom && b.name.starts_with("libhz3") {
        b.kind = AllocKind::Lane;
    }
    let (an, bn) = (a.name.clone(), b.name.clone());
    let plan = Plan {
        mode: c.mode,
        runs: c.runs,
        threads: c.threads,
        workloads: c.workloads,
        allocators: vec![a, b],
        pin: c.pin,
        label: format!("ab {an} vs {bn}"),
        metric: c.metric,
        settle: Settle::for_mode(c.mode, c.settle_ms.unwrap_or(0)),
    };
    let results = runner::run_plan(&plan, &c.layout)?;
    let th = Thresholds {
        min_change: threshold,
    };
    let rep = ab::compare(results, &an, &bn, th, metric);
    let safe = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let out = c.out.unwrap_or_else(|| {
        c.layout.root.join("bench-matrix/results").join(format!(
            "ab-{}-vs-{}",
            safe(&an),
            safe(&bn)
        ))
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let md = ab::render_md(&rep);
    std::fs::write(out.join("ab.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(out.join("ab.json"), rep.to_json()).map_err(|e| e.to_string())?;
    println!("{md}");
    println!(
        "written: {}  {}",
        out.join("ab.md").display(),
        out.join("ab.json").display()
    );
    Ok(
        if matches!(rep.overall.verdict, Verdict::NoGo | Verdict::Invalid) {
            3
        } else {
            0
        },
    )
}

fn cmd_gate(
    results: Option<PathBuf>,
    thresholds: Option<PathBuf>,
    metric_flag: Option<Metric>,
    hist_path: Option<String>,
    layout: Layout,
) -> Result<u8, String> {
    let results_path = results.unwrap_or_else(|| layout.default_out().join("results.json"));
    let th_path = thresholds.unwrap_or_else(|| layout.gate_toml());
    let text = std::fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let mut results = Results::from_json(&text)?;
    let cfg_text =
        std::fs::read_to_string(&th_path).map_err(|e| format!("{}: {e}", th_path.display()))?;
    let mut cfg = GateConfig::parse(&cfg_text)?;
    cfg.require_lanes = peers::required_lanes(&layout, &cfg.require_lanes);
    // The gate ranks by the metric the results file's dashboard shows;
    // --metric (then a `metric` key in the thresholds file) overrides it.
    let shown = results.config.metric;
    if let Some(m) = metric_flag {
        results.config.metric = m;
    } else if let Some(m) = cfg.metric {
        results.config.metric = m;
    }
    let mut rep = gate::evaluate(&results, &cfg);
    let regression = bench_matrix::cli_history::regression_checks(
        &results,
        &cfg,
        hist_path.as_deref(),
        &layout.root,
    )?;
    rep.failures += regression
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    rep.checks.extend(regression);
    let color = {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal()
    };
    println!(
        "gate: {} against {}\nmetric: {}{}",
        results_path.display(),
        th_path.display(),
        results.config.metric.describe(),
        if results.config.metric == shown {
            " — the metric the dashboard shows".to_string()
        } else {
            format!(" — NOT the dashboard's ({}): overridden", shown.describe())
        }
    );
    println!(
        "{:<16} {:<16} {:>7} {:>8} {:>8} {:<10} {:<6} note",
        "lane", "workload", "threads", "ratio", "min", "best peer", "status"
    );
    for c in &rep.checks {
        let st = match (c.status.clone(), color) {
            (CheckStatus::Pass, true) => "\x1b[32mPASS\x1b[0m",
            (CheckStatus::Fail, true) => "\x1b[1;31mFAIL\x1b[0m",
            (CheckStatus::Skip, true) => "\x1b[33mSKIP\x1b[0m",
            (CheckStatus::Pass, false) => "PASS",
            (CheckStatus::Fail, false) => "FAIL",
            (CheckStatus::Skip, false) => "SKIP",
        };
        println!(
            "{:<16} {:<16} {:>7} {:>8} {:>8} {:<10} {}   {}",
            c.lane,
            c.workload,
            if c.threads == 0 {
                "*".into()
            } else {
                c.threads.to_string()
            },
            c.ratio
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "-".into()),
            c.min_ratio
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "-".into()),
            c.best_peer.as_deref().unwrap_or("-"),
            st,
            c.note
        );
    }
    if rep.checks.is_empty() {
        println!("(no hz3 lane in the results: nothing to gate)");
    }
    let checked = rep
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Skip)
        .count();
    if rep.failures > 0 {
        println!(
            "gate: FAIL — {} of {} checks below threshold",
            rep.failures, checked
        );
        Ok(1)
    } else {
        println!("gate: PASS — {checked} checks");
        Ok(0)
    }
}

fn cmd_callgrind(
    alloc: AllocArgs,
    thresholds: Option<PathBuf>,
    out: Option<PathBuf>,
    layout: Layout,
) -> Result<u8, String> {
    let th_path = thresholds.unwrap_or_else(|| layout.gate_toml());
    let out = out.unwrap_or_else(|| layout.root.join("bench-matrix/results/callgrind"));
    let mut cfg = GateConfig::parse(
        &std::fs::read_to_string(&th_path).map_err(|e| format!("{}: {e}", th_path.display()))?,
    )?;
    cfg.require_lanes = peers::required_lanes(&layout, &cfg.require_lanes);
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("valgrind is not installed (bench-matrix/setup-peers.sh installs it)".into());
    }
    let driver = layout::driver_path()?;
    let [n1, n2] = cfg.callgrind.pairs;
    let allocs = select_allocators(&layout, alloc)?;
    let mut rows = Vec::new();
    let mut failures = 0;
    for a in &allocs {
        eprint!("callgrind {:<16}", a.name);
        let limit = if a.is_hz3() {
            cfg.callgrind.limit_for(&a.name)
        } else {
            None
        };
        let mut row = callgrind::CallgrindRow {
            allocator: a.name.clone(),
            kind: a.kind,
            ir_n1: None,
            ir_n2: None,
            ir_per_pair: None,
            limit,
            status: String::new(),
            note: String::new(),
        };
        if !a.ok() {
            let required = cfg
                .require_lanes
                .iter()
                .any(|l| gate::lane_key(l) == gate::lane_key(&a.name));
            row.status = if required {
                "FAIL (required lane MISSING)".into()
            } else {
                "MISSING".into()
            };
            if required {
                failures += 1;
            }
            row.note = a.note.clone();
            eprintln!(" MISSING");
            rows.push(row);
            continue;
        }
        match callgrind::callgrind_ir(&driver, a, n1)
            .and_then(|x| callgrind::callgrind_ir(&driver, a, n2).map(|y| (x, y)))
        {
            Ok((x, y)) => {
                let per = (y as f64 - x as f64) / (n2 - n1) as f64;
                row.ir_n1 = Some(x);
                row.ir_n2 = Some(y);
                row.ir_per_pair = Some(per);
                row.status = match limit {
                    Some(l) if per > l => {
                        failures += 1;
                        "FAIL".into()
                    }
                    Some(_) => "PASS".into(),
                    None => "info".into(),
                };
                eprintln!(" {per:.1} Ir/pair");
            }
            Err(e) => {
                if a.is_hz3() {
                    failures += 1;
                    row.status = "FAIL".into();
                } else {
                    row.status = "ERROR".into();
                }
                row.note = e;
                eprintln!(" error");
            }
        }
        rows.push(row);
    }
    // Table
    let best_peer = rows
        .iter()
        .filter(|r| !matches!(r.kind, AllocKind::Lane))
        .filter_map(|r| r.ir_per_pair)
        .fold(f64::INFINITY, f64::min);
    let mut md = format!(
        "# callgrind fast-path gate\n\nInstructions per malloc+free pair (sizes cycling 16..2048 B), = (Ir(n={n2}) − Ir(n={n1})) / {}; \
         deterministic for a given binary. hz3 lanes fail above their limit in `{}`.\n\n\
         | allocator | Ir/pair | vs best peer | limit | status |\n|---|---:|---:|---:|---|\n",
        n2 - n1,
        th_path.display()
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {}{} |\n",
            r.allocator,
            r.ir_per_pair
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "–".into()),
            r.ir_per_pair
                .filter(|_| best_peer.is_finite())
                .map(|x| format!("{:.2}×", x / best_peer))
                .unwrap_or_else(|| "–".into()),
            r.limit
                .map(|x| format!("{x:.0}"))
                .unwrap_or_else(|| "–".into()),
            r.status,
            if r.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.note)
            }
        ));
    }
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::write(out.join("callgrind.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("callgrind.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    println!("{md}");
    println!("written: {}", out.join("callgrind.md").display());
    if failures > 0 {
        println!("callgrind-gate: FAIL ({failures})");
        Ok(1)
    } else {
        println!("callgrind-gate: PASS");
        Ok(0)
    }
}

fn cmd_report(
    results: Option<PathBuf>,
    out: Option<PathBuf>,
    metric: Option<Metric>,
    history: Option<PathBuf>,
    layout: Layout,
) -> Result<u8, String> {
    let results_path = results.unwrap_or_else(|| layout.default_out().join("results.json"));
    let out = out.unwrap_or_else(|| {
        results_path
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    let hist_path = history.unwrap_or_else(|| bench_matrix::history::default_path(&layout.root));
    let text = std::fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let mut results = Results::from_json(&text)?;
    let hist = bench_matrix::history::load(&hist_path)?;
    if let Some(m) = metric {
        results.config.metric = m;
    }
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    if out.join("results.json") != results_path
        || results.config.metric != Results::from_json(&text)?.config.metric
    {
        std::fs::write(out.join("results.json"), results.to_json()).map_err(|e| e.to_string())?;
    }
    std::fs::write(out.join("results.md"), markdown::render(&results))
        .map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("dashboard.html"),
        dashboard::render_with_history(&results, &hist),
    )
    .map_err(|e| e.to_string())?;
    loud_missing(&results);
    println!("markdown:  {}", out.join("results.md").display());
    println!("dashboard: {}", out.join("dashboard.html").display());
    Ok(0)
}

fn cmd_list(layout: Layout) -> Result<u8, String> {
    println!("root: {}", layout.root.display());
    println!("\nworkloads (q = in the quick matrix):");
    for w in workloads::WORKLOADS {
        println!(
            "  {:<15} {:<9} {} {}  [quick {} / full {} iterations per cell]",
            w.name,
            w.kind(),
            if w.in_quick { "q" } else { " " },
            w.description,
            w.quick_total,
            w.full_total
        );
    }
    bench_matrix::programs::print_availability(std::io::stdout());
    println!("\nallocators:");
    let mut all = peers::lanes(&layout, None);
    all.extend(peers::ALL_PEERS.iter().filter_map(|p| peers::peer(p)));
    for a in all {
        println!(
            "  {:<16} {:<8} {}",
            a.name,
            if a.ok() { "ok" } else { "MISSING" },
            if a.ok() {
                a.path.clone().unwrap_or_else(|| "(no LD_PRELOAD)".into())
            } else {
                a.note.clone()
            }
        );
    }
    match layout::driver_path() {
        Ok(p) => println!("\ndriver: {}", p.display()),
        Err(e) => println!("\ndriver: {e}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench-matrix").chain(args.iter().copied()))
    }

    #[test]
    fn usage_errors_exit_2_help_exits_0() {
        let e = parse(&[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("Exit codes:"), "{e}");
        for bad in [
            &["run", "--quick", "--full"][..],
            &["run", "--threads", "0"],
            &["run", "--bogus"],
            &["ab", "--a", "fast"],
            &["gate", "--metric", "fast"],
            &["nosuch"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        let h = parse(&["--help"]).unwrap_err();
        assert_eq!((h.kind(), h.exit_code()), (ErrorKind::DisplayHelp, 0));
        assert_eq!(parse(&["help", "ab"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn options_as_before() {
        let Cmd::Run { m, alloc } = parse(&[
            "run",
            "--lanes=fast, scale",
            "--peers",
            "none",
            "--threads",
            "1,8",
            "--metric",
            "cpu",
            "--runs=4",
            "--pin-cpus",
            "0-1",
            "--settle-ms",
            "0",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert_eq!(m.threads, Some(vec![1, 8]));
        assert_eq!(m.metric, Metric::Cpu);
        assert_eq!((m.runs, m.settle_ms), (Some(4), Some(0)));
        assert_eq!(trimmed(alloc.lanes).unwrap(), ["fast", "scale"]);
        let Cmd::Ab { a, b, threshold, m } = parse(&[
            "ab",
            "--a",
            "fast",
            "--b",
            "/x/y.so",
            "--threshold",
            "2%",
            "--full",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert_eq!((a.as_str(), b.as_str()), ("fast", "/x/y.so"));
        assert!((threshold.unwrap() - 0.02).abs() < 1e-12 && m.full);
        assert_eq!(m.metric, Metric::Wall);
        let Cmd::ExecMeasured { args } =
            parse(&["exec-measured", "/tmp/r", "-", "prog", "--help", "-x"])
                .unwrap()
                .cmd
        else {
            panic!()
        };
        assert_eq!(args, ["/tmp/r", "-", "prog", "--help", "-x"]);
        let Cmd::Gate { history, .. } = parse(&["gate", "--history", "none"]).unwrap().cmd else {
            panic!()
        };
        assert_eq!(history.as_deref(), Some("none"));
        let Cmd::Readme {
            write,
            readme,
            root,
            ..
        } = parse(&["readme", "--write", "--readme=R.md"]).unwrap().cmd
        else {
            panic!()
        };
        let v = argv(
            &[("--readme", readme), ("--root", root.root)],
            &[("--write", write)],
        );
        assert_eq!(v, ["--readme", "R.md", "--write"]);
    }
}
