//! Process spawning: the one place that starts, times out, kills and reaps
//! the processes bench-matrix measures. Two shapes share the environment
//! cleaning, pinning, exit descriptions and stderr tails:
//! - [`Running`]: a driver run, its stdout lines on a channel so the runner
//!   takes the result line and leaves the process settling;
//! - [`Proc`] (through [`spawn_under`] / [`run_cmd`]): a real program in its
//!   own process group, reaped with `wait4` for its rusage, killed as a group
//!   on timeout, optionally through the `exec-measured` helper.
//!
//! Owns: processes and their lifetime. Must not touch: results, statistics,
//! the progress display (callers report errors), what a run means.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::schema::Allocator;

/// Environment variables that select or tune an allocator: removed for every
/// run, so each allocator gets the same clean environment.
pub const ALLOCATOR_ENV: &[&str] = &[
    "LD_PRELOAD",
    "MALLOC_CONF",
    "_RJEM_MALLOC_CONF",
    "MIMALLOC_VERBOSE",
    "TCMALLOC_RELEASE_RATE",
];

/// `exe` as a command, under taskset when pinned.
pub fn command(exe: &Path, pin: Option<&Pin>, threads: u32) -> Command {
    match pin {
        Some(p) => p.command(exe, threads),
        None => Command::new(exe),
    }
}

// ------------------------------------------------------------ pinning ----

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
    /// `exe` under taskset on the CPUs for a cell of `threads` threads.
    pub fn command(&self, exe: &Path, threads: u32) -> Command {
        let mut c = Command::new("taskset");
        c.arg("-c")
            .arg(if threads <= 1 {
                &self.single
            } else {
                &self.multi
            })
            .arg(exe);
        c
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
        let mut cmd = command(driver, pin, threads);
        cmd.args(args);
        // Same clean environment for everyone: no inherited preload or tuning.
        for v in ALLOCATOR_ENV {
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

// ----------------------------------------------------------- programs ----

/// What one measured process left behind.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub wall_s: f64,
    /// User + system time of the process and its waited-for descendants.
    pub cpu_s: f64,
    /// Largest RSS of the process tree (KiB, `ru_maxrss`).
    pub peak_rss_kib: u64,
    /// Mean RSS of the main process over the samples (KiB).
    pub mean_rss_kib: u64,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Set up the environment every allocator gets: no inherited preload or
/// tuning. Returns the `LD_PRELOAD` value for the program: the allocator's
/// .so, or glibc's libc for glibc (so a program linked against another
/// allocator, like Debian's redis-server against jemalloc, still gets glibc's
/// malloc); `None` for a helper process (no allocator).
fn clean_env(cmd: &mut Command, alloc: Option<&Allocator>) -> Option<String> {
    for v in ALLOCATOR_ENV
        .iter()
        .chain(&["PYTHONMALLOC", "PYTHONHASHSEED"])
    {
        // What the caller set on purpose stays.
        if !cmd.get_envs().any(|(k, x)| k == *v && x.is_some()) {
            cmd.env_remove(v);
        }
    }
    match alloc.map(|a| a.path.clone()) {
        Some(Some(so)) => Some(so),
        Some(None) => glibc_so().map(str::to_string),
        None => None,
    }
}

/// Spawn `cmd` (environment already set) under `alloc` in its own process
/// group: through the exec-measured helper when available, else directly
/// with `LD_PRELOAD` in its environment.
pub fn spawn_under(
    mut cmd: Command,
    alloc: Option<&Allocator>,
    stdin: Option<PathBuf>,
) -> Result<Proc, String> {
    let so = clean_env(&mut cmd, alloc);
    let Some(helper) = helper() else {
        if let Some(so) = so {
            cmd.env("LD_PRELOAD", so);
        }
        return Proc::spawn(cmd, stdin);
    };
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let report = std::env::temp_dir().join(format!(
        "bench-matrix-exec-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&report);
    let mut h = Command::new(helper);
    h.arg("exec-measured")
        .arg(&report)
        .arg(so.as_deref().unwrap_or("-"))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => h.env(k, v),
            None => h.env_remove(k),
        };
    }
    h.env_remove("LD_PRELOAD");
    let mut p = Proc::spawn(h, stdin)?;
    p.report = Some(report);
    Ok(p)
}

fn glibc_so() -> Option<&'static str> {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
}

/// The first line that names an error, then the last lines of `s`.
pub fn tail(s: &str) -> String {
    let mut t: Vec<&str> = s
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect();
    t.reverse();
    if let Some(e) = s.lines().find(|l| l.to_ascii_lowercase().contains("error")) {
        if !t.contains(&e) {
            t.insert(0, e);
        }
    }
    t.join(" | ")
}

/// A spawned process in its own process group; killed (the whole group)
/// when dropped before it was reaped.
pub struct Proc {
    pid: libc::pid_t,
    reaped: bool,
    start: Instant,
    /// Report file of the exec-measured helper, when it runs the program.
    report: Option<PathBuf>,
    out_t: Option<std::thread::JoinHandle<Vec<u8>>>,
    err_t: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Proc {
    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn spawn(mut cmd: Command, stdin: Option<PathBuf>) -> Result<Proc, String> {
        cmd.process_group(0);
        match stdin {
            Some(p) => {
                let f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                cmd.stdin(Stdio::from(f));
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
        let reader = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                v
            })
        };
        let out_t = child.stdout.take().map(|o| reader(Box::new(o)));
        let err_t = child.stderr.take().map(|e| reader(Box::new(e)));
        // The child is reaped with wait4 below (for its rusage), not by std.
        Ok(Proc {
            pid: child.id() as libc::pid_t,
            reaped: false,
            start,
            report: None,
            out_t,
            err_t,
        })
    }

    fn kill_group(&self) {
        // SAFETY: kill(2) on our own child's process group (pgid = pid,
        // set by process_group(0)); no memory is touched.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
    }

    /// Wait for the process (timeout: kill its process group), collecting
    /// rusage, a mean RSS and its output. An error names how it ended. When
    /// the process is the `exec-measured` helper, the figures and the exit
    /// status are the measured program's, read from the helper's report.
    pub fn wait(mut self, timeout: Duration) -> Result<Measured, String> {
        let deadline = self.start + timeout;
        let pid = self.pid;
        let w = wait_sampled(pid, Some(deadline), || self.kill_group());
        self.reaped = true;
        let wall_s = self.start.elapsed().as_secs_f64();
        // Anything left in the group (a daemonised grandchild) goes too.
        self.kill_group();
        let stdout = self
            .out_t
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(
            &self
                .err_t
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default(),
        )
        .into_owned();
        let mut w = w?;
        if let Some(report) = self.report.take() {
            let text = std::fs::read_to_string(&report).unwrap_or_default();
            let _ = std::fs::remove_file(&report);
            if let Some(r) = Waited::parse(&text) {
                if !w.timed_out {
                    w = r;
                }
            } else if !w.timed_out {
                return Err(format!(
                    "exec-measured helper left no report ({}); stderr: {}",
                    describe_status(w.status),
                    tail(&stderr)
                ));
            }
        }
        if w.timed_out {
            return Err(format!(
                "timed out after {}s (process group killed); stderr: {}",
                timeout.as_secs(),
                tail(&stderr)
            ));
        }
        if !(libc::WIFEXITED(w.status) && libc::WEXITSTATUS(w.status) == 0) {
            return Err(format!(
                "{}; stderr: {}",
                describe_status(w.status),
                tail(&stderr)
            ));
        }
        Ok(Measured {
            wall_s,
            cpu_s: w.cpu_s,
            peak_rss_kib: w.peak_rss_kib,
            mean_rss_kib: w.mean_rss_kib,
            stdout,
            stderr,
        })
    }
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        format!("killed by signal {sig}{}", signal_name(sig))
    } else {
        format!("exit code {}", libc::WEXITSTATUS(status))
    }
}

/// How a waited-for process ended, with its rusage figures.
#[derive(Debug, Clone, Copy, Default)]
struct Waited {
    status: libc::c_int,
    timed_out: bool,
    cpu_s: f64,
    peak_rss_kib: u64,
    mean_rss_kib: u64,
}

impl Waited {
    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.status, self.cpu_s, self.peak_rss_kib, self.mean_rss_kib
        )
    }
    fn parse(s: &str) -> Option<Waited> {
        let mut it = s.split_whitespace();
        Some(Waited {
            status: it.next()?.parse().ok()?,
            timed_out: false,
            cpu_s: it.next()?.parse().ok()?,
            peak_rss_kib: it.next()?.parse().ok()?,
            mean_rss_kib: it.next()?.parse().ok()?,
        })
    }
}

/// Reap `pid` (our child) with `wait4`, sampling its RSS every 5 ms for the
/// mean; past `deadline`, call `kill` and reap it.
fn wait_sampled(
    pid: libc::pid_t,
    deadline: Option<Instant>,
    kill: impl Fn(),
) -> Result<Waited, String> {
    let mut samples: u64 = 0;
    let mut rss_sum: u64 = 0;
    let statm = format!("/proc/{pid}/statm");
    let page_kib = 4;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    let mut last_sample = Instant::now() - Duration::from_secs(1);
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            kill();
            timed_out = true;
            // SAFETY: as above, blocking this time; the group was killed.
            unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            break;
        }
        if last_sample.elapsed() >= Duration::from_millis(5) {
            last_sample = Instant::now();
            if let Some(kib) = std::fs::read_to_string(&statm)
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            {
                samples += 1;
                rss_sum += kib * page_kib;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Waited {
        status,
        timed_out,
        cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
        peak_rss_kib: ru.ru_maxrss as u64,
        mean_rss_kib: rss_sum.checked_div(samples).unwrap_or(ru.ru_maxrss as u64),
    })
}

/// `bench-matrix exec-measured REPORT PRELOAD|- PROGRAM ARGS...` (internal):
/// run PROGRAM with `LD_PRELOAD=PRELOAD` (stdio inherited), reap it, write
/// "status cpu_s peak_kib mean_kib" to REPORT and exit like it did.
///
/// Why a helper: on exec, Linux folds the exec-ing process's old RSS high-water
/// mark into `ru_maxrss`, so a program spawned straight from the runner would
/// report at least the runner's own peak (tens of MiB once outputs are held).
/// Spawned from this small fresh process, the floor is the helper's few MiB,
/// the same for every allocator.
pub fn exec_measured_main(args: &[String]) -> i32 {
    if args.len() < 3 {
        eprintln!("usage: bench-matrix exec-measured REPORT PRELOAD|- PROGRAM [ARGS...]");
        return 2;
    }
    let mut cmd = Command::new(&args[2]);
    cmd.args(&args[3..]);
    if args[1] != "-" {
        cmd.env("LD_PRELOAD", &args[1]);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("exec-measured: spawn {}: {e}", args[2]);
            return 127;
        }
    };
    let w = match wait_sampled(child.id() as libc::pid_t, None, || {}) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("exec-measured: {e}");
            return 125;
        }
    };
    if let Err(e) = std::fs::write(&args[0], w.line()) {
        eprintln!("exec-measured: write {}: {e}", args[0]);
        return 125;
    }
    if libc::WIFSIGNALED(w.status) {
        128 + libc::WTERMSIG(w.status)
    } else {
        libc::WEXITSTATUS(w.status)
    }
}

/// The `exec-measured` helper: this executable when it is `bench-matrix`.
fn helper() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    (exe.file_name()? == "bench-matrix").then_some(exe)
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let mut status = 0;
            // SAFETY: reap our own killed child so it does not linger.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
        }
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

/// Run `cmd` to completion under `alloc` (its own process group, bounded by `timeout`).
pub fn run_cmd(
    cmd: Command,
    alloc: Option<&Allocator>,
    stdin: Option<PathBuf>,
    timeout: Duration,
) -> Result<Measured, String> {
    spawn_under(cmd, alloc, stdin)?.wait(timeout)
}
