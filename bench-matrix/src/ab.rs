//! `bench-matrix ab`: two allocators, interleaved runs, a verdict per cell
//! and overall, written as a markdown + JSON page.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::markdown::{fmt_date, fmt_mib, fmt_rate, thread_label};
use crate::schema::{Allocator, Results, SCHEMA_VERSION};
use crate::verdict::{
    cell_verdict, invalid_cell, overall, CellVerdict, Overall, Thresholds, Verdict,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbReport {
    pub schema: u32,
    pub kind: String,
    /// "wall" (ops/s) or "cpu" (ops per CPU-second of the worker threads).
    pub metric: String,
    pub a: Allocator,
    pub b: Allocator,
    pub thresholds: Thresholds,
    pub rule: String,
    pub cells: Vec<CellVerdict>,
    /// Cells that could not be compared (a side has no successful run).
    pub incomparable: Vec<String>,
    pub overall: Overall,
    pub results: Results,
}

/// Which throughput the verdict is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// ops per wall-clock second: what users see; the default.
    Wall,
    /// ops per CPU-second of the worker threads: steadier on a loaded machine.
    Cpu,
}

impl Metric {
    pub fn parse(s: &str) -> Result<Metric, String> {
        match s {
            "wall" => Ok(Metric::Wall),
            "cpu" => Ok(Metric::Cpu),
            _ => Err(format!("bad --metric '{s}' (wall or cpu)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::Wall => "wall",
            Metric::Cpu => "cpu",
        }
    }
}

/// Compare allocator `a` and `b` (names as in `results`) over every cell.
pub fn compare(results: Results, a: &str, b: &str, th: Thresholds, metric: Metric) -> AbReport {
    let pick = |s: &crate::schema::CellSummary| match metric {
        Metric::Wall => s.ops_per_sec,
        Metric::Cpu => s.ops_per_cpu_sec,
    };
    let mut cells = Vec::new();
    let mut incomparable = Vec::new();
    let mut b_failures = 0usize;
    for w in &results.workloads {
        for &t in &results.config.threads {
            let ca = results.cell(&w.name, t, a);
            let cb = results.cell(&w.name, t, b);
            if let Some(cb) = cb {
                b_failures += cb.failures.len();
            }
            match (
                ca.and_then(|c| c.summary.as_ref()),
                cb.and_then(|c| c.summary.as_ref()),
            ) {
                (Some(sa), Some(sb)) => {
                    let why: Vec<String> = [(a, ca), (b, cb)]
                        .iter()
                        .filter_map(|(n, c)| {
                            c.and_then(|c| c.invalid_reason())
                                .map(|w| format!("{n}: {w}"))
                        })
                        .collect();
                    if why.is_empty() {
                        cells.push(cell_verdict(&w.name, t, &pick(sa), &pick(sb), &th))
                    } else {
                        cells.push(invalid_cell(
                            &w.name,
                            t,
                            &pick(sa),
                            &pick(sb),
                            &why.join("; "),
                        ))
                    }
                }
                _ => incomparable.push(format!("{} t{}", w.name, t)),
            }
        }
    }
    let ov = overall(&cells, b_failures, &th);
    let aa = results.allocator(a).cloned().expect("A in results");
    let bb = results.allocator(b).cloned().expect("B in results");
    AbReport {
        schema: SCHEMA_VERSION,
        kind: "ab".into(),
        metric: metric.name().into(),
        a: aa,
        b: bb,
        thresholds: th,
        rule: th.describe(),
        cells,
        incomparable,
        overall: ov,
        results,
    }
}

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Go => "🟢 GO",
        Verdict::SoftGo => "🟡 SOFT GO",
        Verdict::NoGo => "🔴 NO-GO",
        Verdict::Invalid => "⛔ INVALID",
    }
}

pub fn render_md(rep: &AbReport) -> String {
    let r = &rep.results;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# A/B: `{}` (A) → `{}` (B) — **{}**\n",
        rep.a.name,
        rep.b.name,
        badge(rep.overall.verdict)
    );
    let _ = writeln!(
        s,
        "**Verdict: {}** — {}\n",
        rep.overall.verdict, rep.overall.reason
    );
    if let Some(g) = rep.overall.geomean_ratio {
        let _ = writeln!(
            s,
            "Geomean throughput B/A over {} cells: **{:.3}×** ({:+.2}%)\n",
            rep.cells.len(),
            g,
            (g - 1.0) * 100.0
        );
    }
    let _ = writeln!(
        s,
        "- A: `{}` — {}",
        rep.a.name,
        rep.a.path.as_deref().unwrap_or("glibc (no LD_PRELOAD)")
    );
    let _ = writeln!(
        s,
        "- B: `{}` — {}",
        rep.b.name,
        rep.b.path.as_deref().unwrap_or("glibc (no LD_PRELOAD)")
    );
    let _ = writeln!(
        s,
        "- {} · git `{}`{} · {} interleaved run(s) per cell (A and B alternate, order rotated each repetition) · {} mode budgets · pinning {}",
        fmt_date(r.created_unix),
        r.git_rev,
        if r.git_dirty { " (dirty)" } else { "" },
        r.config.runs,
        r.config.mode,
        r.config.pin_cpus.as_deref().unwrap_or("off")
    );
    let _ = writeln!(
        s,
        "- machine: {} · {} CPUs",
        r.machine.cpu_model, r.machine.ncpu
    );
    let _ = writeln!(
        s,
        "- **metric**: {}",
        if rep.metric == "cpu" {
            "ops per CPU-second of the worker threads (--metric cpu)"
        } else {
            "ops per wall-clock second"
        }
    );
    let _ = writeln!(s, "- **threshold**: {}\n", rep.rule);
    let _ = writeln!(s, "| workload | threads | A ops/s | B ops/s | Δ B vs A | noise band | verdict | A peak RSS | B peak RSS |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|---:|---:|");
    for c in &rep.cells {
        let rss = |name: &str| {
            r.cell(&c.workload, c.threads, name)
                .and_then(|x| x.summary.as_ref())
                .map(|m| format!("{} MiB", fmt_mib(m.peak_rss_kib.median)))
                .unwrap_or_else(|| "–".into())
        };
        if c.verdict == Verdict::Invalid {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | – | – | {} ({}) | {} | {} |",
                c.workload,
                c.threads,
                fmt_rate(c.a.median),
                fmt_rate(c.b.median),
                badge(c.verdict),
                c.note.as_deref().unwrap_or(""),
                rss(&rep.a.name),
                rss(&rep.b.name),
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:+.2}% | ±{:.1}% | {} | {} | {} |",
            c.workload,
            c.threads,
            fmt_rate(c.a.median),
            fmt_rate(c.b.median),
            c.delta * 100.0,
            c.band * 100.0,
            badge(c.verdict),
            rss(&rep.a.name),
            rss(&rep.b.name),
        );
    }
    if !rep.incomparable.is_empty() {
        let _ = writeln!(
            s,
            "\n**Not comparable** (a side has no successful run): {}",
            rep.incomparable.join(", ")
        );
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(s, "\n## Warnings\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- ⚠ {w}");
        }
    }
    let _ = writeln!(s, "\n## By thread count\n");
    for &t in &r.config.threads {
        let v: Vec<&CellVerdict> = rep.cells.iter().filter(|c| c.threads == t).collect();
        let go = v.iter().filter(|c| c.verdict == Verdict::Go).count();
        let soft = v.iter().filter(|c| c.verdict == Verdict::SoftGo).count();
        let nogo = v.iter().filter(|c| c.verdict == Verdict::NoGo).count();
        let inv = v.iter().filter(|c| c.verdict == Verdict::Invalid).count();
        let _ = writeln!(
            s,
            "- {}: {go} GO · {soft} SOFT GO · {nogo} NO-GO · {inv} INVALID",
            thread_label(t)
        );
    }
    s
}

impl AbReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("ab serialises")
    }
}
