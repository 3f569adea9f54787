//! Real programs (issue 13 item 3): sqlite3, python3, lua5.4, gcc (cc1), z3,
//! ghostscript and redis-server, each run under every allocator with
//! `LD_PRELOAD` on an input generated here from a fixed seed.
//!
//! A program workload is a [`WorkloadDef`] whose `driver` is [`DRIVER`]; its
//! `quick_total`/`full_total` is the size of the generated input (rows, loop
//! counts, functions, requests — see each generator). Programs are not
//! thread-parametric: they run only in the smallest thread column.
//!
//! Per run the runner records the wall time, the CPU time of the process and
//! every descendant it waited for (`wait4` rusage: user + system), the peak
//! RSS (`ru_maxrss`, the largest process of the tree), the mean RSS of the
//! main process (sampled from `/proc/PID/statm`), and a 64-bit digest of the
//! program's normalised output. Throughput fields are filled so the generic
//! machinery can rank them: `ops_per_sec = 1 / wall_s`, `ops_per_cpu_sec =
//! 1 / cpu_s` (one "op" = one run of the program). Settled RSS cannot be
//! measured from outside the program and is recorded as absent.
//!
//! Output equality: for each run index, the digests of all allocators are
//! compared; a run whose output differs from the majority is turned into a
//! failure of that cell with the first differing line ([`enforce_equal_outputs`]).
//! A missing program, a non-zero exit, a signal or a timeout (which kills the
//! whole process group) is a failure of the run with its error, kept in
//! results.json and shown in the markdown and the dashboard.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{run_cmd, spawn_under, tail, Measured, Pin};
use crate::schema::{Allocator, Results, RunFailure, RunRecord};
use crate::workloads::{Mode, WorkloadDef};

/// `WorkloadDef::driver` of every program workload.
pub const DRIVER: &str = "program";

/// Seed of every generated input: fixed, so every allocator and every run
/// sees the same program input and must print the same output.
pub const INPUT_SEED: u64 = 0x5EED_0013;

/// Per-run timeout of a program (bounded further by the mode's timeout).
pub fn timeout_s(mode: Mode) -> u64 {
    match mode {
        Mode::Quick => 60,
        Mode::Full => 600,
    }
}

const fn prog(
    name: &'static str,
    args: &'static [&'static str],
    description: &'static str,
    quick: u64,
    full: u64,
) -> WorkloadDef {
    WorkloadDef {
        name,
        driver: DRIVER,
        args,
        description,
        ws: 0,
        quick_total: quick,
        full_total: full,
        min_per_thread: 1,
        in_quick: true,
    }
}

pub const PROG_SQLITE: WorkloadDef = prog(
    "prog_sqlite",
    &["sqlite3", ":memory:"],
    "sqlite3 on a generated SQL script: inserts (rows = size), indexes, joins, GROUP BY, ORDER BY, UPDATE, DELETE",
    12_000,
    200_000,
);
pub const PROG_PYTHON: WorkloadDef = prog(
    "prog_python",
    &["python3", "-S"],
    "python3 (PYTHONMALLOC=malloc, PYTHONHASHSEED=0) on an allocation-heavy script: dicts of records, lists, strings, json round trip (records = size)",
    8_000,
    150_000,
);
pub const PROG_LUA: WorkloadDef = prog(
    "prog_lua",
    &["lua5.4"],
    "lua5.4 on a generated script: tables of records, string building, closures, sort, GC (records = size)",
    7_000,
    100_000,
);
pub const PROG_GCC: WorkloadDef = prog(
    "prog_gcc",
    &["cc1", "-O2"],
    "gcc's cc1 -O2 compiling a large generated C file (functions = size); output: the assembly",
    8,
    150,
);
pub const PROG_Z3: WorkloadDef = prog(
    "prog_z3",
    &["z3", "-smt2"],
    "z3 on generated SMT-LIB problems: random 3-SAT near the threshold, linear integer systems, bit-vector equations (problems = size)",
    9,
    60,
);
pub const PROG_GS: WorkloadDef = prog(
    "prog_gs",
    &["gs", "-sDEVICE=pgmraw"],
    "ghostscript rendering a generated PostScript file (paths, fills, text, dictionaries; pages = size) to PGM at 72 dpi",
    8,
    40,
);
pub const PROG_REDIS: WorkloadDef = prog(
    "prog_redis",
    &["redis-server", "redis-benchmark"],
    "redis-server on 127.0.0.1 (free port) driven by redis-benchmark -P 16 -c 4 -d 200 (requests per test = size); checked: DBSIZE, DEBUG DIGEST, LLEN",
    6_000,
    100_000,
);

/// Every program workload, in display order.
pub const PROGRAMS: &[WorkloadDef] = &[
    PROG_SQLITE,
    PROG_PYTHON,
    PROG_LUA,
    PROG_GCC,
    PROG_Z3,
    PROG_GS,
    PROG_REDIS,
];

pub fn is_program(w: &WorkloadDef) -> bool {
    w.driver == DRIVER
}

/// Thread counts a workload runs at: all of them, or only the smallest for a program.
pub fn runs_at(w: &WorkloadDef, t: u32, threads: &[u32]) -> bool {
    !is_program(w) || Some(t) == threads.iter().copied().min()
}

// --------------------------------------------------------- executables ----

/// Debian package that provides each executable (for the "missing" error).
fn package_of(exe: &str) -> &'static str {
    match exe {
        "sqlite3" => "sqlite3",
        "python3" => "python3",
        "lua5.4" => "lua5.4",
        "cc1" | "gcc" => "gcc",
        "z3" => "z3",
        "gs" => "ghostscript",
        "redis-server" => "redis-server",
        _ => "redis-tools",
    }
}

/// Find an executable: Debian's `/usr/bin` first (not a pyenv/shim wrapper
/// that would run a different build), then `PATH`. `cc1` is asked of gcc.
pub fn find_exe(name: &str) -> Result<PathBuf, String> {
    let missing = || {
        format!(
            "MISSING program: {name} not found (install Debian package {}: bench-matrix/setup-peers.sh)",
            package_of(name)
        )
    };
    if name == "cc1" {
        let gcc = find_exe("gcc")?;
        let out = Command::new(gcc)
            .arg("-print-prog-name=cc1")
            .output()
            .map_err(|_| missing())?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        return if p.is_absolute() && p.is_file() {
            Ok(p)
        } else {
            Err(missing())
        };
    }
    let usr = Path::new("/usr/bin").join(name);
    if usr.is_file() {
        return Ok(usr);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(missing)
}

// -------------------------------------------------------------- inputs ----

/// Deterministic generator (splitmix64) for the inputs.
struct Rng(u64);
impl Rng {
    fn new(tag: u64) -> Rng {
        Rng(INPUT_SEED ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

/// The input file of a program for a given size (deterministic: same text
/// for the same size, on every machine).
pub fn generate_input(name: &str, size: u64) -> String {
    match name {
        "prog_sqlite" => gen_sql(size),
        "prog_python" => gen_python(size),
        "prog_lua" => gen_lua(size),
        "prog_gcc" => gen_c(size),
        "prog_z3" => gen_smt(size),
        "prog_gs" => gen_ps(size),
        _ => String::new(),
    }
}

fn gen_sql(rows: u64) -> String {
    let mut r = Rng::new(1);
    let mut s = String::new();
    s.push_str(
        "PRAGMA cache_size=-65536;\n\
         CREATE TABLE item(id INTEGER PRIMARY KEY, grp INT, qty INT, price REAL, name TEXT, note TEXT);\n\
         CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT);\nBEGIN;\n",
    );
    for g in 0..100 {
        let _ = writeln!(s, "INSERT INTO grp VALUES({g},'{}');", r.word(8));
    }
    for i in 0..rows {
        let nl = 4 + r.below(12) as usize;
        let tl = r.below(200) as usize;
        let _ = writeln!(
            s,
            "INSERT INTO item VALUES({i},{},{},{}.{:02},'{}','{}');",
            r.below(100),
            r.below(1000),
            r.below(500),
            r.below(100),
            r.word(nl),
            r.word(tl)
        );
    }
    s.push_str(
        "COMMIT;\n\
         CREATE INDEX item_name ON item(name);\n\
         CREATE INDEX item_grp ON item(grp, qty);\n\
         SELECT count(*), sum(qty), printf('%.2f', sum(price)), sum(length(note)) FROM item;\n\
         SELECT g.label, count(*), sum(i.qty), printf('%.2f', avg(i.price)) FROM item i JOIN grp g ON g.id = i.grp GROUP BY g.label ORDER BY g.label LIMIT 20;\n\
         SELECT name, qty FROM item ORDER BY name, id LIMIT 20;\n\
         SELECT substr(name,1,2) AS p, count(*), length(group_concat(note, ',')) FROM item GROUP BY p ORDER BY p LIMIT 30;\n\
         UPDATE item SET note = note || upper(name), qty = qty + 1 WHERE qty % 3 = 0;\n\
         DELETE FROM item WHERE price < 100;\n\
         CREATE TABLE agg AS SELECT grp, name, sum(qty) AS q, group_concat(substr(note,1,20)) AS notes FROM item GROUP BY grp, substr(name,1,3);\n\
         SELECT count(*), sum(q), sum(length(notes)) FROM agg;\n\
         SELECT count(*), sum(qty), sum(length(note)) FROM item;\n\
         SELECT a.id, b.id FROM item a JOIN item b ON a.name = b.name AND a.id < b.id ORDER BY a.id, b.id LIMIT 10;\n\
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) SELECT count(*), sum(length(printf('%08d-%s', x, hex(x)))) FROM c;\n",
    );
    s
}

fn gen_python(records: u64) -> String {
    format!(
        r#"import sys, json, hashlib
N = {records}
x = {seed}
def rnd():
    global x
    x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return x >> 33
def word(n):
    return ''.join(chr(97 + rnd() % 26) for _ in range(n))
recs = []
for i in range(N):
    recs.append({{'id': i, 'name': word(3 + rnd() % 10), 'tags': [word(2 + rnd() % 6) for _ in range(rnd() % 6)],
                  'v': (rnd() % 100000) / 7.0, 'pos': (rnd() % 1000, rnd() % 1000)}})
by = {{}}
for r in recs:
    by.setdefault(r['name'][:2], []).append(r)
recs.sort(key=lambda r: (r['v'], r['id']))
del recs[::3]
text = ' '.join(r['name'] + ':' + ','.join(r['tags']) for r in recs)
words = text.split()
counts = {{}}
for w in words:
    counts[w[:3]] = counts.get(w[:3], 0) + 1
blob = json.dumps(recs[: N // 2], sort_keys=True)
back = json.loads(blob)
sets = [set(r['tags']) for r in back]
inter = sum(len(a & b) for a, b in zip(sets, sets[1:]))
grid = [[(i * j) % 97 for j in range(200)] for i in range(200)]
tot = sum(sum(row) for row in grid)
strs = []
for i in range(N):
    strs.append(('%d-%s' % (i, word(1 + i % 7))) * (1 + i % 5))
    if len(strs) > 512:
        strs = [s[::-1] for s in strs[256:]]
print(len(recs), len(by), len(words), len(counts), len(blob), inter, tot, len(strs))
print(hashlib.sha1(blob.encode()).hexdigest())
print(sorted(counts.items())[:5])
"#,
        seed = INPUT_SEED
    )
}

fn gen_lua(records: u64) -> String {
    format!(
        r#"local N = {records}
local x = {seed}
local function rnd()
  x = (x * 1103515245 + 12345) % 2147483648
  return x
end
local function word(n)
  local t = {{}}
  for i = 1, n do t[i] = string.char(97 + rnd() % 26) end
  return table.concat(t)
end
local recs = {{}}
for i = 1, N do
  local tags = {{}}
  for j = 1, rnd() % 6 do tags[j] = word(2 + rnd() % 5) end
  recs[i] = {{ id = i, name = word(3 + rnd() % 9), v = rnd() % 100000, tags = tags }}
end
table.sort(recs, function(a, b) if a.v ~= b.v then return a.v < b.v end return a.id < b.id end)
local by = {{}}
local nkeys = 0
for _, r in ipairs(recs) do
  local k = string.sub(r.name, 1, 2)
  if not by[k] then by[k] = {{}}; nkeys = nkeys + 1 end
  table.insert(by[k], r)
end
local parts = {{}}
for i, r in ipairs(recs) do
  parts[#parts + 1] = r.name .. ":" .. table.concat(r.tags, ",")
end
local s = table.concat(parts, " ")
local cnt = 0
for w in string.gmatch(s, "%a+") do cnt = cnt + 1 end
local acc = {{}}
for i = 1, N do
  local f = function(y) return y + i end
  acc[i % 1000 + 1] = f(i) .. string.rep("z", i % 17)
  if i % 5000 == 0 then collectgarbage("step") end
end
local sum = 0
for i = 1, 1000 do if acc[i] then sum = sum + #acc[i] end end
for i = #recs, 1, -2 do table.remove(recs, i) end
print(#recs, nkeys, #s, cnt, sum)
"#,
        seed = INPUT_SEED % 2147483648
    )
}

fn gen_c(functions: u64) -> String {
    let mut r = Rng::new(4);
    let mut s = String::from(
        "typedef struct node { int key; long val; struct node *l, *r; char name[24]; } node;\n\
         typedef struct vec3 { double x, y, z; } vec3;\n\
         static inline vec3 add3(vec3 a, vec3 b) { vec3 c = { a.x + b.x, a.y + b.y, a.z + b.z }; return c; }\n\
         static inline double dot3(vec3 a, vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }\n\
         extern int ext_sink(long);\n",
    );
    for f in 0..functions {
        let cases = 8 + r.below(24);
        let _ = writeln!(
            s,
            "long fn_{f}(node *n, int k, const int *a, int len) {{\n  long acc = {};\n  vec3 v = {{ {}.0, {}.5, k }};",
            r.below(1000),
            r.below(9),
            r.below(9)
        );
        let _ = writeln!(
            s,
            "  for (int i = 0; i < len; i++) {{\n    switch ((a[i] ^ k) % {cases}) {{"
        );
        for c in 0..cases {
            let op = ["+", "-", "^", "|", "*"][r.below(5) as usize];
            let _ = writeln!(
                s,
                "    case {c}: acc = acc {op} (a[i] * {} + {}); v = add3(v, v); if (acc > {}) acc >>= {}; break;",
                r.below(97) + 1,
                r.below(1000),
                r.below(100000) + 1000,
                r.below(7) + 1
            );
        }
        let _ = writeln!(
            s,
            "    default: acc += dot3(v, v) > {} ? 1 : -1;\n    }}\n  }}",
            r.below(1000)
        );
        let _ = writeln!(
            s,
            "  while (n) {{ if (n->key == k) {{ acc += n->val; n->name[k & 15] = (char)acc; break; }} n = k < n->key ? n->l : n->r; }}"
        );
        if f > 0 {
            let _ = writeln!(
                s,
                "  if (k > {}) acc += fn_{}(n, k - 1, a, len / 2);",
                r.below(50),
                r.below(f)
            );
        }
        let _ = writeln!(
            s,
            "  for (int j = 0; j < {}; j++) acc = acc * 31 + ext_sink(acc + j);\n  return acc + (long)v.x;\n}}",
            r.below(8) + 1
        );
    }
    s
}

fn gen_smt(problems: u64) -> String {
    let mut r = Rng::new(5);
    let mut s = String::from("(set-option :produce-models false)\n");
    for p in 0..problems {
        s.push_str("(push 1)\n");
        match p % 3 {
            0 => {
                // Random 3-SAT near the phase transition (ratio ~4.2).
                let n = 70 + r.below(20);
                let m = n * 42 / 10;
                for v in 0..n {
                    let _ = writeln!(s, "(declare-const b{v} Bool)");
                }
                for _ in 0..m {
                    s.push_str("(assert (or");
                    for _ in 0..3 {
                        let v = r.below(n);
                        if r.below(2) == 0 {
                            let _ = write!(s, " b{v}");
                        } else {
                            let _ = write!(s, " (not b{v})");
                        }
                    }
                    s.push_str("))\n");
                }
            }
            1 => {
                // A linear integer system with bounds.
                let n = 10 + r.below(6);
                for v in 0..n {
                    let _ = writeln!(
                        s,
                        "(declare-const x{v} Int)\n(assert (and (>= x{v} -50) (<= x{v} 50)))"
                    );
                }
                for _ in 0..n + 4 {
                    s.push_str("(assert (<= (+");
                    for v in 0..n {
                        if r.below(3) > 0 {
                            let c = r.below(19) as i64 - 9;
                            let _ = write!(s, " (* {} x{v})", fmt_int(c));
                        }
                    }
                    let _ = writeln!(s, " 0) {}))", fmt_int(r.below(60) as i64 - 20));
                }
                let _ = writeln!(
                    s,
                    "(assert (= (+ x0 (* 3 x1) (* 5 x2)) {}))",
                    fmt_int(r.below(100) as i64 - 50)
                );
            }
            _ => {
                // Bit-vector equations: products and xors of 16-bit values.
                let n = 5 + r.below(3);
                for v in 0..n {
                    let _ = writeln!(s, "(declare-const y{v} (_ BitVec 16))");
                }
                for v in 0..n {
                    let w = (v + 1) % n;
                    let _ = writeln!(
                        s,
                        "(assert (= (bvxor (bvmul y{v} #x{:04x}) y{w}) #x{:04x}))",
                        r.below(0xffff) | 1,
                        r.below(0xffff)
                    );
                }
                let _ = writeln!(s, "(assert (bvult y0 #x{:04x}))", r.below(0xffff) + 1);
            }
        }
        let _ = writeln!(s, "(echo \"problem {p}\")\n(check-sat)\n(pop 1)");
    }
    s
}

fn fmt_int(c: i64) -> String {
    if c < 0 {
        format!("(- {})", -c)
    } else {
        c.to_string()
    }
}

fn gen_ps(pages: u64) -> String {
    let mut r = Rng::new(6);
    let mut s = String::from(
        "%!PS-Adobe-3.0\n<< /PageSize [612 792] >> setpagedevice\n\
         /Helvetica findfont 14 scalefont setfont\n\
         /d 200 dict def\n",
    );
    for p in 0..pages {
        let _ = writeln!(s, "% page {p}");
        for i in 0..150 {
            // A dictionary and string churn between paths.
            let _ = writeln!(
                s,
                "d /k{i} [ {} {} {} ] put d /s{i} ({}) put",
                r.below(612),
                r.below(792),
                r.below(50),
                Rng::word(&mut r, 12)
            );
            let _ = writeln!(
                s,
                "newpath {} {} moveto {} {} {} {} {} {} curveto {} {} lineto closepath {} setgray fill",
                r.below(612),
                r.below(792),
                r.below(612),
                r.below(792),
                r.below(612),
                r.below(792),
                r.below(612),
                r.below(792),
                r.below(612),
                r.below(792),
                r.below(10) as f64 / 10.0
            );
            if i % 5 == 0 {
                let _ = writeln!(
                    s,
                    "{} {} moveto ({}) show",
                    r.below(500),
                    r.below(780),
                    Rng::word(&mut r, 20)
                );
            }
        }
        s.push_str(
            "0 1 199 { /i exch def newpath i 3 mul 10 add 400 i 5 mul 200 mod 5 add 0 360 arc 0.5 setlinewidth 0 setgray stroke } for\n\
             /cnt 0 def d { pop pop /cnt cnt 1 add def } forall\n\
             showpage\n",
        );
    }
    s
}

/// Inputs for a plan's programs, written once to a private directory that is
/// removed when this value is dropped.
pub struct Inputs {
    pub dir: PathBuf,
    keep: bool,
}

impl Inputs {
    pub fn prepare(workloads: &[&WorkloadDef], mode: Mode) -> Result<Inputs, String> {
        // BENCH_MATRIX_PROGRAM_DIR keeps the generated inputs there (to rerun
        // a program by hand); otherwise a private directory, removed at the end.
        let (dir, keep) = match std::env::var_os("BENCH_MATRIX_PROGRAM_DIR") {
            Some(d) => (PathBuf::from(d), true),
            None => (
                std::env::temp_dir().join(format!("bench-matrix-programs-{}", std::process::id())),
                false,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let inputs = Inputs { dir, keep };
        for w in workloads.iter().filter(|w| is_program(w)) {
            let text = generate_input(w.name, w.total(mode));
            if !text.is_empty() {
                std::fs::write(inputs.path(w), text)
                    .map_err(|e| format!("write {}: {e}", inputs.path(w).display()))?;
            }
        }
        Ok(inputs)
    }

    pub fn path(&self, w: &WorkloadDef) -> PathBuf {
        let ext = match w.name {
            "prog_sqlite" => "sql",
            "prog_python" => "py",
            "prog_lua" => "lua",
            "prog_gcc" => "c",
            "prog_z3" => "smt2",
            "prog_gs" => "ps",
            _ => "txt",
        };
        self.dir.join(format!("{}.{ext}", w.name))
    }
}

impl Drop for Inputs {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Programs are not thread-parametric: pinned like a 1-thread cell.
fn base_cmd(exe: &Path, pin: Option<&Pin>) -> Command {
    crate::process::command(exe, pin, 1)
}

/// FNV-1a 64 of the normalised output.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One run of a program under `alloc`: the record (digest in `checksum`) and
/// the normalised output (for the cross-allocator comparison).
pub fn run(
    w: &WorkloadDef,
    alloc: &Allocator,
    mode: Mode,
    inputs: &Inputs,
    pin: Option<&Pin>,
    run_index: u32,
    timeout: Duration,
) -> Result<(RunRecord, Vec<u8>), String> {
    let timeout = timeout.min(Duration::from_secs(timeout_s(mode)));
    let input = inputs.path(w);
    let m = match w.name {
        "prog_sqlite" => {
            let mut c = base_cmd(&find_exe("sqlite3")?, pin);
            c.args(["-batch", ":memory:"]);
            run_cmd(c, Some(alloc), Some(input), timeout)?
        }
        "prog_python" => {
            let mut c = base_cmd(&find_exe("python3")?, pin);
            c.arg("-S").arg(&input);
            // Python's own small-object allocator would hide the allocator
            // under test: PYTHONMALLOC=malloc sends every allocation to it.
            c.env("PYTHONMALLOC", "malloc").env("PYTHONHASHSEED", "0");
            run_cmd(c, Some(alloc), None, timeout)?
        }
        "prog_lua" => {
            let mut c = base_cmd(&find_exe("lua5.4")?, pin);
            c.arg(&input);
            run_cmd(c, Some(alloc), None, timeout)?
        }
        "prog_gcc" => {
            let mut c = base_cmd(&find_exe("cc1")?, pin);
            c.args(["-quiet", "-O2", "-fno-ident"])
                .arg(&input)
                .args(["-o", "/dev/stdout"]);
            run_cmd(c, Some(alloc), None, timeout)?
        }
        "prog_z3" => {
            let mut c = base_cmd(&find_exe("z3")?, pin);
            c.arg("-smt2").arg(&input);
            run_cmd(c, Some(alloc), None, timeout)?
        }
        "prog_gs" => {
            let mut c = base_cmd(&find_exe("gs")?, pin);
            c.args([
                "-q",
                "-dNOPAUSE",
                "-dBATCH",
                "-dSAFER",
                "-r72",
                "-sDEVICE=pgmraw",
                "-sOutputFile=%stdout",
            ])
            .arg(&input);
            run_cmd(c, Some(alloc), None, timeout)?
        }
        "prog_redis" => run_redis(alloc, w.total(mode), pin, timeout)?,
        other => return Err(format!("unknown program workload {other}")),
    };
    let out = normalize(w.name, &m.stdout);
    if out.is_empty() {
        return Err(format!("no output on stdout; stderr: {}", tail(&m.stderr)));
    }
    let rec = RunRecord {
        run_index,
        seed: INPUT_SEED,
        ops_per_sec: 1.0 / m.wall_s.max(1e-9),
        wall_s: m.wall_s,
        ops_per_cpu_sec: 1.0 / m.cpu_s.max(1e-6),
        peak_rss_kib: m.peak_rss_kib,
        mean_rss_kib: m.mean_rss_kib,
        after_rss_kib: 0,
        baseline_rss_kib: 0,
        remote_rate: 0.0,
        asked_remote_rate: 0.0,
        remote_valid: true,
        settled_rss_kib: None,
        checksum: digest(&out),
        corrupt: 0,
        timeline: None,
    };
    Ok((rec, out))
}

/// What may legitimately differ between runs is removed; nothing else.
pub fn normalize(name: &str, out: &[u8]) -> Vec<u8> {
    match name {
        // Timings and request rates differ by nature; the checked data lines
        // (`dbsize=`, `digest=`, `llen=`) are built by run_redis.
        "prog_redis" => String::from_utf8_lossy(out)
            .lines()
            .filter(|l| l.starts_with("check "))
            .flat_map(|l| [l, "\n"])
            .collect::<String>()
            .into_bytes(),
        _ => out.to_vec(),
    }
}

/// A free TCP port on the loopback interface (the kernel's pick).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// redis-server under the allocator on a free loopback port; redis-benchmark
/// (not preloaded: it is the load generator) drives it, redis-cli reads the
/// data back, then SHUTDOWN NOSAVE. CPU time and peak RSS are the server's;
/// wall time is the server's whole life.
fn run_redis(
    alloc: &Allocator,
    requests: u64,
    pin: Option<&Pin>,
    timeout: Duration,
) -> Result<Measured, String> {
    let server = find_exe("redis-server")?;
    let bench = find_exe("redis-benchmark")?;
    let cli = find_exe("redis-cli")?;
    let port = free_port()?.to_string();
    let dir =
        std::env::temp_dir().join(format!("bench-matrix-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut c = base_cmd(&server, pin);
    c.args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--enable-debug-command",
        "local",
        "--loglevel",
        "warning",
        "--logfile",
        "",
        "--dir",
    ])
    .arg(&dir);
    let proc = spawn_under(c, Some(alloc), None)?;
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let cli_run = |args: &[&str]| -> Result<String, String> {
        let mut c = Command::new(&cli);
        c.args(["-h", "127.0.0.1", "-p", &port]).args(args);
        let m = run_cmd(c, None, None, left().min(Duration::from_secs(10)))?;
        Ok(String::from_utf8_lossy(&m.stdout).trim().to_string())
    };
    // Wait until the server answers.
    let mut up = false;
    while Instant::now() < deadline && Instant::now() < proc.started() + Duration::from_secs(10) {
        if std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0))).is_ok()
            && cli_run(&["PING"]).is_ok_and(|s| s == "PONG")
        {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = (|| -> Result<String, String> {
        if !up {
            return Err("redis-server did not answer PING within 10 s".into());
        }
        let mut b = Command::new(&bench);
        b.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "-c",
            "4",
            "-P",
            "16",
            "-d",
            "200",
        ])
        .args(["-n", &requests.to_string()])
        .args([
            "-t",
            "set,get,lpush,rpush,lpop,sadd,hset,zadd,lrange_100,mset",
        ]);
        run_cmd(b, None, None, left()).map_err(|e| format!("redis-benchmark: {e}"))?;
        let mut out = String::new();
        for (what, args) in [
            ("dbsize", &["DBSIZE"][..]),
            ("digest", &["DEBUG", "DIGEST"][..]),
            ("llen", &["LLEN", "mylist"][..]),
            ("hlen", &["HLEN", "myhash"][..]),
        ] {
            let v = cli_run(args).map_err(|e| format!("redis-cli {what}: {e}"))?;
            let _ = writeln!(out, "check {what}={v}");
        }
        let _ = cli_run(&["SHUTDOWN", "NOSAVE"]);
        Ok(out)
    })();
    let m = proc.wait(left().max(Duration::from_millis(100)));
    let _ = std::fs::remove_dir_all(&dir);
    let checks = result?;
    let mut m = m.map_err(|e| format!("redis-server: {e}"))?;
    m.stdout = checks.into_bytes();
    Ok(m)
}

// ---------------------------------------------------- output equality ----

/// First line where two outputs differ, for the error message.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let clip = |s: &str| {
        let s: String = s.chars().take(80).collect();
        s
    };
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (None, None) => return "outputs differ only in line endings".into(),
            (x, y) if x != y => {
                return format!(
                    "line {n}: got `{}`, others `{}`",
                    clip(x.unwrap_or("<end of output>")),
                    clip(y.unwrap_or("<end of output>"))
                )
            }
            _ => n += 1,
        }
    }
}

/// The output check of one program cell row (one workload and thread count):
/// `names[i]` is allocator slot i, `runs[i]`/`fails[i]` its records and
/// failures, `outputs[i]` its `(run_index, normalised output)`. For each run
/// index, outputs are compared across allocators; a run whose output differs
/// from the majority (ties: from the first allocator's) is moved from `runs`
/// to `fails` with the difference. Returns a warning per moved run.
pub fn enforce_equal_outputs<T>(
    workload: &str,
    names: &[String],
    runs: &mut [Vec<(RunRecord, T)>],
    fails: &mut [Vec<RunFailure>],
    outputs: &[Vec<(u32, Vec<u8>)>],
) -> Vec<String> {
    let mut warnings = Vec::new();
    let max_run = outputs.iter().flat_map(|o| o.iter().map(|x| x.0)).max();
    let Some(max_run) = max_run else {
        return warnings;
    };
    for r in 0..=max_run {
        let outs: Vec<(usize, &Vec<u8>)> = outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.iter().find(|x| x.0 == r).map(|x| (i, &x.1)))
            .collect();
        // Majority output (first seen wins ties).
        let mut best: Option<(&Vec<u8>, usize)> = None;
        for (_, o) in &outs {
            let n = outs.iter().filter(|(_, p)| p == o).count();
            if best.is_none_or(|b| n > b.1) {
                best = Some((o, n));
            }
        }
        let Some((majority, _)) = best else { continue };
        let agree: Vec<&str> = outs
            .iter()
            .filter(|(_, o)| *o == majority)
            .map(|(i, _)| names[*i].as_str())
            .collect();
        for (i, o) in &outs {
            if *o == majority {
                continue;
            }
            let Some(pos) = runs[*i].iter().position(|(rec, _)| rec.run_index == r) else {
                continue;
            };
            let (rec, _) = runs[*i].remove(pos);
            let error = format!(
                "OUTPUT DIFFERS from {} (digest {:016x} vs {:016x}): {}",
                agree.join(", "),
                digest(o),
                digest(majority),
                first_difference(o, majority)
            );
            warnings.push(format!(
                "OUTPUT MISMATCH {workload} run {r}: {}: {error}",
                names[*i]
            ));
            fails[*i].push(RunFailure {
                run_index: r,
                seed: rec.seed,
                error,
            });
        }
    }
    warnings
}

// --------------------------------------------------------------- views ----

/// Is a results-file workload a program?
pub fn info_is_program(r: &Results, workload: &str) -> bool {
    r.workloads
        .iter()
        .any(|w| w.name == workload && w.driver == DRIVER)
}

/// The results without program workloads, for the generic (thread-parametric,
/// ops/s) tables and charts; programs get their own section.
pub fn without_programs(r: &Results) -> Results {
    let mut s = r.clone();
    s.workloads.retain(|w| w.driver != DRIVER);
    let keep: Vec<String> = s.workloads.iter().map(|w| w.name.clone()).collect();
    s.cells.retain(|c| keep.contains(&c.workload));
    s
}

/// One program cell, summarised for the views.
pub struct ProgCell {
    pub wall_s: Option<f64>,
    pub cpu_s: Option<f64>,
    pub peak_kib: Option<f64>,
    /// Median settled RSS; `None` when no run recorded one (shown "n/a").
    pub settled_kib: Option<f64>,
    pub runs: usize,
    pub failures: Vec<RunFailure>,
}

pub fn prog_cell(r: &Results, workload: &str, allocator: &str) -> Option<ProgCell> {
    let c = r
        .cells
        .iter()
        .find(|c| c.workload == workload && c.allocator == allocator)?;
    let med = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
        crate::stats::median(&c.runs.iter().filter_map(f).collect::<Vec<_>>())
    };
    Some(ProgCell {
        wall_s: med(&|x| Some(x.wall_s)),
        cpu_s: med(&|x| (x.ops_per_cpu_sec > 0.0).then(|| 1.0 / x.ops_per_cpu_sec)),
        peak_kib: med(&|x| Some(x.peak_rss_kib as f64)),
        settled_kib: med(&|x| x.settled_rss_kib.map(|k| k as f64)),
        runs: c.runs.len(),
        failures: c.failures.clone(),
    })
}

/// Lowest value among the working peers (glibc/jemalloc/mimalloc/tcmalloc): `(name, value)`.
fn best_peer_by(
    r: &Results,
    workload: &str,
    f: impl Fn(&ProgCell) -> Option<f64>,
) -> Option<(String, f64)> {
    let mut best: Option<(String, f64)> = None;
    for a in r.allocators.iter().filter(|a| a.is_peer() && a.ok()) {
        if let Some(v) = prog_cell(r, workload, &a.name).as_ref().and_then(&f) {
            if best.as_ref().is_none_or(|b| v < b.1) {
                best = Some((a.name.clone(), v));
            }
        }
    }
    best
}

/// hz3 lane ÷ best peer for CPU time and peak RSS (lower is better for hz3),
/// per program, and their geomeans: `(program, cpu ratio, peak ratio)`.
pub fn lane_ratios(r: &Results, lane: &str) -> Vec<(String, Option<f64>, Option<f64>)> {
    r.workloads
        .iter()
        .filter(|w| w.driver == DRIVER)
        .map(|w| {
            let me = prog_cell(r, &w.name, lane);
            let ratio = |f: &dyn Fn(&ProgCell) -> Option<f64>| {
                let mine = me.as_ref().and_then(f)?;
                let (_, best) = best_peer_by(r, &w.name, f)?;
                (best > 0.0).then(|| mine / best)
            };
            (w.name.clone(), ratio(&|c| c.cpu_s), ratio(&|c| c.peak_kib))
        })
        .collect()
}

fn fmt_s(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "–".into())
}

fn fmt_kib(v: Option<f64>) -> String {
    v.map(|k| format!("{} MiB", crate::markdown::fmt_mib(k)))
        .unwrap_or_else(|| "n/a".into())
}

fn cell_text(r: &Results, workload: &str, a: &Allocator) -> (String, Option<String>) {
    if !a.ok() {
        return ("MISSING".into(), None);
    }
    match prog_cell(r, workload, &a.name) {
        None => ("–".into(), None),
        Some(c) if c.runs == 0 => (
            format!("FAILED ({}/{})", c.failures.len(), r.config.runs),
            c.failures.first().map(|f| f.error.clone()),
        ),
        Some(c) => {
            let warn = if c.failures.is_empty() {
                String::new()
            } else {
                format!(" ⚠{} failed", c.failures.len())
            };
            (
                format!(
                    "{} cpu · {} wall · {} peak · settled {}{warn}",
                    fmt_s(c.cpu_s),
                    fmt_s(c.wall_s),
                    fmt_kib(c.peak_kib),
                    fmt_kib(c.settled_kib)
                ),
                c.failures.first().map(|f| f.error.clone()),
            )
        }
    }
}

fn geo(v: &[Option<f64>]) -> Option<f64> {
    crate::stats::geomean(&v.iter().flatten().copied().collect::<Vec<_>>())
}

/// The markdown section for the programs (empty when there are none).
pub fn render_md(r: &Results) -> String {
    let progs: Vec<_> = r.workloads.iter().filter(|w| w.driver == DRIVER).collect();
    if progs.is_empty() {
        return String::new();
    }
    let allocs = crate::markdown::display_order(r);
    let lanes: Vec<&&Allocator> = allocs.iter().filter(|a| a.is_hz3() && a.ok()).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Real programs (one process each, smallest thread column; median CPU time of the process tree, wall time, peak RSS; settled RSS n/a: not measurable from outside)\n"
    );
    let mut head = String::from("| program |");
    let mut sep = String::from("|---|");
    for a in &allocs {
        let _ = write!(head, " {} |", a.name);
        sep.push_str("---|");
    }
    for l in &lanes {
        let _ = write!(head, " {} ÷ best peer (cpu / peak) |", l.name);
        sep.push_str("---:|");
    }
    let _ = writeln!(s, "{head}\n{sep}");
    let mut errors = Vec::new();
    for w in &progs {
        let _ = write!(s, "| {} |", w.name);
        for a in &allocs {
            let (txt, err) = cell_text(r, &w.name, a);
            let _ = write!(s, " {txt} |");
            if let Some(e) = err {
                errors.push(format!("`{}` under **{}**: {e}", w.name, a.name));
            }
        }
        for l in &lanes {
            let rat = lane_ratios(r, &l.name).into_iter().find(|x| x.0 == w.name);
            let f = |x: Option<f64>| x.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "–".into());
            let _ = match rat {
                Some((_, c, p)) => write!(s, " {} / {} |", f(c), f(p)),
                None => write!(s, " – |"),
            };
        }
        let _ = writeln!(s);
    }
    let _ = write!(s, "| **geomean** |");
    for _ in &allocs {
        let _ = write!(s, " |");
    }
    for l in &lanes {
        let rats = lane_ratios(r, &l.name);
        let c = geo(&rats.iter().map(|x| x.1).collect::<Vec<_>>());
        let p = geo(&rats.iter().map(|x| x.2).collect::<Vec<_>>());
        let f = |x: Option<f64>| {
            x.map(|v| format!("**{v:.2}×**"))
                .unwrap_or_else(|| "–".into())
        };
        let _ = write!(s, " {} / {} |", f(c), f(p));
    }
    let _ = writeln!(s, "\n\nRatios are hz3 ÷ the best peer, lower is better (CPU seconds; peak RSS). Each program's output is compared across allocators: a run whose output differs is a failure.\n");
    if !errors.is_empty() {
        let _ = writeln!(s, "**Program failures:**\n");
        for e in errors {
            let _ = writeln!(s, "- ⚠ {e}");
        }
        let _ = writeln!(s);
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The dashboard section for the programs (empty when there are none).
pub fn render_html(r: &Results) -> String {
    let progs: Vec<_> = r.workloads.iter().filter(|w| w.driver == DRIVER).collect();
    if progs.is_empty() {
        return String::new();
    }
    let allocs = crate::markdown::display_order(r);
    let lanes: Vec<&&Allocator> = allocs.iter().filter(|a| a.is_hz3() && a.ok()).collect();
    let mut h = String::new();
    let _ = write!(
        h,
        "<h2 id=\"programs\">Real programs<small>one process per run under LD_PRELOAD, smallest thread column; \
         median CPU time (process tree), wall time and peak RSS; settled RSS is n/a (not measurable from outside a program); \
         output compared across allocators; ratio = hz3 ÷ best peer, lower is better</small></h2>\
         <div class=\"card\" style=\"overflow-x:auto\"><table class=\"score\"><tr><th>program</th>"
    );
    for a in &allocs {
        let _ = write!(h, "<th>{}</th>", esc(&a.name));
    }
    for l in &lanes {
        let _ = write!(h, "<th>{} ÷ best peer<br>cpu / peak</th>", esc(&l.name));
    }
    let _ = write!(h, "</tr>");
    for w in &progs {
        let _ = write!(
            h,
            "<tr><td class=\"w\" title=\"{}\">{}</td>",
            esc(&w.description),
            esc(&w.name)
        );
        for a in &allocs {
            let (txt, err) = cell_text(r, &w.name, a);
            let failed = txt.starts_with("FAILED") || txt == "MISSING";
            let style = if failed {
                "background:#ffe3e3;color:#c92a2a;font-weight:700"
            } else if err.is_some() {
                "background:#fff3bf"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<td style=\"{style}\">{}{}</td>",
                esc(&txt).replace(" · ", "<br>"),
                err.map(|e| format!("<br><small>{}</small>", esc(&e)))
                    .unwrap_or_default()
            );
        }
        for l in &lanes {
            let rat = lane_ratios(r, &l.name).into_iter().find(|x| x.0 == w.name);
            let f = |x: Option<f64>| {
                x.map(|v| {
                    let color = if v <= 1.0 { "#2b8a3e" } else { "#c92a2a" };
                    format!("<b style=\"color:{color}\">{v:.2}×</b>")
                })
                .unwrap_or_else(|| "–".into())
            };
            let _ = match rat {
                Some((_, c, p)) => write!(h, "<td>{} / {}</td>", f(c), f(p)),
                None => write!(h, "<td>–</td>"),
            };
        }
        let _ = write!(h, "</tr>");
    }
    let _ = write!(h, "<tr><td class=\"w\">geomean</td>");
    for _ in &allocs {
        let _ = write!(h, "<td></td>");
    }
    for l in &lanes {
        let rats = lane_ratios(r, &l.name);
        let c = geo(&rats.iter().map(|x| x.1).collect::<Vec<_>>());
        let p = geo(&rats.iter().map(|x| x.2).collect::<Vec<_>>());
        let f = |x: Option<f64>| {
            x.map(|v| format!("<b>{v:.2}×</b>"))
                .unwrap_or_else(|| "–".into())
        };
        let _ = write!(h, "<td>{} / {}</td>", f(c), f(p));
    }
    let _ = write!(h, "</tr></table></div>");
    h
}

/// Run `sh -c SCRIPT` bounded by `timeout` (tests: the process-group kill).
pub fn run_shell(script: &str, timeout: Duration) -> Result<Measured, String> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    run_cmd(c, None, None, timeout)
}

/// Write `text` to stdout (used by `bench-matrix list`): each program and
/// whether its executable is installed.
pub fn print_availability(mut out: impl Write) {
    let _ = writeln!(
        out,
        "\nprograms (kind program; installed by bench-matrix/setup-peers.sh):"
    );
    for w in PROGRAMS {
        let exes: &[&str] = match w.name {
            "prog_redis" => &["redis-server", "redis-benchmark", "redis-cli"],
            _ => &w.args[..1],
        };
        let st: Vec<String> = exes
            .iter()
            .map(|e| match find_exe(e) {
                Ok(p) => p.display().to_string(),
                Err(e) => e,
            })
            .collect();
        let _ = writeln!(out, "  {:<15} {}", w.name, st.join(", "));
    }
}
