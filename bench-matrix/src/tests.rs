//! Cross-module tests over a synthetic results file.

use crate::ab;
use crate::dashboard;
use crate::gate::{evaluate, CheckStatus, GateConfig};
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
    assert_eq!(rep.failures, 1);
    let f = rep
        .checks
        .iter()
        .find(|c| c.status == CheckStatus::Fail)
        .unwrap();
    assert_eq!((f.workload.as_str(), f.threads), ("mstress", 8));
    assert_eq!(f.best_peer.as_deref(), Some("jemalloc"));

    // A required lane that is absent fails.
    let req = GateConfig::parse("require_lanes = [\"scale\"]\n").unwrap();
    assert_eq!(evaluate(&r, &req).failures, 1);
    let req = GateConfig::parse("require_lanes = [\"fast\"]\n").unwrap();
    assert_eq!(evaluate(&r, &req).failures, 0);
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
