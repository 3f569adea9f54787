//! Running the driver: allocator discovery, one process per run, interleaving,
//! the progress bar, and collecting everything into [`Results`].

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::programs;
use crate::schema::*;
use crate::stats::Stat;
use crate::workloads::{seed_for_run, Mode, WorkloadDef};

/// Debian's peer allocators (packages libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4).
pub const PEERS: &[(&str, &str, &str)] = &[
    (
        "jemalloc",
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "libjemalloc2",
    ),
    (
        "mimalloc",
        "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
        "libmimalloc2.0",
    ),
    (
        "tcmalloc",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
    ),
];

/// The lanes the project defines; each is listed (built or loudly missing).
pub const KNOWN_LANES: &[&str] = &["fast", "scale", "mem_mstress", "mem_large"];

pub const ALL_PEERS: &[&str] = &["glibc", "jemalloc", "mimalloc", "tcmalloc"];

/// Where things are. Lanes are always under `<root>/target/lanes/` (where
/// `cargo xtask build-lanes` puts them, whatever CARGO_TARGET_DIR says).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn discover(explicit_root: Option<&Path>) -> Layout {
        let root = explicit_root
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("BENCH_MATRIX_ROOT").map(PathBuf::from))
            .or_else(|| std::env::current_dir().ok().and_then(|d| find_root(&d)))
            .or_else(|| std::env::current_exe().ok().and_then(|e| find_root(&e)))
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
        Layout { root }
    }

    pub fn lanes_dir(&self) -> PathBuf {
        self.root.join("target").join("lanes")
    }

    pub fn lane_so(&self, lane: &str) -> PathBuf {
        self.lanes_dir()
            .join(lane)
            .join(format!("libhz3_{lane}.so"))
    }

    pub fn default_out(&self) -> PathBuf {
        self.root.join("bench-matrix/results/latest")
    }

    pub fn gate_toml(&self) -> PathBuf {
        self.root.join("bench-matrix/gate.toml")
    }
}

fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("bench-matrix/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The driver binary: next to this executable.
pub fn driver_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let p = exe.with_file_name("hz3-bench-driver");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "driver not found at {} (build it: cargo build --release -p bench-matrix)",
            p.display()
        ))
    }
}

fn fingerprint(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Some(format!("{h:016x}"))
}

pub fn glibc() -> Allocator {
    Allocator {
        name: "glibc".into(),
        kind: AllocKind::System,
        path: None,
        status: AllocStatus::Ok,
        note: "system malloc, no LD_PRELOAD".into(),
        fingerprint: None,
    }
}

pub fn peer(name: &str) -> Option<Allocator> {
    if name == "glibc" || name == "system" {
        return Some(glibc());
    }
    let &(n, path, pkg) = PEERS.iter().find(|p| p.0 == name)?;
    let p = Path::new(path);
    Some(if p.is_file() {
        Allocator {
            name: n.into(),
            kind: AllocKind::Peer,
            path: Some(path.into()),
            status: AllocStatus::Ok,
            note: String::new(),
            fingerprint: fingerprint(p),
        }
    } else {
        Allocator {
            name: n.into(),
            kind: AllocKind::Peer,
            path: Some(path.into()),
            status: AllocStatus::Missing,
            note: format!(
                "{path} not found: install Debian package {pkg} (bench-matrix/setup-peers.sh)"
            ),
            fingerprint: None,
        }
    })
}

pub fn lane(layout: &Layout, lane: &str) -> Allocator {
    let lane = crate::gate::lane_key(lane);
    let so = layout.lane_so(lane);
    let toml = layout.root.join("lanes").join(format!("{lane}.toml"));
    let name = format!("hz3-{lane}");
    if so.is_file() {
        Allocator {
            name,
            kind: AllocKind::Lane,
            path: Some(so.display().to_string()),
            status: AllocStatus::Ok,
            note: lane_info_note(&so),
            fingerprint: fingerprint(&so),
        }
    } else {
        let note = if toml.is_file() {
            format!("{} not built: run `cargo xtask build-lanes`", so.display())
        } else {
            format!(
                "lane not defined (no lanes/{lane}.toml) and {} absent",
                so.display()
            )
        };
        Allocator {
            name,
            kind: AllocKind::Lane,
            path: Some(so.display().to_string()),
            status: AllocStatus::Missing,
            note,
            fingerprint: None,
        }
    }
}

/// Description and build revision from the `lane-info.json` xtask writes beside the .so.
fn lane_info_note(so: &Path) -> String {
    let Some(text) = so
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("lane-info.json")).ok())
    else {
        return String::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return String::new();
    };
    let desc = v.get("description").and_then(|x| x.as_str()).unwrap_or("");
    match v.get("git_rev").and_then(|x| x.as_str()) {
        Some(rev) => format!("{desc} (built from {rev})"),
        None => desc.to_string(),
    }
}

/// Lanes for a run: the requested ones, or every known/defined/built lane.
pub fn lanes(layout: &Layout, requested: Option<&[String]>) -> Vec<Allocator> {
    let mut names: Vec<String> = match requested {
        Some(r) => r
            .iter()
            .map(|s| crate::gate::lane_key(s).to_string())
            .collect(),
        None => {
            let mut v: Vec<String> = KNOWN_LANES.iter().map(|s| s.to_string()).collect();
            // Lanes defined in lanes/*.toml or built under target/lanes/ that we do not know by name.
            if let Ok(rd) = std::fs::read_dir(layout.root.join("lanes")) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "toml") {
                        if let Some(s) = p.file_stem().and_then(|s| s.to_str()) {
                            v.push(s.to_string());
                        }
                    }
                }
            }
            if let Ok(rd) = std::fs::read_dir(layout.lanes_dir()) {
                for e in rd.flatten() {
                    if let Some(s) = e.file_name().to_str() {
                        if layout.lane_so(s).is_file() {
                            v.push(s.to_string());
                        }
                    }
                }
            }
            v
        }
    };
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names.iter().map(|n| lane(layout, n)).collect()
}

/// Resolve an A/B operand: a lane name, a peer name, or a path to a .so.
pub fn resolve_spec(layout: &Layout, spec: &str) -> Result<Allocator, String> {
    if let Some(p) = peer(spec) {
        return Ok(p);
    }
    let path = Path::new(spec);
    if spec.contains('/') || spec.ends_with(".so") || path.is_file() {
        if !path.is_file() {
            return Err(format!("{spec}: no such file"));
        }
        let abs = std::fs::canonicalize(path).map_err(|e| format!("{spec}: {e}"))?;
        let name = abs
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("custom")
            .to_string();
        return Ok(Allocator {
            name,
            kind: AllocKind::Custom,
            path: Some(abs.display().to_string()),
            status: AllocStatus::Ok,
            note: String::new(),
            fingerprint: fingerprint(&abs),
        });
    }
    let l = lane(layout, spec);
    if l.ok() {
        Ok(l)
    } else {
        Err(format!("'{spec}' is not a peer (glibc/jemalloc/mimalloc/tcmalloc), a built lane, or a .so path: {}", l.note))
    }
}

// ----------------------------------------------------------- machine ----

pub fn machine_info() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_kib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (hostname, kernel) = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) == 0 {
            let s = |f: &[libc::c_char]| {
                std::ffi::CStr::from_ptr(f.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            };
            (
                s(&u.nodename),
                format!("{} {}", s(&u.sysname), s(&u.release)),
            )
        } else {
            ("?".into(), "?".into())
        }
    };
    Machine {
        hostname,
        cpu_model,
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        mem_total_kib,
        kernel,
        loadavg_start: loadavg(),
        loadavg_end: 0.0,
    }
}

/// 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

pub fn git_info(root: &Path) -> (String, bool) {
    let rev = Command::new("git")
        .args([
            "-C",
            &root.display().to_string(),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args([
            "-C",
            &root.display().to_string(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    (rev, dirty)
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------- progress ----

pub struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    tty: bool,
    last_pct_printed: usize,
    label: String,
}

impl Progress {
    pub fn new(total: usize, label: &str) -> Progress {
        Progress {
            total: total.max(1),
            done: 0,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_pct_printed: usize::MAX,
            label: label.into(),
        }
    }

    /// Show that `what` is about to run.
    pub fn show(&mut self, what: &str) {
        let pct = self.done * 100 / self.total;
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = if self.done > 0 {
            elapsed / self.done as f64 * (self.total - self.done) as f64
        } else {
            f64::NAN
        };
        let mut err = std::io::stderr().lock();
        if self.tty {
            const W: usize = 30;
            let filled = self.done * W / self.total;
            let bar: String = "█".repeat(filled) + &"░".repeat(W - filled);
            let _ = write!(
                err,
                "\r\x1b[2K\x1b[1m{}\x1b[0m \x1b[36m{bar}\x1b[0m {:>4}/{} {:>3}%  {}  eta {}  \x1b[2m{what}\x1b[0m",
                self.label,
                self.done,
                self.total,
                pct,
                fmt_dur(elapsed),
                if eta.is_nan() { "?".into() } else { fmt_dur(eta) },
            );
            let _ = err.flush();
        } else if pct / 10 != self.last_pct_printed {
            self.last_pct_printed = pct / 10;
            let _ = writeln!(
                err,
                "{} {:>3}% ({}/{}) elapsed {} eta {}  {what}",
                self.label,
                pct,
                self.done,
                self.total,
                fmt_dur(elapsed),
                if eta.is_nan() {
                    "?".into()
                } else {
                    fmt_dur(eta)
                },
            );
        }
    }

    pub fn step(&mut self) {
        self.done += 1;
    }

    /// Print a message without garbling the bar.
    pub fn note(&mut self, msg: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
            let _ = writeln!(err, "{msg}");
        } else {
            let _ = writeln!(err, "{}", strip_ansi(msg));
        }
    }

    pub fn finish(&mut self) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "{} done: {} runs in {}",
            self.label,
            self.done,
            fmt_dur(self.start.elapsed().as_secs_f64())
        );
    }
}

/// Remove ANSI colour sequences (for logs that are not terminals).
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

// ------------------------------------------------------------ one run ----

#[derive(Debug, Clone)]
pub struct Pin {
    /// taskset CPU list for 1-thread cells and for multi-thread cells.
    pub single: String,
    pub multi: String,
}

impl Pin {
    pub fn new(cpus: Option<&str>, ncpu: u32) -> Pin {
        match cpus {
            Some(c) => Pin {
                single: c.into(),
                multi: c.into(),
            },
            None => Pin {
                // One-thread cells on the last CPU (away from CPU 0's interrupts),
                // the others on every CPU (no migration to CPUs that go away).
                single: (ncpu.max(1) - 1).to_string(),
                multi: format!("0-{}", ncpu.max(1) - 1),
            },
        }
    }
    pub fn describe(&self) -> String {
        if self.single == self.multi {
            self.single.clone()
        } else {
            format!("1 thread: cpu {}; more: cpus {}", self.single, self.multi)
        }
    }
}

/// Run the driver once under `alloc` and wait for it to exit. Returns the
/// parsed line, or an error with the exit status and the tail of stderr.
pub fn run_driver(
    driver: &Path,
    alloc: &Allocator,
    args: &[String],
    threads: u32,
    pin: Option<&Pin>,
    timeout: Duration,
) -> Result<String, String> {
    let mut r = Running::spawn(driver, alloc, args, threads, pin)?;
    let line = r.result_line(timeout);
    let end = r.finish(Duration::from_secs(30));
    match (line, end) {
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(l), Ok(_)) => Ok(l),
    }
}

fn tail(s: &str) -> String {
    let t: Vec<&str> = s.lines().rev().take(4).collect();
    t.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// A driver process: its stdout lines arrive on a channel, so the runner can
/// take the result line and leave the process settling (`--settle-ms`) while
/// the next run starts.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    err_t: Option<std::thread::JoinHandle<String>>,
    start: Instant,
}

impl Running {
    pub fn spawn(
        driver: &Path,
        alloc: &Allocator,
        args: &[String],
        threads: u32,
        pin: Option<&Pin>,
    ) -> Result<Running, String> {
        let mut cmd = match pin {
            Some(p) => {
                let mut c = Command::new("taskset");
                c.arg("-c")
                    .arg(if threads <= 1 { &p.single } else { &p.multi })
                    .arg(driver);
                c
            }
            None => Command::new(driver),
        };
        cmd.args(args);
        // Same clean environment for everyone: no inherited preload or tuning.
        for v in [
            "LD_PRELOAD",
            "MALLOC_CONF",
            "_RJEM_MALLOC_CONF",
            "MIMALLOC_VERBOSE",
            "TCMALLOC_RELEASE_RATE",
        ] {
            cmd.env_remove(v);
        }
        if let Some(so) = &alloc.path {
            cmd.env("LD_PRELOAD", so);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", driver.display()))?;
        let so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(so).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let err_t = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        });
        Ok(Running {
            child,
            lines,
            err_t: Some(err_t),
            start: Instant::now(),
        })
    }

    fn stderr_tail(&mut self) -> String {
        self.err_t
            .take()
            .and_then(|t| t.join().ok())
            .map(|s| tail(&s))
            .unwrap_or_default()
    }

    fn exit_error(&mut self, st: std::process::ExitStatus) -> String {
        let how = match (
            st.code(),
            std::os::unix::process::ExitStatusExt::signal(&st),
        ) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
            _ => "abnormal exit".into(),
        };
        format!("{how}; stderr: {}", self.stderr_tail())
    }

    /// The first JSON line on stdout (the run's result). The process may
    /// still be running afterwards (settling). An exit before the line, or
    /// `timeout`, is an error (the process is killed on timeout).
    pub fn result_line(&mut self, timeout: Duration) -> Result<String, String> {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(5)) {
                Ok(l) if l.trim_start().starts_with('{') => return Ok(l),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if self.start.elapsed() > timeout {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        return Err(format!("timed out after {}s", timeout.as_secs()));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // stdout closed without a result line.
                    return match self.child.wait() {
                        Ok(st) if !st.success() => Err(self.exit_error(st)),
                        Ok(_) => Err(format!(
                            "no JSON line on stdout; stderr: {}",
                            self.stderr_tail()
                        )),
                        Err(e) => Err(format!("wait: {e}")),
                    };
                }
            }
        }
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit (killing it after `timeout` more) and
    /// return the settled RSS it reported after its result line, if any.
    pub fn finish(mut self, timeout: Duration) -> Result<Option<u64>, String> {
        let t0 = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if t0.elapsed() > timeout => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "did not exit {}s after its result line",
                        timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("wait: {e}")),
            }
        };
        if !status.success() {
            return Err(self.exit_error(status));
        }
        let mut settled = None;
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) {
                if let Some(k) = v.get("settled_rss_kib").and_then(|x| x.as_u64()) {
                    settled = Some(k);
                }
            }
        }
        Ok(settled)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGFPE => " (SIGFPE)",
        _ => "",
    }
}

/// Check that `malloc` really came from the allocator we preloaded.
pub fn check_provider(alloc: &Allocator, malloc_from: &str) -> Result<(), String> {
    match &alloc.path {
        None => {
            if malloc_from.contains("libc.so") {
                Ok(())
            } else {
                Err(format!("expected glibc's malloc, got {malloc_from}"))
            }
        }
        Some(so) => {
            let want = std::fs::canonicalize(so).unwrap_or_else(|_| PathBuf::from(so));
            let got =
                std::fs::canonicalize(malloc_from).unwrap_or_else(|_| PathBuf::from(malloc_from));
            if want == got {
                Ok(())
            } else {
                Err(format!(
                    "LD_PRELOAD did not take: malloc came from {malloc_from}, not {so}"
                ))
            }
        }
    }
}

// ------------------------------------------------------------- matrix ----

pub struct Plan<'a> {
    pub mode: Mode,
    pub runs: u32,
    pub threads: Vec<u32>,
    pub workloads: Vec<&'a WorkloadDef>,
    pub allocators: Vec<Allocator>,
    pub pin: Option<Pin>,
    pub label: String,
    /// What the outputs rank by (both are recorded).
    pub metric: Metric,
    /// Settled-RSS measurement (`--settle-ms`).
    pub settle: Settle,
}

/// Which runs measure the settled RSS, and for how long they settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// Light traffic after the workload for this long (0: no settled RSS).
    pub ms: u64,
    /// Every run settles (full matrix), or only the first run of each cell
    /// (quick matrix: a 2 s settle in each of 3 runs would be most of its time).
    pub every_run: bool,
}

/// Default settle time: longer than every lane's `purge_decay_ms` (the
/// longest is 1000 ms; a test checks `lanes/*.toml`).
pub const SETTLE_MS: u64 = 2000;

impl Settle {
    pub const OFF: Settle = Settle {
        ms: 0,
        every_run: false,
    };
    pub fn for_mode(mode: Mode, ms: u64) -> Settle {
        Settle {
            ms,
            every_run: mode == Mode::Full,
        }
    }
    pub fn applies(&self, run_index: u32) -> bool {
        self.ms > 0 && (self.every_run || run_index == 0)
    }
}

/// Run every (workload, threads, allocator) cell `runs` times. Repetition is
/// the outer loop and allocators the inner one (rotated each repetition), so
/// slow drift of the machine spreads over all allocators alike.
pub fn run_plan(plan: &Plan, layout: &Layout) -> Result<Results, String> {
    let driver = driver_path()?;
    let t_start = Instant::now();
    let mut machine = machine_info();
    let (git_rev, git_dirty) = git_info(&layout.root);
    let mut warnings: Vec<String> = Vec::new();
    for a in &plan.allocators {
        if !a.ok() {
            warnings.push(format!("MISSING allocator {}: {}", a.name, a.note));
        }
    }
    let active: Vec<&Allocator> = plan.allocators.iter().filter(|a| a.ok()).collect();
    // Programs run in the smallest thread column only (programs.rs).
    let runs_at = |w: &WorkloadDef, t: u32| programs::runs_at(w, t, &plan.threads);
    let cells_per_rep: usize = plan
        .workloads
        .iter()
        .map(|w| plan.threads.iter().filter(|&&t| runs_at(w, t)).count())
        .sum();
    let total = plan.runs as usize * cells_per_rep * active.len();
    let inputs = programs::Inputs::prepare(&plan.workloads, plan.mode)?;
    let mut progress = Progress::new(total, &plan.label);
    for w in &warnings {
        progress.note(&format!("\x1b[1;31m!! {w}\x1b[0m"));
    }

    // cells[(w, t, a)] in a flat vector
    let idx = |wi: usize, ti: usize, ai: usize| (wi * plan.threads.len() + ti) * active.len() + ai;
    let mut runs: Vec<Vec<(RunRecord, String)>> =
        vec![Vec::new(); plan.workloads.len() * plan.threads.len() * active.len()];
    let mut fails: Vec<Vec<RunFailure>> = vec![Vec::new(); runs.len()];
    // Normalised outputs of program runs: (run index, output) per cell.
    let mut outputs: Vec<Vec<(u32, Vec<u8>)>> = vec![Vec::new(); runs.len()];
    let timeout = Duration::from_secs(plan.mode.timeout_s());
    // Runs whose result is in and which are settling in the background:
    // (cell index, run index, process, seed).
    let mut settling: Vec<Settling> = Vec::new();

    for r in 0..plan.runs {
        let seed = seed_for_run(r);
        for (wi, w) in plan.workloads.iter().enumerate() {
            for (ti, &t) in plan.threads.iter().enumerate() {
                if !runs_at(w, t) {
                    continue;
                }
                for k in 0..active.len() {
                    let ai = (k + r as usize) % active.len();
                    let a = active[ai];
                    progress.show(&format!(
                        "run {}/{} {} t{} {}",
                        r + 1,
                        plan.runs,
                        w.name,
                        t,
                        a.name
                    ));
                    if programs::is_program(w) {
                        let res =
                            programs::run(w, a, plan.mode, &inputs, plan.pin.as_ref(), r, timeout);
                        match res {
                            Ok((rec, out)) => {
                                runs[idx(wi, ti, ai)].push((rec, String::new()));
                                outputs[idx(wi, ti, ai)].push((r, out));
                            }
                            Err(e) => {
                                progress.note(&format!(
                                    "\x1b[1;31mFAILED\x1b[0m {} {}: {e}",
                                    w.name, a.name
                                ));
                                fails[idx(wi, ti, ai)].push(RunFailure {
                                    run_index: r,
                                    seed: programs::INPUT_SEED,
                                    error: e,
                                });
                            }
                        }
                        progress.step();
                        continue;
                    }
                    let mut args = w.driver_args(plan.mode, t, seed);
                    let settle_this = plan.settle.applies(r);
                    if settle_this {
                        args.extend(["--settle-ms".into(), plan.settle.ms.to_string()]);
                    }
                    // Collect the settled processes that are done; keep at
                    // most MAX_SETTLING of them in the background.
                    let mut i = 0;
                    while i < settling.len() {
                        if settling[i].2.exited() {
                            let s = settling.remove(i);
                            finish_settle(s, &mut runs, &mut fails, &mut progress);
                        } else {
                            i += 1;
                        }
                    }
                    while settling.len() >= MAX_SETTLING {
                        let s = settling.remove(0);
                        finish_settle(s, &mut runs, &mut fails, &mut progress);
                    }
                    let res = Running::spawn(&driver, a, &args, t, plan.pin.as_ref()).and_then(
                        |mut p| {
                            let line = match p.result_line(timeout) {
                                Ok(l) => l,
                                Err(e) => {
                                    let _ = p.finish(Duration::from_secs(5));
                                    return Err(e);
                                }
                            };
                            let d: DriverOutput = serde_json::from_str(&line)
                                .map_err(|e| format!("bad driver JSON ({e}): {line}"))?;
                            check_provider(a, &d.malloc_from)?;
                            if d.corrupt > 0 {
                                let _ = p.finish(Duration::from_secs(5));
                                return Err(format!("{} corrupted blocks", d.corrupt));
                            }
                            if settle_this {
                                Ok((d, Some(p)))
                            } else {
                                p.finish(Duration::from_secs(30))?;
                                Ok((d, None))
                            }
                        },
                    );
                    match res {
                        Ok((d, p)) => {
                            runs[idx(wi, ti, ai)]
                                .push((RunRecord::from_driver(r, &d), d.malloc_from));
                            if let Some(p) = p {
                                settling.push((idx(wi, ti, ai), r, p, seed));
                            }
                        }
                        Err(e) => {
                            progress.note(&format!(
                                "\x1b[1;31mFAILED\x1b[0m {} t{} {} seed {seed}: {e}",
                                w.name, t, a.name
                            ));
                            fails[idx(wi, ti, ai)].push(RunFailure {
                                run_index: r,
                                seed,
                                error: e,
                            });
                        }
                    }
                    progress.step();
                }
            }
        }
    }
    if !settling.is_empty() {
        progress.note(&format!(
            "waiting for {} run(s) to settle ({} ms each)",
            settling.len(),
            plan.settle.ms
        ));
    }
    for s in settling.drain(..) {
        finish_settle(s, &mut runs, &mut fails, &mut progress);
    }
    progress.finish();

    let mut cells = Vec::new();
    for (wi, w) in plan.workloads.iter().enumerate() {
        for (ti, &t) in plan.threads.iter().enumerate() {
            if !runs_at(w, t) {
                continue;
            }
            if programs::is_program(w) {
                // Outputs must agree: a differing run becomes a failure.
                let (lo, hi) = (idx(wi, ti, 0), idx(wi, ti, 0) + active.len());
                let names: Vec<String> = active.iter().map(|a| a.name.clone()).collect();
                warnings.extend(programs::enforce_equal_outputs(
                    w.name,
                    &names,
                    &mut runs[lo..hi],
                    &mut fails[lo..hi],
                    &outputs[lo..hi],
                ));
            }
            // Checksums must agree across allocators at each seed.
            for r in 0..plan.runs {
                let mut sums: Vec<(u64, &str)> = Vec::new();
                for (ai, a) in active.iter().enumerate() {
                    if let Some((rec, _)) =
                        runs[idx(wi, ti, ai)].iter().find(|(x, _)| x.run_index == r)
                    {
                        sums.push((rec.checksum, &a.name));
                    }
                }
                if let Some(majority) = majority(&sums.iter().map(|s| s.0).collect::<Vec<_>>()) {
                    for (c, name) in &sums {
                        if *c != majority {
                            warnings.push(format!(
                                "CHECKSUM MISMATCH {} t{} run {}: {name} read back different data ({c:#x} vs {majority:#x})",
                                w.name, t, r
                            ));
                        }
                    }
                }
            }
            for (ai, a) in active.iter().enumerate() {
                let recs: Vec<RunRecord> =
                    runs[idx(wi, ti, ai)].iter().map(|x| x.0.clone()).collect();
                let f = fails[idx(wi, ti, ai)].clone();
                if !f.is_empty() {
                    warnings.push(format!(
                        "FAILED RUNS {} t{} {}: {} of {} ({})",
                        w.name,
                        t,
                        a.name,
                        f.len(),
                        plan.runs,
                        f[0].error
                    ));
                }
                let cell = make_cell(w.name, t, &a.name, recs, f);
                if let Some(why) = cell.invalid_reason() {
                    warnings.push(format!(
                        "INVALID CELL {} t{} {}: {why}; not compared with any other cell",
                        w.name, t, a.name
                    ));
                }
                cells.push(cell);
            }
            for a in plan.allocators.iter().filter(|a| !a.ok()) {
                cells.push(make_cell(w.name, t, &a.name, Vec::new(), Vec::new()));
            }
        }
    }

    machine.loadavg_end = loadavg();
    let busy = machine.loadavg_start.max(machine.loadavg_end);
    if busy > machine.ncpu as f64 {
        warnings.push(format!(
            "BUSY MACHINE: load average {busy:.1} on {} CPUs during the run; wall-clock throughput is noisy \
             (ops per CPU-second, `bench-matrix report --metric cpu`, is steadier)",
            machine.ncpu
        ));
    }
    Ok(Results {
        schema: SCHEMA_VERSION,
        tool: format!("bench-matrix {}", env!("CARGO_PKG_VERSION")),
        created_unix: now_unix(),
        git_rev,
        git_dirty,
        machine,
        config: Config {
            mode: plan.mode.name().into(),
            runs: plan.runs,
            threads: plan.threads.clone(),
            seeds: (0..plan.runs).map(seed_for_run).collect(),
            pinned: plan.pin.is_some(),
            pin_cpus: plan.pin.as_ref().map(|p| p.describe()),
            interleaved: true,
            metric: plan.metric,
            settle_ms: plan.settle.ms,
            settle_every_run: plan.settle.every_run,
        },
        allocators: plan.allocators.clone(),
        workloads: plan.workloads.iter().map(|w| w.info(plan.mode)).collect(),
        cells,
        warnings,
        duration_s: t_start.elapsed().as_secs_f64(),
    })
}

/// How many runs may settle in the background while the next runs go on.
/// A settling process sleeps between tiny allocations (about 1 % of a CPU
/// each), so a few of them barely touch the run in the foreground.
pub const MAX_SETTLING: usize = 12;

type Settling = (usize, u32, Running, u64);

/// Wait for a settling run and store its settled RSS in its record; a run
/// that crashes while settling becomes a failed run.
fn finish_settle(
    s: Settling,
    runs: &mut [Vec<(RunRecord, String)>],
    fails: &mut [Vec<RunFailure>],
    progress: &mut Progress,
) {
    let (ci, r, p, seed) = s;
    match p.finish(Duration::from_secs(60)) {
        Ok(settled) => {
            if let Some(rec) = runs[ci].iter_mut().find(|x| x.0.run_index == r) {
                rec.0.settled_rss_kib = settled.filter(|&k| k > 0);
            }
        }
        Err(e) => {
            runs[ci].retain(|x| x.0.run_index != r);
            let e = format!("while settling: {e}");
            progress.note(&format!("\x1b[1;31mFAILED\x1b[0m seed {seed}: {e}"));
            fails[ci].push(RunFailure {
                run_index: r,
                seed,
                error: e,
            });
        }
    }
}

fn majority(v: &[u64]) -> Option<u64> {
    let mut best: Option<(u64, usize)> = None;
    for &x in v {
        let n = v.iter().filter(|&&y| y == x).count();
        if best.is_none_or(|b| n > b.1) {
            best = Some((x, n));
        }
    }
    best.map(|b| b.0)
}

/// Summarise one cell's runs (pure; also used by tests).
pub fn make_cell(
    workload: &str,
    threads: u32,
    allocator: &str,
    runs: Vec<RunRecord>,
    failures: Vec<RunFailure>,
) -> Cell {
    let summary = if runs.is_empty() {
        None
    } else {
        let f = |g: &dyn Fn(&RunRecord) -> f64| {
            Stat::of(&runs.iter().map(g).collect::<Vec<_>>()).unwrap_or_default()
        };
        Some(CellSummary {
            ops_per_sec: f(&|r| r.ops_per_sec),
            ops_per_cpu_sec: f(&|r| r.ops_per_cpu_sec),
            peak_rss_kib: f(&|r| r.peak_rss_kib as f64),
            mean_rss_kib: f(&|r| r.mean_rss_kib as f64),
            after_rss_kib: f(&|r| r.after_rss_kib as f64),
            remote_rate: f(&|r| r.remote_rate),
            settled_rss_kib: Stat::of(
                &runs
                    .iter()
                    .filter_map(|r| r.settled_rss_kib)
                    .filter(|&k| k > 0)
                    .map(|k| k as f64)
                    .collect::<Vec<_>>(),
            ),
        })
    };
    // Keep the timeline of the run closest to the median throughput; drop the rest.
    let timeline = summary.as_ref().and_then(|s| {
        runs.iter()
            .filter(|r| r.timeline.is_some())
            .min_by(|a, b| {
                let da = (a.ops_per_sec - s.ops_per_sec.median).abs();
                let db = (b.ops_per_sec - s.ops_per_sec.median).abs();
                da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
            })
            .and_then(|r| r.timeline.clone())
    });
    let runs = runs.into_iter().map(|mut r| {
        r.timeline = None;
        r
    });
    Cell {
        workload: workload.into(),
        threads,
        allocator: allocator.into(),
        runs: runs.collect(),
        failures,
        summary,
        timeline,
    }
}

// ---------------------------------------------------------- callgrind ----

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CallgrindRow {
    pub allocator: String,
    pub kind: AllocKind,
    pub ir_n1: Option<u64>,
    pub ir_n2: Option<u64>,
    pub ir_per_pair: Option<f64>,
    pub limit: Option<f64>,
    pub status: String,
    pub note: String,
}

/// Total instructions (`Collected :`) of the fastpath driver under callgrind.
pub fn callgrind_ir(driver: &Path, alloc: &Allocator, pairs: u64) -> Result<u64, String> {
    let out_file =
        std::env::temp_dir().join(format!("bench-matrix-callgrind-{}.out", std::process::id()));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(driver)
        .args(["fastpath", "--n", &pairs.to_string()]);
    cmd.env_remove("LD_PRELOAD");
    if let Some(so) = &alloc.path {
        cmd.env("LD_PRELOAD", so);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("valgrind: {e} (install it: bench-matrix/setup-peers.sh)"))?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = stdout.lines().find(|l| l.starts_with('{')) {
        let f: FastpathOutput =
            serde_json::from_str(line).map_err(|e| format!("bad fastpath JSON: {e}"))?;
        check_provider(alloc, &f.malloc_from)?;
    }
    parse_collected(&stderr).ok_or_else(|| "no 'Collected :' line in valgrind output".into())
}

/// Parse callgrind's `==pid== Collected : 123456` summary line.
pub fn parse_collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = l.split("Collected :").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callgrind_summary() {
        let s = "==12== Events    : Ir\n==12== Collected : 1234567\n==12==\n==12== I   refs:      1,234,567\n";
        assert_eq!(parse_collected(s), Some(1_234_567));
        assert_eq!(parse_collected("nothing"), None);
    }

    #[test]
    fn strips_ansi() {
        assert_eq!(strip_ansi("\x1b[1;31m!! x\x1b[0m y"), "!! x y");
    }

    #[test]
    fn majority_vote() {
        assert_eq!(majority(&[1, 2, 2]), Some(2));
        assert_eq!(majority(&[]), None);
    }

    #[test]
    fn provider_check() {
        let g = glibc();
        assert!(check_provider(&g, "/lib/x86_64-linux-gnu/libc.so.6").is_ok());
        assert!(check_provider(&g, "/usr/lib/libjemalloc.so.2").is_err());
    }
}
