//! CI gates: the throughput-ratio gate over a results file, and the limits
//! for the callgrind instruction-count gate. Thresholds live in
//! `bench-matrix/gate.toml`.
//!
//! ```toml
//! metric = "cpu"            # or "wall"; omitted = the results file's metric
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
//! [callgrind]
//! pairs = [20000, 220000]   # Ir/pair = (Ir(n2) - Ir(n1)) / (n2 - n1)
//! [callgrind.max_ir_per_pair]
//! "*" = 400
//! fast = 150
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::Results;

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
    /// Throughput metric the ratios use: "wall" or "cpu"; `None` = whatever
    /// the results file was rendered with (`config.metric`).
    #[serde(default)]
    pub metric: Option<String>,
    /// Lanes that must be present and built in the results; a missing one fails the gate.
    #[serde(default)]
    pub require_lanes: Vec<String>,
    #[serde(default)]
    pub throughput: Vec<ThroughputRule>,
    #[serde(default)]
    pub callgrind: CallgrindLimits,
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

impl ThroughputRule {
    /// `None` when the rule does not apply; otherwise its specificity (0–3).
    fn specificity(&self, lane: &str, workload: &str, threads: u32) -> Option<u32> {
        let l = sel_matches(
            &self.lane.as_ref().map(|s| lane_key(s).to_string()),
            lane_key(lane),
        )?;
        let w = sel_matches(&self.workload, workload)?;
        let t = match &self.threads {
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
}

impl GateConfig {
    pub fn parse(text: &str) -> Result<GateConfig, String> {
        let cfg: GateConfig = toml::from_str(text).map_err(|e| format!("gate thresholds: {e}"))?;
        if let Some(m) = &cfg.metric {
            if m != "wall" && m != "cpu" {
                return Err(format!(
                    "gate thresholds: metric must be \"wall\" or \"cpu\", not {m:?}"
                ));
            }
        }
        for (i, r) in cfg.throughput.iter().enumerate() {
            if !(r.min_ratio.is_finite() && r.min_ratio >= 0.0) {
                return Err(format!(
                    "gate thresholds: throughput rule #{} has a bad min_ratio {}",
                    i + 1,
                    r.min_ratio
                ));
            }
            if let Some(ThreadsSel::Any(s)) = &r.threads {
                if s != "*" && s.parse::<u32>().is_err() {
                    return Err(format!(
                        "gate thresholds: throughput rule #{}: threads must be a number or \"*\"",
                        i + 1
                    ));
                }
            }
        }
        let [a, b] = cfg.callgrind.pairs;
        if a >= b {
            return Err("gate thresholds: callgrind.pairs must be [smaller, larger]".into());
        }
        Ok(cfg)
    }

    /// The rule for a cell: the most specific match, later rules winning ties.
    pub fn rule_for(&self, lane: &str, workload: &str, threads: u32) -> Option<&ThroughputRule> {
        let mut best: Option<(u32, &ThroughputRule)> = None;
        for r in &self.throughput {
            if let Some(s) = r.specificity(lane, workload, threads) {
                if best.is_none_or(|(bs, _)| s >= bs) {
                    best = Some((s, r));
                }
            }
        }
        best.map(|(_, r)| r)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not checked (no rule, no peer): reported, does not fail.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateCheck {
    pub lane: String,
    pub workload: String,
    pub threads: u32,
    pub ratio: Option<f64>,
    pub best_peer: Option<String>,
    pub min_ratio: Option<f64>,
    pub status: CheckStatus,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub checks: Vec<GateCheck>,
    pub failures: usize,
}

/// Evaluate the throughput gate over a results file.
pub fn evaluate(results: &Results, cfg: &GateConfig) -> GateReport {
    let mut checks = Vec::new();
    let lanes = results.lanes();
    for req in &cfg.require_lanes {
        let present = lanes
            .iter()
            .any(|a| lane_key(&a.name) == lane_key(req) && a.ok());
        if !present {
            checks.push(GateCheck {
                lane: req.clone(),
                workload: "*".into(),
                threads: 0,
                ratio: None,
                best_peer: None,
                min_ratio: None,
                status: CheckStatus::Fail,
                note: "required lane is missing from the results (not built?)".into(),
            });
        }
    }
    for lane in lanes {
        if !lane.ok() {
            checks.push(GateCheck {
                lane: lane.name.clone(),
                workload: "*".into(),
                threads: 0,
                ratio: None,
                best_peer: None,
                min_ratio: None,
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
                        None => (CheckStatus::Skip, "no peer result to compare with".into()),
                    }
                } else {
                    (CheckStatus::Skip, "no threshold rule".into())
                };
                checks.push(GateCheck {
                    lane: lane.name.clone(),
                    workload: w.name.clone(),
                    threads: t,
                    ratio,
                    best_peer: best.map(|b| b.0),
                    min_ratio: rule.map(|r| r.min_ratio),
                    status,
                    note,
                });
            }
        }
    }
    let failures = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    GateReport { checks, failures }
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
            GateConfig::parse("metric = \"cpu\"\n")
                .unwrap()
                .metric
                .as_deref(),
            Some("cpu")
        );
        assert!(GateConfig::parse("this is not toml").is_err());
        let empty = GateConfig::parse("").unwrap();
        assert!(empty.rule_for("fast", "small", 1).is_none());
        assert_eq!(empty.callgrind.pairs, [20_000, 220_000]);
    }

    #[test]
    fn repo_gate_file_parses() {
        let text = include_str!("../gate.toml");
        GateConfig::parse(text).expect("bench-matrix/gate.toml must parse");
    }
}
