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
    /// The throughput every verdict on the page is computed from.
    pub metric: Metric,
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

pub use crate::schema::Metric;

/// Compare allocator `a` and `b` (names as in `results`) over every cell.
pub fn compare(results: Results, a: &str, b: &str, th: Thresholds, metric: Metric) -> AbReport {
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
                ca.filter(|c| c.summary.is_some()),
                cb.filter(|c| c.summary.is_some()),
            ) {
                (Some(xa), Some(xb)) => {
                    let (ra, rb) = (xa.run_values(metric), xb.run_values(metric));
                    let why: Vec<String> = [(a, ca), (b, cb)]
                        .iter()
                        .filter_map(|(n, c)| {
                            c.and_then(|c| c.invalid_reason())
                                .map(|w| format!("{n}: {w}"))
                        })
                        .collect();
                    if !why.is_empty() {
                        cells.push(invalid_cell(&w.name, t, &ra, &rb, &why.join("; ")))
                    } else if let Some(v) = cell_verdict(&w.name, t, &ra, &rb, &th) {
                        cells.push(v)
                    } else {
                        incomparable.push(format!("{} t{}", w.name, t))
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
        metric,
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
    if let Some(g) = rep.overall.geomean_ci {
        let _ = writeln!(
            s,
            "Geomean throughput B/A over {} valid cells: **{:.3}×** ({:+.2}%), {:.0}% interval {}\n",
            rep.cells
                .iter()
                .filter(|c| c.verdict != Verdict::Invalid)
                .count(),
            g.ratio,
            (g.ratio - 1.0) * 100.0,
            g.level * 100.0,
            g.describe()
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
    let _ = writeln!(s, "- **metric**: {}", rep.metric.describe());
    let _ = writeln!(
        s,
        "- **rule** (threshold {:.1}%): {}\n",
        rep.thresholds.min_change * 100.0,
        rep.rule
    );
    let unit = rep.metric.unit();
    let _ = writeln!(s, "| workload | threads | A {unit} | B {unit} | Δ B vs A | 95% interval of B/A | verdict | A peak RSS | B peak RSS |");
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
            "| {} | {} | {} | {} | {:+.2}% | {} | {} | {} | {} |",
            c.workload,
            c.threads,
            fmt_rate(c.a.median),
            fmt_rate(c.b.median),
            c.delta * 100.0,
            c.ci.map(|x| x.describe()).unwrap_or_else(|| "–".into()),
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
