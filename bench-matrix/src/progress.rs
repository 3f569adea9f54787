//! The progress display of a matrix run: an indicatif bar on a terminal; on
//! logs (stdout or stderr not a terminal, or `CI=true`) no bar, one line per
//! 10 %. Also the duration format and ANSI stripping the outputs share.
//!
//! Owns: what is drawn on stderr while runs go on. Must not touch: runs,
//! results (the runner calls `show` / `step` / `note` / `finish`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    /// The bar, when drawing one (a terminal, not CI).
    bar: Option<ProgressBar>,
    last_pct_printed: usize,
    label: String,
}

/// Whether to draw a bar: both stdout and stderr are terminals and `CI` is not `true`.
pub fn bar_wanted() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    !ci && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Progress {
    pub fn new(total: usize, label: &str) -> Progress {
        Progress::with_bar(total, label, bar_wanted())
    }

    pub fn with_bar(total: usize, label: &str, bar: bool) -> Progress {
        let total = total.max(1);
        let bar = bar.then(|| {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} {bar:30.cyan} {pos:>4}/{len} {percent:>3}%  {elapsed}  eta {eta}  {msg:.dim}",
                )
                .expect("valid template")
                .progress_chars("█▉▊▋▌▍▎▏░"),
            );
            b.set_prefix(label.to_string());
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            bar,
            last_pct_printed: usize::MAX,
            label: label.into(),
        }
    }

    /// Show that `what` is about to run.
    pub fn show(&mut self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_message(what.to_string());
            return;
        }
        let pct = self.done * 100 / self.total;
        if pct / 10 == self.last_pct_printed {
            return;
        }
        self.last_pct_printed = pct / 10;
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = if self.done > 0 {
            fmt_dur(elapsed / self.done as f64 * (self.total - self.done) as f64)
        } else {
            "?".into()
        };
        eprintln!(
            "{} {:>3}% ({}/{}) elapsed {} eta {eta}  {what}",
            self.label,
            pct,
            self.done,
            self.total,
            fmt_dur(elapsed),
        );
    }

    pub fn step(&mut self) {
        self.done += 1;
        if let Some(b) = &self.bar {
            b.set_position(self.done as u64);
        }
    }

    /// Print a message without garbling the bar.
    pub fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{}", strip_ansi(msg)),
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!(
            "{} done: {} runs in {}",
            self.label,
            self.done,
            fmt_dur(self.start.elapsed().as_secs_f64())
        );
    }

    /// Runs counted so far.
    pub fn done(&self) -> usize {
        self.done
    }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn fmt_dur(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi() {
        assert_eq!(strip_ansi("\x1b[1;31m!! x\x1b[0m y"), "!! x y");
    }

    #[test]
    fn counts_without_a_bar() {
        let mut p = Progress::with_bar(3, "t", false);
        p.show("a");
        p.step();
        p.note("\x1b[1mnote\x1b[0m");
        p.step();
        assert_eq!(p.done(), 2);
        p.finish();
    }

    #[test]
    fn no_bar_under_ci() {
        // Only this test sets CI; bar_wanted is read nowhere else in tests.
        std::env::set_var("CI", "true");
        assert!(!bar_wanted());
    }
}
