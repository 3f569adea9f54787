//! The history commands of the CLI: `history-append`, `readme`,
//! `readme-check`, and the regression part of `gate`. Kept out of main.rs so
//! the CLI's parser can change without touching them; they read files and
//! print, the judging is in gate.rs, history.rs and view_model.rs.

use std::path::{Path, PathBuf};

use crate::chooser;
use crate::gate::{self, GateCheck, GateConfig};
use crate::history::{self, Record};
use crate::layout::Layout;
use crate::schema::Results;

fn opt(v: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    if let Some(i) = v.iter().position(|a| a == name) {
        if i + 1 >= v.len() {
            return Err(format!("{name} needs a value"));
        }
        let val = v.remove(i + 1);
        v.remove(i);
        return Ok(Some(val));
    }
    let eq = format!("{name}=");
    if let Some(i) = v.iter().position(|a| a.starts_with(&eq)) {
        return Ok(Some(v.remove(i)[eq.len()..].to_string()));
    }
    Ok(None)
}

fn flag(v: &mut Vec<String>, name: &str) -> bool {
    match v.iter().position(|a| a == name) {
        Some(i) => {
            v.remove(i);
            true
        }
        None => false,
    }
}

fn finish(v: &[String]) -> Result<(), String> {
    match v.first() {
        Some(a) => Err(format!("unexpected argument '{a}'")),
        None => Ok(()),
    }
}

fn read_results(path: &Path) -> Result<Results, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Results::from_json(&text)
}

struct Paths {
    layout: Layout,
    history: PathBuf,
}

fn paths(v: &mut Vec<String>) -> Result<Paths, String> {
    let root = opt(v, "--root")?;
    let layout = Layout::discover(root.as_deref().map(Path::new));
    let history = opt(v, "--history")?
        .map(PathBuf::from)
        .unwrap_or_else(|| history::default_path(&layout.root));
    Ok(Paths { layout, history })
}

/// `history-append`: one record of a results file (real programs left out:
/// they have no peers-relative ratio the trends use) appended to the history.
pub fn append(v: &mut Vec<String>) -> Result<u8, String> {
    let p = paths(v)?;
    let results = opt(v, "--results")?
        .map(PathBuf::from)
        .unwrap_or_else(|| p.layout.default_out().join("results.json"));
    finish(v)?;
    let r = read_results(&results)?;
    let rec = Record::from_results(&crate::programs::without_programs(&r));
    history::append(&p.history, &rec)?;
    println!(
        "history: appended {} ({} cells, metric {}) to {}",
        rec.rev,
        rec.cells.len(),
        rec.metric.name(),
        p.history.display()
    );
    Ok(0)
}

fn last_record(path: &Path) -> Result<Record, String> {
    history::load(path)?
        .pop()
        .ok_or_else(|| format!("{}: no history record", path.display()))
}

/// `readme [--write]`: print (or write into the README between the markers)
/// the lane figures generated from the history's last record, and with
/// `--write` also gate.toml's generated rules for them.
pub fn readme(v: &mut Vec<String>) -> Result<u8, String> {
    let p = paths(v)?;
    let write = flag(v, "--write");
    let readme = opt(v, "--readme")?
        .map(PathBuf::from)
        .unwrap_or_else(|| p.layout.root.join("README.md"));
    finish(v)?;
    let block = chooser::readme_block(&last_record(&p.history)?);
    if !write {
        println!("{block}");
        return Ok(0);
    }
    let text =
        std::fs::read_to_string(&readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let cur = chooser::readme_current(&text).ok_or_else(|| {
        format!(
            "{}: no lane-figures markers (add `{}` and `{}` where the block goes)",
            readme.display(),
            chooser::README_BEGIN,
            chooser::README_END
        )
    })?;
    let new = text.replacen(cur, &block, 1);
    std::fs::write(&readme, new).map_err(|e| format!("{}: {e}", readme.display()))?;
    println!("readme: lane figures written to {}", readme.display());
    let gt = p.layout.gate_toml();
    let toml = std::fs::read_to_string(&gt).map_err(|e| format!("{}: {e}", gt.display()))?;
    let cur = chooser::gate_current(&toml)
        .ok_or_else(|| format!("{}: no generated-rules markers", gt.display()))?;
    let new = toml.replacen(cur, &chooser::gate_rules(&last_record(&p.history)?), 1);
    GateConfig::parse(&new)?;
    std::fs::write(&gt, new).map_err(|e| format!("{}: {e}", gt.display()))?;
    println!("readme: gate rules for them written to {}", gt.display());
    Ok(0)
}

/// The problems `readme-check` reports: the README block differs from the one
/// the record generates; a claimed win has no gate rule at >= 1.0x; a gate
/// floor below 0.5x is not a trade the README states in numbers.
pub fn check(readme: &str, rec: &Record, cfg: &GateConfig) -> Vec<String> {
    let mut bad = Vec::new();
    let want = chooser::readme_block(rec);
    match chooser::readme_current(readme) {
        None => bad.push("README has no lane-figures block".to_string()),
        Some(cur) if cur != want => bad.push(format!(
            "README lane figures differ from the last history record ({}): run `bench-matrix readme --write`\n--- README\n{cur}\n--- generated\n{want}",
            rec.rev
        )),
        Some(_) => {}
    }
    let claims = chooser::parse_claims(&want);
    for (lane, w, t, r) in &claims.wins {
        match cfg.rule_for(lane, w, *t) {
            Some(rule) if rule.min_ratio >= 1.0 => {}
            Some(rule) => bad.push(format!(
                "README claims {lane} wins {w} at {t} threads ({r:.2}x) but gate.toml's rule floors it at {:.2}x (< 1.0)",
                rule.min_ratio
            )),
            None => bad.push(format!(
                "README claims {lane} wins {w} at {t} threads ({r:.2}x) but no gate.toml rule covers it"
            )),
        }
    }
    for (i, rule) in cfg.throughput.iter().enumerate() {
        if rule.min_ratio >= 0.5 {
            continue;
        }
        let stated = claims.trades.iter().any(|(l, w, t, _)| {
            rule.lane
                .as_deref()
                .is_some_and(|x| gate::lane_key(x) == gate::lane_key(l))
                && rule.workload.as_deref() == Some(w.as_str())
                && cfg.rule_for(l, w, *t) == Some(rule)
        });
        if !stated {
            bad.push(format!(
                "gate.toml throughput rule {} (lane {:?}, workload {:?}, threads {:?}) floors at {:.2}x < 0.5x, \
                 but the README states no such trade in numbers",
                i + 1,
                rule.lane,
                rule.workload,
                rule.threads,
                rule.min_ratio
            ));
        }
    }
    bad
}

/// `readme-check`: exit 1 with the problems of [`check`].
pub fn readme_check(v: &mut Vec<String>) -> Result<u8, String> {
    let p = paths(v)?;
    let readme = opt(v, "--readme")?
        .map(PathBuf::from)
        .unwrap_or_else(|| p.layout.root.join("README.md"));
    let th = opt(v, "--thresholds")?
        .map(PathBuf::from)
        .unwrap_or_else(|| p.layout.gate_toml());
    finish(v)?;
    let text =
        std::fs::read_to_string(&readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let cfg_text = std::fs::read_to_string(&th).map_err(|e| format!("{}: {e}", th.display()))?;
    let cfg = GateConfig::parse(&cfg_text)?;
    let rec = last_record(&p.history)?;
    let bad = check(&text, &rec, &cfg);
    for b in &bad {
        println!("readme-check: {b}");
    }
    if bad.is_empty() {
        println!(
            "readme-check: OK — README lane figures match {} (last record of {}); gate.toml covers every claim",
            rec.rev,
            p.history.display()
        );
        Ok(0)
    } else {
        Ok(1)
    }
}

/// The gate's regression checks: the results against the previous point of
/// the history (`--history FILE`, default the repository's; `none` = off).
/// Prints why none are made when there is no comparable point.
pub fn regression_checks(
    results: &Results,
    cfg: &GateConfig,
    hist: Option<&str>,
    root: &Path,
) -> Result<Vec<GateCheck>, String> {
    if hist == Some("none") {
        println!("regression: off (--history none)");
        return Ok(Vec::new());
    }
    let path = hist
        .map(PathBuf::from)
        .unwrap_or_else(|| history::default_path(root));
    let h = history::load(&path)?;
    let cur = Record::from_results(&crate::programs::without_programs(results));
    match history::previous_point(&h, &cur) {
        Ok(prev) => {
            println!(
                "regression: against {} ({}, {}) from {}; noise band {:.0}%",
                prev.rev,
                crate::markdown::fmt_date(prev.date_unix),
                prev.machine.hostname,
                path.display(),
                cfg.regression.noise_band * 100.0
            );
            Ok(gate::evaluate_regression(prev, &cur, &cfg.regression))
        }
        Err(why) => {
            println!("regression: not checked: {why} ({})", path.display());
            Ok(Vec::new())
        }
    }
}
