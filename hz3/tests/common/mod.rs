//! Shared harness for the LD_PRELOAD integration tests (`preload_*.rs`).
//!
//! * [`allocator`] finds the `.so` under test: `$HZ3_SO`, else
//!   `<workspace>/target/lanes/<lane>/libhz3_<lane>.so` with `<lane>` from
//!   `$HZ3_LANE` (default `fast`).  If there is none the test FAILS and says
//!   to run `cargo xtask build-lanes`; it never passes or skips silently.
//! * [`compile_c`]/[`compile_cxx`] build a program from `hz3/tests/c/` once
//!   per test binary into a private temp directory (plain `cc`/`c++`, or
//!   `$CC`/`$CXX`; no extra crates).
//! * [`run`] runs a command with a timeout, capturing output; [`preload`]
//!   sets `LD_PRELOAD`; [`traced`] also makes the dynamic linker log its
//!   symbol bindings so [`LdTrace::assert_bound`] can prove that every
//!   process really took `malloc` from the library under test.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The allocator library under test.
#[derive(Clone, Debug)]
pub struct Lib {
    /// Absolute path, as put into `LD_PRELOAD`.
    pub path: PathBuf,
    /// File name, e.g. `libhz3_fast.so`; the C programs look for it in
    /// `/proc/self/maps` and in `dladdr` results.
    pub name: String,
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn workspace_dir() -> PathBuf {
    let m = manifest_dir();
    m.parent().map(Path::to_path_buf).unwrap_or(m)
}

pub fn c_dir() -> PathBuf {
    manifest_dir().join("tests").join("c")
}

pub fn programs_dir() -> PathBuf {
    manifest_dir().join("tests").join("programs")
}

/// True when `HZ3_TEST_LONG` is set to something other than `0`/empty.
pub fn long_mode() -> bool {
    std::env::var("HZ3_TEST_LONG")
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

/// Locate the `.so` under test, or panic with instructions.
pub fn allocator() -> Lib {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    match LIB.get_or_init(find_allocator) {
        Ok(l) => l.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn find_allocator() -> Result<Lib, String> {
    let lane = std::env::var("HZ3_LANE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "fast".into());
    let mut candidates = Vec::new();
    let from_env = std::env::var_os("HZ3_SO").filter(|s| !s.is_empty());
    if let Some(p) = &from_env {
        candidates.push(PathBuf::from(p));
    } else {
        let rel = PathBuf::from("lanes")
            .join(&lane)
            .join(format!("libhz3_{lane}.so"));
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|s| !s.is_empty()) {
            let t = PathBuf::from(t);
            let t = if t.is_absolute() {
                t
            } else {
                workspace_dir().join(t)
            };
            candidates.push(t.join(&rel));
        }
        candidates.push(workspace_dir().join("target").join(&rel));
    }
    for c in &candidates {
        if c.is_file() {
            let path = c
                .canonicalize()
                .map_err(|e| format!("cannot resolve {}: {e}", c.display()))?;
            let name = path
                .file_name()
                .and_then(OsStr::to_str)
                .ok_or_else(|| format!("odd library path {}", path.display()))?
                .to_string();
            return Ok(Lib { path, name });
        }
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(if from_env.is_some() {
        format!(
            "HZ3_SO points to {}, which does not exist",
            tried.join(", ")
        )
    } else {
        format!(
            "the hz3 preload library was not found (looked for {}).\n\
             Build it first with `cargo xtask build-lanes --lane {lane}` from the workspace root, \
             or set HZ3_SO=/path/to/libhz3_<lane>.so. These tests never pass without it.",
            tried.join(", ")
        )
    })
}

// ---------------------------------------------------------------------
// scratch directories

/// Per-process scratch directory under `std::env::temp_dir()`.  Directories
/// left behind by earlier test processes that are gone are removed.
pub fn scratch_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(rest) = name.strip_prefix("hz3-tests-") {
                    let pid = rest.split('-').next().unwrap_or("");
                    if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = tmp.join(format!("hz3-tests-{}-{}", std::process::id(), nanos));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
    .clone()
}

/// A fresh directory for one test, removed again by [`Scratch::drop`]
/// unless the test panicked (then it is kept and its path printed).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: Mutex<u32> = Mutex::new(0);
        let n = {
            let mut g = N.lock().unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let dir = scratch_root().join(format!("{tag}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Scratch { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(scratch files kept in {})", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------
// compiling the C/C++ test programs

fn compiler(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn build(kind: &str, tool: String, src: &str, out_name: &str, flags: &[&str]) -> PathBuf {
    let src_path = c_dir().join(src);
    assert!(
        src_path.is_file(),
        "missing test source {}",
        src_path.display()
    );
    let out = scratch_root().join(out_name);
    let mut cmd = Command::new(&tool);
    cmd.args(flags)
        .arg("-I")
        .arg(c_dir())
        .arg(&src_path)
        .arg("-o")
        .arg(&out)
        .args(["-ldl", "-pthread"])
        .env_remove("LD_PRELOAD");
    let r = run(cmd, Duration::from_secs(300));
    if let Some(e) = &r.spawn_error {
        panic!(
            "cannot run the {kind} compiler `{tool}`: {e}. Install it (Debian: apt-get install -y gcc g++) \
             or point ${} at one.",
            if kind == "C" { "CC" } else { "CXX" }
        );
    }
    assert!(
        r.success(),
        "compiling {} failed:\n{}",
        src_path.display(),
        r.describe()
    );
    out
}

/// Compile `hz3/tests/c/<src>` (C) once per test process; returns the binary.
pub fn compile_c(src: &str) -> PathBuf {
    static CACHE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut g = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = g.iter().find(|(s, _)| s == src) {
        return p.clone();
    }
    let out_name = src.trim_end_matches(".c").to_string();
    let p = build(
        "C",
        compiler("CC", "cc"),
        src,
        &out_name,
        &["-std=gnu11", "-O1", "-g", "-fno-builtin", "-Wall"],
    );
    g.push((src.to_string(), p.clone()));
    p
}

/// Compile `hz3/tests/c/<src>` (C++) once per test process.
pub fn compile_cxx(src: &str) -> PathBuf {
    static CACHE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut g = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = g.iter().find(|(s, _)| s == src) {
        return p.clone();
    }
    let out_name = src.trim_end_matches(".cpp").to_string();
    let p = build(
        "C++",
        compiler("CXX", "c++"),
        src,
        &out_name,
        &["-std=c++17", "-O1", "-g", "-fno-builtin", "-Wall"],
    );
    g.push((src.to_string(), p.clone()));
    p
}

/// Compile a C++ source into a shared object once per test process (`-fPIC -shared`).
pub fn compile_cxx_shared(src: &str) -> PathBuf {
    static CACHE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut g = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = g.iter().find(|(s, _)| s == src) {
        return p.clone();
    }
    let out_name = format!("{}.so", src.trim_end_matches(".cpp"));
    let p = build(
        "C++",
        compiler("CXX", "c++"),
        src,
        &out_name,
        &["-std=c++17", "-O1", "-g", "-fPIC", "-shared", "-Wall"],
    );
    g.push((src.to_string(), p.clone()));
    p
}

/// Compile a C source with extra compiler flags, once per test process.
pub fn compile_c_with(src: &str, extra: &[&str]) -> PathBuf {
    static CACHE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut g = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = g.iter().find(|(s, _)| s == src) {
        return p.clone();
    }
    let out_name = src.trim_end_matches(".c").to_string();
    let mut flags = vec!["-std=gnu11", "-O1", "-g", "-fno-builtin", "-Wall"];
    flags.extend_from_slice(extra);
    let p = build("C", compiler("CC", "cc"), src, &out_name, &flags);
    g.push((src.to_string(), p.clone()));
    p
}

/// Compile a C source into a shared object (used by the harness self-test).
pub fn compile_c_shared(src: &str, out_name: &str) -> PathBuf {
    build(
        "C",
        compiler("CC", "cc"),
        src,
        out_name,
        &["-O1", "-fPIC", "-shared", "-fno-builtin"],
    )
}

// ---------------------------------------------------------------------
// running

pub struct RunResult {
    pub what: String,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub spawn_error: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl RunResult {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.map(|s| s.success()).unwrap_or(false)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Command, status, time and the tails of stdout/stderr, for messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command: {}", self.what);
        if let Some(e) = &self.spawn_error {
            let _ = writeln!(s, "spawn error: {e}");
        }
        if self.timed_out {
            let _ = writeln!(s, "TIMED OUT after {:.1?} (killed)", self.elapsed);
        } else {
            let _ = writeln!(
                s,
                "status: {} after {:.1?}",
                status_text(self.status),
                self.elapsed
            );
        }
        let _ = writeln!(s, "--- stdout (tail) ---\n{}", tail(&self.stdout, 4000));
        let _ = writeln!(s, "--- stderr (tail) ---\n{}", tail(&self.stderr, 12000));
        s
    }
}

fn status_text(st: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match st {
        None => "none".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!(
                "killed by signal {sig}{}",
                match sig {
                    6 => " (SIGABRT)",
                    9 => " (SIGKILL)",
                    11 => " (SIGSEGV)",
                    7 => " (SIGBUS)",
                    14 => " (SIGALRM)",
                    _ => "",
                }
            ),
            _ => format!("{s:?}"),
        },
    }
}

fn tail(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() <= max {
        s.into_owned()
    } else {
        let mut start = s.len() - max;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        format!("[... {} bytes cut ...]\n{}", start, &s[start..])
    }
}

fn describe_cmd(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let k = k.to_string_lossy();
            if k.starts_with("LD_") || k.starts_with("HZ3") {
                let _ = write!(s, "{}={} ", k, v.to_string_lossy());
            }
        }
    }
    let _ = write!(s, "{}", cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion or until `timeout`, capturing stdout/stderr.
/// The child gets its own process group so that a timeout kills every
/// process it started.
pub fn run(mut cmd: Command, timeout: Duration) -> RunResult {
    let what = describe_cmd(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                what,
                status: None,
                timed_out: false,
                spawn_error: Some(e.to_string()),
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: start.elapsed(),
            }
        }
    };
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let pgid = child.id();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // the whole group: a preloaded bash may have started others
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .env_remove("LD_PRELOAD")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    // A grandchild that inherited the pipes could keep them open; after a
    // timeout the whole group was killed, so these joins end.
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    RunResult {
        what,
        status,
        timed_out,
        spawn_error: None,
        stdout,
        stderr,
        elapsed,
    }
}

/// `LD_PRELOAD` the library under test into `cmd` (and its children).
pub fn preload(cmd: &mut Command, lib: &Lib) {
    cmd.env("LD_PRELOAD", &lib.path);
}

/// Remove anything that could make a baseline run differ from a preloaded
/// one besides the allocator.
pub fn no_preload(cmd: &mut Command) {
    cmd.env_remove("LD_PRELOAD")
        .env_remove("LD_DEBUG")
        .env_remove("LD_DEBUG_OUTPUT");
}

/// Panic with the full story unless the run succeeded.
pub fn assert_success(r: &RunResult, what: &str) {
    if !r.success() {
        panic!("{what} FAILED\n{}", r.describe());
    }
    eprintln!("{what}: ok in {:.2?}", r.elapsed);
}

// ---------------------------------------------------------------------
// proving the preload happened, for programs we did not write

/// Where the dynamic linker wrote its binding log for each process.
pub struct LdTrace {
    dir: PathBuf,
    lib: Lib,
}

/// Preload `lib` into `cmd` and have ld.so log symbol bindings of every
/// process (`LD_DEBUG=bindings`) into files under `scratch`.
pub fn traced(cmd: &mut Command, lib: &Lib, scratch: &Scratch) -> LdTrace {
    let dir = scratch.path("ld-trace");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create ld-trace dir");
    preload(cmd, lib);
    cmd.env("LD_DEBUG", "bindings")
        .env("LD_DEBUG_OUTPUT", dir.join("p"));
    LdTrace {
        dir,
        lib: lib.clone(),
    }
}

impl LdTrace {
    /// Every process that ran must have bound `malloc` to the library under
    /// test; at least `min_processes` processes must have run.  Returns the
    /// number of processes seen.
    pub fn assert_bound(&self, min_processes: usize, what: &str) -> usize {
        let needle_malloc = format!("{} [0]: normal symbol `malloc'", self.lib.path.display());
        let needle_free = format!("{} [0]: normal symbol `free'", self.lib.path.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        let mut bad = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if !(text.contains(&needle_malloc) && text.contains(&needle_free)) {
                let first = text
                    .lines()
                    .find(|l| l.contains("binding file"))
                    .unwrap_or("(no bindings logged)");
                bad.push(format!("{}: {}", f.display(), first.trim()));
            }
        }
        assert!(
            files.len() >= min_processes,
            "{what}: expected at least {min_processes} process(es) with {} preloaded, the dynamic linker logged {}",
            self.lib.name,
            files.len()
        );
        assert!(
            bad.is_empty(),
            "{what}: {} of {} process(es) did not take malloc/free from {}:\n{}",
            bad.len(),
            files.len(),
            self.lib.path.display(),
            bad.join("\n")
        );
        eprintln!(
            "{what}: {} process(es) took malloc/free from {}",
            files.len(),
            self.lib.name
        );
        files.len()
    }
}

/// First differing line of two outputs, for assertion messages.
pub fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!(
                "line {}:\n  without preload: {x}\n  with preload:    {y}",
                i + 1
            );
        }
    }
    format!(
        "outputs differ in length: {} vs {} lines",
        a.lines().count(),
        b.lines().count()
    )
}

pub fn lib_at(path: PathBuf, what: &str) -> Lib {
    assert!(
        path.is_file(),
        "the {what} library {} does not exist.\nBuild it with `cargo xtask build-lanes --lane <lane>{}` \
         (or set {}). This test never passes without it.",
        path.display(),
        if what == "hardened" { " --hardened" } else { "" },
        if what == "hardened" { "HZ3_SO_HARDENED" } else { "HZ3_SO" },
    );
    let path = path.canonicalize().expect("canonicalize library path");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    Lib { path, name }
}

/// (plain, hardened) libraries of the lane under test.
pub fn libraries() -> (Lib, Lib) {
    let lib = allocator();
    let dir = lib.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let plain = if lib.name.ends_with("_hardened.so") {
        lib_at(dir.join(lib.name.replace("_hardened.so", ".so")), "plain")
    } else {
        lib.clone()
    };
    let hardened = match std::env::var_os("HZ3_SO_HARDENED").filter(|s| !s.is_empty()) {
        Some(p) => lib_at(PathBuf::from(p), "hardened"),
        None => lib_at(
            dir.join(plain.name.replace(".so", "_hardened.so")),
            "hardened",
        ),
    };
    (plain, hardened)
}

/// No core files from the deliberate aborts; optionally an address-space limit.
pub fn limits(cmd: &mut Command, address_space: Option<u64>) {
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            if let Some(bytes) = address_space {
                let l = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `exe mode args..` under `lib` with `env` on top of the environment, the
/// test's own `HZ3_*` settings removed (all but the library paths), no core
/// files.
pub fn c_mode(exe: &Path, lib: &Lib, mode: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg(mode).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("HZ3_") && k != "HZ3_SO" && k != "HZ3_SO_HARDENED" {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env.iter().copied());
    limits(&mut cmd, None);
    preload(&mut cmd, lib);
    cmd
}

/// Runs `c/<src>` in `mode` under the plain and the hardened library of the
/// lane under test; each run must exit 0 and print "all checks passed".
pub fn run_c_checks(src: &str, mode: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) {
    let exe = compile_c(src);
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        let r = run(c_mode(&exe, lib, mode, args, env), timeout);
        let what = format!("{src} {mode} ({})", lib.name);
        assert_success(&r, &what);
        let out = r.stdout_str();
        assert!(
            out.contains("all checks passed"),
            "{what} did not finish:\n{}",
            r.describe()
        );
        eprint!("{what}:\n{out}");
    }
}

/// `readelf` output for `lib` (binutils).
pub fn readelf(args: &[&str], lib: &Lib) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(&lib.path)
        .output()
        .expect("readelf (binutils) must be installed");
    assert!(out.status.success(), "readelf {args:?} {} failed", lib.name);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
