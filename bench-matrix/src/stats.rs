//! Order statistics over the runs of one cell.

use serde::{Deserialize, Serialize};

/// Median and spread of a sample. Quartiles use linear interpolation between
/// order statistics (R's type 7), so for n=1 all fields equal the value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Stat {
    pub n: u32,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
    pub mean: f64,
}

impl Stat {
    /// `None` for an empty sample or one containing NaN.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        Some(Stat {
            n: n as u32,
            median: quantile_sorted(&v, 0.5),
            min: v[0],
            max: v[n - 1],
            q1: quantile_sorted(&v, 0.25),
            q3: quantile_sorted(&v, 0.75),
            mean,
        })
    }

    pub fn of_u64(values: &[u64]) -> Option<Stat> {
        let v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        Stat::of(&v)
    }

    /// Full range relative to the median, e.g. 0.04 = the runs span 4 % of the median.
    pub fn rel_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }

    /// Interquartile range relative to the median.
    pub fn rel_iqr(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.q3 - self.q1) / self.median.abs()
        }
    }

    /// Noise estimate used by verdicts: half the relative spread. With fewer
    /// than 5 runs the quartiles are too close to the median to mean much, so
    /// the full range is used; from 5 runs on, the IQR.
    pub fn rel_noise(&self) -> f64 {
        if self.n < 5 {
            self.rel_range() / 2.0
        } else {
            self.rel_iqr() / 2.0
        }
    }
}

/// Quantile `q` in [0,1] of an ascending slice (type 7 interpolation).
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    assert!(!v.is_empty());
    let q = q.clamp(0.0, 1.0);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Median of an unsorted slice.
pub fn median(values: &[f64]) -> Option<f64> {
    Stat::of(values).map(|s| s.median)
}

/// Geometric mean of positive ratios (used to summarise many workloads).
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|&v| v.is_nan() || v <= 0.0) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

// --------------------------------------------------------- bootstrap ----

/// Seed of every bootstrap: the same runs always give the same interval.
pub const BOOTSTRAP_SEED: u64 = 0x0013_B007_57A7_5EED;
/// Resamples per interval.
pub const BOOTSTRAP_REPS: usize = 4000;
/// Two-sided confidence level of the intervals.
pub const CI_LEVEL: f64 = 0.95;
/// Fewer runs than this on a side give no interval (unbounded: never significant).
pub const CI_MIN_RUNS: usize = 3;

/// `(run index, value)` of each run of one side of a comparison.
pub type Runs = Vec<(u32, f64)>;

/// splitmix64: a small, well-mixed generator; enough for resampling indices.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// A ratio `median(B) / median(A)` with a bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatioCi {
    /// Point estimate: median(B) / median(A) over all runs.
    pub ratio: f64,
    /// Lower and upper bound of the interval (0 and +inf when there are
    /// too few runs for one).
    pub lo: f64,
    pub hi: f64,
    /// Confidence level (0.95).
    pub level: f64,
    /// Whether runs were resampled in pairs (same run index on both sides,
    /// i.e. run back to back by the interleaved runner).
    pub paired: bool,
}

impl RatioCi {
    /// The interval lies entirely above 1 (B better) or below 1 (B worse).
    pub fn significant(&self) -> bool {
        self.lo > 1.0 || self.hi < 1.0
    }
    /// The interval lies entirely at or above `1 + t`.
    pub fn clears_above(&self, t: f64) -> bool {
        self.lo >= 1.0 + t - 1e-12
    }
    /// The interval lies entirely at or below `1 - t`.
    pub fn clears_below(&self, t: f64) -> bool {
        self.hi <= 1.0 - t + 1e-12
    }
    pub fn bounded(&self) -> bool {
        self.hi.is_finite()
    }
    /// "[0.97, 1.05]" or "[no CI: < 3 runs]".
    pub fn describe(&self) -> String {
        if self.bounded() {
            format!("[{:.3}, {:.3}]", self.lo, self.hi)
        } else {
            format!("[no CI: < {CI_MIN_RUNS} runs]")
        }
    }
}

fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    quantile_sorted(v, 0.5)
}

/// `BOOTSTRAP_REPS` resampled values of median(B)/median(A). Runs are
/// resampled in pairs when both sides have the same run indices (the
/// interleaved runner ran them back to back, so a drift of the machine hits
/// both), independently otherwise. `None` when a side has fewer than
/// `CI_MIN_RUNS` runs or a non-positive median.
fn bootstrap_ratios(a: &[(u32, f64)], b: &[(u32, f64)], rng: &mut SplitMix) -> Option<Vec<f64>> {
    if a.len() < CI_MIN_RUNS || b.len() < CI_MIN_RUNS {
        return None;
    }
    if a.iter().chain(b).any(|x| !x.1.is_finite()) {
        return None;
    }
    let mut ai: Vec<&(u32, f64)> = a.iter().collect();
    let mut bi: Vec<&(u32, f64)> = b.iter().collect();
    ai.sort_by_key(|x| x.0);
    bi.sort_by_key(|x| x.0);
    let paired = ai.len() == bi.len() && ai.iter().zip(&bi).all(|(x, y)| x.0 == y.0);
    let mut out = Vec::with_capacity(BOOTSTRAP_REPS);
    let mut sa = vec![0.0; ai.len()];
    let mut sb = vec![0.0; bi.len()];
    for _ in 0..BOOTSTRAP_REPS {
        if paired {
            for k in 0..ai.len() {
                let j = rng.below(ai.len());
                sa[k] = ai[j].1;
                sb[k] = bi[j].1;
            }
        } else {
            for x in sa.iter_mut() {
                *x = ai[rng.below(ai.len())].1;
            }
            for x in sb.iter_mut() {
                *x = bi[rng.below(bi.len())].1;
            }
        }
        let ma = median_of(&mut sa);
        let mb = median_of(&mut sb);
        if ma <= 0.0 {
            return None;
        }
        out.push(mb / ma);
    }
    Some(out)
}

fn is_paired(a: &[(u32, f64)], b: &[(u32, f64)]) -> bool {
    let mut x: Vec<u32> = a.iter().map(|p| p.0).collect();
    let mut y: Vec<u32> = b.iter().map(|p| p.0).collect();
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

fn interval(mut reps: Vec<f64>) -> (f64, f64) {
    reps.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let tail = (1.0 - CI_LEVEL) / 2.0;
    (
        quantile_sorted(&reps, tail),
        quantile_sorted(&reps, 1.0 - tail),
    )
}

/// median(B)/median(A) with a 95 % percentile-bootstrap interval over the
/// runs (fixed seed, `BOOTSTRAP_REPS` resamples), from `(run index, value)`
/// pairs. `None` when a side has no run or A's median is not positive.
pub fn ratio_ci(a: &[(u32, f64)], b: &[(u32, f64)]) -> Option<RatioCi> {
    let ma = median(&a.iter().map(|x| x.1).collect::<Vec<_>>())?;
    let mb = median(&b.iter().map(|x| x.1).collect::<Vec<_>>())?;
    if ma <= 0.0 {
        return None;
    }
    let ratio = mb / ma;
    let mut rng = SplitMix::new(BOOTSTRAP_SEED);
    let (lo, hi) = match bootstrap_ratios(a, b, &mut rng) {
        Some(reps) => interval(reps),
        None => (0.0, f64::INFINITY),
    };
    Some(RatioCi {
        ratio,
        lo: lo.min(ratio),
        hi: hi.max(ratio),
        level: CI_LEVEL,
        paired: is_paired(a, b),
    })
}

/// Geometric mean over cells of median(B)/median(A), with a bootstrap
/// interval: each resample draws every cell's runs anew and takes the
/// geomean of the resampled cell ratios. Unbounded when any cell has too
/// few runs for an interval.
pub fn geomean_ratio_ci(cells: &[(Runs, Runs)]) -> Option<RatioCi> {
    let mut point = Vec::new();
    for (a, b) in cells {
        point.push(ratio_ci(a, b)?.ratio);
    }
    let ratio = geomean(&point)?;
    let mut rng = SplitMix::new(BOOTSTRAP_SEED);
    let mut per_cell = Vec::new();
    for (a, b) in cells {
        match bootstrap_ratios(a, b, &mut rng) {
            Some(r) => per_cell.push(r),
            None => {
                return Some(RatioCi {
                    ratio,
                    lo: 0.0,
                    hi: f64::INFINITY,
                    level: CI_LEVEL,
                    paired: false,
                })
            }
        }
    }
    let reps: Vec<f64> = (0..BOOTSTRAP_REPS)
        .map(|i| {
            let logs: f64 = per_cell.iter().map(|r| r[i].max(1e-300).ln()).sum();
            (logs / per_cell.len() as f64).exp()
        })
        .collect();
    let (lo, hi) = interval(reps);
    Some(RatioCi {
        ratio,
        lo: lo.min(ratio),
        hi: hi.max(ratio),
        level: CI_LEVEL,
        paired: cells.iter().all(|(a, b)| is_paired(a, b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn quartiles_type7() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!((s.min, s.max, s.n), (1.0, 5.0, 5));
        let s = Stat::of(&[10.0, 20.0, 30.0, 40.0]).unwrap();
        assert!((s.q1 - 17.5).abs() < 1e-12);
        assert!((s.q3 - 32.5).abs() < 1e-12);
        assert!((s.mean - 25.0).abs() < 1e-12);
    }

    #[test]
    fn spreads() {
        let s = Stat::of(&[98.0, 100.0, 102.0]).unwrap();
        assert!((s.rel_range() - 0.04).abs() < 1e-12);
        assert!((s.rel_noise() - 0.02).abs() < 1e-12);
        // With 5+ runs the IQR is used, so one outlier does not widen the band.
        let s = Stat::of(&[100.0, 100.0, 100.0, 100.0, 200.0]).unwrap();
        assert_eq!(s.rel_noise(), 0.0);
        assert_eq!(Stat::of(&[0.0, 0.0]).unwrap().rel_range(), 0.0);
    }

    #[test]
    fn geomean_basic() {
        assert!((geomean(&[2.0, 8.0]).unwrap() - 4.0).abs() < 1e-12);
        assert_eq!(geomean(&[1.0, 0.0]), None);
        assert_eq!(geomean(&[]), None);
    }

    fn runs(v: &[f64]) -> Vec<(u32, f64)> {
        v.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect()
    }

    #[test]
    fn bootstrap_ci_separates_clear_differences_only() {
        // B is 10 % faster in every run: the interval is above 1.
        let a = runs(&[100.0, 98.0, 103.0, 101.0, 99.0]);
        let b = runs(&[110.0, 108.0, 113.0, 111.0, 109.0]);
        let ci = ratio_ci(&a, &b).unwrap();
        assert!((ci.ratio - 1.1).abs() < 1e-9);
        assert!(ci.lo > 1.05 && ci.hi < 1.16, "{ci:?}");
        assert!(ci.significant() && ci.paired);
        assert!(ci.clears_above(0.01) && !ci.clears_below(0.01));
        // Same medians +5 %, but the runs overlap widely: not significant.
        let a = runs(&[100.0, 80.0, 120.0, 100.0, 95.0]);
        let b = runs(&[105.0, 125.0, 85.0, 104.0, 110.0]);
        let ci = ratio_ci(&a, &b).unwrap();
        assert!((ci.ratio - 1.05).abs() < 1e-9);
        assert!(ci.lo < 1.0 && ci.hi > 1.0, "{ci:?}");
        assert!(!ci.significant());
        // Fixed seed: the same runs give the same interval.
        assert_eq!(ratio_ci(&a, &b), Some(ci));
        // Unpaired runs (different indices) still get an interval.
        let b2: Vec<(u32, f64)> = b.iter().map(|&(i, x)| (i + 10, x)).collect();
        let ci2 = ratio_ci(&a, &b2).unwrap();
        assert!(!ci2.paired && ci2.bounded());
    }

    #[test]
    fn bootstrap_needs_three_runs() {
        let ci = ratio_ci(&runs(&[100.0, 100.0]), &runs(&[200.0, 200.0])).unwrap();
        assert_eq!(ci.ratio, 2.0);
        assert!(!ci.bounded() && !ci.significant());
        assert!(ratio_ci(&[], &runs(&[1.0])).is_none());
        assert!(ratio_ci(&runs(&[0.0; 3]), &runs(&[1.0; 3])).is_none());
    }

    #[test]
    fn geomean_ci_combines_cells() {
        let up = (runs(&[100.0, 99.0, 101.0]), runs(&[110.0, 109.0, 111.0]));
        let flat = (runs(&[100.0, 99.0, 101.0]), runs(&[100.0, 101.0, 99.0]));
        let g = geomean_ratio_ci(&[up.clone(), up.clone()]).unwrap();
        assert!((g.ratio - 1.1).abs() < 1e-9 && g.lo > 1.05, "{g:?}");
        let g = geomean_ratio_ci(&[up.clone(), flat]).unwrap();
        assert!((g.ratio - 1.1f64.sqrt()).abs() < 1e-9);
        assert!(g.lo < g.ratio && g.hi > g.ratio);
        let few = (runs(&[1.0]), runs(&[2.0]));
        assert!(!geomean_ratio_ci(&[up, few]).unwrap().bounded());
    }
}
