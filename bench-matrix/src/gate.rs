//! CI gates: the throughput-ratio and RSS-ratio gates over a results file,
//! and the limits for the callgrind instruction-count gate. Thresholds live in
//! `bench-matrix/gate.toml`.
//!
//! ```toml
//! # metric = "cpu"          # omit: the gate uses the results file's metric (the dashboard's)
//! require_lanes = ["fast"]
//!
//! [[throughput]]            # later, more specific rules win
//! min_ratio = 0.5           # lane median / best peer median, same run
//!
//! [[throughput]]
//! lane = "fast"             # omitted or "*" = any
//! workload = "small"
//! threads = 1
//! min_ratio = 0.9
//!
//! [[rss]]                   # same matching, per measure; unmatched cells are not RSS-gated
//! lane = "mem_mstress"
//! workload = "mstress"
//! max_ratio = 1.1           # lane median RSS / lowest peer median RSS, same run
//! measure = "peak"          # or "mean"; omitted = "peak"
//!
//! [callgrind]
//! pairs = [20000, 220000]   # Ir/pair = (Ir(n2) - Ir(n1)) / (n2 - n1)
//! [callgrind.max_ir_per_pair]
//! "*" = 400
//! fast = 150
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::{Cell, Metric, Results};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputRule {
    #[serde(default)]
    pub lane: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
    #[serde(default)]
    pub threads: Option<ThreadsSel>,
    pub min_ratio: f64,
    #[serde(default)]
    pub note: Option<String>,
}

/// `threads = 8` or `threads = "*"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThreadsSel {
    N(u32),
    Any(String),
}

/// Which RSS statistic an `[[rss]]` rule compares: the median over the runs of
/// the process's high-water mark (`peak_rss_kib`) or of the mean sampled RSS
/// during the timed region (`mean_rss_kib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RssMeasure {
    #[default]
    Peak,
    Mean,
    /// RSS after the run freed everything and settled (`settled_rss_kib`).
    Settled,
}

impl RssMeasure {
    pub fn name(self) -> &'static str {
        match self {
            RssMeasure::Peak => "peak",
            RssMeasure::Mean => "mean",
            RssMeasure::Settled => "settled",
        }
    }

    /// The value of one run (KiB; 0 = not measured).
    pub fn run_kib(self, r: &crate::schema::RunRecord) -> u64 {
        match self {
            RssMeasure::Peak => r.peak_rss_kib,
            RssMeasure::Mean => r.mean_rss_kib,
            RssMeasure::Settled => r.settled_rss_kib.unwrap_or(0),
        }
    }

    /// Lane RSS ÷ the lowest peer's under this measure, with a bootstrap
    /// interval over the runs that measured it: `(peer, ratio and interval)`.
    /// Lower is better. `None` when the lane or every peer lacks the value.
    pub fn ratio_ci_to_lowest_peer(
        self,
        r: &Results,
        lane: &str,
        workload: &str,
        threads: u32,
    ) -> Option<(String, crate::stats::RatioCi)> {
        let mine = r.cell(workload, threads, lane).filter(|c| c.is_valid())?;
        self.median_kib(mine)?;
        let (peer, _) = lowest_rss_peer(r, workload, threads, self)?;
        let theirs = r.cell(workload, threads, &peer)?;
        let vals = |c: &Cell| -> Vec<(u32, f64)> {
            c.runs
                .iter()
                .map(|x| (x.run_index, self.run_kib(x) as f64))
                .filter(|x| x.1 > 0.0)
                .collect()
        };
        let ci = crate::stats::ratio_ci(&vals(theirs), &vals(mine))?;
        Some((peer, ci))
    }

    /// Median of this measure over a cell's successful runs (KiB); `None`
    /// when the cell has no summary or recorded no RSS (0 KiB).
    pub fn median_kib(self, cell: &Cell) -> Option<f64> {
        let s = cell.summary.as_ref()?;
        let stat = match self {
            RssMeasure::Peak => s.peak_rss_kib,
            RssMeasure::Mean => s.mean_rss_kib,
            RssMeasure::Settled => s.settled_rss_kib?,
        };
        (stat.n > 0 && stat.median.is_finite() && stat.median > 0.0).then_some(stat.median)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RssRule {
    #[serde(default)]
    pub lane: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
    #[serde(default)]
    pub threads: Option<ThreadsSel>,
    pub max_ratio: f64,
    #[serde(default)]
    pub measure: RssMeasure,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallgrindLimits {
    #[serde(default = "default_pairs")]
    pub pairs: [u64; 2],
    /// Keyed by lane name ("fast") or "*".
    #[serde(default)]
    pub max_ir_per_pair: BTreeMap<String, f64>,
}

fn default_pairs() -> [u64; 2] {
    [20_000, 220_000]
}

impl Default for CallgrindLimits {
    fn default() -> Self {
        CallgrindLimits {
            pairs: default_pairs(),
            max_ir_per_pair: BTreeMap::new(),
        }
    }
}

impl CallgrindLimits {
    pub fn limit_for(&self, lane: &str) -> Option<f64> {
        let lane = lane_key(lane);
        self.max_ir_per_pair
            .get(lane)
            .or_else(|| self.max_ir_per_pair.get("*"))
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Throughput metric the ratios use. Leave it out: `None` = the results
    /// file's metric, the one its dashboard shows (an override here makes the
    /// gate and the dashboard disagree, and the gate says so).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Lanes that must be present and built in the results; a missing one fails the gate.
    #[serde(default)]
    pub require_lanes: Vec<String>,
    #[serde(default)]
    pub throughput: Vec<ThroughputRule>,
    #[serde(default)]
    pub rss: Vec<RssRule>,
    #[serde(default)]
    pub callgrind: CallgrindLimits,
    /// The regression rule against the previous history point.
    #[serde(default)]
    pub regression: RegressionRule,
}

/// `[regression]`: a lane cell fails when its ratio to the best peer dropped
/// from the previous history point (same metric, same machine, another
/// commit) significantly — the bootstrap interval of (ratio now ÷ ratio
/// then), over the per-run ratios, lies below 1 — and by more than
/// `noise_band`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionRule {
    #[serde(default = "default_noise_band")]
    pub noise_band: f64,
}

fn default_noise_band() -> f64 {
    crate::history::NOISE_BAND
}

impl Default for RegressionRule {
    fn default() -> Self {
        RegressionRule {
            noise_band: default_noise_band(),
        }
    }
}

/// The regression checks of `cur` against `prev`: one per lane cell present,
/// valid and comparable in both.
pub fn evaluate_regression(
    prev: &crate::history::Record,
    cur: &crate::history::Record,
    rule: &RegressionRule,
) -> Vec<GateCheck> {
    let mut out = Vec::new();
    for lane in cur.lanes() {
        for (w, t) in cur.cells_wt() {
            let Some(ch) = crate::history::change(prev, cur, &lane, &w, t, rule.noise_band) else {
                continue;
            };
            let before = prev.ratio_to_best_peer(&lane, &w, t).map(|x| x.1.ratio);
            let now = cur.ratio_to_best_peer(&lane, &w, t);
            let fail = ch.significant && ch.ci.ratio < 1.0;
            out.push(GateCheck {
                kind: CheckKind::Regression,
                lane: lane.clone(),
                workload: w.clone(),
                threads: t,
                ratio: Some(ch.ci.ratio),
                best_peer: now.map(|x| x.0),
                min_ratio: Some(1.0 - rule.noise_band),
                max_ratio: None,
                status: if fail {
                    CheckStatus::Fail
                } else {
                    CheckStatus::Pass
                },
                note: format!(
                    "regression vs {}: ratio to best peer {} -> {:.3}, change {:.3}x {}{}",
                    &prev.rev[..prev.rev.len().min(7)],
                    before
                        .map(|b| format!("{b:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    before.unwrap_or(0.0) * ch.ci.ratio,
                    ch.ci.ratio,
                    ch.ci.describe(),
                    if fail {
                        format!(
                            " — significant drop beyond the {:.0}% noise band",
                            rule.noise_band * 100.0
                        )
                    } else if ch.significant {
                        " — significant rise".to_string()
                    } else {
                        " — within noise".to_string()
                    }
                ),
            });
        }
    }
    out
}

/// "hz3-fast" and "fast" name the same lane.
pub fn lane_key(name: &str) -> &str {
    name.strip_prefix("hz3-").unwrap_or(name)
}

fn sel_matches(sel: &Option<String>, v: &str) -> Option<bool> {
    match sel.as_deref() {
        None | Some("*") => Some(false),
        Some(s) => {
            if s == v {
                Some(true)
            } else {
                None
            }
        }
    }
}

/// `None` when a rule with these selectors does not apply to the cell;
/// otherwise its specificity (0–3: how many of lane / workload / threads it names).
fn specificity(
    sel_lane: &Option<String>,
    sel_workload: &Option<String>,
    sel_threads: &Option<ThreadsSel>,
    lane: &str,
    workload: &str,
    threads: u32,
) -> Option<u32> {
    let l = sel_matches(
        &sel_lane.as_ref().map(|s| lane_key(s).to_string()),
        lane_key(lane),
    )?;
    let w = sel_matches(sel_workload, workload)?;
    let t = match sel_threads {
        None => false,
        Some(ThreadsSel::Any(s)) if s == "*" => false,
        Some(ThreadsSel::Any(s)) => {
            if s.parse::<u32>().ok() == Some(threads) {
                true
            } else {
                return None;
            }
        }
        Some(ThreadsSel::N(n)) => {
            if *n == threads {
                true
            } else {
                return None;
            }
        }
    };
    Some(l as u32 + w as u32 + t as u32)
}

/// The most specific of `rules` for a cell, later rules winning ties.
fn most_specific<R>(rules: &[R], spec: impl Fn(&R) -> Option<u32>) -> Option<&R> {
    let mut best: Option<(u32, &R)> = None;
    for r in rules {
        if let Some(s) = spec(r) {
            if best.is_none_or(|(bs, _)| s >= bs) {
                best = Some((s, r));
            }
        }
    }
    best.map(|(_, r)| r)
}

fn check_threads_sel(kind: &str, i: usize, t: &Option<ThreadsSel>) -> Result<(), String> {
    if let Some(ThreadsSel::Any(s)) = t {
        if s != "*" && s.parse::<u32>().is_err() {
            return Err(format!(
                "gate thresholds: {kind} rule #{}: threads must be a number or \"*\"",
                i + 1
            ));
        }
    }
    Ok(())
}

impl GateConfig {
    pub fn parse(text: &str) -> Result<GateConfig, String> {
        let cfg: GateConfig = toml::from_str(text).map_err(|e| format!("gate thresholds: {e}"))?;
        for (i, r) in cfg.throughput.iter().enumerate() {
            if !(r.min_ratio.is_finite() && r.min_ratio >= 0.0) {
                return Err(format!(
                    "gate thresholds: throughput rule #{} has a bad min_ratio {}",
                    i + 1,
                    r.min_ratio
                ));
            }
            check_threads_sel("throughput", i, &r.threads)?;
        }
        for (i, r) in cfg.rss.iter().enumerate() {
            if !(r.max_ratio.is_finite() && r.max_ratio > 0.0) {
                return Err(format!(
                    "gate thresholds: rss rule #{} has a bad max_ratio {}",
                    i + 1,
                    r.max_ratio
                ));
            }
            check_threads_sel("rss", i, &r.threads)?;
        }
        let [a, b] = cfg.callgrind.pairs;
        if a >= b {
            return Err("gate thresholds: callgrind.pairs must be [smaller, larger]".into());
        }
        Ok(cfg)
    }

    /// The rule for a cell: the most specific match, later rules winning ties.
    pub fn rule_for(&self, lane: &str, workload: &str, threads: u32) -> Option<&ThroughputRule> {
        most_specific(&self.throughput, |r| {
            specificity(&r.lane, &r.workload, &r.threads, lane, workload, threads)
        })
    }

    /// The `[[rss]]` rule of one measure for a cell, chosen like
    /// [`GateConfig::rule_for`] among the rules of that measure only: a peak
    /// rule never hides a mean rule, so a cell can have one of each.
    pub fn rss_rule_for(
        &self,
        lane: &str,
        workload: &str,
        threads: u32,
        measure: RssMeasure,
    ) -> Option<&RssRule> {
        most_specific(&self.rss, |r| {
            if r.measure != measure {
                return None;
            }
            specificity(&r.lane, &r.workload, &r.threads, lane, workload, threads)
        })
    }

    /// Every RSS rule that gates a cell: at most one peak, then one mean.
    pub fn rss_rules_for(&self, lane: &str, workload: &str, threads: u32) -> Vec<&RssRule> {
        [RssMeasure::Peak, RssMeasure::Mean, RssMeasure::Settled]
            .into_iter()
            .filter_map(|m| self.rss_rule_for(lane, workload, threads, m))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not checked (no rule, no peer): reported, does not fail.
    Skip,
}

/// What a [`GateCheck`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Lane median throughput / best peer median, against `min_ratio`.
    Throughput,
    /// Lane median RSS / lowest peer median RSS, against `max_ratio`.
    Rss(RssMeasure),
    /// Ratio to the best peer now ÷ at the previous history point.
    Regression,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateCheck {
    pub kind: CheckKind,
    pub lane: String,
    pub workload: String,
    pub threads: u32,
    pub ratio: Option<f64>,
    /// Throughput: the fastest peer. RSS: the peer with the lowest RSS.
    pub best_peer: Option<String>,
    /// Throughput checks only.
    pub min_ratio: Option<f64>,
    /// RSS checks only.
    pub max_ratio: Option<f64>,
    pub status: CheckStatus,
    pub note: String,
}

/// The peer (glibc/jemalloc/mimalloc/tcmalloc) with the lowest median RSS
/// under `measure` for a (workload, threads): `(name, KiB)`.
pub fn lowest_rss_peer(
    results: &Results,
    workload: &str,
    threads: u32,
    measure: RssMeasure,
) -> Option<(String, f64)> {
    results.peer_by(
        workload,
        threads,
        |c| measure.median_kib(c),
        |kib, best| kib < best,
    )
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// The RSS check of one lane cell under `rule`. Missing data on either side
/// fails: a matched cell must be checkable.
fn rss_check(results: &Results, lane: &str, cell: &Cell, rule: &RssRule) -> GateCheck {
    let m = rule.measure;
    if let Some(why) = cell.invalid_reason() {
        return GateCheck {
            kind: CheckKind::Rss(m),
            lane: lane.to_string(),
            workload: cell.workload.clone(),
            threads: cell.threads,
            ratio: None,
            best_peer: None,
            min_ratio: None,
            max_ratio: Some(rule.max_ratio),
            status: CheckStatus::Fail,
            note: format!("rss {}: INVALID cell: {why}", m.name()),
        };
    }
    let mine = m.median_kib(cell);
    let peer = lowest_rss_peer(results, &cell.workload, cell.threads, m);
    let (ratio, status, note) = match (mine, &peer) {
        (None, _) => (
            None,
            CheckStatus::Fail,
            format!("rss {}: no RSS data for the lane", m.name()),
        ),
        (Some(_), None) => (
            None,
            CheckStatus::Fail,
            format!("rss {}: no peer RSS data to compare with", m.name()),
        ),
        (Some(mine), Some((name, best))) => {
            let r = mine / best;
            let ok = r <= rule.max_ratio + 1e-12;
            let head = format!(
                "rss {}: {} / best peer {} ({name}) = {r:.2}",
                m.name(),
                mib(mine),
                mib(*best)
            );
            let note = if ok {
                format!("{head} <= {:.2} ok", rule.max_ratio)
            } else {
                format!(
                    "{head} > {:.2}{}",
                    rule.max_ratio,
                    rule.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            };
            let st = if ok {
                CheckStatus::Pass
            } else {
                CheckStatus::Fail
            };
            (Some(r), st, note)
        }
    };
    GateCheck {
        kind: CheckKind::Rss(m),
        lane: lane.to_string(),
        workload: cell.workload.clone(),
        threads: cell.threads,
        ratio,
        best_peer: peer.map(|p| p.0),
        min_ratio: None,
        max_ratio: Some(rule.max_ratio),
        status,
        note,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// The throughput metric every ratio of the report is computed from.
    pub metric: Metric,
    pub checks: Vec<GateCheck>,
    pub failures: usize,
}

/// Evaluate the throughput and RSS gates over a results file. A cell's RSS
/// check, when an `[[rss]]` rule matches it, follows its throughput check.
pub fn evaluate(results: &Results, cfg: &GateConfig) -> GateReport {
    let mut checks = Vec::new();
    let lanes = results.lanes();
    for req in &cfg.require_lanes {
        let present = lanes
            .iter()
            .any(|a| lane_key(&a.name) == lane_key(req) && a.ok());
        if !present {
            checks.push(GateCheck {
                kind: CheckKind::Throughput,
                lane: req.clone(),
                workload: "*".into(),
                threads: 0,
                ratio: None,
                best_peer: None,
                min_ratio: None,
                max_ratio: None,
                status: CheckStatus::Fail,
                note: "required lane is missing from the results (not built?)".into(),
            });
        }
    }
    for lane in lanes {
        if !lane.ok() {
            checks.push(GateCheck {
                kind: CheckKind::Throughput,
                lane: lane.name.clone(),
                workload: "*".into(),
                threads: 0,
                ratio: None,
                best_peer: None,
                min_ratio: None,
                max_ratio: None,
                status: CheckStatus::Skip,
                note: format!("MISSING: {}", lane.note),
            });
            continue;
        }
        for w in &results.workloads {
            for &t in &results.config.threads {
                let Some(cell) = results.cell(&w.name, t, &lane.name) else {
                    continue;
                };
                let rule = cfg.rule_for(&lane.name, &w.name, t);
                let best = results.best_peer(&w.name, t);
                let ratio = results.ratio_to_best_peer(&lane.name, &w.name, t);
                let corrupt: u64 = cell.runs.iter().map(|r| r.corrupt).sum();
                let (status, note) = if !cell.failures.is_empty() {
                    (
                        CheckStatus::Fail,
                        format!(
                            "{} failed run(s): {}",
                            cell.failures.len(),
                            cell.failures[0].error
                        ),
                    )
                } else if corrupt > 0 {
                    (CheckStatus::Fail, format!("{corrupt} corrupted block(s)"))
                } else if let Some(why) = cell.invalid_reason() {
                    // Not the same work as the peers: never compared, never passed.
                    (CheckStatus::Fail, format!("INVALID cell: {why}"))
                } else if let Some(rule) = rule {
                    match ratio {
                        Some(r) if r + 1e-12 >= rule.min_ratio => {
                            (CheckStatus::Pass, String::new())
                        }
                        Some(r) => (
                            CheckStatus::Fail,
                            format!(
                                "ratio {r:.3} < {:.3}{}",
                                rule.min_ratio,
                                rule.note
                                    .as_ref()
                                    .map(|n| format!(" ({n})"))
                                    .unwrap_or_default()
                            ),
                        ),
                        None => (
                            CheckStatus::Skip,
                            "no valid peer result to compare with".into(),
                        ),
                    }
                } else {
                    (CheckStatus::Skip, "no threshold rule".into())
                };
                checks.push(GateCheck {
                    kind: CheckKind::Throughput,
                    lane: lane.name.clone(),
                    workload: w.name.clone(),
                    threads: t,
                    ratio,
                    best_peer: best.map(|b| b.0),
                    min_ratio: rule.map(|r| r.min_ratio),
                    max_ratio: None,
                    status,
                    note,
                });
                for rr in cfg.rss_rules_for(&lane.name, &w.name, t) {
                    checks.push(rss_check(results, &lane.name, cell, rr));
                }
            }
        }
    }
    let failures = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    GateReport {
        metric: results.config.metric,
        checks,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
require_lanes = ["fast"]

[[throughput]]
min_ratio = 0.5

[[throughput]]
workload = "small"
min_ratio = 0.8

[[throughput]]
lane = "fast"
workload = "small"
threads = 1
min_ratio = 0.9
note = "fast path must stay close"

[[throughput]]
lane = "hz3-scale"
threads = "*"
min_ratio = 0.7

[callgrind]
pairs = [1000, 11000]
[callgrind.max_ir_per_pair]
"*" = 400
fast = 150
"#;

    #[test]
    fn parses_and_picks_most_specific() {
        let g = GateConfig::parse(SAMPLE).unwrap();
        assert_eq!(g.throughput.len(), 4);
        assert_eq!(g.require_lanes, vec!["fast"]);
        assert_eq!(g.rule_for("hz3-fast", "small", 1).unwrap().min_ratio, 0.9);
        assert_eq!(g.rule_for("hz3-fast", "small", 8).unwrap().min_ratio, 0.8);
        assert_eq!(g.rule_for("hz3-fast", "mstress", 8).unwrap().min_ratio, 0.5);
        assert_eq!(g.rule_for("scale", "mstress", 32).unwrap().min_ratio, 0.7);
        // scale/small: both rules have specificity 1; the later one wins.
        assert_eq!(g.rule_for("hz3-scale", "small", 1).unwrap().min_ratio, 0.7);
        assert_eq!(g.callgrind.pairs, [1000, 11000]);
        assert_eq!(g.callgrind.limit_for("hz3-fast"), Some(150.0));
        assert_eq!(g.callgrind.limit_for("mem_large"), Some(400.0));
    }

    #[test]
    fn rejects_bad_files() {
        assert!(GateConfig::parse("[[throughput]]\nmin_ratio = -1\n").is_err());
        assert!(GateConfig::parse("[[throughput]]\nmin_ratio = 1\nthreads = \"lots\"\n").is_err());
        assert!(GateConfig::parse("[[throughput]]\nmin_ration = 1\n").is_err());
        assert!(GateConfig::parse("[callgrind]\npairs = [5, 5]\n").is_err());
        assert!(GateConfig::parse("metric = \"fast\"\n").is_err());
        assert_eq!(
            GateConfig::parse("metric = \"cpu\"\n").unwrap().metric,
            Some(Metric::Cpu)
        );
        assert!(GateConfig::parse("this is not toml").is_err());
        let empty = GateConfig::parse("").unwrap();
        assert!(empty.rule_for("fast", "small", 1).is_none());
        assert_eq!(empty.callgrind.pairs, [20_000, 220_000]);
    }

    const RSS: &str = r#"
[[rss]]
max_ratio = 2.0

[[rss]]
workload = "mstress"
max_ratio = 1.5
measure = "mean"

[[rss]]
workload = "mstress"
max_ratio = 1.2

[[rss]]
lane = "mem_mstress"
workload = "mstress"
threads = 8
max_ratio = 1.1
measure = "peak"
note = "mem_mstress must stay below the peers"

[[rss]]
lane = "hz3-mem_mstress"
threads = "*"
max_ratio = 1.3
"#;

    #[test]
    fn rss_rules_parse_and_pick_most_specific() {
        use RssMeasure::{Mean, Peak};
        let g = GateConfig::parse(RSS).unwrap();
        assert_eq!(g.rss.len(), 5);
        assert!(g.throughput.is_empty());
        // Omitted measure = peak.
        assert_eq!(g.rss[0].measure, Peak);
        assert_eq!(g.rss[1].measure, Mean);
        let lim = |lane, w, t, m| g.rss_rule_for(lane, w, t, m).map(|r| r.max_ratio);
        assert_eq!(lim("hz3-mem_mstress", "mstress", 8, Peak), Some(1.1));
        assert_eq!(lim("mem_mstress", "mstress", 8, Mean), Some(1.5));
        // mem_mstress/mstress at 32: the workload rule (1.2) and the lane rule
        // (1.3) both have specificity 1; the later one wins.
        assert_eq!(lim("mem_mstress", "mstress", 32, Peak), Some(1.3));
        assert_eq!(lim("fast", "mstress", 8, Peak), Some(1.2));
        assert_eq!(lim("fast", "small", 1, Peak), Some(2.0));
        assert_eq!(lim("fast", "small", 1, Mean), None);
        // One rule per measure: peak first.
        let both = g.rss_rules_for("mem_mstress", "mstress", 8);
        assert_eq!(
            both.iter()
                .map(|r| (r.measure, r.max_ratio))
                .collect::<Vec<_>>(),
            vec![(Peak, 1.1), (Mean, 1.5)]
        );
        assert_eq!(g.rss_rules_for("fast", "small", 1).len(), 1);
        // RSS and throughput rules do not see each other.
        assert!(g.rule_for("fast", "small", 1).is_none());
        let only = GateConfig::parse("[[rss]]\nlane = \"scale\"\nmax_ratio = 1\n").unwrap();
        assert!(only.rss_rules_for("fast", "small", 1).is_empty());
        assert_eq!(only.rss_rules_for("hz3-scale", "small", 1).len(), 1);
        assert!(GateConfig::parse("").unwrap().rss.is_empty());
    }

    #[test]
    fn rejects_bad_rss_rules() {
        let bad = [
            // bad measure
            "[[rss]]\nmax_ratio = 1.1\nmeasure = \"max\"\n",
            "[[rss]]\nmax_ratio = 1.1\nmeasure = \"Peak\"\n",
            // missing max_ratio
            "[[rss]]\nlane = \"mem_mstress\"\nmeasure = \"peak\"\n",
            // min_ratio belongs to [[throughput]]
            "[[rss]]\nmin_ratio = 1.1\n",
            "[[rss]]\nmax_ratio = 0\n",
            "[[rss]]\nmax_ratio = -1.0\n",
            "[[rss]]\nmax_ratio = nan\n",
            "[[rss]]\nmax_ratio = 1.1\nthreads = \"lots\"\n",
        ];
        for text in bad {
            assert!(GateConfig::parse(text).is_err(), "accepted: {text}");
        }
        let e = GateConfig::parse("[[rss]]\nmax_ratio = 1.1\nmeasure = \"max\"\n").unwrap_err();
        assert!(e.contains("measure") || e.contains("max"), "{e}");
        let e = GateConfig::parse("[[rss]]\nmeasure = \"mean\"\n").unwrap_err();
        assert!(e.contains("max_ratio"), "{e}");
        let e = GateConfig::parse("[[rss]]\nmax_ratio = 1\nthreads = \"lots\"\n").unwrap_err();
        assert!(e.contains("rss rule #1"), "{e}");
    }

    #[test]
    fn repo_gate_file_parses() {
        let text = include_str!("../gate.toml");
        let g = GateConfig::parse(text).expect("bench-matrix/gate.toml must parse");
        for (t, m) in [
            (8, RssMeasure::Peak),
            (8, RssMeasure::Mean),
            (32, RssMeasure::Peak),
            (32, RssMeasure::Mean),
        ] {
            assert!(
                g.rss
                    .iter()
                    .any(|r| r.lane.as_deref() == Some("mem_mstress")
                        && r.workload.as_deref() == Some("mstress")
                        && r.threads == Some(ThreadsSel::N(t))
                        && r.measure == m),
                "gate.toml lacks the mem_mstress/mstress t{t} {} rule",
                m.name()
            );
        }
    }
}
