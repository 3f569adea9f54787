//! Cross-module tests over a synthetic results file.

use crate::ab;
use crate::dashboard::{self, ratio_color};
use crate::gate::{evaluate, CheckKind, CheckStatus, GateCheck, GateConfig, RssMeasure};
use crate::markdown;
use crate::peers::glibc;
use crate::runner::make_cell;
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
        settled_rss_kib: Some(peak / 4),
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
            metric: Metric::Wall,
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
    r.config.metric = Metric::Cpu;
    let (_, best) = r.best_peer("small", 1).unwrap();
    assert!((best - 60e6).abs() < 1.0); // jemalloc 40M ops/s * 1.5
    assert!(markdown::render(&r).contains("ops/CPU-s"));
    // An old results file without "metric" reads as wall-clock.
    let text = fixture().to_json().replace("\"metric\": \"wall\",", "");
    assert_eq!(
        Results::from_json(&text).unwrap().config.metric,
        Metric::Wall
    );
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

// ------------------------------------------------- recorded traces ----

/// A small hand-made trace over two recorded threads using every op.
fn small_trace() -> crate::trace::Trace {
    use crate::trace::{Event, Op, Trace};
    let ev = |op, thread, id, size, align_log2| Event {
        op,
        thread,
        align_log2,
        id,
        size,
    };
    let mut events = Vec::new();
    for round in 0..50u32 {
        let b = round * 4;
        events.push(ev(Op::Malloc, 0, b, 24 + round as u64, 0));
        events.push(ev(Op::Calloc, 1, b + 1, 5000, 0));
        events.push(ev(Op::Memalign, 0, b + 2, 100, 6));
        events.push(ev(Op::Realloc, 1, b, 9000 + round as u64, 0));
        events.push(ev(Op::Malloc, 0, b + 3, 3, 0));
        events.push(ev(Op::Free, 0, b + 1, 0, 0));
        if round % 3 != 0 {
            events.push(ev(Op::Free, 1, b, 0, 0));
        }
        events.push(ev(Op::Free, 0, b + 3, 0, 0));
    }
    Trace {
        threads: 2,
        sample: 1,
        objects: 200,
        events,
    }
}

const PYTHON3_TRACE: &[u8] = include_bytes!("../traces/python3.hz3trc");

#[test]
fn trace_round_trip() {
    use crate::trace::{encode, parse, subsample};
    let t = small_trace();
    let bytes = encode(&t);
    assert_eq!(parse(&bytes).unwrap(), t);
    // Subsampling renumbers objects and keeps the file valid.
    let s = subsample(&t, 3);
    assert!(s.events.len() < t.events.len() && !s.events.is_empty());
    assert_eq!(s.sample, 3);
    assert_eq!(parse(&encode(&s)).unwrap(), s);
    // The committed python3 trace parses and re-encodes to the same bytes.
    let py = parse(PYTHON3_TRACE).unwrap();
    assert!(py.events.len() > 100_000, "{}", py.events.len());
    assert!(PYTHON3_TRACE.len() < 1_000_000);
    assert_eq!(encode(&py), PYTHON3_TRACE);
    let sum = crate::trace::summary(&py);
    assert_eq!(sum.frees + sum.live_at_end, py.objects);
}

#[test]
fn trace_corrupt_rejected() {
    use crate::trace::{encode, fnv1a64, parse, HEADER_LEN};
    let good = encode(&small_trace());
    let msg = |b: &[u8]| parse(b).unwrap_err().to_string();
    // One flipped body byte: caught by the checksum.
    let mut flipped = good.clone();
    flipped[HEADER_LEN + 10] ^= 0x40;
    assert!(
        msg(&flipped).contains("checksum mismatch"),
        "{}",
        msg(&flipped)
    );
    // Truncated body, trailing garbage, short file, bad magic, unfinished recording.
    assert!(msg(&good[..good.len() - 3]).contains("truncated"));
    let mut longer = good.clone();
    longer.push(0);
    assert!(msg(&longer).contains("trailing"));
    assert!(msg(&good[..20]).contains("shorter than the 48-byte header"));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert!(msg(&magic).contains("bad magic"));
    let mut zero = good.clone();
    zero[..HEADER_LEN].fill(0);
    assert!(msg(&zero).contains("never finished"));
    // A body with a valid checksum that frees an object twice: caught by the
    // record validation, with the event number.
    let mut t = small_trace();
    let f = t.events[5];
    t.events.insert(6, f);
    let mut twice = encode(&t);
    assert!(
        msg(&twice).contains("event 6: Free of object 1, which is not live"),
        "{}",
        msg(&twice)
    );
    // An unknown op with the checksum fixed up.
    twice[HEADER_LEN] = 7;
    let sum = fnv1a64(&twice[HEADER_LEN..]);
    twice[40..48].copy_from_slice(&sum.to_le_bytes());
    assert!(msg(&twice).contains("unknown op 7"), "{}", msg(&twice));
}

#[test]
fn trace_replay_checksum_is_stable() {
    use crate::trace::{plan, plan_bytes, replay, ReplayOut};
    let t = small_trace();
    let run = |threads: usize, copies: usize, seed: u64| -> (ReplayOut, Vec<ReplayOut>) {
        let plans = plan(&t, threads);
        let steps: usize = plans.iter().map(|p| p.steps.len()).sum();
        assert_eq!(steps, t.events.len(), "every event on exactly one thread");
        let outs: Vec<ReplayOut> = plans
            .iter()
            .enumerate()
            .map(|(i, p)| replay(p, 2, copies, seed, i as u64))
            .collect();
        let mut sum = ReplayOut::default();
        for o in &outs {
            sum.ops += o.ops;
            sum.frees += o.frees;
            sum.checksum = sum.checksum.wrapping_add(o.checksum);
            sum.corrupt += o.corrupt;
        }
        (sum, outs)
    };
    for threads in [1, 4] {
        let (a, _) = run(threads, 1, 7);
        // Fresh blocks at other addresses, other interleaving of the heap: same checksum.
        let _noise: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 64 + i * 37]).collect();
        let (b, _) = run(threads, 1, 7);
        assert_eq!(a, b, "{threads} threads");
        assert_eq!(a.corrupt, 0);
        // Every object is freed once per pass (in the trace or at its end).
        assert_eq!(a.frees, 2 * t.objects);
        let live_at_end = crate::trace::summary(&t).live_at_end;
        assert_eq!(live_at_end, 17 + 50);
        assert_eq!(a.ops, 2 * (t.events.len() as u64 + live_at_end));
        // The checksum reflects the work: another seed changes it.
        assert_ne!(run(threads, 1, 8).0.checksum, a.checksum);
        // Copies multiply the work and stay deterministic.
        let (c, _) = run(threads, 3, 7);
        assert_eq!(c.ops, 3 * a.ops);
        assert_eq!(c, run(threads, 3, 7).0);
    }
    // The committed trace plans straight from its bytes, like the driver does.
    let (h, plans) = plan_bytes(PYTHON3_TRACE, 8).unwrap();
    assert_eq!(plans.len(), 8);
    assert!(h.sample >= 1);
    let r1 = replay(&plans[3], 1, 1, 1, 3);
    assert_eq!(r1, replay(&plans[3], 1, 1, 1, 3));
    assert_eq!(r1.corrupt, 0);
}

// ------------------------------------------------------ real programs ----

fn prog_run(i: u32, wall: f64, cpu: f64, peak: u64, sum: u64) -> RunRecord {
    RunRecord {
        run_index: i,
        seed: crate::programs::INPUT_SEED,
        ops_per_sec: 1.0 / wall,
        wall_s: wall,
        ops_per_cpu_sec: 1.0 / cpu,
        peak_rss_kib: peak,
        mean_rss_kib: peak / 2,
        after_rss_kib: 0,
        baseline_rss_kib: 0,
        remote_rate: 0.0,
        asked_remote_rate: 0.0,
        remote_valid: true,
        settled_rss_kib: None,
        checksum: sum,
        corrupt: 0,
        timeline: None,
    }
}

/// The fixture plus prog_sqlite at 1 thread: hz3-fast crashed in every run,
/// glibc and jemalloc ran (jemalloc's second run printed a different output).
fn program_fixture() -> Results {
    let mut r = fixture();
    let w = crate::workloads::find("prog_sqlite").unwrap();
    r.workloads.push(w.info(crate::workloads::Mode::Quick));
    let crash = |i| RunFailure {
        run_index: i,
        seed: crate::programs::INPUT_SEED,
        error: "killed by signal 11 (SIGSEGV); stderr: boom".into(),
    };
    r.cells.push(make_cell(
        "prog_sqlite",
        1,
        "hz3-fast",
        Vec::new(),
        vec![crash(0), crash(1), crash(2)],
    ));
    r.cells.push(make_cell(
        "prog_sqlite",
        1,
        "glibc",
        (0..3).map(|i| prog_run(i, 0.5, 0.4, 20_000, 7)).collect(),
        Vec::new(),
    ));
    r.cells.push(make_cell(
        "prog_sqlite",
        1,
        "jemalloc",
        vec![
            prog_run(0, 0.4, 0.3, 30_000, 7),
            prog_run(2, 0.4, 0.3, 30_000, 7),
        ],
        vec![RunFailure {
            run_index: 1,
            seed: crate::programs::INPUT_SEED,
            error: "OUTPUT DIFFERS from glibc: line 2: got `1`, others `2`".into(),
        }],
    ));
    r
}

#[test]
fn program_kinds_listed_and_selected() {
    use crate::workloads::{find, select, Mode, WORKLOADS};
    let progs: Vec<_> = WORKLOADS.iter().filter(|w| w.kind() == "program").collect();
    assert!(progs.len() >= 6, "at least six real programs");
    assert!(progs.iter().all(|w| w.name.starts_with("prog_")));
    assert_eq!(find("small").unwrap().kind(), "synthetic");
    assert_eq!(find("prog_redis").unwrap().kind(), "program");
    let sel = select(Some(&["programs".into()]), Mode::Quick).unwrap();
    assert_eq!(sel.len(), progs.len());
    assert!(sel.iter().all(|w| w.kind() == "program"));
    let syn = select(Some(&["synthetic".into()]), Mode::Full).unwrap();
    assert!(syn.iter().all(|w| w.kind() == "synthetic"));
    assert_eq!(syn.len() + progs.len(), WORKLOADS.len());
    // Programs run only in the smallest thread column.
    let p = find("prog_gcc").unwrap();
    assert!(crate::programs::runs_at(p, 1, &[1, 8, 32]));
    assert!(!crate::programs::runs_at(p, 8, &[1, 8, 32]));
    assert!(crate::programs::runs_at(p, 8, &[8, 32]));
    assert!(crate::programs::runs_at(find("small").unwrap(), 8, &[1, 8]));
}

#[test]
fn program_output_mismatch_becomes_failure() {
    use crate::programs::enforce_equal_outputs;
    let names: Vec<String> = ["hz3-fast", "glibc", "jemalloc"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut runs: Vec<Vec<(RunRecord, ())>> = (0..3)
        .map(|_| (0..2).map(|i| (prog_run(i, 1.0, 1.0, 10, 0), ())).collect())
        .collect();
    let mut fails: Vec<Vec<RunFailure>> = vec![Vec::new(); 3];
    let same = b"a\nb\nc\n".to_vec();
    let outputs: Vec<Vec<(u32, Vec<u8>)>> = vec![
        vec![(0, same.clone()), (1, b"a\nX\nc\n".to_vec())],
        vec![(0, same.clone()), (1, same.clone())],
        vec![(0, same.clone()), (1, same.clone())],
    ];
    let w = enforce_equal_outputs("prog_x", &names, &mut runs, &mut fails, &outputs);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("OUTPUT MISMATCH prog_x run 1: hz3-fast"));
    assert_eq!(runs[0].len(), 1, "the differing run left the records");
    assert_eq!(runs[0][0].0.run_index, 0);
    assert_eq!(fails[0].len(), 1);
    assert_eq!(fails[0][0].run_index, 1);
    assert!(
        fails[0][0].error.contains("line 2: got `X`, others `b`"),
        "{}",
        fails[0][0].error
    );
    assert!(fails[0][0].error.contains("glibc, jemalloc"));
    assert!(runs[1].len() == 2 && runs[2].len() == 2 && fails[1].is_empty());
    // Equal outputs: nothing moves.
    let mut runs2 = runs.clone();
    let mut fails2: Vec<Vec<RunFailure>> = vec![Vec::new(); 3];
    let eq: Vec<Vec<(u32, Vec<u8>)>> = vec![vec![(0, same.clone())]; 3];
    assert!(enforce_equal_outputs("p", &names, &mut runs2, &mut fails2, &eq).is_empty());
    assert!(fails2.iter().all(|f| f.is_empty()));
    // Redis timings are normalised away; the checked data lines are kept.
    let a = crate::programs::normalize("prog_redis", b"SET: 123 rps\ncheck dbsize=5\n");
    let b = crate::programs::normalize("prog_redis", b"SET: 456 rps\ncheck dbsize=5\n");
    assert_eq!(a, b);
    assert_ne!(
        a,
        crate::programs::normalize("prog_redis", b"check dbsize=6\n")
    );
}

#[test]
fn program_failures_in_every_view_and_settled_na() {
    let r = program_fixture();
    // results.json: the failure and its error survive a round trip; the
    // programs' settled RSS is absent, not 0.
    let json = r.to_json();
    let back = Results::from_json(&json).unwrap();
    let c = back.cell("prog_sqlite", 1, "hz3-fast").unwrap();
    assert!(c.summary.is_none());
    assert_eq!(c.failures.len(), 3);
    assert!(c.failures[0].error.contains("SIGSEGV"));
    let g = back.cell("prog_sqlite", 1, "glibc").unwrap();
    assert_eq!(g.runs[0].settled_rss_kib, None);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let cell = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["workload"] == "prog_sqlite" && c["allocator"] == "glibc")
        .unwrap();
    assert!(cell["runs"][0].get("settled_rss_kib").is_none());
    // Markdown: a programs section with the failure, its error, n/a settled.
    let md = markdown::render(&r);
    assert!(md.contains("## Real programs"), "{md}");
    let row = md.lines().find(|l| l.starts_with("| prog_sqlite")).unwrap();
    assert!(row.contains("FAILED (3/3)"), "{row}");
    assert!(row.contains("settled n/a"), "{row}");
    assert!(
        row.contains("⚠1 failed"),
        "jemalloc's mismatch shows: {row}"
    );
    assert!(md.contains("`prog_sqlite` under **hz3-fast**: killed by signal 11 (SIGSEGV)"));
    assert!(md.contains("OUTPUT DIFFERS from glibc"));
    // Programs are not in the per-thread ops/s tables.
    assert!(!md
        .split("## Real programs")
        .next()
        .unwrap()
        .contains("prog_sqlite"));
    // Dashboard: the section, the failure in red with its error, n/a settled.
    let html = dashboard::render(&r);
    assert!(html.contains("id=\"programs\""));
    assert!(html.contains("FAILED (3/3)"));
    assert!(html.contains("killed by signal 11 (SIGSEGV)"));
    assert!(html.contains("settled n/a"));
    assert!(html.contains("OUTPUT DIFFERS from glibc"));
    // Ratios: no hz3 data -> none; peers give the best-peer figures.
    let rat = crate::programs::lane_ratios(&r, "hz3-fast");
    assert_eq!(rat, vec![("prog_sqlite".to_string(), None, None)]);
}

#[test]
fn program_ratios_against_best_peer() {
    let mut r = program_fixture();
    r.cells
        .retain(|c| !(c.workload == "prog_sqlite" && c.allocator == "hz3-fast"));
    r.cells.push(make_cell(
        "prog_sqlite",
        1,
        "hz3-fast",
        (0..3).map(|i| prog_run(i, 0.5, 0.6, 40_000, 7)).collect(),
        Vec::new(),
    ));
    let rat = crate::programs::lane_ratios(&r, "hz3-fast");
    // Best peer CPU: jemalloc 0.3 s; best peak: glibc 20 000 KiB.
    let (_, cpu, peak) = &rat[0];
    assert!((cpu.unwrap() - 2.0).abs() < 1e-9, "{rat:?}");
    assert!((peak.unwrap() - 2.0).abs() < 1e-9, "{rat:?}");
}

#[test]
fn program_timeout_kills_the_process_group() {
    use std::time::{Duration, Instant};
    let f = std::env::temp_dir().join(format!("bm-pgrp-{}", std::process::id()));
    let script = format!("sleep 30 & echo $! > {}; wait", f.display());
    let t = Instant::now();
    let e = crate::programs::run_shell(&script, Duration::from_millis(400)).unwrap_err();
    assert!(e.contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&f).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(&f);
    std::thread::sleep(Duration::from_millis(100));
    // The grandchild is gone (or a zombie waiting for its new parent).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|x| x.trim().to_string()));
    assert!(
        state.as_deref().is_none_or(|s| s.starts_with('Z')),
        "grandchild {pid} still alive: {state:?}"
    );
    // A normal run reports its output, CPU time and peak RSS; a failing one its exit code.
    let m = crate::programs::run_shell(
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo done $i",
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(m.stdout, b"done 100000\n");
    assert!(m.cpu_s > 0.01 && m.peak_rss_kib > 0, "{m:?}");
    let e =
        crate::programs::run_shell("echo oops >&2; exit 3", Duration::from_secs(5)).unwrap_err();
    assert!(e.contains("exit code 3") && e.contains("oops"), "{e}");
    // A program that is not installed is reported as MISSING with its package.
    let e = crate::programs::find_exe("no-such-program-bm3").unwrap_err();
    assert!(e.contains("MISSING program"), "{e}");
}

#[test]
fn exec_measured_helper_reports_the_program() {
    let rep = std::env::temp_dir().join(format!("bm-exec-{}", std::process::id()));
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let r = rep.display().to_string();
    // Exit code and signal come back as the helper's own exit status.
    assert_eq!(
        crate::process::exec_measured_main(&a(&[&r, "-", "sh", "-c", "exit 3"])),
        3
    );
    let text = std::fs::read_to_string(&rep).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{text}");
    assert_eq!(f[0], (3 << 8).to_string(), "raw wait status of exit 3");
    assert_eq!(
        crate::process::exec_measured_main(&a(&[&r, "-", "sh", "-c", "kill -SEGV $$"])),
        128 + 11
    );
    // The program's peak RSS (ru_maxrss of the program, not of the helper):
    // a 64 MiB buffer touched by sh's child shows up.
    assert_eq!(
        crate::process::exec_measured_main(&a(&[
            &r,
            "-",
            "sh",
            "-c",
            "python3 -c 'x = b\"x\" * (64 << 20)'"
        ])),
        0
    );
    let text = std::fs::read_to_string(&rep).unwrap();
    let peak: u64 = text.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(peak > 64 * 1024, "peak {peak} KiB");
    let _ = std::fs::remove_file(&rep);
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
    let lanes = crate::lane_schema::discover(&dir).unwrap();
    let mut seen = 0;
    for l in &lanes {
        let ms = l.config.purge_decay_ms;
        assert!(
            SETTLE_MS > ms,
            "lane {}: purge_decay_ms {ms} >= settle time {SETTLE_MS}",
            l.name
        );
        seen += 1;
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
            run.settled_rss_kib = None;
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
