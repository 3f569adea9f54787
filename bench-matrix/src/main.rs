//! bench-matrix: the runner CLI. See bench-matrix/README.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bench_matrix::ab;
use bench_matrix::dashboard;
use bench_matrix::gate::{self, CheckStatus, GateConfig};
use bench_matrix::markdown;
use bench_matrix::runner::{self, Layout, Pin, Plan, Settle};
use bench_matrix::schema::{AllocKind, Allocator, Metric, Results};
use bench_matrix::verdict::{Thresholds, Verdict};
use bench_matrix::workloads::{self, Mode};

const USAGE: &str = "\
bench-matrix — hz3 lanes against glibc, jemalloc, mimalloc and tcmalloc

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

struct Args {
    v: Vec<String>,
}

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        if let Some(i) = self.v.iter().position(|a| a == name) {
            self.v.remove(i);
            true
        } else {
            false
        }
    }
    fn opt(&mut self, name: &str) -> Result<Option<String>, String> {
        let eq = format!("{name}=");
        if let Some(i) = self.v.iter().position(|a| a == name) {
            if i + 1 >= self.v.len() {
                return Err(format!("{name} needs a value"));
            }
            let val = self.v.remove(i + 1);
            self.v.remove(i);
            return Ok(Some(val));
        }
        if let Some(i) = self.v.iter().position(|a| a.starts_with(&eq)) {
            let val = self.v.remove(i)[eq.len()..].to_string();
            return Ok(Some(val));
        }
        Ok(None)
    }
    fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, String> {
        Ok(self.opt(name)?.map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }))
    }
    fn finish(&self) -> Result<(), String> {
        if let Some(a) = self.v.first() {
            Err(format!("unexpected argument '{a}'"))
        } else {
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let mut v: Vec<String> = std::env::args().skip(1).collect();
    if v.is_empty() || v[0] == "-h" || v[0] == "--help" || v[0] == "help" {
        print!("{USAGE}");
        return ExitCode::from(if v.is_empty() { 2 } else { 0 });
    }
    let cmd = v.remove(0);
    let mut args = Args { v };
    let res = match cmd.as_str() {
        "run" => cmd_run(&mut args),
        "ab" => cmd_ab(&mut args),
        "gate" => cmd_gate(&mut args),
        "callgrind-gate" => cmd_callgrind(&mut args),
        "report" => cmd_report(&mut args),
        "history-append" => bench_matrix::cli_history::append(&mut args.v),
        "readme" => bench_matrix::cli_history::readme(&mut args.v),
        "readme-check" => bench_matrix::cli_history::readme_check(&mut args.v),
        "list" => cmd_list(&mut args),
        // Internal: the runner measures real programs through it (programs.rs).
        "exec-measured" => {
            return ExitCode::from(
                bench_matrix::programs::exec_measured_main(&args.v).clamp(0, 255) as u8,
            )
        }
        other => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("bench-matrix: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse_threads(v: Option<Vec<String>>) -> Result<Vec<u32>, String> {
    match v {
        None => Ok(vec![1, 8, 32]),
        Some(v) => v
            .iter()
            .map(|s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("bad thread count '{s}'"))
            })
            .collect(),
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

fn common(args: &mut Args, default_runs: Option<u32>) -> Result<Common, String> {
    let root = args.opt("--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    let full = args.flag("--full");
    let quick = args.flag("--quick");
    if full && quick {
        return Err("--quick and --full exclude each other".into());
    }
    let mode = if full { Mode::Full } else { Mode::Quick };
    let runs = match args.opt("--runs")? {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("bad --runs '{s}'"))?,
        None => match (default_runs, mode) {
            (_, Mode::Full) => mode.default_runs(),
            (Some(d), _) => d,
            (None, _) => mode.default_runs(),
        },
    };
    let threads = parse_threads(args.list("--threads")?)?;
    let wl = args.list("--workloads")?;
    let workloads = workloads::select(wl.as_deref(), mode)?;
    let pin_cpus = args.opt("--pin-cpus")?;
    let pin = if args.flag("--pin") || pin_cpus.is_some() {
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
        Some(Pin::new(pin_cpus.as_deref(), ncpu))
    } else {
        None
    };
    let out = args.opt("--out")?.map(PathBuf::from);
    let metric = parse_metric(args)?;
    let settle_ms = match args.opt("--settle-ms")? {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| format!("bad --settle-ms '{v}'"))?,
        ),
        None => None,
    };
    Ok(Common {
        settle_ms,
        layout,
        mode,
        runs,
        threads,
        workloads,
        pin,
        out,
        metric,
    })
}

fn parse_metric(args: &mut Args) -> Result<Metric, String> {
    match args.opt("--metric")? {
        Some(m) => Metric::parse(&m),
        None => Ok(Metric::DEFAULT),
    }
}

fn select_peers(list: Option<Vec<String>>) -> Result<Vec<Allocator>, String> {
    let names: Vec<String> =
        list.unwrap_or_else(|| runner::ALL_PEERS.iter().map(|s| s.to_string()).collect());
    names
        .iter()
        .filter(|n| n.as_str() != "none")
        .map(|n| {
            runner::peer(n).ok_or_else(|| {
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

fn cmd_run(args: &mut Args) -> Result<u8, String> {
    let c = common(args, None)?;
    let lanes = args.list("--lanes")?;
    let peers = select_peers(args.list("--peers")?)?;
    args.finish()?;
    let mut allocators = if lanes
        .as_ref()
        .is_some_and(|l| l.iter().any(|x| x == "none"))
    {
        Vec::new()
    } else {
        runner::lanes(&c.layout, lanes.as_deref())
    };
    allocators.extend(peers);
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
        runner::fmt_dur(est),
        plan.mode.name(),
        runner::loadavg()
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

fn cmd_ab(args: &mut Args) -> Result<u8, String> {
    let a_spec = args.opt("--a")?.ok_or("ab needs --a X")?;
    let b_spec = args.opt("--b")?.ok_or("ab needs --b Y")?;
    let threshold = match args.opt("--threshold")? {
        Some(s) => {
            s.trim_end_matches('%')
                .parse::<f64>()
                .map_err(|_| format!("bad --threshold '{s}'"))?
                / 100.0
        }
        None => 0.01,
    };
    let c = common(args, Some(5))?;
    let metric = c.metric;
    args.finish()?;
    let mut a = runner::resolve_spec(&c.layout, &a_spec)?;
    let mut b = runner::resolve_spec(&c.layout, &b_spec)?;
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

fn cmd_gate(args: &mut Args) -> Result<u8, String> {
    let root = args.opt("--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    let results_path = args
        .opt("--results")?
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.default_out().join("results.json"));
    let th_path = args
        .opt("--thresholds")?
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.gate_toml());
    let metric_flag = args.opt("--metric")?;
    let hist_path = args.opt("--history")?;
    args.finish()?;
    let text = std::fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let mut results = Results::from_json(&text)?;
    let cfg_text =
        std::fs::read_to_string(&th_path).map_err(|e| format!("{}: {e}", th_path.display()))?;
    let cfg = GateConfig::parse(&cfg_text)?;
    // The gate ranks by the metric the results file's dashboard shows;
    // --metric (then a `metric` key in the thresholds file) overrides it.
    let shown = results.config.metric;
    if let Some(m) = metric_flag.as_deref() {
        results.config.metric = Metric::parse(m)?;
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

fn cmd_callgrind(args: &mut Args) -> Result<u8, String> {
    let root = args.opt("--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    let th_path = args
        .opt("--thresholds")?
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.gate_toml());
    let lanes = args.list("--lanes")?;
    let peers = select_peers(args.list("--peers")?)?;
    let out = args
        .opt("--out")?
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.root.join("bench-matrix/results/callgrind"));
    args.finish()?;
    let cfg = GateConfig::parse(
        &std::fs::read_to_string(&th_path).map_err(|e| format!("{}: {e}", th_path.display()))?,
    )?;
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("valgrind is not installed (bench-matrix/setup-peers.sh installs it)".into());
    }
    let driver = runner::driver_path()?;
    let [n1, n2] = cfg.callgrind.pairs;
    let mut allocs = if lanes
        .as_ref()
        .is_some_and(|l| l.iter().any(|x| x == "none"))
    {
        Vec::new()
    } else {
        runner::lanes(&layout, lanes.as_deref())
    };
    allocs.extend(peers);
    let mut rows = Vec::new();
    let mut failures = 0;
    for a in &allocs {
        eprint!("callgrind {:<16}", a.name);
        let limit = if a.is_hz3() {
            cfg.callgrind.limit_for(&a.name)
        } else {
            None
        };
        let mut row = runner::CallgrindRow {
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
        match runner::callgrind_ir(&driver, a, n1)
            .and_then(|x| runner::callgrind_ir(&driver, a, n2).map(|y| (x, y)))
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

fn cmd_report(args: &mut Args) -> Result<u8, String> {
    let root = args.opt("--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    let results_path = args
        .opt("--results")?
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.default_out().join("results.json"));
    let out = args.opt("--out")?.map(PathBuf::from).unwrap_or_else(|| {
        results_path
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    let metric = args.opt("--metric")?;
    let hist_path = args
        .opt("--history")?
        .map(PathBuf::from)
        .unwrap_or_else(|| bench_matrix::history::default_path(&layout.root));
    args.finish()?;
    let text = std::fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let mut results = Results::from_json(&text)?;
    let hist = bench_matrix::history::load(&hist_path)?;
    if let Some(m) = metric {
        results.config.metric = Metric::parse(&m)?;
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

fn cmd_list(args: &mut Args) -> Result<u8, String> {
    let root = args.opt("--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    args.finish()?;
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
    let mut all = runner::lanes(&layout, None);
    all.extend(runner::ALL_PEERS.iter().filter_map(|p| runner::peer(p)));
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
    match runner::driver_path() {
        Ok(p) => println!("\ndriver: {}", p.display()),
        Err(e) => println!("\ndriver: {e}"),
    }
    Ok(0)
}
