//! The self-contained HTML dashboard: inline CSS and inline SVG only, no
//! scripts, fonts or images from anywhere, so it renders offline and in CI
//! artefact viewers. Hovering a bar shows its runs (SVG `<title>`).

use std::fmt::Write;

use crate::history::{Record, NOISE_BAND};
use crate::markdown::{display_order, fmt_date, fmt_mib, fmt_rate, thread_label};
use crate::schema::{AllocKind, Allocator, Cell, Results};
use crate::view_model::{self, Measure};

const LANE_COLORS: &[&str] = &[
    "#e8590c", "#f59f00", "#d6336c", "#a0522d", "#c92a2a", "#fd7e14",
];

/// A stable colour per allocator: warm colours for hz3, cool/grey for peers.
pub fn color_of(r: &Results, name: &str) -> &'static str {
    match name {
        "glibc" => "#868e96",
        "jemalloc" => "#1c7ed6",
        "mimalloc" => "#5f3dc4",
        "tcmalloc" => "#0c8599",
        _ => {
            let i = r
                .allocators
                .iter()
                .filter(|a| !a.is_peer())
                .position(|a| a.name == name)
                .unwrap_or(0);
            LANE_COLORS[i % LANE_COLORS.len()]
        }
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Mix a hex colour with white: t=0 → white, t=1 → the colour.
fn tint(hex: &str, t: f64) -> String {
    let h = hex.trim_start_matches('#');
    let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0) as f64;
    let m = |c: f64| (255.0 + (c - 255.0) * t.clamp(0.0, 1.0)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", m(p(0)), m(p(2)), m(p(4)))
}

/// Background for a ratio-to-best-peer cell: green above 1, red below.
pub fn ratio_color(x: f64) -> String {
    if x >= 1.0 {
        tint("#2b8a3e", (0.25 + (x - 1.0) * 1.5).min(0.85))
    } else {
        tint("#c92a2a", (0.25 + (1.0 - x) * 1.5).min(0.85))
    }
}

fn ratio_text_color(x: f64) -> &'static str {
    if (x - 1.0).abs() > 0.25 {
        "#fff"
    } else {
        "#212529"
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#212529;background:#f1f3f5}
header{background:linear-gradient(120deg,#212529,#343a40 60%,#7a2e0b);color:#f8f9fa;padding:22px 32px 18px}
header h1{margin:0 0 4px;font-size:26px;letter-spacing:.2px}
header h1 .mode{font-size:14px;font-weight:600;background:#e8590c;color:#fff;border-radius:10px;padding:2px 10px;margin-left:10px;vertical-align:middle}
header .meta{color:#ced4da;font-size:13px}
header .meta b{color:#fff}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid #dee2e6;padding:8px 32px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:#495057;text-decoration:none;font-weight:600;font-size:13px}
nav a:hover{color:#e8590c}
main{padding:18px 32px 40px;max-width:1560px;margin:0 auto}
h2{font-size:20px;margin:28px 0 6px}
h2 small{font-weight:400;color:#868e96;font-size:13px;margin-left:8px}
p.lead{margin:0 0 12px;color:#495057}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:14px 0 4px;align-items:center}
.legend span.sw{display:inline-block;width:14px;height:14px;border-radius:3px;margin-right:6px;vertical-align:-2px}
.legend .item{font-weight:600}
.legend .missing{color:#c92a2a;text-decoration:line-through}
.banner{border-radius:8px;padding:12px 16px;margin:14px 0;font-size:14px}
.banner.bad{background:#fff5f5;border:2px solid #e03131;color:#862e2e}
.banner.warn{background:#fff9db;border:1px solid #f59f00;color:#5c3c00}
.banner h3{margin:0 0 6px;font-size:15px}
.banner ul{margin:4px 0 0 18px;padding:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:14px}
.card{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 1px 1px rgba(0,0,0,.04);padding:12px 14px 8px}
.card h3{margin:0;font-size:15px}
.card .sub{color:#868e96;font-size:12px;margin-bottom:4px}
.card .miss{color:#c92a2a;font-size:12px;margin:2px 0 4px}
.card .win{float:right;font-size:12px;font-weight:700;border-radius:9px;padding:1px 9px;color:#fff}
.scroll{overflow-x:auto;max-width:100%}
.side>div{min-width:0;max-width:100%}
table.score th{white-space:nowrap}
table.score td.w{white-space:nowrap}
table.score{border-collapse:separate;border-spacing:3px;background:#fff;border-radius:10px;padding:8px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table.score th{font-size:12px;color:#495057;padding:4px 8px;text-align:center}
table.score th.w{text-align:left}
table.score td{padding:6px 10px;text-align:center;border-radius:5px;font-variant-numeric:tabular-nums;min-width:96px}
table.score td.w{text-align:left;font-weight:600;background:#f8f9fa}
table.score td .p{display:block;font-size:11px;opacity:.85}
.wins{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}
.wins .b{background:#fff;border-radius:18px;padding:4px 12px 4px 6px;box-shadow:0 1px 2px rgba(0,0,0,.08);font-weight:600}
.wins .b i{display:inline-block;border-radius:12px;color:#fff;font-style:normal;padding:0 8px;margin-right:6px}
.side{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
.two{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.three{display:grid;grid-template-columns:repeat(3,1fr);gap:14px}
table.data{border-collapse:collapse;background:#fff;font-size:12px;width:100%}
table.data th,table.data td{border-bottom:1px solid #e9ecef;padding:4px 8px;text-align:right;font-variant-numeric:tabular-nums}
table.data th:first-child,table.data td:first-child{text-align:left}
table.data td.l{text-align:left;white-space:normal}
table.data th.l{text-align:left}
footer{color:#868e96;font-size:12px;padding:20px 32px}
dl.wl{display:grid;grid-template-columns:160px 1fr;gap:4px 12px;background:#fff;padding:12px 16px;border-radius:10px}
dl.wl dt{font-weight:700;font-family:ui-monospace,Menlo,monospace}
dl.wl dd{margin:0;color:#495057}
code{font-family:ui-monospace,Menlo,monospace;font-size:12px;background:#f1f3f5;padding:1px 4px;border-radius:3px}
"#;

pub fn render(r: &Results) -> String {
    render_with_history(r, &[])
}

/// The dashboard with the trend section drawn over `history` (oldest first);
/// the run itself is added as the newest point unless the history already
/// ends with it.
pub fn render_with_history(r: &Results, history: &[Record]) -> String {
    let rec = Record::from_results(&crate::programs::without_programs(r));
    let mut hist: Vec<Record> = history.to_vec();
    if hist
        .last()
        .is_none_or(|l| l.rev != rec.rev || l.date_unix != rec.date_unix)
    {
        hist.push(rec.clone());
    }
    // Real programs have their own section; the charts are the driver's.
    let programs = crate::programs::render_html(r);
    let full = r;
    let synthetic = crate::programs::without_programs(r);
    let r = &synthetic;
    let mut h = String::new();
    let allocs = display_order(r);
    let lanes: Vec<&Allocator> = allocs
        .iter()
        .copied()
        .filter(|a| a.is_hz3() && a.ok())
        .collect();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>hz3 bench-matrix — {mode} — {rev}</title><style>{CSS}</style></head><body>",
        mode = esc(&r.config.mode),
        rev = esc(&r.git_rev)
    );

    // Header
    let _ = write!(
        h,
        "<header><h1>hz3 bench-matrix<span class=\"mode\">{mode} matrix</span></h1>\
         <div class=\"meta\"><b>{date}</b> · git <b>{rev}</b>{dirty} · {runs} run(s) per cell, medians, allocators interleaved · \
         pinning {pin} · metric <b>{metric}</b> · took {took}<br>{cpu} · {ncpu} CPUs · {mem:.1} GiB · {kernel} · {host}</div></header>",
        mode = esc(&r.config.mode),
        date = fmt_date(r.created_unix),
        rev = esc(&r.git_rev),
        dirty = if r.git_dirty { " (dirty)" } else { "" },
        runs = r.config.runs,
        pin = esc(r.config.pin_cpus.as_deref().unwrap_or("off")),
        took = crate::progress::fmt_dur(r.duration_s),
        metric = r.config.metric.describe(),
        cpu = esc(&r.machine.cpu_model),
        ncpu = r.machine.ncpu,
        mem = r.machine.mem_total_kib as f64 / 1048576.0,
        kernel = esc(&r.machine.kernel),
        host = esc(&r.machine.hostname),
    );

    // Nav
    let _ = write!(h, "<nav><a href=\"#score\">Scoreboard</a>");
    for &t in &r.config.threads {
        let _ = write!(h, "<a href=\"#t{t}\">Throughput · {}</a>", thread_label(t));
    }
    let _ = write!(
        h,
        "<a href=\"#trends\">Trends</a><a href=\"#chooser\">Lane chooser</a><a href=\"#mem\">Memory</a>"
    );
    if r.workloads.iter().any(|w| w.name == "mstress") {
        let _ = write!(h, "<a href=\"#mstress\">mstress RSS over time</a>");
    }
    if !programs.is_empty() {
        let _ = write!(h, "<a href=\"#programs\">Real programs</a>");
    }
    let _ = write!(h, "<a href=\"#details\">Details</a></nav><main>");

    // Legend
    let _ = write!(h, "<div class=\"legend\">");
    for a in &allocs {
        let kind = match a.kind {
            AllocKind::Lane => "hz3 lane",
            AllocKind::System => "system",
            AllocKind::Peer => "peer",
            AllocKind::Custom => "custom .so",
        };
        if a.ok() {
            let _ = write!(
                h,
                "<span class=\"item\" title=\"{}\"><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
                esc(&format!("{kind}: {}", a.path.as_deref().unwrap_or("no LD_PRELOAD"))),
                color_of(r, &a.name),
                esc(&a.name)
            );
        } else {
            let _ = write!(
                h,
                "<span class=\"item missing\" title=\"{}\"><span class=\"sw\" style=\"background:#dee2e6\"></span>{}</span>",
                esc(&a.note),
                esc(&a.name)
            );
        }
    }
    let _ = write!(h, "</div>");

    // Missing / warnings banners
    let missing: Vec<&&Allocator> = allocs.iter().filter(|a| !a.ok()).collect();
    if !missing.is_empty() {
        let _ = write!(h, "<div class=\"banner bad\"><h3>⚠ MISSING ALLOCATORS — not measured in this run</h3><ul>");
        for a in missing {
            let _ = write!(h, "<li><b>{}</b>: {}</li>", esc(&a.name), esc(&a.note));
        }
        let _ = write!(h, "</ul></div>");
    }
    let other_warn: Vec<&String> = r
        .warnings
        .iter()
        .filter(|w| !w.starts_with("MISSING"))
        .collect();
    if !other_warn.is_empty() {
        let _ = write!(
            h,
            "<div class=\"banner warn\"><h3>⚠ {} warning(s)</h3><ul>",
            other_warn.len()
        );
        for w in other_warn.iter().take(30) {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        if other_warn.len() > 30 {
            let _ = write!(
                h,
                "<li>… and {} more (see results.json)</li>",
                other_warn.len() - 30
            );
        }
        let _ = write!(h, "</ul></div>");
    }

    scoreboard(&mut h, r, &rec, &allocs, &lanes);
    let color = |n: &str| color_of(r, n);
    crate::chooser::trends_html(&mut h, &hist, NOISE_BAND, &color);
    crate::chooser::chooser_html(&mut h, &rec, &color);

    for &t in &r.config.threads {
        let _ = write!(
            h,
            "<h2 id=\"t{t}\">Throughput — {}<small>median {}, whiskers = min–max of the runs, ★ = fastest; hover a bar for its runs</small></h2><div class=\"grid\">",
            thread_label(t),
            r.metric_unit()
        );
        for w in &r.workloads {
            throughput_card(&mut h, r, &allocs, &w.name, &w.description, t);
        }
        let _ = write!(h, "</div>");
    }

    let _ = write!(
        h,
        "<h2 id=\"mem\">Memory<small>light bar = peak RSS (VmHWM), solid bar = mean sampled RSS, black tick = RSS after everything was freed; labels: peak / mean / after / settled (after light traffic; n/a = not measured); ★ = lowest peak</small></h2>"
    );
    for &t in &r.config.threads {
        let _ = write!(
            h,
            "<h3 style=\"margin:14px 0 6px\">{}</h3><div class=\"grid\">",
            thread_label(t)
        );
        for w in &r.workloads {
            memory_card(&mut h, r, &allocs, &w.name, t);
        }
        let _ = write!(h, "</div>");
    }

    if r.workloads.iter().any(|w| w.name == "mstress") {
        let _ = write!(
            h,
            "<h2 id=\"mstress\">mstress — RSS over time<small>the run closest to the median; generations of threads hand survivors to the next</small></h2><div class=\"three\">"
        );
        for &t in &r.config.threads {
            timeline_card(&mut h, r, &allocs, "mstress", t);
        }
        let _ = write!(h, "</div>");
    }

    h.push_str(&programs);

    details(&mut h, full, &allocs);

    let _ = writeln!(
        h,
        "</main><footer>Generated by {} from results.json (schema {}). Self-contained: no scripts, fonts or network.</footer></body></html>",
        esc(&r.tool),
        r.schema
    );
    h
}

fn scoreboard(
    h: &mut String,
    r: &Results,
    rec: &Record,
    allocs: &[&Allocator],
    lanes: &[&Allocator],
) {
    let _ = write!(h, "<h2 id=\"score\">Scoreboard</h2>");
    // Win counts
    let mut wins: Vec<(String, usize)> = allocs
        .iter()
        .filter(|a| a.ok())
        .map(|a| (a.name.clone(), 0))
        .collect();
    let mut total = 0;
    for w in &r.workloads {
        for &t in &r.config.threads {
            if let Some((name, _)) = r.winner(&w.name, t) {
                total += 1;
                if let Some(x) = wins.iter_mut().find(|x| x.0 == name) {
                    x.1 += 1;
                }
            }
        }
    }
    wins.sort_by_key(|b| std::cmp::Reverse(b.1));
    let _ = write!(h, "<div class=\"wins\">");
    for (name, n) in &wins {
        let _ = write!(
            h,
            "<span class=\"b\"><i style=\"background:{}\">{n}/{total}</i>{}</span>",
            color_of(r, name),
            esc(name)
        );
    }
    let _ = write!(h, "</div><p class=\"lead\">Cells won (fastest median) per allocator over every workload × thread count.</p>");

    if lanes.is_empty() {
        let _ = write!(
            h,
            "<div class=\"banner warn\"><b>No hz3 lane was measured in this run</b> — the ratio-to-best-peer scoreboard appears when \
             <code>target/lanes/&lt;lane&gt;/libhz3_&lt;lane&gt;.so</code> exists (<code>cargo xtask build-lanes</code>). Below: the winner of each cell.</div>\
             <div class=\"side\">"
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"lead\">Each hz3 lane's median throughput ({}) ÷ the best peer's (glibc, jemalloc, mimalloc, tcmalloc) in the same run. \
             <b style=\"color:#2b8a3e\">Green: hz3 wins</b>, <b style=\"color:#c92a2a\">red: a peer wins</b>, each only when the {:.0}% bootstrap interval of the ratio \
             (over the interleaved runs, paired by run, fixed seed) excludes 1; a grey cell is <b>within noise</b>. Hover a cell for its interval; the named peer is the best one.</p>",
            r.config.metric.describe(),
            crate::stats::CI_LEVEL * 100.0
        );
        let _ = write!(
            h,
            "<div class=\"side\"><div class=\"scroll\"><h3 style=\"margin:16px 0 6px\">hz3 ÷ best peer</h3><table class=\"score\"><tr><th class=\"w\">workload</th>"
        );
        for l in lanes {
            for &t in &r.config.threads {
                let _ = write!(
                    h,
                    "<th><span style=\"color:{}\">{}</span><br>{}</th>",
                    color_of(r, &l.name),
                    esc(&l.name),
                    thread_label(t)
                );
            }
        }
        let _ = write!(h, "</tr>");
        for w in &r.workloads {
            let _ = write!(h, "<tr><td class=\"w\">{}</td>", esc(&w.name));
            for l in lanes {
                for &t in &r.config.threads {
                    match view_model::ratio_cell(rec, &l.name, &w.name, t, Measure::Throughput)
                        .map(|c| (c.peer, c.ci))
                    {
                        Some((p, ci)) => {
                            let tip = format!(
                                "{} ÷ {p} = {:.3}, {:.0}% interval {} ({})",
                                l.name,
                                ci.ratio,
                                ci.level * 100.0,
                                ci.describe(),
                                if ci.significant() {
                                    "significant"
                                } else {
                                    "includes 1: within noise"
                                }
                            );
                            ratio_td(h, &ci, &p, &tip, true);
                        }
                        _ => {
                            let failed = r
                                .cell(&w.name, t, &l.name)
                                .is_some_and(|c| c.summary.is_none() || !c.failures.is_empty());
                            if let Some(why) = r.invalid(&w.name, t, &l.name) {
                                let _ = write!(h, "<td style=\"background:#495057;color:#fff\" title=\"{}\"><b>⛔ INVALID</b><span class=\"p\">not compared</span></td>", esc(&why));
                            } else if failed {
                                let _ = write!(h, "<td style=\"background:#c92a2a;color:#fff\"><b>FAILED</b></td>");
                            } else {
                                let _ = write!(h, "<td style=\"background:#f1f3f5\">–</td>");
                            }
                        }
                    }
                }
            }
            let _ = write!(h, "</tr>");
        }
        let _ = write!(h, "</table></div>");
        rss_scoreboard(h, r, rec, lanes);
    }

    // Winner table, and beside it the overall standing per thread count.
    let _ = write!(
        h,
        "<div class=\"scroll\"><h3 style=\"margin:16px 0 6px\">Winner per cell <small style=\"font-weight:400;color:#868e96\">(lead over the runner-up)</small></h3><table class=\"score\"><tr><th class=\"w\">workload</th>"
    );
    for &t in &r.config.threads {
        let _ = write!(h, "<th>{}</th>", thread_label(t));
    }
    let _ = write!(h, "</tr>");
    for w in &r.workloads {
        let _ = write!(h, "<tr><td class=\"w\">{}</td>", esc(&w.name));
        for &t in &r.config.threads {
            match view_model::winner(rec, &w.name, t) {
                None => {
                    let _ = write!(h, "<td>–</td>");
                }
                Some(win) => {
                    let _ = write!(
                        h,
                        "<td style=\"background:{};color:#fff\"><b>{}</b><span class=\"p\">{}{}</span></td>",
                        color_of(r, &win.name),
                        esc(&win.name),
                        fmt_rate(win.median),
                        win.lead
                            .map(|l| format!(" · +{:.0}%", l * 100.0))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let _ = write!(h, "</tr>");
    }
    let _ = write!(h, "</table></div>");
    overall_chart(h, r, allocs);
    let _ = write!(h, "</div>");
}

/// One ratio cell of a scoreboard (throughput or RSS): tinted only when the
/// interval excludes 1, green when hz3 is better (`better_above`: a ratio
/// above 1 is better, as for throughput; false for RSS, where lower is).
fn ratio_td(h: &mut String, ci: &crate::stats::RatioCi, peer: &str, tip: &str, better_above: bool) {
    let x = ci.ratio;
    // The colour scale reads "above 1 = good": mirror RSS ratios.
    let good = if better_above { x } else { 1.0 / x };
    if ci.significant() {
        let _ = write!(
            h,
            "<td style=\"background:{};color:{}\" title=\"{}\"><b>{x:.2}×</b><span class=\"p\">vs {}</span></td>",
            ratio_color(good),
            ratio_text_color(good),
            esc(tip),
            esc(peer)
        );
    } else {
        let _ = write!(
            h,
            "<td style=\"background:#f8f9fa;color:#495057\" title=\"{}\"><b>{x:.2}×</b><span class=\"p\">vs {} · {}</span></td>",
            esc(tip),
            esc(peer),
            if ci.bounded() { "within noise" } else { "1 run: no interval" }
        );
    }
}

/// Each lane's peak and settled RSS ÷ the lowest peer's, side by side; a cell
/// is tinted only when the interval of the ratio excludes 1; "n/a" when the
/// value was not measured.
fn rss_scoreboard(h: &mut String, r: &Results, rec: &Record, lanes: &[&Allocator]) {
    let _ = write!(
        h,
        "<div class=\"scroll\"><h3 style=\"margin:16px 0 6px\">hz3 RSS ÷ lowest peer <small style=\"font-weight:400;color:#868e96\">peak | settled ({}); \
         green: hz3 lower, red: higher, only when significant</small></h3><table class=\"score\"><tr><th class=\"w\">workload</th>",
        esc(&crate::markdown::settle_desc(r))
    );
    for l in lanes {
        for &t in &r.config.threads {
            for m in ["peak", "settled"] {
                let _ = write!(
                    h,
                    "<th><span style=\"color:{}\">{}</span><br>{} · {m}</th>",
                    color_of(r, &l.name),
                    esc(&l.name),
                    thread_label(t)
                );
            }
        }
    }
    let _ = write!(h, "</tr>");
    for w in &r.workloads {
        let _ = write!(h, "<tr><td class=\"w\">{}</td>", esc(&w.name));
        for l in lanes {
            for &t in &r.config.threads {
                for m in [Measure::PeakRss, Measure::SettledRss] {
                    if r.invalid(&w.name, t, &l.name).is_some() {
                        let _ = write!(
                            h,
                            "<td style=\"background:#495057;color:#fff\"><b>⛔ INVALID</b></td>"
                        );
                        continue;
                    }
                    match view_model::ratio_cell(rec, &l.name, &w.name, t, m)
                        .map(|c| (c.peer, c.ci))
                    {
                        None => {
                            let _ = write!(
                                h,
                                "<td style=\"background:#f1f3f5;color:#868e96\">n/a</td>"
                            );
                        }
                        Some((p, ci)) => {
                            let tip = format!(
                                "{} {} RSS ÷ {p} = {:.3}, interval {}",
                                l.name,
                                m.name(),
                                ci.ratio,
                                ci.describe()
                            );
                            ratio_td(h, &ci, &p, &tip, false);
                        }
                    }
                }
            }
        }
        let _ = write!(h, "</tr>");
    }
    let _ = write!(h, "</table></div>");
}

/// Geometric mean over workloads of (median / fastest median in that cell),
/// per allocator and thread count: one number for "how close to the best".
pub fn overall_score(r: &Results, alloc: &str, t: u32) -> Option<f64> {
    let mut v = Vec::new();
    for w in &r.workloads {
        if let (Some(m), Some((_, best))) = (
            r.cell(&w.name, t, alloc).and_then(|c| r.median_of(c)),
            r.winner(&w.name, t),
        ) {
            if best > 0.0 && m > 0.0 {
                v.push(m / best);
            }
        }
    }
    crate::stats::geomean(&v)
}

fn overall_chart(h: &mut String, r: &Results, allocs: &[&Allocator]) {
    let ok: Vec<&Allocator> = allocs.iter().copied().filter(|a| a.ok()).collect();
    if ok.is_empty() {
        return;
    }
    // One panel per thread count, stacked, so the card fits beside the tables.
    let (lw, bw) = (150.0, 120.0);
    let width = lw + bw + 56.0;
    let row = 20.0;
    let head = 22.0;
    let panel_h = head + row * ok.len() as f64 + 8.0;
    let height = panel_h * r.config.threads.len() as f64;
    let _ = write!(
        h,
        "<div class=\"card\" style=\"align-self:start;margin-top:44px;width:{:.0}px\"><h3>Overall: how close to the fastest</h3>\
         <div class=\"sub\">geometric mean over workloads of median ÷ the fastest median in that cell (100% = won every cell)</div>\
         <svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" style=\"font-size:12px;max-width:100%\">",
        width + 28.0
    );
    for (pi, &t) in r.config.threads.iter().enumerate() {
        let y0 = pi as f64 * panel_h;
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{:.1}\" font-weight=\"700\" fill=\"#343a40\">{}</text>",
            y0 + 15.0,
            thread_label(t)
        );
        let best = ok
            .iter()
            .filter_map(|a| overall_score(r, &a.name, t))
            .fold(0.0f64, f64::max);
        for (i, a) in ok.iter().enumerate() {
            let y = y0 + head + i as f64 * row;
            let cy = y + 12.0;
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" fill=\"#343a40\" font-weight=\"{}\">{}</text>",
                lw - 6.0,
                if a.is_hz3() { 700 } else { 400 },
                esc(&a.name)
            );
            let _ = write!(h, "<rect x=\"{lw}\" y=\"{y:.1}\" width=\"{bw}\" height=\"15\" fill=\"#f1f3f5\" rx=\"3\"/>");
            match overall_score(r, &a.name, t) {
                Some(g) => {
                    let top = (g - best).abs() < 1e-12;
                    let _ = write!(
                        h,
                        "<rect x=\"{lw}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"15\" fill=\"{}\" rx=\"3\"{}/>\
                         <text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#212529\" font-weight=\"{}\">{}{:.0}%</text>",
                        (g * bw).max(1.0),
                        color_of(r, &a.name),
                        if top { " stroke=\"#212529\" stroke-width=\"1.5\"" } else { "" },
                        lw + bw + 5.0,
                        if top { 700 } else { 400 },
                        if top { "★ " } else { "" },
                        g * 100.0
                    );
                }
                None => {
                    let _ = write!(
                        h,
                        "<text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#c92a2a\">–</text>",
                        lw + 4.0
                    );
                }
            }
        }
    }
    let _ = write!(h, "</svg></div>");
}

const CARD_W: f64 = 500.0;
/// Wide enough for the longest lane name (`hz3-mem_mstress`, bold) unclipped.
const LABEL_W: f64 = 150.0;
const VALUE_W: f64 = 150.0;
const BAR_H: f64 = 18.0;
const BAR_GAP: f64 = 7.0;

fn runs_tooltip(
    c: &Cell,
    f: &dyn Fn(f64) -> String,
    get: &dyn Fn(&crate::schema::RunRecord) -> f64,
) -> String {
    let runs: Vec<String> = c.runs.iter().map(|x| f(get(x))).collect();
    let mut s = format!("runs: {}", runs.join(", "));
    if !c.failures.is_empty() {
        let _ = write!(s, "\n{} failed: {}", c.failures.len(), c.failures[0].error);
    }
    s
}

fn throughput_card(
    h: &mut String,
    r: &Results,
    allocs: &[&Allocator],
    workload: &str,
    desc: &str,
    t: u32,
) {
    let missing_line = missing_note(allocs);
    let ok_allocs: Vec<&Allocator> = allocs.iter().copied().filter(|a| a.ok()).collect();
    let allocs = &ok_allocs[..];
    let winner = r.winner(workload, t);
    let max = allocs
        .iter()
        .filter_map(|a| {
            r.cell(workload, t, &a.name)
                .and_then(|c| r.thr(c))
                .map(|s| s.max)
        })
        .fold(0.0f64, f64::max);
    let _ = write!(h, "<div class=\"card\">");
    if let Some((wn, _)) = &winner {
        let _ = write!(
            h,
            "<span class=\"win\" style=\"background:{}\">★ {}</span>",
            color_of(r, wn),
            esc(wn)
        );
    }
    let _ = write!(
        h,
        "<h3>{}</h3><div class=\"sub\">{}</div>",
        esc(workload),
        esc(desc)
    );
    let n = allocs.len() as f64;
    let height = n * (BAR_H + BAR_GAP) + 8.0;
    let plot_w = CARD_W - LABEL_W - VALUE_W;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {CARD_W} {height}\" width=\"100%\" role=\"img\" aria-label=\"{} throughput, {}\" style=\"font-size:12px\">",
        esc(workload),
        thread_label(t)
    );
    // light gridlines at 25/50/75/100 %
    for i in 1..=4 {
        let x = LABEL_W + plot_w * i as f64 / 4.0;
        let _ = write!(
            h,
            "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#f1f3f5\"/>",
            height - 4.0
        );
    }
    for (i, a) in allocs.iter().enumerate() {
        let y = 4.0 + i as f64 * (BAR_H + BAR_GAP);
        let cy = y + BAR_H / 2.0 + 4.0;
        let is_win = winner.as_ref().is_some_and(|w| w.0 == a.name);
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" fill=\"{}\" font-weight=\"{}\">{}</text>",
            LABEL_W - 8.0,
            if a.ok() { "#343a40" } else { "#c92a2a" },
            if a.is_hz3() || is_win { 700 } else { 400 },
            esc(&a.name)
        );
        let cell = r.cell(workload, t, &a.name);
        match (
            a.ok(),
            cell.and_then(|c| c.summary.as_ref().map(|s| (c, s))),
        ) {
            (false, _) => {
                let _ = write!(
                    h,
                    "<rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{plot_w:.1}\" height=\"{BAR_H}\" fill=\"#fff5f5\" stroke=\"#ffa8a8\" stroke-dasharray=\"4 3\" rx=\"3\"/>\
                     <text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#c92a2a\" font-weight=\"700\">MISSING<title>{}</title></text>",
                    LABEL_W + 8.0,
                    esc(&a.note)
                );
            }
            (true, None) => {
                let why = cell
                    .and_then(|c| c.failures.first())
                    .map(|f| f.error.clone())
                    .unwrap_or_else(|| "not run".into());
                let _ = write!(
                    h,
                    "<rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{plot_w:.1}\" height=\"{BAR_H}\" fill=\"#c92a2a\" rx=\"3\"/>\
                     <text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#fff\" font-weight=\"700\">FAILED<title>{}</title></text>",
                    LABEL_W + 8.0,
                    esc(&why)
                );
            }
            (true, Some((c, s))) => {
                let metric = r.config.metric;
                let other = (metric.other().unit(), s.throughput(metric.other()).median);
                let s = s.throughput(metric);
                let sx = |v: f64| if max > 0.0 { v / max * plot_w } else { 0.0 };
                let w = sx(s.median).max(1.0);
                let col = color_of(r, &a.name);
                let tip = runs_tooltip(c, &fmt_rate, &|x| x.throughput(metric));
                let _ = write!(
                    h,
                    "<g><title>{} · {}: median {} {} ({} {})\n{}</title>\
                     <rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{col}\" rx=\"3\" {}/>",
                    esc(&a.name),
                    esc(workload),
                    fmt_rate(s.median),
                    r.metric_unit(),
                    fmt_rate(other.1),
                    other.0,
                    esc(&tip),
                    if is_win { "stroke=\"#212529\" stroke-width=\"1.5\"" } else { "" }
                );
                // whisker
                if s.n > 1 {
                    let (x1, x2) = (LABEL_W + sx(s.min), LABEL_W + sx(s.max));
                    let ym = y + BAR_H / 2.0;
                    let _ = write!(
                        h,
                        "<line x1=\"{x1:.1}\" y1=\"{ym:.1}\" x2=\"{x2:.1}\" y2=\"{ym:.1}\" stroke=\"#212529\" stroke-width=\"1.2\" opacity=\".7\"/>\
                         <line x1=\"{x1:.1}\" y1=\"{:.1}\" x2=\"{x1:.1}\" y2=\"{:.1}\" stroke=\"#212529\" opacity=\".7\"/>\
                         <line x1=\"{x2:.1}\" y1=\"{:.1}\" x2=\"{x2:.1}\" y2=\"{:.1}\" stroke=\"#212529\" opacity=\".7\"/>",
                        ym - 4.0,
                        ym + 4.0,
                        ym - 4.0,
                        ym + 4.0
                    );
                }
                let label_x = LABEL_W + sx(s.max.max(s.median)) + 6.0;
                let invalid = c.invalid_reason();
                let ratio = r
                    .best_peer(workload, t)
                    .filter(|_| a.is_hz3() && invalid.is_none())
                    .map(|(_, b)| s.median / b);
                let sig = ratio.is_some()
                    && r.ratio_ci_to_best_peer(&a.name, workload, t)
                        .is_some_and(|(_, ci)| ci.significant());
                let ratio_txt = match ratio {
                    Some(x) => format!(
                        " <tspan fill=\"{}\" font-weight=\"700\">{x:.2}×{}</tspan>",
                        if !sig {
                            "#868e96"
                        } else if x >= 1.0 {
                            "#2b8a3e"
                        } else {
                            "#c92a2a"
                        },
                        if sig { "" } else { " ≈ noise" }
                    ),
                    None => String::new(),
                };
                let mut fails = if c.failures.is_empty() {
                    String::new()
                } else {
                    format!(
                        " <tspan fill=\"#c92a2a\" font-weight=\"700\">⚠{} failed</tspan>",
                        c.failures.len()
                    )
                };
                if let Some(why) = &invalid {
                    let _ = write!(
                        fails,
                        " <tspan fill=\"#495057\" font-weight=\"700\">⛔ INVALID<title>{}</title></tspan>",
                        esc(why)
                    );
                }
                let _ = write!(
                    h,
                    "<text x=\"{label_x:.1}\" y=\"{cy:.1}\" fill=\"#212529\" font-weight=\"{}\">{}{}{ratio_txt}{fails}</text></g>",
                    if is_win { 700 } else { 400 },
                    if is_win { "★ " } else { "" },
                    fmt_rate(s.median)
                );
            }
        }
    }
    let _ = write!(h, "</svg>{missing_line}</div>");
}

fn memory_card(h: &mut String, r: &Results, allocs: &[&Allocator], workload: &str, t: u32) {
    let missing_line = missing_note(allocs);
    let ok_allocs: Vec<&Allocator> = allocs.iter().copied().filter(|a| a.ok()).collect();
    let allocs = &ok_allocs[..];
    let sums: Vec<_> = allocs
        .iter()
        .map(|a| {
            r.cell(workload, t, &a.name)
                .and_then(|c| c.summary.as_ref().map(|s| (c, s)))
        })
        .collect();
    let max = sums
        .iter()
        .flatten()
        .map(|(_, s)| {
            s.peak_rss_kib
                .median
                .max(s.mean_rss_kib.median)
                .max(s.after_rss_kib.median)
        })
        .fold(0.0f64, f64::max);
    let best_peak = sums
        .iter()
        .flatten()
        .map(|(_, s)| s.peak_rss_kib.median)
        .fold(f64::INFINITY, f64::min);
    let _ = write!(
        h,
        "<div class=\"card\"><h3>{}</h3><div class=\"sub\">MiB · {}</div>",
        esc(workload),
        thread_label(t)
    );
    let n = allocs.len() as f64;
    let height = n * (BAR_H + BAR_GAP) + 8.0;
    let value_w = 128.0;
    let plot_w = CARD_W - LABEL_W - value_w;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {CARD_W} {height}\" width=\"100%\" style=\"font-size:12px\">"
    );
    for (i, (a, cs)) in allocs.iter().zip(&sums).enumerate() {
        let y = 4.0 + i as f64 * (BAR_H + BAR_GAP);
        let cy = y + BAR_H / 2.0 + 4.0;
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" fill=\"{}\" font-weight=\"{}\">{}</text>",
            LABEL_W - 8.0,
            if a.ok() { "#343a40" } else { "#c92a2a" },
            if a.is_hz3() { 700 } else { 400 },
            esc(&a.name)
        );
        let Some((c, s)) = cs else {
            let txt = if a.ok() { "FAILED" } else { "MISSING" };
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#c92a2a\" font-weight=\"700\">{txt}</text>",
                LABEL_W + 8.0
            );
            continue;
        };
        let sx = |v: f64| if max > 0.0 { v / max * plot_w } else { 0.0 };
        let col = color_of(r, &a.name);
        let is_best = s.peak_rss_kib.median == best_peak;
        let settled = s
            .settled_rss_kib
            .map(|x| fmt_mib(x.median))
            .unwrap_or_else(|| "n/a".into());
        let tip = format!(
            "{} · {}\npeak {} MiB, mean {} MiB, after free {} MiB, settled {settled} MiB (medians)\npeak {}",
            a.name,
            workload,
            fmt_mib(s.peak_rss_kib.median),
            fmt_mib(s.mean_rss_kib.median),
            fmt_mib(s.after_rss_kib.median),
            runs_tooltip(c, &|v| format!("{} MiB", fmt_mib(v)), &|x| x.peak_rss_kib
                as f64)
        );
        let _ = write!(
            h,
            "<g><title>{}</title><rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\" fill=\"{}\" rx=\"3\"/>\
             <rect x=\"{LABEL_W}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{col}\" rx=\"2\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#212529\" stroke-width=\"2.5\"/>\
             <text x=\"{:.1}\" y=\"{cy:.1}\" fill=\"#212529\" font-weight=\"{}\">{}{} <tspan fill=\"#868e96\">/ {} / {} / settled {settled}</tspan></text></g>",
            esc(&tip),
            sx(s.peak_rss_kib.median).max(1.0),
            tint(col, 0.35),
            y + 4.0,
            sx(s.mean_rss_kib.median).max(1.0),
            BAR_H - 8.0,
            LABEL_W + sx(s.after_rss_kib.median),
            y - 1.0,
            LABEL_W + sx(s.after_rss_kib.median),
            y + BAR_H + 1.0,
            LABEL_W + sx(s.peak_rss_kib.median.max(s.after_rss_kib.median)) + 6.0,
            if is_best { 700 } else { 400 },
            if is_best { "★ " } else { "" },
            fmt_mib(s.peak_rss_kib.median),
            fmt_mib(s.mean_rss_kib.median),
            fmt_mib(s.after_rss_kib.median),
        );
    }
    let _ = write!(h, "</svg>{missing_line}</div>");
}

/// One compact line naming the allocators a card could not show.
fn missing_note(allocs: &[&Allocator]) -> String {
    let m: Vec<String> = allocs
        .iter()
        .filter(|a| !a.ok())
        .map(|a| esc(&a.name))
        .collect();
    if m.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"miss\" title=\"{}\">✖ {} allocator{} MISSING (not measured)</div>",
            m.join(", "),
            m.len(),
            if m.len() == 1 { "" } else { "s" }
        )
    }
}

fn nice_step(range: f64, ticks: usize) -> f64 {
    if range <= 0.0 {
        return 1.0;
    }
    let raw = range / ticks as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let n = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn timeline_card(h: &mut String, r: &Results, allocs: &[&Allocator], workload: &str, t: u32) {
    let series: Vec<(&Allocator, &Vec<[f64; 2]>)> = allocs
        .iter()
        .filter_map(|a| {
            r.cell(workload, t, &a.name)
                .and_then(|c| c.timeline.as_ref())
                .map(|tl| (*a, tl))
        })
        .filter(|(_, tl)| !tl.is_empty())
        .collect();
    let _ = write!(
        h,
        "<div class=\"card\"><h3>{} · {}</h3><div class=\"sub\">RSS (MiB) against time (ms)</div>",
        esc(workload),
        thread_label(t)
    );
    if series.is_empty() {
        let _ = write!(
            h,
            "<p style=\"color:#868e96\">no timeline recorded</p></div>"
        );
        return;
    }
    let (w, hgt) = (460.0, 250.0);
    let (ml, mr, mt, mb) = (48.0, 12.0, 10.0, 28.0);
    let xmax = series
        .iter()
        .flat_map(|(_, tl)| tl.iter().map(|p| p[0]))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let ymax = series
        .iter()
        .flat_map(|(_, tl)| tl.iter().map(|p| p[1] / 1024.0))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let ystep = nice_step(ymax, 4);
    let ytop = (ymax / ystep).ceil() * ystep;
    let xstep = nice_step(xmax, 5);
    let px = |x: f64| ml + x / xmax * (w - ml - mr);
    let py = |y: f64| mt + (1.0 - y / ytop) * (hgt - mt - mb);
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {w} {hgt}\" width=\"100%\" style=\"font-size:11px\">"
    );
    let mut y = 0.0;
    while y <= ytop + 1e-9 {
        let _ = write!(
            h,
            "<line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e9ecef\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#868e96\">{}</text>",
            w - mr,
            py(y),
            py(y),
            ml - 5.0,
            py(y) + 4.0,
            if ystep < 1.0 { format!("{y:.1}") } else { format!("{y:.0}") }
        );
        y += ystep;
    }
    let mut x = 0.0;
    while x <= xmax + 1e-9 {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#868e96\">{x:.0}</text>",
            px(x),
            hgt - mb + 15.0
        );
        x += xstep;
    }
    let _ = write!(
        h,
        "<line x1=\"{ml}\" x2=\"{ml}\" y1=\"{mt}\" y2=\"{:.1}\" stroke=\"#adb5bd\"/>",
        hgt - mb
    );
    for (a, tl) in &series {
        let pts: Vec<String> = tl
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p[0]), py(p[1] / 1024.0)))
            .collect();
        let peak = tl.iter().map(|p| p[1]).fold(0.0f64, f64::max);
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\" points=\"{}\"><title>{}: peak {} MiB</title></polyline>",
            color_of(r, &a.name),
            if a.is_hz3() { 2.6 } else { 1.8 },
            pts.join(" "),
            esc(&a.name),
            fmt_mib(peak)
        );
    }
    let _ = write!(
        h,
        "</svg><div class=\"legend\" style=\"margin:2px 0 4px;gap:10px;font-size:12px\">"
    );
    for (a, tl) in &series {
        let peak = tl.iter().map(|p| p[1]).fold(0.0f64, f64::max);
        let _ = write!(
            h,
            "<span><span class=\"sw\" style=\"background:{}\"></span>{} <span style=\"color:#868e96\">{} MiB</span></span>",
            color_of(r, &a.name),
            esc(&a.name),
            fmt_mib(peak)
        );
    }
    let _ = write!(h, "</div></div>");
}

fn details(h: &mut String, r: &Results, allocs: &[&Allocator]) {
    let _ = write!(h, "<h2 id=\"details\">Details</h2>");
    let remote: Vec<_> = r
        .workloads
        .iter()
        .filter(|w| w.driver == "remote")
        .collect();
    let multi: Vec<u32> = r
        .config
        .threads
        .iter()
        .copied()
        .filter(|&t| t > 1)
        .collect();
    let _ = write!(h, "<div class=\"two\">");
    if !remote.is_empty() && !multi.is_empty() {
        let _ = write!(
            h,
            "<div class=\"card\"><h3>Actual remote-free rate</h3><div class=\"sub\">share of frees handed to another thread (a full ring waits); ⛔ INVALID = more than ±0.02 off the asked share in some run: not compared</div><table class=\"data\"><tr><th>workload</th><th>threads</th>"
        );
        for a in allocs.iter().filter(|a| a.ok()) {
            let _ = write!(h, "<th>{}</th>", esc(&a.name));
        }
        let _ = write!(h, "</tr>");
        for w in &remote {
            for &t in &multi {
                let _ = write!(h, "<tr><td>{}</td><td>{t}</td>", esc(&w.name));
                for a in allocs.iter().filter(|a| a.ok()) {
                    let cell = r.cell(&w.name, t, &a.name);
                    let v = cell
                        .and_then(|c| c.summary.as_ref())
                        .map(|s| format!("{:.0}%", s.remote_rate.median * 100.0))
                        .unwrap_or_else(|| "–".into());
                    match cell.and_then(|c| c.invalid_reason()) {
                        Some(why) => {
                            let _ = write!(
                                h,
                                "<td style=\"background:#495057;color:#fff\" title=\"{}\">⛔ {v} INVALID</td>",
                                esc(&why)
                            );
                        }
                        None => {
                            let _ = write!(h, "<td>{v}</td>");
                        }
                    }
                }
                let _ = write!(h, "</tr>");
            }
        }
        let _ = write!(h, "</table></div>");
    }
    let _ = write!(h, "</div><div class=\"card\" style=\"margin-top:14px\"><h3>Allocators</h3><table class=\"data\"><tr><th>name</th><th>kind</th><th>shared object</th><th>status</th></tr>");
    for a in allocs {
        let _ = write!(
            h,
            "<tr><td><span class=\"legend\" style=\"display:inline\"><span class=\"sw\" style=\"background:{}\"></span></span>{}</td><td>{:?}</td><td class=\"l\"><code>{}</code></td><td class=\"l\" style=\"color:{}\">{}</td></tr>",
            if a.ok() { color_of(r, &a.name) } else { "#dee2e6" },
            esc(&a.name),
            a.kind,
            esc(a.path.as_deref().unwrap_or("(none: glibc)")),
            if a.ok() { "#2b8a3e" } else { "#c92a2a" },
            if !a.ok() {
                format!("MISSING: {}", esc(&a.note))
            } else if a.note.is_empty() {
                "ok".to_string()
            } else {
                format!("ok · <span style=\"color:#495057\">{}</span>", esc(&a.note))
            }
        );
    }
    let _ = write!(h, "</table></div>");
    let _ = write!(
        h,
        "<h3 style=\"margin:16px 0 6px\">Workloads</h3><dl class=\"wl\">"
    );
    for w in &r.workloads {
        let _ = write!(
            h,
            "<dt>{}</dt><dd>{} <code>{} {}</code> · {} iterations per cell split over the threads · working set {}</dd>",
            esc(&w.name),
            esc(&w.description),
            esc(&w.driver),
            esc(&w.args.join(" ")),
            w.iters_total,
            w.ws
        );
    }
    let _ = write!(h, "</dl>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tints_and_ratio_colors() {
        assert_eq!(tint("#000000", 0.0), "#ffffff");
        assert_eq!(tint("#000000", 1.0), "#000000");
        assert_ne!(ratio_color(1.2), ratio_color(0.8));
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 4), 20.0);
        assert_eq!(nice_step(7.0, 4), 2.0);
        assert_eq!(nice_step(0.0, 4), 1.0);
    }
}
