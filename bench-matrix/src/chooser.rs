//! Drawing of the view model's history and lane-choice parts: the trend
//! lines (a lane's ratio to the best peer across commits), the per-workload
//! speed-vs-memory scatter with its Pareto front, the "which lane for which
//! program" table, and the README's generated lane-figures block. Every
//! number comes from view_model.rs; this module only lays it out and must
//! not compute a ratio, an interval or a verdict of its own.

use std::fmt::Write;

use crate::history::Record;
use crate::markdown::{fmt_date, thread_label};
use crate::view_model::{self, Measure, Sig};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short_rev(r: &str) -> &str {
    &r[..r.len().min(7)]
}

/// Trend cards: per workload × thread count, each lane's ratio to the best
/// peer per record (oldest left), the interval as a whisker, and a ring
/// (red: drop, green: rise) where the change from the previous point is
/// significant beyond the noise band.
pub fn trends_html(
    h: &mut String,
    history: &[Record],
    noise_band: f64,
    color: &dyn Fn(&str) -> &'static str,
) {
    let _ = write!(
        h,
        "<h2 id=\"trends\">Trends across commits<small>each lane's median ÷ the best peer's, one point per history record \
         (bench-matrix/history/), whiskers = 95% interval; a ring marks a significant change from the previous point \
         (interval of the change excludes 1 and it moved more than {:.0}%): <b style=\"color:#c92a2a\">red = drop</b>, \
         <b style=\"color:#2b8a3e\">green = rise</b></small></h2>",
        noise_band * 100.0
    );
    let Some(last) = history.last() else {
        let _ = write!(h, "<p class=\"lead\">No history yet.</p>");
        return;
    };
    let n_recs = history.iter().filter(|r| r.metric == last.metric).count();
    let _ = write!(
        h,
        "<p class=\"lead\">{n_recs} record(s) with metric <b>{}</b>, from {} to {}.</p><div class=\"grid\">",
        last.metric.name(),
        history.first().map(|r| fmt_date(r.date_unix)).unwrap_or_default(),
        fmt_date(last.date_unix)
    );
    for w in view_model::workloads(last) {
        for t in view_model::threads(last) {
            let tr = view_model::trends(history, &w, t, noise_band);
            if tr.is_empty() {
                continue;
            }
            trend_card(h, &w, t, &tr, color);
        }
    }
    let _ = write!(h, "</div>");
}

fn trend_card(
    h: &mut String,
    w: &str,
    t: u32,
    tr: &[view_model::Trend],
    color: &dyn Fn(&str) -> &'static str,
) {
    // x: the union of revisions in order of first appearance.
    let mut revs: Vec<(String, u64)> = Vec::new();
    for l in tr {
        for p in &l.points {
            if !revs.iter().any(|r| r.0 == p.rev && r.1 == p.date_unix) {
                revs.push((p.rev.clone(), p.date_unix));
            }
        }
    }
    revs.sort_by_key(|r| r.1);
    let (wd, ht) = (440.0, 190.0);
    let (ml, mr, mt, mb) = (40.0, 12.0, 10.0, 34.0);
    let vals = tr.iter().flat_map(|l| {
        l.points.iter().flat_map(|p| {
            [
                p.ratio.ratio,
                p.ratio.lo,
                p.ratio.hi.min(p.ratio.ratio * 3.0),
            ]
        })
    });
    let (mut lo, mut hi) = (1.0f64, 1.0f64);
    for v in vals.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let (llo, lhi) = ((lo * 0.9).log2(), (hi * 1.1).log2());
    let n = revs.len().max(1);
    let px = |i: usize| {
        if n == 1 {
            ml + (wd - ml - mr) / 2.0
        } else {
            ml + (wd - ml - mr) * i as f64 / (n - 1) as f64
        }
    };
    let py = |v: f64| mt + (lhi - v.max(1e-9).log2()) / (lhi - llo) * (ht - mt - mb);
    let sig = tr.iter().map(|l| l.significant_changes()).sum::<usize>();
    let _ = write!(
        h,
        "<div class=\"card\"><h3>{} · {}</h3><div class=\"sub\">lane ÷ best peer per commit · {} significant change(s)</div>\
         <svg viewBox=\"0 0 {wd} {ht}\" width=\"100%\" style=\"font-size:11px\">",
        esc(w),
        thread_label(t),
        sig
    );
    for g in [0.25, 0.5, 1.0, 2.0, 4.0] {
        let gl: f64 = g;
        if gl.log2() < llo || gl.log2() > lhi {
            continue;
        }
        let _ = write!(
            h,
            "<line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-dasharray=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#868e96\">{g}×</text>",
            wd - mr,
            if g == 1.0 { "#495057" } else { "#e9ecef" },
            if g == 1.0 { "4 3" } else { "" },
            ml - 4.0,
            py(g) + 4.0,
            y = py(g)
        );
    }
    for (i, (rev, date)) in revs.iter().enumerate() {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#868e96\">{}<title>{} · {}</title></text>",
            px(i),
            ht - mb + 14.0,
            esc(short_rev(rev)),
            esc(rev),
            fmt_date(*date)
        );
    }
    for l in tr {
        let col = color(&l.lane);
        let idx = |p: &view_model::TrendPoint| {
            revs.iter()
                .position(|r| r.0 == p.rev && r.1 == p.date_unix)
                .unwrap_or(0)
        };
        let pts: Vec<String> = l
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(idx(p)), py(p.ratio.ratio)))
            .collect();
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"{col}\" stroke-width=\"2.2\" points=\"{}\"/>",
            pts.join(" ")
        );
        for p in &l.points {
            let x = px(idx(p));
            let y = py(p.ratio.ratio);
            if p.ratio.bounded() {
                let _ = write!(
                    h,
                    "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{col}\" stroke-opacity=\".5\"/>",
                    py(p.ratio.lo),
                    py(p.ratio.hi.min(p.ratio.ratio * 3.0))
                );
            }
            let ch = match p.change {
                Some(c) => format!(
                    "; change from the previous point {:.3}× {}{}",
                    c.ci.ratio,
                    c.ci.describe(),
                    if c.significant {
                        " — SIGNIFICANT"
                    } else {
                        " — within noise"
                    }
                ),
                None => String::new(),
            };
            let _ = write!(
                h,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{col}\"><title>{} at {}: {:.3}× {}{}</title></circle>",
                esc(&l.lane),
                esc(short_rev(&p.rev)),
                p.ratio.ratio,
                p.ratio.describe(),
                esc(&ch)
            );
            if let Some(c) = p.change.filter(|c| c.significant) {
                let _ = write!(
                    h,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7.5\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.2\"/>",
                    if c.ci.ratio < 1.0 { "#c92a2a" } else { "#2b8a3e" }
                );
            }
        }
    }
    let _ = write!(
        h,
        "</svg><div class=\"legend\" style=\"margin:2px 0 4px;gap:10px;font-size:12px\">"
    );
    for l in tr {
        let last = l.points.last().map(|p| p.ratio.ratio).unwrap_or(0.0);
        let _ = write!(
            h,
            "<span style=\"white-space:nowrap\"><span class=\"sw\" style=\"background:{}\"></span>{} <span style=\"color:#868e96\">{last:.2}×</span></span>",
            color(&l.lane),
            esc(&l.lane)
        );
    }
    let _ = write!(h, "</div></div>");
}

/// The lane chooser: the "which lane for which program" table and, per
/// workload, speed ÷ best peer against peak and settled RSS ÷ lowest peer,
/// with the Pareto front of each thread count.
pub fn chooser_html(h: &mut String, rec: &Record, color: &dyn Fn(&str) -> &'static str) {
    let _ = write!(
        h,
        "<h2 id=\"chooser\">Lane chooser<small>speed ÷ best peer (up is faster) against RSS ÷ lowest peer (left is leaner); \
         ringed = on the Pareto front of its thread count (nothing else is both faster and leaner); \
         marker text = thread count; log scales</small></h2>"
    );
    let _ = write!(
        h,
        "<div class=\"card scroll\"><h3>Which lane for which program</h3><div class=\"sub\">from this run ({}): \
         geometric means over the thread counts; \"on the front\" = on the Pareto front at every thread count</div>\
         <table class=\"data\"><tr><th>workload</th><th class=\"l\">fastest lane (× best peer)</th><th class=\"l\">leanest lane (peak × lowest peer)</th><th class=\"l\">lanes on the front</th></tr>",
        esc(short_rev(&rec.rev))
    );
    for w in view_model::workloads(rec) {
        let c = view_model::choose(rec, &w);
        let cellf = |x: &Option<(String, f64)>| {
            match x {
            Some((l, v)) => format!(
                "<span class=\"sw\" style=\"display:inline-block;width:10px;height:10px;border-radius:2px;background:{}\"></span> <b>{}</b> {v:.2}×",
                color(l),
                esc(l)
            ),
            None => "–".into(),
        }
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&w),
            cellf(&c.fastest),
            cellf(&c.leanest),
            if c.always_pareto.is_empty() {
                "–".to_string()
            } else {
                esc(&c.always_pareto.join(", "))
            }
        );
    }
    let _ = write!(
        h,
        "</table></div><div class=\"grid\" style=\"margin-top:14px\">"
    );
    for w in view_model::workloads(rec) {
        scatter_card(h, rec, &w, color);
    }
    let _ = write!(h, "</div>");
}

fn scatter_card(h: &mut String, rec: &Record, w: &str, color: &dyn Fn(&str) -> &'static str) {
    let pts = view_model::scatter(rec, w);
    if pts.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<div class=\"card\"><h3>{}</h3><div class=\"sub\">left: peak RSS · right: settled RSS (n/a points left out)</div>\
         <svg viewBox=\"0 0 440 220\" width=\"100%\" style=\"font-size:10px\">",
        esc(w)
    );
    for (panel, settled) in [(0.0, false), (220.0, true)] {
        let (ml, mt, pw, ph) = (panel + 30.0, 8.0, 182.0, 180.0);
        let get = |p: &view_model::ScatterPoint| if settled { p.settled } else { p.peak };
        let xs: Vec<f64> = pts.iter().filter_map(get).filter(|v| *v > 0.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.speed).filter(|v| *v > 0.0).collect();
        let span = |v: &[f64]| {
            let lo = v.iter().copied().fold(1.0f64, f64::min) * 0.85;
            let hi = v.iter().copied().fold(1.0f64, f64::max) * 1.15;
            (lo.log2(), hi.log2())
        };
        let (xl, xh) = span(&xs);
        let (yl, yh) = span(&ys);
        let sx = |v: f64| ml + (v.log2() - xl) / (xh - xl) * pw;
        let sy = |v: f64| mt + (yh - v.log2()) / (yh - yl) * ph;
        let _ = write!(
            h,
            "<rect x=\"{ml}\" y=\"{mt}\" width=\"{pw}\" height=\"{ph}\" fill=\"#f8f9fa\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{mt}\" y2=\"{:.1}\" stroke=\"#adb5bd\" stroke-dasharray=\"3 3\"/>\
             <line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#adb5bd\" stroke-dasharray=\"3 3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#495057\">{} RSS ÷ lowest peer (1× dashed)</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#495057\" transform=\"rotate(-90 {:.1} {:.1})\">speed ÷ best peer</text>",
            sx(1.0),
            sx(1.0),
            mt + ph,
            ml + pw,
            sy(1.0),
            sy(1.0),
            ml + pw / 2.0,
            mt + ph + 22.0,
            if settled { "settled" } else { "peak" },
            ml - 22.0,
            mt + ph / 2.0,
            ml - 22.0,
            mt + ph / 2.0
        );
        // Tick labels on both log axes.
        for g in [0.125f64, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0] {
            let l = g.log2();
            let txt = if g < 1.0 {
                format!("{g}")
            } else {
                format!("{g:.0}")
            };
            if l >= xl && l <= xh {
                let _ = write!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#868e96\" font-size=\"8\">{txt}</text>",
                    sx(g),
                    mt + ph + 9.0
                );
            }
            if l >= yl && l <= yh {
                let _ = write!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#868e96\" font-size=\"8\">{txt}</text>",
                    ml - 2.0,
                    sy(g) + 3.0
                );
            }
        }
        // The Pareto front per thread count (by peak RSS), as a step line.
        if !settled {
            let mut ts: Vec<u32> = pts.iter().map(|p| p.threads).collect();
            ts.dedup();
            for t in ts {
                let mut f: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|p| p.threads == t && p.pareto)
                    .filter_map(|p| p.peak.map(|x| (x, p.speed)))
                    .collect();
                f.sort_by(|a, b| a.0.total_cmp(&b.0));
                if f.len() > 1 {
                    let line: Vec<String> = f
                        .iter()
                        .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                        .collect();
                    let _ = write!(
                        h,
                        "<polyline fill=\"none\" stroke=\"#343a40\" stroke-opacity=\".35\" stroke-width=\"1.5\" points=\"{}\"/>",
                        line.join(" ")
                    );
                }
            }
        }
        for p in &pts {
            let Some(x) = get(p) else { continue };
            let (cx, cy) = (sx(x), sy(p.speed));
            let _ = write!(
                h,
                "<g><title>{} · {}: speed {:.2}× best peer, {} RSS {x:.2}× lowest peer{}</title>\
                 <circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{}\" fill=\"{}\" fill-opacity=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>\
                 <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#fff\" font-size=\"7\" font-weight=\"700\">{}</text></g>",
                esc(&p.allocator),
                thread_label(p.threads),
                p.speed,
                if settled { "settled" } else { "peak" },
                if p.pareto { " — on the Pareto front" } else { "" },
                if p.is_lane { 6.5 } else { 5.5 },
                color(&p.allocator),
                if p.is_lane { 1.0 } else { 0.7 },
                if p.pareto && !settled { "#212529" } else { "#fff" },
                if p.pareto && !settled { 2.0 } else { 0.8 },
                cy + 2.5,
                p.threads
            );
        }
    }
    let _ = write!(
        h,
        "</svg><div class=\"legend\" style=\"margin:2px 0 4px;gap:10px;font-size:12px\">"
    );
    let mut names: Vec<&str> = Vec::new();
    for p in &pts {
        if !names.contains(&p.allocator.as_str()) {
            names.push(&p.allocator);
        }
    }
    for n in names {
        let _ = write!(
            h,
            "<span style=\"white-space:nowrap\"><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            color(n),
            esc(n)
        );
    }
    let _ = write!(h, "</div></div>");
}

/// Marker lines around the README's generated block.
pub const README_BEGIN: &str = "<!-- lane-figures:begin (generated by `bench-matrix readme --write` from the last record of bench-matrix/history/history.jsonl; `bench-matrix readme-check` fails when they differ) -->";
pub const README_END: &str = "<!-- lane-figures:end -->";

fn ratio_list(rec: &Record, lane: &str, w: &str, m: Measure) -> Vec<(u32, view_model::RatioCell)> {
    view_model::threads(rec)
        .into_iter()
        .filter_map(|t| view_model::ratio_cell(rec, lane, w, t, m).map(|c| (t, c)))
        .collect()
}

fn fmt_cells(v: &[(u32, view_model::RatioCell)]) -> String {
    v.iter()
        .map(|(t, c)| {
            format!(
                "{:.2}{}",
                c.ci.ratio,
                match c.sig {
                    Sig::Win | Sig::Loss => "",
                    _ => "~",
                }
            ) + &format!("@{t}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The README's lane-picking figures, generated from one history record:
/// the chooser table, then per lane the cells it significantly wins (the
/// gate holds each at >= 1.0x) and the cells where it trades speed below
/// 0.5x of the best peer (the only cells the gate may floor below 0.5).
pub fn readme_block(rec: &Record) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{README_BEGIN}");
    let _ = writeln!(
        s,
        "Measured at `{}` ({} matrix, {} runs per cell, metric {}, {} CPUs, {}; ratios to the best peer, \
         `~` = within noise, `@N` = N threads). The dashboard's *Lane chooser* and *Trends* sections draw the same data.\n",
        short_rev(&rec.rev),
        rec.mode,
        rec.runs,
        rec.metric.name(),
        rec.machine.ncpu,
        fmt_date(rec.date_unix)
    );
    let _ = writeln!(
        s,
        "| workload | fastest lane (speed × best peer) | leanest lane (peak RSS × lowest peer) |"
    );
    let _ = writeln!(s, "|---|---|---|");
    for w in view_model::workloads(rec) {
        let c = view_model::choose(rec, &w);
        let f = |x: &Option<(String, f64)>| match x {
            Some((l, v)) => format!("`{l}` {v:.2}x"),
            None => "–".into(),
        };
        let _ = writeln!(s, "| `{w}` | {} | {} |", f(&c.fastest), f(&c.leanest));
    }
    let _ = writeln!(s);
    for lane in rec.lanes() {
        let mut wins = Vec::new();
        let mut trades = Vec::new();
        for w in view_model::workloads(rec) {
            let v = ratio_list(rec, &lane, &w, Measure::Throughput);
            let won: Vec<_> = v
                .iter()
                .filter(|(_, c)| c.sig == Sig::Win)
                .cloned()
                .collect();
            if !won.is_empty() {
                wins.push(format!("`{w}` {}", fmt_cells(&won)));
            }
            let low: Vec<_> = v
                .iter()
                .filter(|(_, c)| c.ci.ratio < 0.5)
                .cloned()
                .collect();
            if !low.is_empty() {
                trades.push(format!("`{w}` {}", fmt_cells(&low)));
            }
        }
        let _ = writeln!(
            s,
            "- `{lane}` wins: {}; below 0.5x: {}.",
            if wins.is_empty() {
                "none".to_string()
            } else {
                wins.join(", ")
            },
            if trades.is_empty() {
                "none".to_string()
            } else {
                trades.join(", ")
            }
        );
    }
    let _ = write!(s, "{README_END}");
    s
}

/// The block between the markers in a README, markers included.
pub fn readme_current(readme: &str) -> Option<&str> {
    let a = readme.find(README_BEGIN)?;
    let b = readme[a..].find(README_END)? + a + README_END.len();
    Some(&readme[a..b])
}

/// Parsed claims of the README block: `(lane, workload, threads, ratio)` for
/// every claimed win and every stated trade below 0.5x.
pub struct Claims {
    pub wins: Vec<(String, String, u32, f64)>,
    pub trades: Vec<(String, String, u32, f64)>,
}

pub fn parse_claims(block: &str) -> Claims {
    let mut c = Claims {
        wins: Vec::new(),
        trades: Vec::new(),
    };
    for line in block.lines() {
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        let Some((lane, rest)) = rest.split_once("` wins: ") else {
            continue;
        };
        let Some((wins, trades)) = rest.split_once("; below 0.5x: ") else {
            continue;
        };
        for (part, out) in [(wins, &mut c.wins), (trades, &mut c.trades)] {
            for item in part.trim_end_matches('.').split(", ") {
                let Some(item) = item.strip_prefix('`') else {
                    continue;
                };
                let Some((w, cells)) = item.split_once("` ") else {
                    continue;
                };
                for cell in cells.split(' ') {
                    let Some((r, t)) = cell.split_once('@') else {
                        continue;
                    };
                    if let (Ok(r), Ok(t)) = (r.trim_end_matches('~').parse(), t.parse()) {
                        out.push((lane.to_string(), w.to_string(), t, r));
                    }
                }
            }
        }
    }
    c
}

/// Marker lines around gate.toml's generated throughput rules.
pub const GATE_BEGIN: &str = "# generated-rules:begin (by `bench-matrix readme --write` from the README's lane figures: do not edit by hand)";
pub const GATE_END: &str = "# generated-rules:end";

/// gate.toml's rules for the README's claims: a rule at 1.0 for every
/// claimed win, and for every stated trade a floor at 60 % of its ratio.
pub fn gate_rules(rec: &Record) -> String {
    let claims = parse_claims(&readme_block(rec));
    let rev = short_rev(&rec.rev);
    let key = |l: &str| crate::gate::lane_key(l).to_string();
    let mut s = format!("{GATE_BEGIN}\n");
    let _ = writeln!(
        s,
        "# Trades the README states (at {rev}): floor = 60 % of the stated ratio."
    );
    for (l, w, t, r) in &claims.trades {
        let floor = ((r * 0.6 * 100.0).floor() / 100.0).max(0.01);
        let _ = writeln!(
            s,
            "[[throughput]]\nlane = \"{}\"\nworkload = \"{w}\"\nthreads = {t}\nmin_ratio = {floor:.2}\nnote = \"README trade: {r:.2}x at {rev}\"\n",
            key(l)
        );
    }
    let _ = writeln!(
        s,
        "# Wins the README claims (at {rev}): at least the best peer."
    );
    for (l, w, t, r) in &claims.wins {
        let _ = writeln!(
            s,
            "[[throughput]]\nlane = \"{}\"\nworkload = \"{w}\"\nthreads = {t}\nmin_ratio = 1.0\nnote = \"README claims a win: {r:.2}x at {rev}\"\n",
            key(l)
        );
    }
    s.push_str(GATE_END);
    s
}

/// The generated section of a gate.toml, markers included.
pub fn gate_current(toml: &str) -> Option<&str> {
    let a = toml.find(GATE_BEGIN)?;
    let b = toml[a..].find(GATE_END)? + a + GATE_END.len();
    Some(&toml[a..b])
}
