//! Cross-module tests over a synthetic results file.

use crate::ab;
use crate::dashboard::{self, ratio_color};
use crate::gate::{evaluate, CheckKind, CheckStatus, GateCheck, GateConfig, RssMeasure};
use crate::markdown;
use crate::runner::{glibc, make_cell};
use crate::schema::*;
use crate::verdict::{Thresholds, Verdict};

fn alloc(name: &str, kind: AllocKind, ok: bool) -> Allocator {
    Allocator {
        name: name.into(),
        kind,
        path: Some(format!("/x/{name}.so")),
        status: if ok {
            AllocStatus::Ok
        } else {
            AllocStatus::Missing
        },
        note: if ok {
            String::new()
        } else {
            "not found".into()
        },
        fingerprint: None,
    }
}

fn run(i: u32, ops: f64, peak: u64) -> RunRecord {
    RunRecord {
        run_index: i,
        seed: 100 + i as u64,
        ops_per_sec: ops,
        wall_s: 0.1,
        ops_per_cpu_sec: ops * 1.5,
        peak_rss_kib: peak,
        mean_rss_kib: peak / 2,
        after_rss_kib: peak / 4,
        baseline_rss_kib: 2000,
        remote_rate: 0.5,
        asked_remote_rate: 0.5,
        remote_valid: true,
        settled_rss_kib: peak / 4,
        checksum: 42,
        corrupt: 0,
        timeline: Some(vec![[0.0, 2000.0], [5.0, peak as f64], [10.0, 3000.0]]),
    }
}

fn cell(w: &str, t: u32, a: &str, ops: &[f64]) -> Cell {
    let runs = ops
        .iter()
        .enumerate()
        .map(|(i, &o)| run(i as u32, o, 10_000 + (o / 1000.0) as u64))
        .collect();
    make_cell(w, t, a, runs, Vec::new())
}

/// hz3-fast, glibc, jemalloc, missing tcmalloc; workloads small & mstress; threads 1, 8.
pub fn fixture() -> Results {
    let allocators = vec![
        alloc("hz3-fast", AllocKind::Lane, true),
        glibc(),
        alloc("jemalloc", AllocKind::Peer, true),
        alloc("tcmalloc", AllocKind::Peer, false),
    ];
    let mut cells = Vec::new();
    for (w, base) in [("small", 40e6), ("mstress", 8e6)] {
        for t in [1u32, 8] {
            let k = t as f64;
            cells.push(cell(
                w,
                t,
                "hz3-fast",
                &[base * 1.10 * k, base * 1.12 * k, base * 1.08 * k],
            ));
            cells.push(cell(
                w,
                t,
                "glibc",
                &[base * 0.5 * k, base * 0.52 * k, base * 0.49 * k],
            ));
            let je = if w == "mstress" && t == 8 { 2.0 } else { 1.0 };
            cells.push(cell(
                w,
                t,
                "jemalloc",
                &[base * je * k, base * je * 1.01 * k, base * je * 0.99 * k],
            ));
            cells.push(make_cell(w, t, "tcmalloc", Vec::new(), Vec::new()));
        }
    }
    Results {
        schema: SCHEMA_VERSION,
        tool: "bench-matrix test".into(),
        created_unix: 1_700_000_000,
        git_rev: "abc123".into(),
        git_dirty: false,
        machine: Machine {
            hostname: "h".into(),
            cpu_model: "cpu".into(),
            ncpu: 2,
            mem_total_kib: 1 << 24,
            kernel: "Linux".into(),
            loadavg_start: 0.5,
            loadavg_end: 0.7,
        },
        config: Config {
            mode: "quick".into(),
            runs: 3,
            threads: vec![1, 8],
            seeds: vec![100, 101, 102],
            pinned: false,
            pin_cpus: None,
            interleaved: true,
            metric: "wall".into(),
            settle_ms: 2000,
            settle_every_run: true,
        },
        allocators,
        workloads: vec![
            WorkloadInfo {
                name: "small".into(),
                driver: "small".into(),
                description: "d".into(),
                args: vec![],
                iters_total: 1,
                ws: 1,
            },
            WorkloadInfo {
                name: "mstress".into(),
                driver: "mstress".into(),
                description: "d".into(),
                args: vec![],
                iters_total: 1,
                ws: 1,
            },
        ],
        cells,
        warnings: vec!["MISSING allocator tcmalloc: not found".into()],
        duration_s: 12.0,
    }
}

#[test]
fn schema_round_trip() {
    let r = fixture();
    let text = r.to_json();
    let back = Results::from_json(&text).unwrap();
    assert_eq!(back, r);
    assert!(text.contains("\"schema\": 1"));
    // Median and spread are stored per cell.
    let c = back.cell("small", 1, "hz3-fast").unwrap();
    let s = c.summary.as_ref().unwrap();
    assert!((s.ops_per_sec.median - 44e6).abs() < 1.0);
    assert!((s.ops_per_sec.min - 43.2e6).abs() < 1.0);
    assert!((s.ops_per_sec.max - 44.8e6).abs() < 1.0);
    // Timelines are kept once per cell, not per run.
    assert!(c.timeline.is_some());
    assert!(c.runs.iter().all(|r| r.timeline.is_none()));
    // The missing allocator survives the trip, marked missing.
    assert_eq!(
        back.allocator("tcmalloc").unwrap().status,
        AllocStatus::Missing
    );
}

#[test]
fn schema_version_is_checked() {
    let text = fixture()
        .to_json()
        .replacen("\"schema\": 1", "\"schema\": 99", 1);
    assert!(Results::from_json(&text).unwrap_err().contains("schema 99"));
    assert!(Results::from_json("{}").is_err());
    assert!(Results::from_json("not json").is_err());
}

#[test]
fn best_peer_and_ratio() {
    let r = fixture();
    let (name, v) = r.best_peer("small", 1).unwrap();
    assert_eq!(name, "jemalloc");
    assert!((v - 40e6).abs() < 1.0);
    let ratio = r.ratio_to_best_peer("hz3-fast", "small", 1).unwrap();
    assert!((ratio - 1.1).abs() < 1e-9);
    assert_eq!(r.winner("small", 1).unwrap().0, "hz3-fast");
    // jemalloc wins mstress at 8 threads by 2x.
    assert_eq!(r.winner("mstress", 8).unwrap().0, "jemalloc");
    assert!((r.ratio_to_best_peer("hz3-fast", "mstress", 8).unwrap() - 0.55).abs() < 1e-9);
}

#[test]
fn gate_passes_and_fails() {
    let r = fixture();
    let loose = GateConfig::parse("[[throughput]]\nmin_ratio = 0.5\n").unwrap();
    let rep = evaluate(&r, &loose);
    assert_eq!(rep.failures, 0);
    assert_eq!(rep.checks.len(), 4);

    let strict = GateConfig::parse("[[throughput]]\nmin_ratio = 0.5\n[[throughput]]\nworkload = \"mstress\"\nthreads = 8\nmin_ratio = 0.9\n").unwrap();
    let rep = evaluate(&r, &strict);
    let f = only_failure(&rep);
    assert_eq!((f.workload.as_str(), f.threads), ("mstress", 8));
    assert_eq!(f.best_peer.as_deref(), Some("jemalloc"));

    // A required lane that is absent fails.
    let req = GateConfig::parse("require_lanes = [\"scale\"]\n").unwrap();
    assert_eq!(evaluate(&r, &req).failures, 1);
    let req = GateConfig::parse("require_lanes = [\"fast\"]\n").unwrap();
    assert_eq!(evaluate(&r, &req).failures, 0);
}

/// The report's one failed check (asserting there is exactly one).
fn only_failure(rep: &crate::gate::GateReport) -> &GateCheck {
    assert_eq!(rep.failures, 1);
    let failed: Vec<&GateCheck> = rep
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    assert_eq!(failed.len(), 1);
    failed[0]
}

fn summary_mut<'a>(r: &'a mut Results, a: &str, w: &str, t: u32) -> &'a mut CellSummary {
    r.cells
        .iter_mut()
        .find(|c| c.allocator == a && c.workload == w && c.threads == t)
        .and_then(|c| c.summary.as_mut())
        .unwrap()
}

fn rss_checks(rep: &crate::gate::GateReport) -> Vec<&GateCheck> {
    rep.checks
        .iter()
        .filter(|c| matches!(c.kind, CheckKind::Rss(_)))
        .collect()
}

// In the fixture, mstress t8: hz3-fast peak RSS median 80 400 KiB (mean 40 200),
// glibc 42 000 (21 000), jemalloc 138 000 (69 000): lane / lowest peer = 1.914.
const RSS_T8: &str = "[[rss]]\nlane = \"fast\"\nworkload = \"mstress\"\nthreads = 8\n";

#[test]
fn rss_gate_passes() {
    let r = fixture();
    let cfg = GateConfig::parse(&format!("{RSS_T8}max_ratio = 2.0\n")).unwrap();
    let rep = evaluate(&r, &cfg);
    assert_eq!(rep.failures, 0);
    // 4 throughput cells (no rule: skipped) + the one RSS-gated cell.
    assert_eq!(rep.checks.len(), 5);
    let rss = rss_checks(&rep);
    assert_eq!(rss.len(), 1);
    let c = rss[0];
    assert_eq!(c.kind, CheckKind::Rss(RssMeasure::Peak));
    assert_eq!((c.workload.as_str(), c.threads), ("mstress", 8));
    assert_eq!(c.status, CheckStatus::Pass);
    assert_eq!(c.best_peer.as_deref(), Some("glibc"));
    assert!((c.ratio.unwrap() - 80_400.0 / 42_000.0).abs() < 1e-9);
    assert_eq!((c.max_ratio, c.min_ratio), (Some(2.0), None));
    assert_eq!(
        c.note,
        "rss peak: 78.5 MiB / best peer 41.0 MiB (glibc) = 1.91 <= 2.00 ok"
    );
    // The RSS check follows the cell's throughput check.
    let i = rep
        .checks
        .iter()
        .position(|c| matches!(c.kind, CheckKind::Rss(_)))
        .unwrap();
    let before = &rep.checks[i - 1];
    assert_eq!(before.kind, CheckKind::Throughput);
    assert_eq!((before.workload.as_str(), before.threads), ("mstress", 8));
}

#[test]
fn rss_gate_fails_above_max_ratio() {
    let r = fixture();
    let cfg = GateConfig::parse(&format!(
        "[[throughput]]\nmin_ratio = 0.5\n{RSS_T8}max_ratio = 1.5\nnote = \"issue 4\"\n"
    ))
    .unwrap();
    let rep = evaluate(&r, &cfg);
    // Throughput passes everywhere (loosest rule), so the one failure is RSS.
    let f = only_failure(&rep);
    assert_eq!(f.kind, CheckKind::Rss(RssMeasure::Peak));
    assert_eq!((f.workload.as_str(), f.threads), ("mstress", 8));
    assert!(f.note.ends_with("= 1.91 > 1.50 (issue 4)"), "{}", f.note);
    // Exactly at the limit passes.
    let exact = 80_400.0 / 42_000.0;
    let cfg = GateConfig::parse(&format!("{RSS_T8}max_ratio = {exact}\n")).unwrap();
    assert_eq!(evaluate(&r, &cfg).failures, 0);
}

#[test]
fn rss_gate_mean_vs_peak() {
    let mut r = fixture();
    // Lower the lane's mean RSS only, and make jemalloc the lowest peer on mean.
    summary_mut(&mut r, "hz3-fast", "mstress", 8)
        .mean_rss_kib
        .median = 10_000.0;
    summary_mut(&mut r, "jemalloc", "mstress", 8)
        .mean_rss_kib
        .median = 15_000.0;
    let peak =
        GateConfig::parse(&format!("{RSS_T8}max_ratio = 1.0\nmeasure = \"peak\"\n")).unwrap();
    let mean =
        GateConfig::parse(&format!("{RSS_T8}max_ratio = 1.0\nmeasure = \"mean\"\n")).unwrap();
    let both = GateConfig::parse(&format!(
        "{RSS_T8}max_ratio = 1.0\nmeasure = \"peak\"\n{RSS_T8}max_ratio = 1.0\nmeasure = \"mean\"\n"
    ))
    .unwrap();

    let rep = evaluate(&r, &peak);
    assert_eq!(rep.failures, 1);
    assert_eq!(rss_checks(&rep)[0].best_peer.as_deref(), Some("glibc"));

    let rep = evaluate(&r, &mean);
    assert_eq!(rep.failures, 0);
    let c = rss_checks(&rep)[0];
    assert_eq!(c.kind, CheckKind::Rss(RssMeasure::Mean));
    assert_eq!(c.best_peer.as_deref(), Some("jemalloc"));
    assert!((c.ratio.unwrap() - 10_000.0 / 15_000.0).abs() < 1e-9);
    assert!(c
        .note
        .starts_with("rss mean: 9.8 MiB / best peer 14.6 MiB (jemalloc)"));

    // A peak and a mean rule on the same cell both apply: one check each.
    let rep = evaluate(&r, &both);
    let rss = rss_checks(&rep);
    assert_eq!(rss.len(), 2);
    assert_eq!(rss[0].kind, CheckKind::Rss(RssMeasure::Peak));
    assert_eq!(rss[0].status, CheckStatus::Fail);
    assert_eq!(rss[1].kind, CheckKind::Rss(RssMeasure::Mean));
    assert_eq!(rss[1].status, CheckStatus::Pass);
    assert_eq!(rep.failures, 1);
}

#[test]
fn rss_gate_most_specific_rule_wins() {
    let r = fixture();
    // lane / lowest peer is 1.8-2.2 in every fixture cell.
    let cfg = GateConfig::parse(
        "[[rss]]\nmax_ratio = 1.0\n\
         [[rss]]\nworkload = \"mstress\"\nthreads = 8\nmax_ratio = 3.0\n\
         [[rss]]\nworkload = \"small\"\nmax_ratio = 3.0\n\
         [[rss]]\nthreads = 1\nmax_ratio = 1.0\n",
    )
    .unwrap();
    let rep = evaluate(&r, &cfg);
    let rss = rss_checks(&rep);
    assert_eq!(rss.len(), 4);
    let lim = |w: &str, t: u32| {
        rss.iter()
            .find(|c| c.workload == w && c.threads == t)
            .map(|c| (c.max_ratio.unwrap(), c.status.clone()))
            .unwrap()
    };
    // small t1: "small" and "threads = 1" tie; the later rule wins.
    assert_eq!(lim("small", 1), (1.0, CheckStatus::Fail));
    assert_eq!(lim("small", 8), (3.0, CheckStatus::Pass));
    assert_eq!(lim("mstress", 1), (1.0, CheckStatus::Fail));
    assert_eq!(lim("mstress", 8), (3.0, CheckStatus::Pass));
    assert_eq!(rep.failures, 2);
    // A rule for another lane gates nothing.
    let other = GateConfig::parse("[[rss]]\nlane = \"mem_mstress\"\nmax_ratio = 0.1\n").unwrap();
    let rep = evaluate(&r, &other);
    assert!(rss_checks(&rep).is_empty());
    assert_eq!(rep.failures, 0);
}

#[test]
fn rss_gate_reports_missing_data() {
    let mut r = fixture();
    // The lane recorded no peak RSS; the peers recorded no mean RSS.
    summary_mut(&mut r, "hz3-fast", "mstress", 8).peak_rss_kib = Default::default();
    for p in ["glibc", "jemalloc"] {
        summary_mut(&mut r, p, "mstress", 8).mean_rss_kib = Default::default();
    }
    let cfg = GateConfig::parse(&format!(
        "{RSS_T8}max_ratio = 9\nmeasure = \"peak\"\n{RSS_T8}max_ratio = 9\nmeasure = \"mean\"\n"
    ))
    .unwrap();
    let rep = evaluate(&r, &cfg);
    assert_eq!(rep.failures, 2);
    let rss = rss_checks(&rep);
    assert_eq!(rss[0].note, "rss peak: no RSS data for the lane");
    assert_eq!(rss[1].note, "rss mean: no peer RSS data to compare with");
    assert!(rss.iter().all(|c| c.ratio.is_none()));
    // A lane cell with no successful run at all: no summary, still a failure line.
    let mut r = fixture();
    r.cells
        .iter_mut()
        .find(|c| c.allocator == "hz3-fast" && c.workload == "mstress" && c.threads == 8)
        .unwrap()
        .summary = None;
    let rep = evaluate(
        &r,
        &GateConfig::parse(&format!("{RSS_T8}max_ratio = 9\n")).unwrap(),
    );
    assert_eq!(rep.failures, 1);
    assert_eq!(rss_checks(&rep)[0].status, CheckStatus::Fail);
}

#[test]
fn gate_fails_on_failed_runs() {
    let mut r = fixture();
    let c = r
        .cells
        .iter_mut()
        .find(|c| c.allocator == "hz3-fast" && c.workload == "small" && c.threads == 1)
        .unwrap();
    c.failures.push(RunFailure {
        run_index: 0,
        seed: 1,
        error: "killed by signal 11 (SIGSEGV)".into(),
    });
    let rep = evaluate(&r, &GateConfig::default());
    assert_eq!(rep.failures, 1);
}

#[test]
fn markdown_marks_missing_and_winners() {
    let md = markdown::render(&fixture());
    assert!(md.contains("MISSING ALLOCATORS"));
    assert!(md.contains("**tcmalloc**: not found"));
    assert!(md.contains("| small | **44.0M** ±"));
    assert!(md.contains("1.10× vs jemalloc"));
    assert!(md.contains("## Memory — 8 threads"));
}

#[test]
fn dashboard_is_self_contained() {
    let html = dashboard::render(&fixture());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("MISSING ALLOCATORS"));
    assert!(html.contains("<svg"));
    assert!(html.contains("mstress — RSS over time"));
    assert!(html.contains("<polyline"));
    for bad in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(bad), "dashboard must not reference {bad}");
    }
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn ab_compare_verdicts() {
    let r = fixture();
    let rep = ab::compare(
        r.clone(),
        "jemalloc",
        "hz3-fast",
        Thresholds::default(),
        ab::Metric::Wall,
    );
    // hz3-fast is +10 % on 3 cells and -45 % on mstress t8 → NO-GO overall.
    assert_eq!(rep.cells.len(), 4);
    assert_eq!(rep.overall.verdict, Verdict::NoGo);
    assert!(rep.overall.reason.contains("mstress t8"));
    let md = ab::render_md(&rep);
    assert!(md.contains("NO-GO"));
    assert!(md.contains("threshold"));
    // glibc → jemalloc is a clean GO.
    let rep = ab::compare(
        r.clone(),
        "glibc",
        "jemalloc",
        Thresholds::default(),
        ab::Metric::Wall,
    );
    assert_eq!(rep.overall.verdict, Verdict::Go);
    let back: serde_json::Value = serde_json::from_str(&rep.to_json()).unwrap();
    assert_eq!(back["overall"]["verdict"], "GO");
    // The CPU metric reads ops_per_cpu_sec (1.5x ops/s in the fixture).
    let rep = ab::compare(
        r,
        "glibc",
        "jemalloc",
        Thresholds::default(),
        ab::Metric::Cpu,
    );
    assert!((rep.cells[0].a.median - 1.5 * 20e6).abs() < 1.0);
    assert!(ab::render_md(&rep).contains("CPU-second"));
}

#[test]
fn cell_summary_stats() {
    let c = cell("w", 1, "a", &[3.0e6, 1.0e6, 2.0e6, 4.0e6]);
    let s = c.summary.unwrap();
    assert_eq!(s.ops_per_sec.median, 2.5e6);
    assert_eq!(s.ops_per_sec.n, 4);
    let empty = make_cell("w", 1, "a", Vec::new(), Vec::new());
    assert!(empty.summary.is_none());
}

#[test]
fn cpu_metric_switches_rankings() {
    let mut r = fixture();
    r.config.metric = "cpu".into();
    let (_, best) = r.best_peer("small", 1).unwrap();
    assert!((best - 60e6).abs() < 1.0); // jemalloc 40M ops/s * 1.5
    assert!(markdown::render(&r).contains("ops/CPU-s"));
    // An old results file without "metric" reads as wall-clock.
    let text = fixture().to_json().replace("\"metric\": \"wall\",", "");
    assert_eq!(Results::from_json(&text).unwrap().config.metric, "wall");
}

#[test]
fn measured_remote_rule_marks_off_cells_invalid() {
    use crate::schema::{DriverOutput, Measured};
    let m = |threads, asked, remote, total| Measured {
        threads,
        asked_remote_rate: asked,
        remote_frees: remote,
        total_frees: total,
        settled_rss_kib: 0,
    };
    // On the asked share (within 0.02): valid.
    assert!(m(8, 0.9, 8_850, 10_000).remote_valid());
    assert!(m(32, 0.5, 5_190, 10_000).remote_valid());
    // The ring-full fallback of issue 13: 45 % handed off when 90 % asked.
    assert!(!m(8, 0.9, 4_500, 10_000).remote_valid());
    assert!(!m(32, 0.5, 5_300, 10_000).remote_valid());
    // The rule applies from 8 threads; local workloads are always valid.
    assert!(m(1, 0.9, 0, 10_000).remote_valid());
    assert!(m(8, 0.0, 0, 10_000).remote_valid());
    // report() carries the verdict and the rates into the output line.
    let line = r#"{"workload":"remote","threads":8,"iters_per_thread":1,"ws":1,"seed":1,
        "min_size":16,"max_size":32,"ops":1,"wall_s":1.0,"ops_per_sec":1.0,
        "baseline_rss_kib":1,"peak_rss_kib":1,"mean_rss_kib":1,"after_rss_kib":1,
        "remote_rate":0.0,"remote_frees":0,"total_frees":0,"checksum":0,"corrupt":0,
        "samples":0,"malloc_from":"x"}"#;
    let mut out: DriverOutput = serde_json::from_str(line).unwrap();
    assert!(out.remote_valid, "old lines without the field stay valid");
    m(8, 0.9, 4_500, 10_000).report(&mut out);
    assert!(!out.remote_valid);
    assert_eq!(out.asked_remote_rate, 0.9);
    assert!((out.remote_rate - 0.45).abs() < 1e-12);
}

/// Mark every run of a cell as having missed the asked remote share.
fn make_invalid(r: &mut Results, a: &str, w: &str, t: u32) {
    let c = r
        .cells
        .iter_mut()
        .find(|c| c.allocator == a && c.workload == w && c.threads == t)
        .unwrap();
    for run in &mut c.runs {
        run.asked_remote_rate = 0.9;
        run.remote_rate = 0.45;
        run.remote_valid = false;
    }
}

#[test]
fn invalid_cells_are_never_compared() {
    let mut r = fixture();
    // jemalloc is the best peer of small t8; once its cell is invalid it is
    // not: glibc is, and the lane's ratio is taken against glibc.
    assert_eq!(r.best_peer("small", 8).unwrap().0, "jemalloc");
    make_invalid(&mut r, "jemalloc", "small", 8);
    assert_eq!(r.best_peer("small", 8).unwrap().0, "glibc");
    let x = r.ratio_to_best_peer("hz3-fast", "small", 8).unwrap();
    assert!((x - 1.10 / 0.5).abs() < 1e-9, "{x}");
    // An invalid lane cell has no ratio and does not win.
    make_invalid(&mut r, "hz3-fast", "small", 1);
    assert!(r.ratio_to_best_peer("hz3-fast", "small", 1).is_none());
    assert_eq!(r.winner("small", 1).unwrap().0, "jemalloc");
    let why = r.invalid("small", 1, "hz3-fast").unwrap();
    assert!(why.contains("0.450") && why.contains("3 of 3"), "{why}");

    // Markdown and dashboard say INVALID where the ratio would be.
    let md = markdown::render(&r);
    assert!(md.contains("⛔ INVALID (remote rate 0.450"), "{md}");
    assert!(md.contains("⛔ INVALID ~~"));
    let html = dashboard::render(&r);
    assert!(html.contains("⛔ INVALID</b>"));

    // The gate fails the invalid lane cell, whatever its rule says.
    let rep = evaluate(
        &r,
        &GateConfig::parse("[[throughput]]\nmin_ratio = 0.01\n").unwrap(),
    );
    let f = only_failure(&rep);
    assert_eq!((f.workload.as_str(), f.threads), ("small", 1));
    assert!(f.note.starts_with("INVALID cell"), "{}", f.note);

    // A/B: the cell's verdict is INVALID, and so is the overall verdict.
    let rep = ab::compare(
        r.clone(),
        "glibc",
        "hz3-fast",
        Thresholds::default(),
        ab::Metric::Wall,
    );
    let c = rep
        .cells
        .iter()
        .find(|c| c.workload == "small" && c.threads == 1)
        .unwrap();
    assert_eq!(c.verdict, Verdict::Invalid);
    assert!(c
        .note
        .as_deref()
        .unwrap()
        .starts_with("hz3-fast: remote rate"));
    assert_eq!(rep.overall.verdict, Verdict::Invalid);
    assert!(rep.overall.reason.contains("small t1"));
    // The other cells are still judged (hz3-fast is 2x glibc there).
    assert!(rep
        .cells
        .iter()
        .filter(|c| c.verdict != Verdict::Invalid)
        .all(|c| c.verdict == Verdict::Go));
    let back: serde_json::Value = serde_json::from_str(&rep.to_json()).unwrap();
    assert_eq!(back["overall"]["verdict"], "INVALID");
    assert!(ab::render_md(&rep).contains("⛔ INVALID"));
}

fn set_runs(r: &mut Results, a: &str, w: &str, t: u32, ops: &[f64]) {
    let c = r
        .cells
        .iter_mut()
        .find(|c| c.allocator == a && c.workload == w && c.threads == t)
        .unwrap();
    for (run, &o) in c.runs.iter_mut().zip(ops) {
        run.ops_per_sec = o;
        run.ops_per_cpu_sec = o * 1.5;
    }
    *c = make_cell(w, t, a, c.runs.clone(), c.failures.clone());
}

#[test]
fn views_tint_only_significant_differences() {
    let mut r = fixture();
    // hz3-fast small t1: 44M vs jemalloc 40M in every run: significant.
    let (p, ci) = r.ratio_ci_to_best_peer("hz3-fast", "small", 1).unwrap();
    assert_eq!(p, "jemalloc");
    assert!((ci.ratio - 1.1).abs() < 1e-9 && ci.lo > 1.0, "{ci:?}");
    let html = dashboard::render(&r);
    assert!(!html.contains("within noise</span>"));
    let tinted = html
        .matches(&format!("background:{};", ratio_color(1.1)))
        .count();
    assert!(tinted >= 1);
    assert!(markdown::render(&r).contains("🟢 1.10× vs jemalloc"));
    // Same median (1.10×), but the lane's runs straddle the peer's: the
    // interval includes 1, so no tint, "within noise" instead.
    set_runs(&mut r, "hz3-fast", "small", 1, &[30e6, 44e6, 60e6]);
    let (_, ci) = r.ratio_ci_to_best_peer("hz3-fast", "small", 1).unwrap();
    assert!((ci.ratio - 1.1).abs() < 1e-9);
    assert!(ci.lo < 1.0 && ci.hi > 1.0 && !ci.significant(), "{ci:?}");
    let html = dashboard::render(&r);
    assert_eq!(html.matches("within noise</span>").count(), 1);
    assert_eq!(
        html.matches(&format!("background:{};", ratio_color(1.1)))
            .count(),
        tinted - 1
    );
    assert!(html.contains("≈ noise"));
    let md = markdown::render(&r);
    assert!(md.contains("⚪ 1.10× vs jemalloc (within noise ["), "{md}");
}

#[test]
fn one_metric_everywhere() {
    use crate::schema::Metric;
    let mut r = fixture();
    assert_eq!(r.config.metric, Metric::DEFAULT);
    // Every view names the metric it ranks by.
    let wall = Metric::Wall.describe();
    assert!(markdown::render(&r).contains(wall));
    assert!(dashboard::render(&r).contains(wall));
    let gate = evaluate(&r, &GateConfig::parse("").unwrap());
    assert_eq!(gate.metric, Metric::Wall);
    let ab = ab::compare(
        r.clone(),
        "glibc",
        "jemalloc",
        Thresholds::default(),
        Metric::Wall,
    );
    assert!(ab::render_md(&ab).contains(wall));
    // The gate follows the results file, i.e. what its dashboard shows.
    r.config.metric = Metric::Cpu;
    assert_eq!(
        evaluate(&r, &GateConfig::parse("").unwrap()).metric,
        Metric::Cpu
    );
    assert!(dashboard::render(&r).contains(Metric::Cpu.describe()));
    // The metric serialises as before ("wall" / "cpu").
    assert!(r.to_json().contains("\"metric\": \"cpu\""));
    // The repository's gate.toml does not override the dashboard's metric.
    let g = GateConfig::parse(include_str!("../gate.toml")).unwrap();
    assert_eq!(g.metric, None, "gate.toml must not set a metric of its own");
}

#[test]
fn settle_outlasts_every_lane_purge_decay() {
    use crate::runner::SETTLE_MS;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lanes");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for l in text.lines() {
            if let Some(v) = l.trim().strip_prefix("purge_decay_ms") {
                let ms: u64 = v
                    .trim_start_matches([' ', '='])
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(
                    SETTLE_MS > ms,
                    "{}: purge_decay_ms {ms} >= settle time {SETTLE_MS}",
                    p.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "found the decay of only {seen} lanes");
    // Quick settles the first run of each cell, full every run.
    use crate::runner::Settle;
    use crate::workloads::Mode;
    let q = Settle::for_mode(Mode::Quick, SETTLE_MS);
    assert!(q.applies(0) && !q.applies(1));
    assert!(Settle::for_mode(Mode::Full, SETTLE_MS).applies(7));
    assert!(!Settle::OFF.applies(0));
}

#[test]
fn settled_rss_side_by_side_and_na_when_absent() {
    use crate::gate::RssMeasure;
    let mut r = fixture();
    // The fixture settles every run at peak / 4.
    let s = r
        .cell("small", 1, "glibc")
        .unwrap()
        .summary
        .clone()
        .unwrap();
    assert!(s.settled_rss_kib.unwrap().median > 0.0);
    let md = markdown::render(&r);
    assert!(md.contains("hz3-fast peak ÷ lowest peer | hz3-fast settled ÷ lowest peer"));
    let (p, ci) = RssMeasure::Settled
        .ratio_ci_to_lowest_peer(&r, "hz3-fast", "mstress", 8)
        .unwrap();
    assert_eq!(p, "glibc");
    assert!((ci.ratio - 20_100.0 / 10_500.0).abs() < 1e-9, "{ci:?}");
    let html = dashboard::render(&r);
    assert!(html.contains("hz3 RSS ÷ lowest peer"));
    assert!(html.contains("· settled</th>"));
    assert!(!html.contains(">n/a<"));
    // A run without a settled value (0) is n/a, never 0.
    for c in &mut r.cells {
        for run in &mut c.runs {
            run.settled_rss_kib = 0;
        }
        *c = make_cell(
            &c.workload,
            c.threads,
            &c.allocator,
            c.runs.clone(),
            c.failures.clone(),
        );
    }
    assert!(r
        .cell("small", 1, "glibc")
        .unwrap()
        .summary
        .as_ref()
        .unwrap()
        .settled_rss_kib
        .is_none());
    let md = markdown::render(&r);
    assert!(md.contains(" / n/a |"), "{md}");
    assert!(!md.contains(" / 0.00 |"));
    assert!(RssMeasure::Settled
        .ratio_ci_to_lowest_peer(&r, "hz3-fast", "mstress", 8)
        .is_none());
    let html = dashboard::render(&r);
    assert!(html.contains(">n/a<"));
    assert!(html.contains("settled n/a"));
    // The gate can gate settled RSS, and fails a matched cell without data.
    let cfg =
        GateConfig::parse(&format!("{RSS_T8}max_ratio = 5\nmeasure = \"settled\"\n")).unwrap();
    assert_eq!(evaluate(&r, &cfg).failures, 1);
    assert_eq!(evaluate(&fixture(), &cfg).failures, 0);
}
