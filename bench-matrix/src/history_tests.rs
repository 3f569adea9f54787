//! Tests of the history, the regression gate, the README check and the
//! dashboard's history sections, over the synthetic results of tests.rs.

use crate::chooser;
use crate::cli_history;
use crate::gate::{evaluate_regression, CheckKind, CheckStatus, GateConfig, RegressionRule};
use crate::history::{self, previous_point, Record};
use crate::runner::make_cell;
use crate::schema::Results;
use crate::tests::fixture;

/// The fixture at another commit, with `lane`'s throughput scaled by `k` in
/// every cell (k = 0.9: a planted 10 % regression).
fn at(rev: &str, date: u64, lane: &str, k: f64) -> Results {
    let mut r = fixture();
    r.git_rev = rev.into();
    r.created_unix = date;
    for c in r.cells.iter_mut().filter(|c| c.allocator == lane) {
        let mut runs = c.runs.clone();
        for x in &mut runs {
            x.ops_per_sec *= k;
            x.ops_per_cpu_sec *= k;
        }
        *c = make_cell(
            &c.workload,
            c.threads,
            &c.allocator,
            runs,
            c.failures.clone(),
        );
    }
    r
}

fn rec(r: &Results) -> Record {
    Record::from_results(r)
}

#[test]
fn record_round_trips_as_a_json_line() {
    let a = rec(&fixture());
    let text = format!("{}\n\n{}\n", a.to_line(), a.to_line());
    let back = history::parse(&text).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0], a);
    // Every working allocator cell with a summary, missing tcmalloc left out.
    assert_eq!(a.cells.len(), 2 * 2 * 3);
    assert!(a.cells.iter().all(|c| c.allocator != "tcmalloc"));
    assert!(history::parse("{\"history_schema\":99}").is_err());
}

#[test]
fn append_and_load() {
    let dir = std::env::temp_dir().join(format!("bm-hist-{}", std::process::id()));
    let path = dir.join("h.jsonl");
    let _ = std::fs::remove_file(&path);
    assert!(history::load(&path).unwrap().is_empty());
    history::append(&path, &rec(&at("r1", 1, "hz3-fast", 1.0))).unwrap();
    history::append(&path, &rec(&at("r2", 2, "hz3-fast", 1.0))).unwrap();
    let h = history::load(&path).unwrap();
    assert_eq!(
        h.iter().map(|r| r.rev.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gate_fails_on_a_planted_ten_percent_regression() {
    let rule = RegressionRule::default();
    let prev = rec(&at("before", 1, "hz3-fast", 1.0));
    // Without the regression: every check passes.
    let same = rec(&at("after", 2, "hz3-fast", 1.0));
    let ok = evaluate_regression(&prev, &same, &rule);
    assert_eq!(ok.len(), 4, "one check per lane cell");
    assert!(ok
        .iter()
        .all(|c| c.status == CheckStatus::Pass && c.kind == CheckKind::Regression));
    // hz3-fast 10 % slower in every cell: every cell fails.
    let slow = rec(&at("after", 2, "hz3-fast", 0.9));
    let bad = evaluate_regression(&prev, &slow, &rule);
    assert_eq!(
        bad.iter().filter(|c| c.status == CheckStatus::Fail).count(),
        4
    );
    assert!(bad[0].note.contains("significant drop"), "{}", bad[0].note);
    // 3 % is inside the 5 % noise band; a 10 % rise is not a failure.
    let small = rec(&at("after", 2, "hz3-fast", 0.97));
    assert!(evaluate_regression(&prev, &small, &rule)
        .iter()
        .all(|c| c.status == CheckStatus::Pass));
    let up = rec(&at("after", 2, "hz3-fast", 1.1));
    assert!(evaluate_regression(&prev, &up, &rule)
        .iter()
        .all(|c| c.status == CheckStatus::Pass));
}

#[test]
fn regression_is_judged_against_the_previous_comparable_point() {
    let a = rec(&at("a", 1, "hz3-fast", 1.0));
    let mut other_host = rec(&at("b", 2, "hz3-fast", 1.0));
    other_host.machine.hostname = "elsewhere".into();
    let cur = rec(&at("c", 3, "hz3-fast", 0.9));
    let h = vec![a.clone(), other_host];
    assert_eq!(previous_point(&h, &cur).unwrap().rev, "a");
    // The same commit again is not its own previous point.
    let again = rec(&at("a", 4, "hz3-fast", 1.0));
    assert!(previous_point(&[a], &again).is_err());
}

#[test]
fn regression_rule_parses_from_gate_toml() {
    let cfg = GateConfig::parse("[regression]\nnoise_band = 0.08\n").unwrap();
    assert_eq!(cfg.regression.noise_band, 0.08);
    let dflt = GateConfig::parse("").unwrap();
    assert_eq!(dflt.regression.noise_band, history::NOISE_BAND);
}

#[test]
fn dashboard_draws_trends_and_the_chooser() {
    let h = vec![
        rec(&at("1111111", 1, "hz3-fast", 1.0)),
        rec(&at("2222222", 2, "hz3-fast", 0.8)),
    ];
    let cur = at("3333333", 3, "hz3-fast", 1.0);
    let html = crate::dashboard::render_with_history(&cur, &h);
    assert!(html.contains("id=\"trends\"") && html.contains("id=\"chooser\""));
    // Three points per lane line, the 0.8 drop and the recovery ringed.
    assert!(html.contains("1111111") && html.contains("2222222") && html.contains("3333333"));
    assert!(
        html.contains("stroke=\"#c92a2a\" stroke-width=\"2.2\""),
        "drop ring"
    );
    assert!(
        html.contains("stroke=\"#2b8a3e\" stroke-width=\"2.2\""),
        "rise ring"
    );
    assert!(html.contains("Which lane for which program"));
    assert!(html.contains("on the Pareto front"));
    // Still self-contained.
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

#[test]
fn readme_block_round_trips_and_drift_is_caught() {
    let r = rec(&fixture());
    let block = chooser::readme_block(&r);
    let claims = chooser::parse_claims(&block);
    // hz3-fast is 1.1x jemalloc on small (1 and 8 threads) and mstress t1.
    assert!(claims
        .wins
        .iter()
        .any(|(l, w, t, x)| l == "hz3-fast" && w == "small" && *t == 8 && (*x - 1.1).abs() < 0.01));
    let readme = format!("# x\n\n{block}\n\nmore\n");
    let cfg_ok = GateConfig::parse("[[throughput]]\nlane = \"fast\"\nmin_ratio = 1.0\n").unwrap();
    assert!(cli_history::check(&readme, &r, &cfg_ok).is_empty());
    // A hand-edited figure drifts.
    let drifted = readme.replacen("1.10", "1.30", 1);
    assert_ne!(drifted, readme);
    assert!(!cli_history::check(&drifted, &r, &cfg_ok).is_empty());
    // A claimed win without a >= 1.0 rule, and an unexplained floor below 0.5.
    let cfg_low = GateConfig::parse("[[throughput]]\nmin_ratio = 0.3\n").unwrap();
    let bad = cli_history::check(&readme, &r, &cfg_low);
    assert!(bad.iter().any(|b| b.contains("claims hz3-fast wins")));
    assert!(bad.iter().any(|b| b.contains("< 0.5x")));
    // The generated rules satisfy the check on their own, with a 0.5 catch-all.
    let mut r2 = r.clone();
    // Make one trade: hz3-fast on mstress at 8 threads at 0.3x jemalloc.
    for c in r2
        .cells
        .iter_mut()
        .filter(|c| c.allocator == "hz3-fast" && c.workload == "mstress" && c.threads == 8)
    {
        for x in &mut c.runs {
            x.1 *= 0.3 / 0.55;
        }
        c.median *= 0.3 / 0.55;
    }
    let rules = chooser::gate_rules(&r2);
    assert!(rules.contains("min_ratio = 0.18"), "{rules}");
    let cfg = GateConfig::parse(&format!("[[throughput]]\nmin_ratio = 0.5\n\n{rules}")).unwrap();
    let readme2 = format!("# x\n\n{}\n", chooser::readme_block(&r2));
    let bad = cli_history::check(&readme2, &r2, &cfg);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The repository's README figures are the ones its last history record
/// generates, and gate.toml covers them (the check `bench-matrix
/// readme-check` runs).
#[test]
fn repository_readme_matches_its_history() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let hist = history::load(&history::default_path(&root)).unwrap();
    let last = hist
        .last()
        .expect("bench-matrix/history/history.jsonl has a record");
    let cfg =
        GateConfig::parse(&std::fs::read_to_string(root.join("bench-matrix/gate.toml")).unwrap())
            .unwrap();
    let bad = cli_history::check(&readme, last, &cfg);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
