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
}
