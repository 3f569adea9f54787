//! A/B verdicts: GO / SOFT GO / NO-GO from the medians of interleaved runs.
//!
//! The rule, per (workload, threads) cell, with `t` the threshold (default 1 %):
//!
//! * `delta = median(B) / median(A) - 1` (throughput, higher is better);
//! * `noise = noise(A) + noise(B)`, where a side's noise is half its
//!   relative range (fewer than 5 runs) or half its relative IQR (5 runs or
//!   more); the sum, because both medians wobble (an A/A run on a loaded
//!   machine must come out SOFT GO, not GO);
//! * `band = max(t, noise)`;
//! * **GO** if `delta >= +band`, **NO-GO** if `delta <= -band`, **SOFT GO** otherwise
//!   (the difference is inside the threshold or inside the noise).
//!
//! Overall: **NO-GO** if any cell is NO-GO or B failed/corrupted any run;
//! **GO** if no cell is NO-GO and the geometric mean of B/A over all cells is
//! at least `1 + t`; **SOFT GO** otherwise.

use serde::{Deserialize, Serialize};

use crate::stats::{geomean, Stat};

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
        format!(
            "per cell: delta = median(B)/median(A) - 1, band = max({t:.1}%, noise(A) + noise(B)) where a side's \
             noise = half its relative spread (range below 5 runs, IQR from 5 runs); \
             GO if delta >= +band, NO-GO if delta <= -band, SOFT GO otherwise. Overall: NO-GO if any \
             cell is NO-GO or B failed a run; GO if the geomean of B/A >= +{t:.1}%; SOFT GO otherwise."
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellVerdict {
    pub workload: String,
    pub threads: u32,
    pub a: Stat,
    pub b: Stat,
    pub delta: f64,
    pub noise: f64,
    pub band: f64,
    pub verdict: Verdict,
    /// Why the cell is INVALID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn cell_verdict(
    workload: &str,
    threads: u32,
    a: &Stat,
    b: &Stat,
    th: &Thresholds,
) -> CellVerdict {
    let delta = if a.median > 0.0 {
        b.median / a.median - 1.0
    } else {
        0.0
    };
    let noise = a.rel_noise() + b.rel_noise();
    let band = th.min_change.max(noise);
    // A tiny epsilon so that exactly +1.0 % counts as reaching the threshold
    // despite floating-point rounding.
    let eps = 1e-12;
    let verdict = if delta >= band - eps {
        Verdict::Go
    } else if delta <= -band + eps {
        Verdict::NoGo
    } else {
        Verdict::SoftGo
    };
    CellVerdict {
        workload: workload.into(),
        threads,
        a: *a,
        b: *b,
        delta,
        noise,
        band,
        verdict,
        note: None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overall {
    pub verdict: Verdict,
    /// Geometric mean of median(B)/median(A) over all cells.
    pub geomean_ratio: Option<f64>,
    pub reason: String,
}

/// The verdict of a cell that cannot be compared: `why` says which side missed
/// the asked remote share.
pub fn invalid_cell(workload: &str, threads: u32, a: &Stat, b: &Stat, why: &str) -> CellVerdict {
    CellVerdict {
        workload: workload.into(),
        threads,
        a: *a,
        b: *b,
        delta: 0.0,
        noise: 0.0,
        band: 0.0,
        verdict: Verdict::Invalid,
        note: Some(why.to_string()),
    }
}

pub fn overall(cells: &[CellVerdict], b_failures: usize, th: &Thresholds) -> Overall {
    let invalid: Vec<String> = cells
        .iter()
        .filter(|c| c.verdict == Verdict::Invalid)
        .map(|c| format!("{} t{}", c.workload, c.threads))
        .collect();
    let cells: Vec<CellVerdict> = cells
        .iter()
        .filter(|c| c.verdict != Verdict::Invalid)
        .cloned()
        .collect();
    let cells = &cells[..];
    let ratios: Vec<f64> = cells.iter().map(|c| 1.0 + c.delta).collect();
    let gm = geomean(&ratios);
    let nogo: Vec<String> = cells
        .iter()
        .filter(|c| c.verdict == Verdict::NoGo)
        .map(|c| format!("{} t{} ({:+.1}%)", c.workload, c.threads, c.delta * 100.0))
        .collect();
    if b_failures > 0 {
        return Overall {
            verdict: Verdict::NoGo,
            geomean_ratio: gm,
            reason: format!("B failed or corrupted {b_failures} run(s)"),
        };
    }
    if cells.is_empty() && invalid.is_empty() {
        return Overall {
            verdict: Verdict::NoGo,
            geomean_ratio: None,
            reason: "no comparable cells".into(),
        };
    }
    if !nogo.is_empty() {
        return Overall {
            verdict: Verdict::NoGo,
            geomean_ratio: gm,
            reason: format!("regression beyond the band in: {}", nogo.join(", ")),
        };
    }
    if !invalid.is_empty() {
        return Overall {
            verdict: Verdict::Invalid,
            geomean_ratio: gm,
            reason: format!(
                "INVALID cell(s), where a side missed the asked remote share and did other work: {}",
                invalid.join(", ")
            ),
        };
    }
    match gm {
        Some(g) if g >= 1.0 + th.min_change - 1e-12 => Overall {
            verdict: Verdict::Go,
            geomean_ratio: gm,
            reason: format!(
                "geomean B/A = {:+.2}% and no cell regresses beyond its band",
                (g - 1.0) * 100.0
            ),
        },
        Some(g) => Overall {
            verdict: Verdict::SoftGo,
            geomean_ratio: gm,
            reason: format!(
                "no regression beyond the band, but geomean B/A = {:+.2}% < +{:.1}%",
                (g - 1.0) * 100.0,
                th.min_change * 100.0
            ),
        },
        None => Overall {
            verdict: Verdict::SoftGo,
            geomean_ratio: None,
            reason: "no geomean (zero throughput)".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: &[f64]) -> Stat {
        Stat::of(v).unwrap()
    }

    #[test]
    fn go_softgo_nogo_quiet_data() {
        let th = Thresholds::default();
        let a = st(&[100.0, 100.0, 100.0]);
        assert_eq!(
            cell_verdict("w", 1, &a, &st(&[102.0, 102.0, 102.0]), &th).verdict,
            Verdict::Go
        );
        assert_eq!(
            cell_verdict("w", 1, &a, &st(&[101.0, 101.0, 101.0]), &th).verdict,
            Verdict::Go
        );
        assert_eq!(
            cell_verdict("w", 1, &a, &st(&[100.5, 100.5, 100.5]), &th).verdict,
            Verdict::SoftGo
        );
        assert_eq!(
            cell_verdict("w", 1, &a, &st(&[99.5, 99.5, 99.5]), &th).verdict,
            Verdict::SoftGo
        );
        assert_eq!(
            cell_verdict("w", 1, &a, &st(&[98.0, 98.0, 98.0]), &th).verdict,
            Verdict::NoGo
        );
    }

    #[test]
    fn noise_widens_the_band() {
        let th = Thresholds::default();
        // A spans 90..110: noise = 10 %, so +5 % is within noise.
        let a = st(&[90.0, 100.0, 110.0]);
        let v = cell_verdict("w", 8, &a, &st(&[105.0, 105.0, 105.0]), &th);
        assert_eq!(v.verdict, Verdict::SoftGo);
        assert!((v.band - 0.10).abs() < 1e-12);
        let v = cell_verdict("w", 8, &a, &st(&[85.0, 85.0, 85.0]), &th);
        assert_eq!(v.verdict, Verdict::NoGo);
    }

    #[test]
    fn both_sides_noise_adds_up() {
        let th = Thresholds::default();
        let a = st(&[95.0, 100.0, 105.0]); // 5 %
        let b = st(&[104.0, 108.0, 112.0]); // ~3.7 %
        let v = cell_verdict("w", 1, &a, &b, &th);
        assert!((v.noise - (0.05 + 4.0 / 108.0)).abs() < 1e-9);
        assert_eq!(v.verdict, Verdict::SoftGo); // +8 % < 8.7 % band
    }

    #[test]
    fn overall_rules() {
        let th = Thresholds::default();
        let a = st(&[100.0; 3]);
        let up = cell_verdict("x", 1, &a, &st(&[103.0; 3]), &th);
        let flat = cell_verdict("y", 1, &a, &st(&[100.0; 3]), &th);
        let down = cell_verdict("z", 1, &a, &st(&[95.0; 3]), &th);
        assert_eq!(
            overall(&[up.clone(), flat.clone()], 0, &th).verdict,
            Verdict::Go
        );
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
        // Stricter threshold: +3 % is no longer a GO overall at 5 %.
        let th5 = Thresholds { min_change: 0.05 };
        let up5 = cell_verdict("x", 1, &a, &st(&[103.0; 3]), &th5);
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
    }
}
