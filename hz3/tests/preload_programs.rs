//! Real programs with the hz3 `.so` in `LD_PRELOAD`, output compared with a
//! run without it: python3, gcc/g++, git, sort on a 50 MB file, ls -lR.
//! Every preloaded process is traced by the dynamic linker
//! (`LD_DEBUG=bindings`) and must have taken malloc/free from hz3.
//! See tests/README.md.  `HZ3_TEST_LONG=1` makes the inputs bigger.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(600);

fn python() -> String {
    if let Ok(p) = std::env::var("HZ3_TEST_PYTHON") {
        if !p.is_empty() {
            return p;
        }
    }
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

fn bash(script: &str) -> Command {
    let mut c = Command::new("bash");
    c.args(["-c", script]);
    c
}

/// Run `make()` once without and once with the preload; both must succeed
/// and print the same stdout.  Returns the (common) stdout.
fn compare(what: &str, min_processes: usize, make: impl Fn(&Scratch, bool) -> Command) -> String {
    let lib = allocator();
    let s = Scratch::new(&what.replace(' ', "_"));
    let mut base = make(&s, false);
    no_preload(&mut base);
    let rb = run(base, T);
    assert_success(&rb, &format!("{what} without preload"));

    let mut pre = make(&s, true);
    let trace = traced(&mut pre, &lib, &s);
    let rp = run(pre, T);
    assert_success(&rp, &format!("{what} with {} preloaded", lib.name));
    trace.assert_bound(min_processes, what);

    let (a, b) = (rb.stdout_str(), rp.stdout_str());
    assert!(
        a == b,
        "{what}: output differs with the preload\n{}",
        first_difference(&a, &b)
    );
    a
}

#[test]
fn python_allocation_heavy_script() {
    let lib = allocator();
    let script = programs_dir().join("alloc_heavy.py");
    let scale = if long_mode() { "5" } else { "1" };
    let out = compare("python3 alloc_heavy.py", 1, |_, preloaded| {
        let mut c = Command::new(python());
        c.arg(&script)
            .env("PYTHONHASHSEED", "0")
            .env("HZ3_PY_SCALE", scale);
        if preloaded {
            c.env("HZ3_EXPECT_LIB", &lib.name);
        } else {
            c.env_remove("HZ3_EXPECT_LIB");
        }
        c
    });
    assert!(
        out.contains("digest "),
        "python script printed no digest:\n{out}"
    );
}

/// A generated C file (200 functions; 2000 in long mode) compiled with -O2 -g: the
/// object file must be byte-identical and the linked program must print the
/// same thing.  cc1, as, collect2 and ld all run with the preload.
#[test]
fn gcc_compiles_and_links_c() {
    let lib = allocator();
    let cc = std::env::var("CC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cc".into());
    let s = Scratch::new("gcc");
    let src = s.path("gen.c");
    write_generated_c(&src, if long_mode() { 2000 } else { 200 });

    let mut objs = Vec::new();
    for preloaded in [false, true] {
        let tag = if preloaded { "hz3" } else { "base" };
        let obj = s.path(&format!("gen_{tag}.o"));
        let exe = s.path(&format!("gen_{tag}"));
        let mut steps: Vec<Command> = Vec::new();
        let mut c = Command::new(&cc);
        c.current_dir(&s.dir)
            .args(["-O2", "-g", "-frandom-seed=hz3", "-c", "gen.c", "-o"])
            .arg(&obj);
        steps.push(c);
        let mut l = Command::new(&cc);
        l.current_dir(&s.dir).arg(&obj).arg("-o").arg(&exe);
        steps.push(l);
        steps.push(Command::new(&exe));
        let mut last = String::new();
        for (i, mut step) in steps.into_iter().enumerate() {
            let trace = if preloaded {
                Some(traced(&mut step, &lib, &s))
            } else {
                no_preload(&mut step);
                None
            };
            let r = run(step, T);
            assert_success(&r, &format!("gcc test step {i} ({tag})"));
            if let Some(t) = trace {
                t.assert_bound(if i < 2 { 2 } else { 1 }, &format!("gcc test step {i}"));
            }
            last = r.stdout_str();
        }
        objs.push((std::fs::read(&obj).expect("read object"), last));
    }
    assert!(!objs[0].1.is_empty(), "generated program printed nothing");
    assert!(
        objs[0].1 == objs[1].1,
        "generated program output differs:\n{}",
        first_difference(&objs[0].1, &objs[1].1)
    );
    assert!(
        objs[0].0 == objs[1].0,
        "gcc produced a different object file with the preload ({} vs {} bytes)",
        objs[0].0.len(),
        objs[1].0.len()
    );
}

/// g++ compiling the C++ test program (templates, <map>, <unordered_map>...):
/// cc1plus is one of the heaviest malloc users around.
#[test]
fn gxx_compiles_cxx() {
    let lib = allocator();
    let cxx = std::env::var("CXX")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "c++".into());
    let s = Scratch::new("gxx");
    let mut objs = Vec::new();
    for preloaded in [false, true] {
        let obj = s.path(if preloaded { "cxx_hz3.o" } else { "cxx_base.o" });
        let mut c = Command::new(&cxx);
        c.current_dir(c_dir())
            .args([
                "-std=c++17",
                "-O2",
                "-g",
                "-frandom-seed=hz3",
                "-I",
                ".",
                "-c",
                "cxx.cpp",
                "-o",
            ])
            .arg(&obj);
        let trace = if preloaded {
            Some(traced(&mut c, &lib, &s))
        } else {
            no_preload(&mut c);
            None
        };
        let r = run(c, T);
        assert_success(&r, &format!("g++ -O2 cxx.cpp (preload: {preloaded})"));
        if let Some(t) = trace {
            t.assert_bound(2, "g++ cxx.cpp");
        }
        objs.push(std::fs::read(&obj).expect("read object"));
    }
    assert!(
        objs[0] == objs[1],
        "g++ produced a different object file with the preload"
    );
}

/// git: init, ~200 files over several commits, a branch merge, a tag, a
/// threaded repack with delta search, gc, then log/rev-list/cat-file/fsck/
/// diff/blame/grep.  Authors and dates are fixed, so hashes match too.
#[test]
fn git_repository_workload() {
    let script = programs_dir().join("git_workload.sh");
    let out = compare("git workload", 20, |s, preloaded| {
        let mut c = Command::new("bash");
        c.arg(&script)
            .arg(s.path(if preloaded { "git-hz3" } else { "git-base" }));
        c
    });
    assert!(
        out.contains("== done"),
        "git workload did not finish:\n{out}"
    );
    assert!(
        !out.contains("error") && !out.contains("missing"),
        "git fsck reported problems:\n{out}"
    );
}

/// GNU sort on a generated 50 MB file (500 MB in long mode): in memory,
/// with a small buffer (temporary files and merges), and numerically.
#[test]
fn sort_large_file() {
    let lib = allocator();
    let s = Scratch::new("sort");
    let data = s.path("input.txt");
    let mb = if long_mode() { 500 } else { 50 };
    write_sort_input(&data, mb << 20);
    let tmp = s.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let d = data.display();
    let t = tmp.display();
    let script = format!(
        "set -eo pipefail; export LC_ALL=C; \
         sort '{d}' | sha256sum; \
         sort -S 8M --parallel=2 -T '{t}' '{d}' | sha256sum; \
         sort -t ' ' -k2,2n -k1,1 -s '{d}' | sha256sum; \
         sort -u -k3,3 '{d}' | wc -l"
    );
    let mut base = bash(&script);
    no_preload(&mut base);
    let rb = run(base, T);
    assert_success(&rb, "sort without preload");
    let mut pre = bash(&script);
    let trace = traced(&mut pre, &lib, &s);
    let rp = run(pre, T);
    assert_success(&rp, "sort with preload");
    trace.assert_bound(5, "sort");
    let (a, b) = (rb.stdout_str(), rp.stdout_str());
    assert!(
        a == b,
        "sort output differs with the preload\n{}",
        first_difference(&a, &b)
    );
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines.len(), 4, "unexpected sort output:\n{a}");
    assert_eq!(lines[0], lines[1], "in-memory and external sort disagree");
}

/// `ls -laR` over a few system trees piped to sha256sum.  The trees could
/// change under us (a package install), so a mismatch is retried.
#[test]
fn ls_recursive_listing() {
    let lib = allocator();
    let s = Scratch::new("ls");
    let script = "set -eo pipefail; LC_ALL=C ls -laR --time-style=+%s /usr/include /usr/lib/x86_64-linux-gnu \
                  /usr/share/zoneinfo 2>/dev/null | sha256sum";
    let mut last = String::new();
    for attempt in 0..3 {
        let mut base = bash(script);
        no_preload(&mut base);
        let rb = run(base, T);
        assert_success(&rb, "ls -laR without preload");
        let mut pre = bash(script);
        let trace = traced(&mut pre, &lib, &s);
        let rp = run(pre, T);
        assert_success(&rp, "ls -laR with preload");
        trace.assert_bound(2, "ls -laR");
        if rb.stdout == rp.stdout {
            return;
        }
        last = format!(
            "attempt {attempt}: {} vs {}",
            rb.stdout_str().trim(),
            rp.stdout_str().trim()
        );
    }
    panic!("ls -laR listing differs with the preload: {last}");
}

// ---------------------------------------------------------------------
// input generators (deterministic)

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn write_sort_input(path: &PathBuf, bytes: usize) {
    let f = std::fs::File::create(path).expect("create sort input");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut r = Lcg(2024);
    let mut written = 0usize;
    let mut line = Vec::with_capacity(128);
    while written < bytes {
        line.clear();
        let len = 3 + (r.next() % 18) as usize;
        for _ in 0..len {
            line.push(b'a' + (r.next() % 26) as u8);
        }
        let n = r.next() % 1_000_000;
        let k = r.next() % 50_000;
        let _ = writeln!(&mut line, " {n} k{k} {:x}", r.next());
        w.write_all(&line).expect("write sort input");
        written += line.len();
    }
    w.flush().expect("flush sort input");
}

fn write_generated_c(path: &PathBuf, functions: usize) {
    let mut r = Lcg(77);
    let mut s = String::with_capacity(functions * 900);
    s.push_str("#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n\n");
    s.push_str("struct rec { int a; long b; double c; char name[24]; };\n\n");
    for i in 0..functions {
        let (c1, c2, c3) = (r.next() % 1000 + 1, r.next() % 97 + 1, r.next() % 13 + 2);
        s.push_str(&format!(
            "static const int table_{i}[8] = {{{}, {}, {}, {}, {}, {}, {}, {}}};\n",
            r.next() % 100,
            r.next() % 100,
            r.next() % 100,
            r.next() % 100,
            r.next() % 100,
            r.next() % 100,
            r.next() % 100,
            r.next() % 100
        ));
        s.push_str(&format!(
            "long func_{i}(long x) {{\n\
             \x20   struct rec v[4];\n\
             \x20   long acc = {c1};\n\
             \x20   for (int k = 0; k < 4; k++) {{\n\
             \x20       v[k].a = (int)(x * {c2} + k);\n\
             \x20       v[k].b = acc ^ (x << (k % {c3}));\n\
             \x20       v[k].c = (double)v[k].a / {c3}.0;\n\
             \x20       snprintf(v[k].name, sizeof v[k].name, \"f{i}_%d\", k);\n\
             \x20   }}\n\
             \x20   for (long j = 0; j < (x & 15) + 8; j++) {{\n\
             \x20       switch ((int)((j + x) % 5)) {{\n\
             \x20       case 0: acc += table_{i}[j & 7] * j; break;\n\
             \x20       case 1: acc ^= v[j & 3].b + (long)strlen(v[j & 3].name); break;\n\
             \x20       case 2: acc -= (long)(v[j & 3].c * {c2}); break;\n\
             \x20       case 3: acc = acc * {c3} % 1000003; break;\n\
             \x20       default: acc += {prev}; break;\n\
             \x20       }}\n\
             \x20   }}\n\
             \x20   return acc;\n\
             }}\n\n",
            prev = if i % 10 != 0 {
                format!("func_{}(x >> 3) & 255", i - 1)
            } else {
                "1".into()
            },
        ));
    }
    s.push_str("int main(void) {\n    unsigned long h = 1469598103934665603ul;\n");
    s.push_str("    for (long x = 0; x < 40; x++) {\n");
    for i in (0..functions).step_by(7) {
        s.push_str(&format!(
            "        h = (h ^ (unsigned long)func_{i}(x)) * 1099511628211ul;\n"
        ));
    }
    s.push_str("    }\n    printf(\"generated program digest %lx\\n\", h);\n    return 0;\n}\n");
    std::fs::write(path, s).expect("write generated C");
}
