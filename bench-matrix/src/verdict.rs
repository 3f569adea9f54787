//! A/B verdicts: GO / SOFT GO / NO-GO from interleaved runs, with a
//! confidence interval for every ratio.
//!
//! The rule, per (workload, threads) cell, with `t` the threshold (default 1 %)
//! and the metric named on the page (ops per wall-clock second by default):
//!
//! * `ratio = median(B) / median(A)` (throughput, higher is better) and its 95 %
//!   bootstrap interval `[lo, hi]`: 4000 resamples of the runs with a fixed
//!   seed, in pairs (run r of A and of B ran back to back) — see
//!   [`crate::stats::ratio_ci`]; fewer than 3 runs on a side give no interval;
//! * **GO** if `lo >= 1 + t` (the whole interval clears the threshold),
//!   **NO-GO** if `hi <= 1 - t`, **SOFT GO** otherwise (the difference is
//!   inside the threshold or inside the noise);
//! * **INVALID** if a side missed the asked remote share (not the same work).
//!
//! Overall: **NO-GO** if any cell is NO-GO or B failed/corrupted any run;
//! **INVALID** if any cell is INVALID; **GO** if the interval of the geometric
//! mean of B/A over the cells (each resample redraws every cell) lies at or
//! above `1 + t`; **SOFT GO** otherwise.

use serde::{Deserialize, Serialize};

use crate::stats::{geomean_ratio_ci, ratio_ci, RatioCi, Stat, CI_LEVEL, CI_MIN_RUNS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "GO")]
    Go,
    #[serde(rename = "SOFT GO")]
    SoftGo,
    #[serde(rename = "NO-GO")]
    NoGo,
    /// A side of the cell missed the asked remote share (the allocators did
    /// not do the same work): not compared.
    #[serde(rename = "INVALID")]
    Invalid,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Go => "GO",
            Verdict::SoftGo => "SOFT GO",
            Verdict::NoGo => "NO-GO",
            Verdict::Invalid => "INVALID",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Minimum relative change that counts, as a fraction (0.01 = 1 %).
    pub min_change: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { min_change: 0.01 }
    }
}

impl Thresholds {
    pub fn describe(&self) -> String {
        let t = self.min_change * 100.0;
        let level = CI_LEVEL * 100.0;
        format!(
            "per cell: ratio = median(B)/median(A) with a {level:.0}% bootstrap interval [lo, hi] over the \
             interleaved runs (paired by run, fixed seed; no interval below {CI_MIN_RUNS} runs); GO if lo >= 1 + {t:.1}%, \
             NO-GO if hi <= 1 - {t:.1}%, SOFT GO otherwise; INVALID if a side missed the asked remote share. \
             Overall: NO-GO if any cell is NO-GO or B failed a run; INVALID if any cell is; GO if the \
             interval of the geomean of B/A over the cells lies at or above 1 + {t:.1}%; SOFT GO otherwise."
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellVerdict {
    pub workload: String,
    pub threads: u32,
    pub a: Stat,
    pub b: Stat,
    /// median(B)/median(A) - 1.
    pub delta: f64,
    /// The ratio median(B)/median(A) with its interval; `None` for INVALID cells.
    pub ci: Option<RatioCi>,
    pub verdict: Verdict,
    /// Why the cell is INVALID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `(run index, value)` of every run of each side, under the metric.
    pub a_runs: Vec<(u32, f64)>,
    pub b_runs: Vec<(u32, f64)>,
}

/// The verdict of one cell from the runs of each side (`(run index, value)`).
/// `None` when a side has no run.
pub fn cell_verdict(
    workload: &str,
    threads: u32,
    a_runs: &[(u32, f64)],
    b_runs: &[(u32, f64)],
    th: &Thresholds,
) -> Option<CellVerdict> {
    let vals = |r: &[(u32, f64)]| r.iter().map(|x| x.1).collect::<Vec<f64>>();
    let a = Stat::of(&vals(a_runs))?;
    let b = Stat::of(&vals(b_runs))?;
    let ci = ratio_ci(a_runs, b_runs);
    let verdict = match &ci {
        Some(ci) if ci.clears_above(th.min_change) => Verdict::Go,
        Some(ci) if ci.clears_below(th.min_change) => Verdict::NoGo,
        _ => Verdict::SoftGo,
    };
    Some(CellVerdict {
        workload: workload.into(),
        threads,
        a,
        b,
        delta: ci.map(|c| c.ratio - 1.0).unwrap_or(0.0),
        ci,
        verdict,
        note: None,
        a_runs: a_runs.to_vec(),
        b_runs: b_runs.to_vec(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overall {
    pub verdict: Verdict,
    /// Geometric mean of median(B)/median(A) over the valid cells.
    pub geomean_ratio: Option<f64>,
    /// Its bootstrap interval.
    #[serde(default)]
    pub geomean_ci: Option<RatioCi>,
    pub reason: String,
}

/// The verdict of a cell that cannot be compared: `why` says which side missed
/// the asked remote share.
pub fn invalid_cell(
    workload: &str,
    threads: u32,
    a_runs: &[(u32, f64)],
    b_runs: &[(u32, f64)],
    why: &str,
) -> CellVerdict {
    let st = |r: &[(u32, f64)]| {
        Stat::of(&r.iter().map(|x| x.1).collect::<Vec<f64>>()).unwrap_or_default()
    };
    CellVerdict {
        workload: workload.into(),
        threads,
        a: st(a_runs),
        b: st(b_runs),
        delta: 0.0,
        ci: None,
        verdict: Verdict::Invalid,
        note: Some(why.to_string()),
        a_runs: a_runs.to_vec(),
        b_runs: b_runs.to_vec(),
    }
}

pub fn overall(cells: &[CellVerdict], b_failures: usize, th: &Thresholds) -> Overall {
    let invalid: Vec<String> = cells
        .iter()
        .filter(|c| c.verdict == Verdict::Invalid)
        .map(|c| format!("{} t{}", c.workload, c.threads))
        .collect();
    let valid: Vec<&CellVerdict> = cells
        .iter()
        .filter(|c| c.verdict != Verdict::Invalid)
        .collect();
    let gci = geomean_ratio_ci(
        &valid
            .iter()
            .map(|c| (c.a_runs.clone(), c.b_runs.clone()))
            .collect::<Vec<_>>(),
    );
    let gm = gci.map(|g| g.ratio);
    let nogo: Vec<String> = valid
        .iter()
        .filter(|c| c.verdict == Verdict::NoGo)
        .map(|c| format!("{} t{} ({:+.1}%)", c.workload, c.threads, c.delta * 100.0))
        .collect();
    let out = |verdict, reason: String| Overall {
        verdict,
        geomean_ratio: gm,
        geomean_ci: gci,
        reason,
    };
    if b_failures > 0 {
        return out(
            Verdict::NoGo,
            format!("B failed or corrupted {b_failures} run(s)"),
        );
    }
    if !nogo.is_empty() {
        return out(
            Verdict::NoGo,
            format!(
                "the interval lies below -{:.1}% in: {}",
                th.min_change * 100.0,
                nogo.join(", ")
            ),
        );
    }
    if !invalid.is_empty() {
        return out(
            Verdict::Invalid,
            format!(
                "INVALID cell(s), where a side missed the asked remote share and did other work: {}",
                invalid.join(", ")
            ),
        );
    }
    if valid.is_empty() {
        return out(Verdict::NoGo, "no comparable cells".into());
    }
    match gci {
        Some(g) if g.clears_above(th.min_change) => out(
            Verdict::Go,
            format!(
                "geomean B/A = {:+.2}%, interval {} clears +{:.1}%, and no cell regresses",
                (g.ratio - 1.0) * 100.0,
                g.describe(),
                th.min_change * 100.0
            ),
        ),
        Some(g) => out(
            Verdict::SoftGo,
            format!(
                "no cell regresses, but the geomean B/A = {:+.2}% has interval {}, which does not clear +{:.1}%",
                (g.ratio - 1.0) * 100.0,
                g.describe(),
                th.min_change * 100.0
            ),
        ),
        None => out(Verdict::SoftGo, "no geomean (zero throughput)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(v: &[f64]) -> Vec<(u32, f64)> {
        v.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect()
    }

    fn v(a: &[f64], b: &[f64], th: &Thresholds) -> CellVerdict {
        cell_verdict("w", 1, &runs(a), &runs(b), th).unwrap()
    }

    #[test]
    fn go_softgo_nogo_quiet_data() {
        let th = Thresholds::default();
        let a = [100.0, 100.5, 99.5, 100.2, 99.8];
        let up = |f: f64| a.map(|x| x * f);
        assert_eq!(v(&a, &up(1.03), &th).verdict, Verdict::Go);
        assert_eq!(v(&a, &up(1.005), &th).verdict, Verdict::SoftGo);
        assert_eq!(v(&a, &up(0.995), &th).verdict, Verdict::SoftGo);
        assert_eq!(v(&a, &up(0.97), &th).verdict, Verdict::NoGo);
        // Exactly +1 % with identical noise on both sides: the interval is a
        // point at 1.01 and reaches the threshold.
        let c = v(&a, &up(1.01), &th);
        assert_eq!(c.verdict, Verdict::Go, "{:?}", c.ci);
    }

    #[test]
    fn go_needs_the_interval_to_clear_the_threshold() {
        let th = Thresholds::default();
        // Medians differ by +5 %, far above the 1 % threshold, but the runs
        // overlap: the interval straddles 1, so it is SOFT GO, not GO.
        let a = [100.0, 80.0, 120.0, 100.0, 95.0];
        let b = [105.0, 125.0, 85.0, 104.0, 110.0];
        let c = v(&a, &b, &th);
        assert!((c.delta - 0.05).abs() < 1e-9);
        let ci = c.ci.unwrap();
        assert!(ci.lo < 1.01 && ci.hi > 1.05, "{ci:?}");
        assert_eq!(c.verdict, Verdict::SoftGo);
        // The mirror image is not a NO-GO either.
        assert_eq!(v(&b, &a, &th).verdict, Verdict::SoftGo);
        // Two runs: no interval, never GO however large the change.
        let c = v(&[100.0, 100.0], &[200.0, 200.0], &th);
        assert_eq!(c.verdict, Verdict::SoftGo);
        assert!(!c.ci.unwrap().bounded());
        // A drift that hits both sides alike cancels out in pairs: B is 3 %
        // faster in every back-to-back pair while the machine slows by 30 %.
        let a = [100.0, 90.0, 80.0, 75.0, 70.0];
        let b = a.map(|x| x * 1.03);
        assert_eq!(v(&a, &b, &th).verdict, Verdict::Go);
    }

    #[test]
    fn overall_rules() {
        let th = Thresholds::default();
        let a = [100.0, 100.5, 99.5];
        let up = v(&a, &a.map(|x| x * 1.03), &th);
        let flat = v(&a, &a, &th);
        let down = v(&a, &a.map(|x| x * 0.95), &th);
        assert_eq!(up.verdict, Verdict::Go);
        assert_eq!(down.verdict, Verdict::NoGo);
        let o = overall(&[up.clone(), up.clone()], 0, &th);
        assert_eq!(o.verdict, Verdict::Go);
        assert!(o.geomean_ci.unwrap().lo >= 1.01);
        // +3 % and a noisy 0 %: the geomean is +1.5 % (above the threshold),
        // but its interval reaches below +1 %: SOFT GO.
        let noisy = v(&a, &[97.0, 103.0, 100.0], &th);
        assert_eq!(noisy.verdict, Verdict::SoftGo);
        let o = overall(&[up.clone(), noisy], 0, &th);
        assert!((o.geomean_ratio.unwrap() - 1.03f64.sqrt()).abs() < 1e-9);
        assert_eq!(o.verdict, Verdict::SoftGo, "{}", o.reason);
        assert_eq!(
            overall(&[flat.clone(), flat.clone()], 0, &th).verdict,
            Verdict::SoftGo
        );
        assert_eq!(
            overall(&[up.clone(), down.clone()], 0, &th).verdict,
            Verdict::NoGo
        );
        assert_eq!(
            overall(std::slice::from_ref(&up), 1, &th).verdict,
            Verdict::NoGo
        );
        assert_eq!(overall(&[], 0, &th).verdict, Verdict::NoGo);
        let inv = invalid_cell("r", 8, &runs(&a), &runs(&a), "B: remote rate 0.45 vs 0.90");
        let o = overall(&[up.clone(), inv.clone()], 0, &th);
        assert_eq!(o.verdict, Verdict::Invalid);
        assert!(o.reason.contains("r t8"));
        assert_eq!(overall(&[down, inv], 0, &th).verdict, Verdict::NoGo);
        // Stricter threshold: +3 % is no longer a GO at 5 %.
        let th5 = Thresholds { min_change: 0.05 };
        let up5 = v(&a, &a.map(|x| x * 1.03), &th5);
        assert_eq!(up5.verdict, Verdict::SoftGo);
        assert_eq!(overall(&[up5], 0, &th5).verdict, Verdict::SoftGo);
    }

    #[test]
    fn verdict_serialises_as_label() {
        assert_eq!(
            serde_json::to_string(&Verdict::SoftGo).unwrap(),
            "\"SOFT GO\""
        );
        let v: Verdict = serde_json::from_str("\"NO-GO\"").unwrap();
        assert_eq!(v, Verdict::NoGo);
        assert_eq!(
            serde_json::to_string(&Verdict::Invalid).unwrap(),
            "\"INVALID\""
        );
    }
}
