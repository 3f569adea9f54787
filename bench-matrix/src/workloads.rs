//! The matrix's workload cells: which driver workload, which arguments, and
//! how much work per cell in quick and full mode.
//!
//! Budgets are *total* iterations per cell, split evenly over the threads
//! (with a per-thread floor), so a 32-thread cell does about as much work as a
//! 1-thread cell and the quick matrix stays within minutes on 2 cores.
//!
//! Quick budgets were cut to 30-50 % of their former size (issue 13 item 6:
//! the quick matrix, with real programs and a trace replay added, must stay
//! under 6 minutes on 2 cores); cells were kept, iterations trimmed. Each
//! quick run still times 0.05-0.5 s of work, and 3 runs per cell give the
//! bootstrap interval that says whether a difference is noise.

use crate::schema::WorkloadInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quick,
    Full,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
    pub fn default_runs(self) -> u32 {
        match self {
            Mode::Quick => 3,
            Mode::Full => 30,
        }
    }
    /// Per-run timeout in seconds.
    pub fn timeout_s(self) -> u64 {
        match self {
            Mode::Quick => 120,
            Mode::Full => 900,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WorkloadDef {
    pub name: &'static str,
    pub driver: &'static str,
    pub args: &'static [&'static str],
    pub description: &'static str,
    /// Working-set slots per thread (live blocks for malloc_large).
    pub ws: u64,
    pub quick_total: u64,
    pub full_total: u64,
    pub min_per_thread: u64,
    pub in_quick: bool,
}

impl WorkloadDef {
    pub fn total(&self, mode: Mode) -> u64 {
        match mode {
            Mode::Quick => self.quick_total,
            Mode::Full => self.full_total,
        }
    }

    /// Iterations each thread runs in a cell with `threads` threads.
    pub fn iters_per_thread(&self, mode: Mode, threads: u32) -> u64 {
        (self.total(mode) / threads.max(1) as u64).max(self.min_per_thread)
    }

    /// `synthetic` (a driver workload) or `program` (a real program).
    pub fn kind(&self) -> &'static str {
        if crate::programs::is_program(self) {
            "program"
        } else {
            "synthetic"
        }
    }

    pub fn is_remote(&self) -> bool {
        self.driver == "remote"
    }

    pub fn info(&self, mode: Mode) -> WorkloadInfo {
        WorkloadInfo {
            name: self.name.into(),
            driver: self.driver.into(),
            description: self.description.into(),
            args: self.args.iter().map(|s| s.to_string()).collect(),
            iters_total: self.total(mode),
            ws: self.ws,
        }
    }

    /// Full driver command line (without the driver path).
    pub fn driver_args(&self, mode: Mode, threads: u32, seed: u64) -> Vec<String> {
        let driver = if self.name == "cross128" {
            "cross128"
        } else {
            self.driver
        };
        let mut v = vec![
            driver.to_string(),
            "--threads".into(),
            threads.to_string(),
            "--iters".into(),
            self.iters_per_thread(mode, threads).to_string(),
            "--seed".into(),
            seed.to_string(),
        ];
        if self.driver == "malloc_large" {
            v.extend(["--live".into(), self.ws.to_string()]);
        } else {
            v.extend(["--ws".into(), self.ws.to_string()]);
        }
        v.extend(self.args.iter().map(|s| s.to_string()));
        v
    }
}

const M: u64 = 1_000_000;

/// Every workload cell the matrix knows, in display order.
pub const WORKLOADS: &[WorkloadDef] = &[
    WorkloadDef {
        name: "small",
        driver: "small",
        args: &[],
        description: "16 B–2 KiB uniform sizes, random free order over a working set",
        ws: 4096,
        quick_total: 3 * M,
        full_total: 40 * M,
        min_per_thread: 20_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "medium",
        driver: "medium",
        args: &[],
        description: "4–32 KiB uniform sizes, random free order",
        ws: 512,
        quick_total: 3 * M / 2,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "mixed",
        driver: "mixed",
        args: &[],
        description: "16 B–32 KiB uniform sizes, random free order",
        ws: 1024,
        quick_total: 3 * M / 2,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "dist_app",
        driver: "dist_app",
        args: &[],
        description: "application-like sizes: 80% 16–256 B, 15% 257 B–2 KiB, 5% 2–32 KiB",
        ws: 2048,
        quick_total: 3 * M,
        full_total: 40 * M,
        min_per_thread: 20_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "remote_r0_2k",
        driver: "remote",
        args: &["--remote-pct", "0", "--min", "16", "--max", "2048"],
        description: "remote harness, no handoff (R=0), 16 B–2 KiB",
        ws: 2048,
        quick_total: 3 * M,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: false,
    },
    WorkloadDef {
        name: "remote_r50_2k",
        driver: "remote",
        args: &["--remote-pct", "50", "--min", "16", "--max", "2048"],
        description: "50% of frees handed to the next thread via a bounded SPSC ring (full ring: local free; 1 thread: no handoff), 16 B–2 KiB",
        ws: 2048,
        quick_total: 1_200_000,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "remote_r90_2k",
        driver: "remote",
        args: &["--remote-pct", "90", "--min", "16", "--max", "2048"],
        description: "90% of frees handed to the next thread (1 thread: no handoff), 16 B–2 KiB",
        ws: 2048,
        quick_total: 3 * M,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: false,
    },
    WorkloadDef {
        name: "remote_r0_32k",
        driver: "remote",
        args: &["--remote-pct", "0", "--min", "16", "--max", "32768"],
        description: "remote harness, no handoff (R=0), 16 B–32 KiB",
        ws: 1024,
        quick_total: M,
        full_total: 5 * M,
        min_per_thread: 5_000,
        in_quick: false,
    },
    WorkloadDef {
        name: "remote_r50_32k",
        driver: "remote",
        args: &["--remote-pct", "50", "--min", "16", "--max", "32768"],
        description: "50% of frees handed to the next thread (1 thread: no handoff), 16 B–32 KiB",
        ws: 1024,
        quick_total: M,
        full_total: 5 * M,
        min_per_thread: 5_000,
        in_quick: false,
    },
    WorkloadDef {
        name: "remote_r90_32k",
        driver: "remote",
        args: &["--remote-pct", "90", "--min", "16", "--max", "32768"],
        description: "90% of frees handed to the next thread (1 thread: no handoff), 16 B–32 KiB",
        ws: 1024,
        quick_total: 400_000,
        full_total: 5 * M,
        min_per_thread: 5_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "cross128",
        driver: "remote",
        args: &["--remote-pct", "50", "--min", "16", "--max", "131072"],
        description: "remote, 50% handed off, over 16 B–128 KiB: crosses the medium/large boundary (1 thread: no handoff)",
        ws: 512,
        quick_total: 250_000,
        full_total: 3 * M,
        min_per_thread: 4_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "mstress",
        driver: "mstress",
        args: &["--generations", "5", "--keep-pct", "25", "--min", "16", "--max", "4096"],
        description: "5 generations of threads; 25% of each thread's live blocks outlive it and are freed by the next generation",
        ws: 2048,
        quick_total: 3 * M / 2,
        full_total: 15 * M,
        min_per_thread: 10_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "malloc_large",
        driver: "malloc_large",
        args: &["--touch-stride", "65536"],
        description: "5–25 MiB blocks, at most 8 live per thread, one byte touched every 64 KiB",
        ws: 8,
        quick_total: 800,
        full_total: 8000,
        min_per_thread: 40,
        in_quick: true,
    },
    // Classic stress shapes (driver/shapes.rs), issue 13 item 2.
    WorkloadDef {
        name: "server",
        driver: "server",
        args: &["--generations", "4", "--min", "16", "--max", "1024"],
        description: "server simulation: threads replace random blocks of a shared pool (most frees remote), 4 thread generations (churn)",
        ws: 2048,
        quick_total: 300_000,
        full_total: 4 * M,
        min_per_thread: 4_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "prodcons",
        driver: "prodcons",
        args: &["--min", "16", "--max", "2048"],
        description: "producer-consumer: T/2 threads only allocate and hand over, T/2 only free (1 thread: batches)",
        ws: 1024,
        quick_total: 250_000,
        full_total: 4 * M,
        min_per_thread: 4_000,
        in_quick: true,
    },
    // Hoard's cache benchmarks (driver/shapes.rs), issue 15: the false
    // sharing an allocator makes (the program shares nothing).
    WorkloadDef {
        name: "cache_thrash",
        driver: "cache_thrash",
        args: &[],
        description: "cache-thrash: each thread allocates a 1 B object, writes it, frees it, 1000 times; only the allocator can put two threads' objects in one cache line (ops: byte writes)",
        ws: 1,
        quick_total: 60 * M,
        full_total: 600 * M,
        min_per_thread: 1000,
        in_quick: true,
    },
    WorkloadDef {
        name: "cache_scratch",
        driver: "cache_scratch",
        args: &[],
        description: "cache-scratch: as cache_thrash, after each thread frees one of T 1 B objects the main thread allocated back to back (reusing it shares a line with the other threads; ops: byte writes)",
        ws: 1,
        quick_total: 60 * M,
        full_total: 600 * M,
        min_per_thread: 1000,
        in_quick: true,
    },
    // rpmalloc's benchmark (driver/shapes.rs), as mimalloc-bench runs it; issue 15.
    WorkloadDef {
        name: "rptest",
        driver: "rptest",
        args: &["--min", "16", "--max", "16000"],
        description: "rptest: 1000 slots per thread, scattered frees and allocations of 16 B-16 000 B (linear drop-off), every 2nd loop a batch of fresh blocks to the next thread, freed there (ops: mallocs + frees; iterations: loops)",
        ws: 1000,
        quick_total: 4000,
        full_total: 40_000,
        min_per_thread: 50,
        in_quick: true,
    },
    WorkloadDef {
        name: "fs_program",
        driver: "fs_program",
        args: &[],
        description: "false sharing made by the program (formerly fs_active): one thread's consecutive 16 B blocks dealt round-robin to T threads that write them; the allocator can only pad (glibc's 32 B chunks halve the threads per line). Timed: the writing loop",
        ws: 8,
        quick_total: 4 * M,
        full_total: 40 * M,
        min_per_thread: 100_000,
        in_quick: false,
    },
    WorkloadDef {
        name: "fs_passive",
        driver: "fs_passive",
        args: &[],
        description: "passive false sharing: a 16 B block freed by another thread, reallocated and written (timed: the writing loop)",
        ws: 8,
        quick_total: 4 * M,
        full_total: 40 * M,
        min_per_thread: 100_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "leak",
        driver: "leak",
        args: &["--keep-pct", "5", "--min", "16", "--max", "2048"],
        description: "growth with leaks: small churn where 5% of frees are skipped (never freed)",
        ws: 4096,
        quick_total: 400_000,
        full_total: 4 * M,
        min_per_thread: 4_000,
        in_quick: true,
    },
    WorkloadDef {
        name: "realloc",
        driver: "realloc",
        args: &["--min", "16", "--max", "1048576"],
        description: "realloc-heavy growth: vector doubling to 1 MiB, string append, shrink by halves",
        ws: 64,
        quick_total: 1_000,
        full_total: 20_000,
        min_per_thread: 30,
        in_quick: true,
    },
    // Recorded trace replay (driver/trace.rs, tracer/), issue 13 item 2.
    WorkloadDef {
        name: "trace_python3",
        driver: "trace",
        args: &["--trace", "python3"],
        description: "replay of python3's malloc/free trace (tracer/record.sh; 1/11 of objects, as 11 interleaved copies), objects split over the threads",
        ws: 1,
        // Calls replayed per cell: one pass of the built-in trace (~4.7 M calls).
        quick_total: 4_700_000,
        full_total: 47 * M,
        min_per_thread: 1_000,
        in_quick: true,
    },
    // Real programs (programs.rs), issue 13 item 3.
    crate::programs::PROG_SQLITE,
    crate::programs::PROG_PYTHON,
    crate::programs::PROG_LUA,
    crate::programs::PROG_GCC,
    crate::programs::PROG_Z3,
    crate::programs::PROG_GS,
    crate::programs::PROG_REDIS,
];

pub fn find(name: &str) -> Option<&'static WorkloadDef> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// Resolve a `--workloads` list. `remote` expands to every remote_* cell,
/// `quick`/`all` to those sets, `programs`/`synthetic` to the workloads of that kind.
pub fn select(names: Option<&[String]>, mode: Mode) -> Result<Vec<&'static WorkloadDef>, String> {
    let Some(names) = names else {
        return Ok(WORKLOADS
            .iter()
            .filter(|w| mode == Mode::Full || w.in_quick)
            .collect());
    };
    let mut out: Vec<&'static WorkloadDef> = Vec::new();
    for n in names {
        let add: Vec<&'static WorkloadDef> = match n.as_str() {
            "all" => WORKLOADS.iter().collect(),
            "quick" => WORKLOADS.iter().filter(|w| w.in_quick).collect(),
            "remote" => WORKLOADS
                .iter()
                .filter(|w| w.name.starts_with("remote_"))
                .collect(),
            "programs" | "synthetic" => WORKLOADS
                .iter()
                .filter(|w| w.kind() == if n == "programs" { "program" } else { "synthetic" })
                .collect(),
            other => vec![find(other).ok_or_else(|| {
                format!(
                    "unknown workload '{other}' (known: {}, or all/quick/remote/programs/synthetic)",
                    WORKLOADS
                        .iter()
                        .map(|w| w.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?],
        };
        for w in add {
            if !out.iter().any(|x| x.name == w.name) {
                out.push(w);
            }
        }
    }
    // Keep display order.
    out.sort_by_key(|w| WORKLOADS.iter().position(|x| x.name == w.name));
    Ok(out)
}

/// Mean seconds per driver process in the quick matrix on the 2-core
/// machine (timed work plus start-up): 936 processes in 136 s, load 2.8-13.5;
/// see `estimate_s`.
pub const QUICK_PROCESS_S: f64 = 0.15;
/// Of which process start-up, sampler and bookkeeping (not scaled by budget).
pub const PROCESS_OVERHEAD_S: f64 = 0.05;
/// Wall seconds of one real-program run in the quick sizes (programs.rs), on
/// an idle 2-CPU machine: 37 CPU-seconds over 168 runs were measured.
pub const PROGRAM_RUN_S: f64 = 0.3;

/// Rough wall time of a matrix (seconds): per run, the overhead plus the
/// quick timed work scaled by this mode's budget over the quick one, plus the
/// settle time of the last run. On a loaded machine multiply by the load.
pub fn estimate_s(
    workloads: &[&WorkloadDef],
    threads: usize,
    allocators: usize,
    runs: u32,
    mode: Mode,
    settle_ms: u64,
) -> f64 {
    // Driver workloads run in every thread column; a real program only in the
    // smallest one, at about PROGRAM_RUN_S a run whatever the mode.
    let (programs, driver): (Vec<&&WorkloadDef>, Vec<&&WorkloadDef>) = workloads
        .iter()
        .partition(|w| crate::programs::is_program(w));
    let per_cell: f64 = driver
        .iter()
        .map(|w| {
            let scale = w.total(mode) as f64 / w.quick_total.max(1) as f64;
            PROCESS_OVERHEAD_S + (QUICK_PROCESS_S - PROCESS_OVERHEAD_S) * scale
        })
        .sum();
    let program_s = programs.len() as f64 * PROGRAM_RUN_S * (allocators as f64) * runs as f64;
    per_cell * (threads * allocators) as f64 * runs as f64 + program_s + settle_ms as f64 / 1000.0
}

/// Seed of run `r` (0-based): fixed, identical for every allocator.
pub fn seed_for_run(r: u32) -> u64 {
    0x00C0_FFEE_0000 + r as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_split_over_threads_with_floor() {
        let w = find("small").unwrap();
        assert_eq!(w.iters_per_thread(Mode::Quick, 1), 3 * M);
        assert_eq!(w.iters_per_thread(Mode::Quick, 8), 375_000);
        let l = find("malloc_large").unwrap();
        assert_eq!(l.iters_per_thread(Mode::Quick, 8), 100);
        // 800 / 32 = 25 is below the floor of 40 per thread.
        assert_eq!(l.iters_per_thread(Mode::Quick, 32), 40);
    }

    #[test]
    fn selection() {
        let q = select(None, Mode::Quick).unwrap();
        assert!(q.iter().all(|w| w.in_quick));
        assert_eq!(select(None, Mode::Full).unwrap().len(), WORKLOADS.len());
        let r = select(
            Some(&["mstress".into(), "remote".into(), "small".into()]),
            Mode::Quick,
        )
        .unwrap();
        let names: Vec<_> = r.iter().map(|w| w.name).collect();
        assert_eq!(names[0], "small");
        assert_eq!(names.len(), 8);
        assert!(select(Some(&["nope".into()]), Mode::Quick).is_err());
    }

    #[test]
    fn full_matrix_estimate_is_hours() {
        let q = select(None, Mode::Quick).unwrap();
        let f = select(None, Mode::Full).unwrap();
        let quick = estimate_s(&q, 3, 8, 3, Mode::Quick, 2000);
        let full = estimate_s(&f, 3, 8, 30, Mode::Full, 2000);
        // Issue 13: the quick matrix stays under 6 minutes on this machine.
        assert!(quick < 300.0, "quick estimate {quick}");
        assert!(full > 10.0 * quick, "full {full} vs quick {quick}");
    }

    #[test]
    fn driver_args_shape() {
        let a = find("cross128").unwrap().driver_args(Mode::Quick, 8, 7);
        assert_eq!(a[0], "cross128");
        assert!(a.windows(2).any(|p| p[0] == "--max" && p[1] == "131072"));
        let l = find("malloc_large").unwrap().driver_args(Mode::Quick, 1, 7);
        assert!(l.windows(2).any(|p| p[0] == "--live" && p[1] == "8"));
    }
}
