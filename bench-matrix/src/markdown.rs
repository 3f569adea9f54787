//! Markdown tables from a results file (and shared number formatting).

use std::fmt::Write;

use crate::gate::RssMeasure;
use crate::schema::{Allocator, Results};

/// ops/s with a k/M suffix and three significant digits.
pub fn fmt_rate(v: f64) -> String {
    let (x, s) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if x >= 100.0 {
        format!("{x:.0}{s}")
    } else if x >= 10.0 {
        format!("{x:.1}{s}")
    } else {
        format!("{x:.2}{s}")
    }
}

/// KiB as MiB, three significant digits.
pub fn fmt_mib(kib: f64) -> String {
    let m = kib / 1024.0;
    if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 10.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.2}")
    }
}

pub fn fmt_date(unix: u64) -> String {
    // Civil date from days since epoch (UTC), no chrono needed.
    let days = (unix / 86400) as i64;
    let secs = unix % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

pub fn thread_label(t: u32) -> String {
    if t == 1 {
        "1 thread".into()
    } else {
        format!("{t} threads")
    }
}

/// Allocators in display order: hz3 lanes first, then the peers.
pub fn display_order(r: &Results) -> Vec<&Allocator> {
    let mut v: Vec<&Allocator> = r.allocators.iter().filter(|a| a.is_hz3()).collect();
    v.extend(r.allocators.iter().filter(|a| !a.is_hz3()));
    v
}

pub fn render(r: &Results) -> String {
    // Real programs have their own section; the tables below are the driver's.
    let programs = crate::programs::render_md(r);
    let synthetic = crate::programs::without_programs(r);
    let r = &synthetic;
    let mut s = String::new();
    let allocs = display_order(r);
    let lanes: Vec<&Allocator> = allocs
        .iter()
        .copied()
        .filter(|a| a.is_hz3() && a.ok())
        .collect();
    let _ = writeln!(s, "# hz3 bench-matrix — {} matrix\n", r.config.mode);
    let _ = writeln!(
        s,
        "- **run**: {} · git `{}`{} · {} run(s) per cell, seeds {}, allocators interleaved · pinning: {} · took {}",
        fmt_date(r.created_unix),
        r.git_rev,
        if r.git_dirty { " (dirty)" } else { "" },
        r.config.runs,
        seeds_desc(&r.config.seeds),
        r.config.pin_cpus.as_deref().unwrap_or("off"),
        crate::progress::fmt_dur(r.duration_s),
    );
    let _ = writeln!(
        s,
        "- **machine**: {} · {} CPUs · {:.1} GiB · {}",
        r.machine.cpu_model,
        r.machine.ncpu,
        r.machine.mem_total_kib as f64 / 1048576.0,
        r.machine.kernel
    );
    let _ = writeln!(
        s,
        "- **allocators**: {}",
        allocs
            .iter()
            .map(|a| if a.ok() {
                format!("`{}`", a.name)
            } else {
                format!("~~`{}`~~ (MISSING)", a.name)
            })
            .collect::<Vec<_>>()
            .join(" · ")
    );
    let _ = writeln!(
        s,
        "- **metric**: {} — cells show the **median**; ± is half the spread (range below 5 runs, IQR from 5); **bold** = fastest in the row",
        r.config.metric.describe()
    );
    let _ = writeln!(
        s,
        "- lane ÷ best peer: 🟢 hz3 ahead / 🔴 a peer ahead only when the {:.0}% bootstrap interval of the ratio (interleaved runs, paired by run, fixed seed) excludes 1; ⚪ = within noise; ⛔ INVALID = the cell missed the asked remote share and is not compared\n",
        crate::stats::CI_LEVEL * 100.0
    );

    let missing: Vec<&&Allocator> = allocs.iter().filter(|a| !a.ok()).collect();
    if !missing.is_empty() {
        let _ = writeln!(s, "> [!WARNING]");
        let _ = writeln!(s, "> **MISSING ALLOCATORS** — these were not measured:");
        for a in missing {
            let _ = writeln!(s, "> - **{}**: {}", a.name, a.note);
        }
        let _ = writeln!(s);
    }

    for &t in &r.config.threads {
        let _ = writeln!(
            s,
            "## Throughput — {} ({})\n",
            thread_label(t),
            r.metric_unit()
        );
        let mut head = String::from("| workload |");
        let mut sep = String::from("|---|");
        for a in &allocs {
            let _ = write!(head, " {} |", a.name);
            sep.push_str("---:|");
        }
        for l in &lanes {
            let _ = write!(head, " {} ÷ best peer |", l.name);
            sep.push_str("---:|");
        }
        let _ = writeln!(s, "{head}\n{sep}");
        for w in &r.workloads {
            let winner = r.winner(&w.name, t).map(|x| x.0);
            let _ = write!(s, "| {} |", w.name);
            for a in &allocs {
                let cell = r.cell(&w.name, t, &a.name);
                let txt = match cell {
                    _ if !a.ok() => "MISSING".to_string(),
                    None => "–".into(),
                    Some(c) => match &c.summary {
                        None => format!("FAILED ({}/{})", c.failures.len(), r.config.runs),
                        Some(sm) => {
                            let st = sm.throughput(r.config.metric);
                            let v = fmt_rate(st.median);
                            let v = if winner.as_deref() == Some(&a.name) {
                                format!("**{v}**")
                            } else {
                                v
                            };
                            let noise = st.rel_noise() * 100.0;
                            let fails = if c.failures.is_empty() {
                                String::new()
                            } else {
                                format!(" ⚠{}fail", c.failures.len())
                            };
                            if c.is_valid() {
                                format!("{v} ±{noise:.0}%{fails}")
                            } else {
                                format!("⛔ INVALID ~~{v}~~{fails}")
                            }
                        }
                    },
                };
                let _ = write!(s, " {txt} |");
            }
            for l in &lanes {
                let txt = match r.ratio_ci_to_best_peer(&l.name, &w.name, t) {
                    Some((p, ci)) => {
                        let x = ci.ratio;
                        if !ci.significant() {
                            format!("⚪ {x:.2}× vs {p} (within noise {})", ci.describe())
                        } else if x >= 1.0 {
                            format!("🟢 {x:.2}× vs {p}")
                        } else {
                            format!("🔴 {x:.2}× vs {p}")
                        }
                    }
                    _ => match r.invalid(&w.name, t, &l.name) {
                        Some(why) => format!("⛔ INVALID ({why})"),
                        None => "–".into(),
                    },
                };
                let _ = write!(s, " {txt} |");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }

    for &t in &r.config.threads {
        let _ = writeln!(
            s,
            "## Memory — {} (MiB, median: peak / mean / after free / settled)\n",
            thread_label(t)
        );
        let _ = writeln!(
            s,
            "settled = RSS after the run freed everything and then did light traffic for {}; n/a = not measured. \
             Ratios: lane ÷ the lowest peer, 🟢 lower / 🔴 higher when the {:.0}% interval excludes 1, ⚪ within noise.\n",
            settle_desc(r),
            crate::stats::CI_LEVEL * 100.0
        );
        let mut head = String::from("| workload |");
        let mut sep = String::from("|---|");
        for a in &allocs {
            let _ = write!(head, " {} |", a.name);
            sep.push_str("---:|");
        }
        for l in &lanes {
            let _ = write!(
                head,
                " {0} peak ÷ lowest peer | {0} settled ÷ lowest peer |",
                l.name
            );
            sep.push_str("---:|---:|");
        }
        let _ = writeln!(s, "{head}\n{sep}");
        for w in &r.workloads {
            // Lowest peak RSS in the row is bold.
            let best_peak = allocs
                .iter()
                .filter_map(|a| {
                    r.cell(&w.name, t, &a.name)
                        .and_then(|c| c.summary.as_ref())
                        .map(|m| m.peak_rss_kib.median)
                })
                .fold(f64::INFINITY, f64::min);
            let _ = write!(s, "| {} |", w.name);
            for a in &allocs {
                let txt = match r.cell(&w.name, t, &a.name).and_then(|c| c.summary.as_ref()) {
                    _ if !a.ok() => "MISSING".into(),
                    None => "–".into(),
                    Some(m) => {
                        let peak = fmt_mib(m.peak_rss_kib.median);
                        let peak = if m.peak_rss_kib.median == best_peak {
                            format!("**{peak}**")
                        } else {
                            peak
                        };
                        format!(
                            "{peak} / {} / {} / {}",
                            fmt_mib(m.mean_rss_kib.median),
                            fmt_mib(m.after_rss_kib.median),
                            m.settled_rss_kib
                                .map(|x| fmt_mib(x.median))
                                .unwrap_or_else(|| "n/a".into())
                        )
                    }
                };
                let txt = if r.invalid(&w.name, t, &a.name).is_some() {
                    format!("⛔ INVALID {txt}")
                } else {
                    txt
                };
                let _ = write!(s, " {txt} |");
            }
            for l in &lanes {
                for m in [RssMeasure::Peak, RssMeasure::Settled] {
                    let _ = write!(s, " {} |", rss_ratio_txt(r, &l.name, &w.name, t, m));
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }

    let remote: Vec<_> = r
        .workloads
        .iter()
        .filter(|w| w.driver == "remote")
        .collect();
    if !remote.is_empty() && r.config.threads.iter().any(|&t| t > 1) {
        let _ = writeln!(s, "## Actual remote-free rate (share of frees handed to another thread; ⛔ INVALID = more than ±{} off the asked share in some run: that cell is not compared)\n", crate::schema::REMOTE_TOLERANCE);
        let mut head = String::from("| workload | threads |");
        let mut sep = String::from("|---|---:|");
        for a in allocs.iter().filter(|a| a.ok()) {
            let _ = write!(head, " {} |", a.name);
            sep.push_str("---:|");
        }
        let _ = writeln!(s, "{head}\n{sep}");
        for w in &remote {
            for &t in r.config.threads.iter().filter(|&&t| t > 1) {
                let _ = write!(s, "| {} | {t} |", w.name);
                for a in allocs.iter().filter(|a| a.ok()) {
                    let txt = r
                        .cell(&w.name, t, &a.name)
                        .and_then(|c| c.summary.as_ref().map(|m| (c, m)))
                        .map(|(c, m)| {
                            let v = format!("{:.0}%", m.remote_rate.median * 100.0);
                            if c.is_valid() {
                                v
                            } else {
                                format!("⛔ {v} INVALID")
                            }
                        })
                        .unwrap_or_else(|| "–".into());
                    let _ = write!(s, " {txt} |");
                }
                let _ = writeln!(s);
            }
        }
        let _ = writeln!(s);
    }

    s.push_str(&programs);

    if !r.warnings.is_empty() {
        let _ = writeln!(s, "## Warnings\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- ⚠ {w}");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Workloads\n");
    for w in &r.workloads {
        let _ = writeln!(
            s,
            "- `{}`: {} (driver `{}` {}; {} iterations per cell split over the threads; working set {})",
            w.name,
            w.description,
            w.driver,
            w.args.join(" "),
            w.iters_total,
            w.ws
        );
    }
    s
}

/// How the settled RSS was measured in this run.
pub fn settle_desc(r: &Results) -> String {
    if r.config.settle_ms == 0 {
        "— (not measured in this run)".into()
    } else if r.config.settle_every_run {
        format!("{} ms (every run)", r.config.settle_ms)
    } else {
        format!("{} ms (first run of each cell only)", r.config.settle_ms)
    }
}

/// "🟢 0.85× vs glibc", "⚪ 1.02× vs glibc (within noise)", "n/a".
pub fn rss_ratio_txt(r: &Results, lane: &str, w: &str, t: u32, m: RssMeasure) -> String {
    if r.invalid(w, t, lane).is_some() {
        return "⛔ INVALID".into();
    }
    match m.ratio_ci_to_lowest_peer(r, lane, w, t) {
        None => "n/a".into(),
        Some((p, ci)) => {
            let x = ci.ratio;
            if !ci.bounded() {
                format!("⚪ {x:.2}× vs {p} (too few runs for an interval)")
            } else if !ci.significant() {
                format!("⚪ {x:.2}× vs {p} (within noise)")
            } else if x <= 1.0 {
                format!("🟢 {x:.2}× vs {p}")
            } else {
                format!("🔴 {x:.2}× vs {p}")
            }
        }
    }
}

fn seeds_desc(seeds: &[u64]) -> String {
    match seeds {
        [] => "none".into(),
        [a] => format!("{a:#x}"),
        [a, .., b] => format!("{a:#x}..{b:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(52_345_678.0), "52.3M");
        assert_eq!(fmt_rate(1_840_000.0), "1.84M");
        assert_eq!(fmt_rate(2_310.0), "2.31k");
        assert_eq!(fmt_rate(123_000_000.0), "123M");
        assert_eq!(fmt_mib(10240.0), "10.0");
        assert_eq!(fmt_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_date(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
