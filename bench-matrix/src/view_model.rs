//! The dashboard's view model: what the pages say, computed without drawing
//! anything. Cells and their ratios to the best (throughput) or lowest (RSS)
//! peer with significance, the winner of each cell, each lane's trend across
//! the history, the speed-vs-memory points with their Pareto front, and the
//! "which lane for which program" choice. Pure functions of a [`Record`] (a
//! results file is turned into one by [`Record::from_results`]) and the
//! history; SVG and HTML live in dashboard.rs and chooser.rs, which must not
//! compute a ratio or a verdict themselves.

use crate::history::{change, Change, HistCell, Record};
use crate::stats::{geomean, ratio_ci, RatioCi};

/// What a ratio's interval says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// hz3 is significantly better (faster, or lower RSS).
    Win,
    /// A peer is significantly better.
    Loss,
    /// The interval includes 1.
    Noise,
    /// Too few runs for an interval.
    NoInterval,
}

impl Sig {
    /// `better_above`: true for throughput (ratio > 1 is good), false for RSS.
    pub fn of(ci: &RatioCi, better_above: bool) -> Sig {
        if !ci.bounded() {
            Sig::NoInterval
        } else if !ci.significant() {
            Sig::Noise
        } else if (ci.ratio >= 1.0) == better_above {
            Sig::Win
        } else {
            Sig::Loss
        }
    }
}

/// One lane cell of a scoreboard: lane ÷ reference peer.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioCell {
    pub lane: String,
    pub workload: String,
    pub threads: u32,
    pub peer: String,
    pub ci: RatioCi,
    pub sig: Sig,
}

/// Which scoreboard a ratio belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Throughput,
    PeakRss,
    SettledRss,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Throughput => "throughput",
            Measure::PeakRss => "peak",
            Measure::SettledRss => "settled",
        }
    }
    fn better_above(self) -> bool {
        self == Measure::Throughput
    }
    fn rss(self, c: &HistCell) -> Option<f64> {
        match self {
            Measure::Throughput => None,
            Measure::PeakRss => c.peak_rss_kib,
            Measure::SettledRss => c.settled_rss_kib,
        }
    }
    fn rss_runs(self, c: &HistCell) -> &[(u32, f64)] {
        match self {
            Measure::Throughput => &[],
            Measure::PeakRss => &c.peak_runs,
            Measure::SettledRss => &c.settled_runs,
        }
    }
}

/// The ratio of a lane cell under a measure. Throughput: ÷ the fastest peer,
/// interval over paired runs. RSS: ÷ the lowest peer, interval over the
/// runs that measured it (lower is better).
pub fn ratio_cell(
    rec: &Record,
    lane: &str,
    workload: &str,
    threads: u32,
    m: Measure,
) -> Option<RatioCell> {
    let (peer, ci) = match m {
        Measure::Throughput => rec.ratio_to_best_peer(lane, workload, threads)?,
        _ => {
            let mine = rec.cell(workload, threads, lane).filter(|c| c.valid)?;
            m.rss(mine)?;
            let (p, _) = rec.lowest_peer_by(workload, threads, |c| m.rss(c))?;
            let ci = ratio_ci(m.rss_runs(p), m.rss_runs(mine))?;
            (p.allocator.clone(), ci)
        }
    };
    Some(RatioCell {
        lane: lane.into(),
        workload: workload.into(),
        threads,
        peer,
        sig: Sig::of(&ci, m.better_above()),
        ci,
    })
}

/// The fastest allocator of a cell and its lead over the runner-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Winner {
    pub workload: String,
    pub threads: u32,
    pub name: String,
    pub median: f64,
    /// median / runner-up's median - 1; `None` when only one allocator ran.
    pub lead: Option<f64>,
}

pub fn winner(rec: &Record, workload: &str, threads: u32) -> Option<Winner> {
    let mut v: Vec<&HistCell> = rec
        .cells
        .iter()
        .filter(|c| c.valid && c.workload == workload && c.threads == threads)
        .collect();
    v.sort_by(|a, b| b.median.total_cmp(&a.median));
    let first = v.first()?;
    Some(Winner {
        workload: workload.into(),
        threads,
        name: first.allocator.clone(),
        median: first.median,
        lead: v
            .get(1)
            .filter(|s| s.median > 0.0)
            .map(|s| first.median / s.median - 1.0),
    })
}

/// One point of a lane's trend: its ratio to the best peer in one record,
/// and how it moved from the previous point that has the cell.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub rev: String,
    pub date_unix: u64,
    pub ratio: RatioCi,
    pub change: Option<Change>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub lane: String,
    pub workload: String,
    pub threads: u32,
    pub points: Vec<TrendPoint>,
}

impl Trend {
    /// Points whose change from the previous one is significant.
    pub fn significant_changes(&self) -> usize {
        self.points
            .iter()
            .filter(|p| p.change.is_some_and(|c| c.significant))
            .count()
    }
}

/// Each lane's trend at (workload, threads) over `history` (oldest first).
/// Only records with the same metric as the last one are used, so a line
/// never mixes wall-clock and CPU ratios.
pub fn trends(history: &[Record], workload: &str, threads: u32, noise_band: f64) -> Vec<Trend> {
    let Some(last) = history.last() else {
        return Vec::new();
    };
    let recs: Vec<&Record> = history.iter().filter(|r| r.metric == last.metric).collect();
    let mut lanes: Vec<String> = Vec::new();
    for r in &recs {
        for l in r.lanes() {
            if !lanes.contains(&l) {
                lanes.push(l);
            }
        }
    }
    let mut out = Vec::new();
    for lane in lanes {
        let mut points = Vec::new();
        let mut prev: Option<&Record> = None;
        for r in &recs {
            let Some((_, ci)) = r.ratio_to_best_peer(&lane, workload, threads) else {
                continue;
            };
            let ch = prev.and_then(|p| change(p, r, &lane, workload, threads, noise_band));
            points.push(TrendPoint {
                rev: r.rev.clone(),
                date_unix: r.date_unix,
                ratio: ci,
                change: ch,
            });
            prev = Some(r);
        }
        if !points.is_empty() {
            out.push(Trend {
                lane,
                workload: workload.into(),
                threads,
                points,
            });
        }
    }
    out
}

/// One allocator at one thread count on the speed-vs-memory plane.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    pub allocator: String,
    pub is_lane: bool,
    pub threads: u32,
    /// Median throughput ÷ the best peer's.
    pub speed: f64,
    /// Median peak / settled RSS ÷ the lowest peer's.
    pub peak: Option<f64>,
    pub settled: Option<f64>,
    /// On the Pareto front of its thread count (no other allocator is at
    /// least as fast with at most as much peak RSS and better in one).
    pub pareto: bool,
}

/// Every valid allocator cell of `workload`, with the Pareto front (speed up,
/// peak RSS down) marked per thread count.
pub fn scatter(rec: &Record, workload: &str) -> Vec<ScatterPoint> {
    let mut out: Vec<ScatterPoint> = Vec::new();
    for (w, t) in rec.cells_wt() {
        if w != workload {
            continue;
        }
        let Some(best) = rec.best_peer(&w, t).filter(|b| b.median > 0.0) else {
            continue;
        };
        let low_peak = rec.lowest_peer_by(&w, t, |c| c.peak_rss_kib).map(|x| x.1);
        let low_settled = rec
            .lowest_peer_by(&w, t, |c| c.settled_rss_kib)
            .map(|x| x.1);
        let start = out.len();
        for c in rec
            .cells
            .iter()
            .filter(|c| c.valid && c.workload == w && c.threads == t)
        {
            out.push(ScatterPoint {
                allocator: c.allocator.clone(),
                is_lane: c.kind == "lane",
                threads: t,
                speed: c.median / best.median,
                peak: c.peak_rss_kib.zip(low_peak).map(|(a, b)| a / b),
                settled: c.settled_rss_kib.zip(low_settled).map(|(a, b)| a / b),
                pareto: false,
            });
        }
        mark_pareto(&mut out[start..]);
    }
    out
}

/// Mark the points no other point dominates (at least as fast, at most as
/// much peak RSS, strictly better in one). Points without peak RSS are
/// judged on speed alone against each other.
pub fn mark_pareto(pts: &mut [ScatterPoint]) {
    let key: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| (p.speed, p.peak.unwrap_or(f64::INFINITY)))
        .collect();
    for (i, p) in pts.iter_mut().enumerate() {
        let (s, m) = key[i];
        p.pareto = !key
            .iter()
            .enumerate()
            .any(|(j, &(s2, m2))| j != i && s2 >= s && m2 <= m && (s2 > s || m2 < m));
    }
}

/// The lane to pick for one workload: the fastest lane and the leanest lane
/// (geometric means over the thread counts).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub workload: String,
    /// (lane, geomean speed ÷ best peer).
    pub fastest: Option<(String, f64)>,
    /// (lane, geomean peak RSS ÷ lowest peer).
    pub leanest: Option<(String, f64)>,
    /// Lanes on the Pareto front at every thread count measured.
    pub always_pareto: Vec<String>,
}

pub fn choose(rec: &Record, workload: &str) -> Choice {
    let pts = scatter(rec, workload);
    let mut fastest: Option<(String, f64)> = None;
    let mut leanest: Option<(String, f64)> = None;
    let mut always = Vec::new();
    for lane in rec.lanes() {
        let mine: Vec<&ScatterPoint> = pts.iter().filter(|p| p.allocator == lane).collect();
        if mine.is_empty() {
            continue;
        }
        if let Some(g) = geomean(&mine.iter().map(|p| p.speed).collect::<Vec<_>>()) {
            if fastest.as_ref().is_none_or(|f| g > f.1) {
                fastest = Some((lane.clone(), g));
            }
        }
        let peaks: Vec<f64> = mine.iter().filter_map(|p| p.peak).collect();
        if peaks.len() == mine.len() {
            if let Some(g) = geomean(&peaks) {
                if leanest.as_ref().is_none_or(|f| g < f.1) {
                    leanest = Some((lane.clone(), g));
                }
            }
        }
        if mine.iter().all(|p| p.pareto) {
            always.push(lane);
        }
    }
    Choice {
        workload: workload.into(),
        fastest,
        leanest,
        always_pareto: always,
    }
}

/// Workload names in first-seen order.
pub fn workloads(rec: &Record) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for (w, _) in rec.cells_wt() {
        if !v.contains(&w) {
            v.push(w);
        }
    }
    v
}

/// Thread counts in ascending order.
pub fn threads(rec: &Record) -> Vec<u32> {
    let mut v: Vec<u32> = rec.cells.iter().map(|c| c.threads).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{HistMachine, HISTORY_SCHEMA};
    use crate::schema::Metric;

    pub(crate) fn cell(w: &str, t: u32, a: &str, lane: bool, runs: &[f64], peak: f64) -> HistCell {
        let mut v = runs.to_vec();
        v.sort_by(f64::total_cmp);
        HistCell {
            workload: w.into(),
            threads: t,
            allocator: a.into(),
            kind: if lane { "lane" } else { "peer" }.into(),
            median: crate::stats::median(&v).unwrap(),
            lo: v[0],
            hi: v[v.len() - 1],
            runs: runs
                .iter()
                .enumerate()
                .map(|(i, x)| (i as u32, *x))
                .collect(),
            peak_rss_kib: Some(peak),
            settled_rss_kib: Some(peak / 2.0),
            peak_runs: (0..runs.len() as u32).map(|i| (i, peak)).collect(),
            settled_runs: (0..runs.len() as u32).map(|i| (i, peak / 2.0)).collect(),
            valid: true,
        }
    }

    pub(crate) fn rec(rev: &str, date: u64, cells: Vec<HistCell>) -> Record {
        Record {
            history_schema: HISTORY_SCHEMA,
            rev: rev.into(),
            dirty: false,
            date_unix: date,
            machine: HistMachine {
                hostname: "h".into(),
                cpu_model: "c".into(),
                ncpu: 2,
                loadavg_start: 0.0,
                loadavg_end: 0.0,
            },
            metric: Metric::Wall,
            mode: "quick".into(),
            runs: 5,
            pin_cpus: None,
            cells,
        }
    }

    /// fast: 1.2x the best peer (jemalloc), lean: 0.6x speed and half the RSS.
    fn sample(rev: &str, fast_scale: f64) -> Record {
        let j = [100.0, 102.0, 98.0, 101.0, 99.0];
        let f: Vec<f64> = [120.0, 123.0, 118.0, 121.0, 119.0]
            .iter()
            .map(|x| x * fast_scale)
            .collect();
        rec(
            rev,
            1,
            vec![
                cell(
                    "small",
                    8,
                    "glibc",
                    false,
                    &[50.0, 51.0, 49.0, 50.0, 50.0],
                    1000.0,
                ),
                cell("small", 8, "jemalloc", false, &j, 2000.0),
                cell("small", 8, "hz3-fast", true, &f, 1500.0),
                cell(
                    "small",
                    8,
                    "hz3-lean",
                    true,
                    &[60.0, 61.0, 59.0, 60.0, 60.0],
                    500.0,
                ),
            ],
        )
    }

    #[test]
    fn ratios_significance_and_winner() {
        let r = sample("a", 1.0);
        let c = ratio_cell(&r, "hz3-fast", "small", 8, Measure::Throughput).unwrap();
        assert_eq!(c.peer, "jemalloc");
        assert!((c.ci.ratio - 1.2).abs() < 1e-9);
        assert_eq!(c.sig, Sig::Win);
        let l = ratio_cell(&r, "hz3-lean", "small", 8, Measure::Throughput).unwrap();
        assert_eq!(l.sig, Sig::Loss);
        let p = ratio_cell(&r, "hz3-lean", "small", 8, Measure::PeakRss).unwrap();
        assert_eq!(p.peer, "glibc");
        assert!((p.ci.ratio - 0.5).abs() < 1e-9);
        let w = winner(&r, "small", 8).unwrap();
        assert_eq!(w.name, "hz3-fast");
        assert!((w.lead.unwrap() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn noise_is_not_a_win() {
        let mut r = sample("a", 1.0);
        // fast within noise of jemalloc: runs straddle it.
        r.cells[2].runs = [(0, 90.0), (1, 110.0), (2, 95.0), (3, 108.0), (4, 101.0)].to_vec();
        r.cells[2].median = 101.0;
        let c = ratio_cell(&r, "hz3-fast", "small", 8, Measure::Throughput).unwrap();
        assert_eq!(c.sig, Sig::Noise);
    }

    #[test]
    fn trend_marks_a_significant_drop_only() {
        let h = vec![
            sample("a", 1.0),
            sample("b", 1.0),
            sample("c", 0.9),
            sample("d", 0.99),
        ];
        let t = trends(&h, "small", 8, 0.05);
        let fast = t.iter().find(|x| x.lane == "hz3-fast").unwrap();
        assert_eq!(fast.points.len(), 4);
        assert!(fast.points[0].change.is_none());
        assert!(!fast.points[1].change.unwrap().significant);
        let drop = fast.points[2].change.unwrap();
        assert!(drop.significant && drop.ci.ratio < 0.95);
        // +10 % back up is significant too; a 1 % step is inside the band.
        assert!(fast.points[3].change.unwrap().significant);
        let h2 = vec![sample("a", 1.0), sample("b", 0.99)];
        let t2 = trends(&h2, "small", 8, 0.05);
        assert_eq!(t2[0].significant_changes(), 0);
    }

    #[test]
    fn pareto_front_and_choice() {
        let r = sample("a", 1.0);
        let pts = scatter(&r, "small");
        let on: Vec<&str> = pts
            .iter()
            .filter(|p| p.pareto)
            .map(|p| p.allocator.as_str())
            .collect();
        // fast is fastest; lean has the lowest peak; glibc is slower than lean
        // with more RSS (dominated); jemalloc is dominated by fast.
        assert_eq!(on, vec!["hz3-fast", "hz3-lean"]);
        let c = choose(&r, "small");
        assert_eq!(c.fastest.unwrap().0, "hz3-fast");
        assert_eq!(c.leanest.unwrap().0, "hz3-lean");
        assert_eq!(c.always_pareto, vec!["hz3-fast", "hz3-lean"]);
    }

    #[test]
    fn invalid_cells_never_compare() {
        let mut r = sample("a", 1.0);
        r.cells[2].valid = false;
        assert!(ratio_cell(&r, "hz3-fast", "small", 8, Measure::Throughput).is_none());
        assert_eq!(winner(&r, "small", 8).unwrap().name, "jemalloc");
        assert!(scatter(&r, "small")
            .iter()
            .all(|p| p.allocator != "hz3-fast"));
    }
}
