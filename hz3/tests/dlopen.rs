//! hz3 loaded with dlopen instead of LD_PRELOAD (issue 18 item 7). The host
//! (`c/dlopen_host.c`) is not linked against hz3; it first dlopens libraries
//! with initial-exec TLS (`c/tls_filler.c`, largest first) until a 16-byte
//! probe no longer fits (glibc's static TLS surplus is used up), then dlopens
//! hz3 and calls its malloc, calloc, realloc, malloc_usable_size and free
//! through dlsym from 8 threads, with cross-thread frees.
//!
//! * `dlopen_build_loads_when_static_tls_is_exhausted`: the dlopen build
//!   (`cargo xtask build-lanes --dlopen`: `libhz3_<lane>_dlopen.so`, or
//!   `$HZ3_SO_DLOPEN`; global-dynamic TLS through TLS descriptors) loads and
//!   serves the calls. Fails when that build uses initial-exec TLS.
//! * `lane_build_with_exhausted_static_tls`: the library under test (`HZ3_SO`).
//!   A build with initial-exec TLS (the default x86-64 and aarch64 build)
//!   must fail to load there with glibc's "cannot allocate memory in static TLS
//!   block", which is what the dlopen build is for; a global-dynamic one (the
//!   `_dlopen` and `_portable` builds) must load.
//! * `both_load_with_dlopen_while_static_tls_is_free`: without the fillers
//!   both builds load with dlopen (the initial-exec one takes 16 bytes of the
//!   surplus).
//! * `tls_model_matches_the_build`: the relocations say which slot a build has
//!   (initial-exec, TLS descriptor, `__tls_get_addr` for `_portable`).
//! * `late_dynamic_tls_libraries_while_allocating`: the other way round: hz3
//!   preloaded (plain and dlopen builds), the program (`c/late_tls.c`) dlopens
//!   40 libraries with global-dynamic TLS (`c/tls_module.c`) while 4 threads
//!   allocate, so glibc grows every thread's DTV (with malloc, inside
//!   `__tls_get_addr`) in threads that are allocating.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The dlopen build of the lane under test: `$HZ3_SO_DLOPEN`, else the library
/// under test when it is global-dynamic already, else `libhz3_<lane>_dlopen.so`
/// beside it.
fn dlopen_lib() -> Lib {
    if let Some(p) = std::env::var_os("HZ3_SO_DLOPEN").filter(|s| !s.is_empty()) {
        return lib_at(PathBuf::from(p), "dlopen (HZ3_SO_DLOPEN)");
    }
    let lib = allocator();
    if is_global_dynamic(&lib) {
        return lib;
    }
    let dir = lib.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let p = dir.join(lib.name.replace(".so", "_dlopen.so"));
    assert!(
        p.is_file(),
        "the dlopen build {} does not exist. Build it with \
         `cargo xtask build-lanes --lane <lane> --dlopen` (or set HZ3_SO_DLOPEN). \
         This test never passes without it.",
        p.display()
    );
    lib_at(p, "dlopen")
}

/// True when the library has initial-exec TLS (binutils' `readelf`): the
/// STATIC_TLS flag in its dynamic section (x86-64), or a TP-relative dynamic
/// relocation (`R_X86_64_TPOFF64`, `R_AARCH64_TLS_TPREL64`: the aarch64 BFD
/// linker sets no flag, but glibc places the module in static TLS all the same).
fn is_initial_exec(lib: &Lib) -> bool {
    let dynamic = readelf(&["-d", "--wide"], lib);
    let relocs = readelf(&["-r", "--wide"], lib);
    dynamic.contains("STATIC_TLS") || relocs.contains("TPOFF64") || relocs.contains("TPREL64")
}

/// True when the library has no initial-exec TLS: the `_dlopen` and
/// `_portable` builds.
fn is_global_dynamic(lib: &Lib) -> bool {
    !is_initial_exec(lib)
}

/// Libraries with 4096, 2048, ..., 16 bytes of initial-exec TLS, then a
/// second 16-byte one (the probe), compiled once per test process.
fn fillers() -> Vec<String> {
    static FILLERS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FILLERS
        .get_or_init(|| {
            let cc = std::env::var("CC")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "cc".into());
            let mut out = Vec::new();
            let sizes = [4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 16];
            for (i, size) in sizes.iter().enumerate() {
                let so = scratch_root().join(format!("libtls_filler_{i}_{size}.so"));
                let mut cmd = Command::new(&cc);
                cmd.args(["-O1", "-fPIC", "-shared"])
                    .arg(format!("-DSIZE={size}"))
                    .arg(c_dir().join("tls_filler.c"))
                    .arg("-o")
                    .arg(&so)
                    .env_remove("LD_PRELOAD");
                let r = run(cmd, Duration::from_secs(120));
                assert!(r.success(), "compiling tls_filler.c:\n{}", r.describe());
                out.push(so.to_string_lossy().into_owned());
            }
            out
        })
        .clone()
}

/// Runs the host on `lib`, with the fillers first when `exhaust`.
fn host(lib: &Lib, exhaust: bool) -> RunResult {
    let exe = compile_c("dlopen_host.c");
    let mut cmd = Command::new(exe);
    cmd.arg(&lib.path);
    if exhaust {
        cmd.args(fillers());
    }
    no_preload(&mut cmd);
    for (k, _) in std::env::vars() {
        if k.starts_with("HZ3_") {
            cmd.env_remove(&k);
        }
    }
    limits(&mut cmd, None);
    run(cmd, TIMEOUT)
}

fn assert_ok(r: &RunResult, lib: &Lib, what: &str) {
    assert!(
        r.success() && r.stdout_str().contains("dlopen_host: ok"),
        "{}: {what}\n{}",
        lib.name,
        r.describe()
    );
    eprintln!("{}: {what}: ok", lib.name);
}

#[test]
fn dlopen_build_loads_when_static_tls_is_exhausted() {
    let lib = dlopen_lib();
    let r = host(&lib, true);
    assert!(
        r.stdout_str().contains("static TLS exhausted"),
        "the fillers did not use up static TLS:\n{}",
        r.describe()
    );
    assert_ok(
        &r,
        &lib,
        "dlopen with static TLS used up, malloc/free/realloc via dlsym from 8 threads",
    );
}

#[test]
fn lane_build_with_exhausted_static_tls() {
    let lib = allocator();
    let r = host(&lib, true);
    assert!(
        r.stdout_str().contains("static TLS exhausted"),
        "the fillers did not use up static TLS:\n{}",
        r.describe()
    );
    if is_global_dynamic(&lib) {
        assert_ok(&r, &lib, "global-dynamic build with static TLS used up");
    } else {
        assert!(
            r.status.and_then(|s| s.code()) == Some(3)
                && r.stdout_str()
                    .contains("cannot allocate memory in static TLS block"),
            "{}: the initial-exec build should fail to dlopen once static TLS is used up \
             (if it loads, the test's fillers no longer exhaust it)\n{}",
            lib.name,
            r.describe()
        );
        eprintln!(
            "{}: initial-exec build refused by dlopen with static TLS used up, as expected",
            lib.name
        );
    }
}

#[test]
fn both_load_with_dlopen_while_static_tls_is_free() {
    for lib in [allocator(), dlopen_lib()] {
        let r = host(&lib, false);
        assert_ok(&r, &lib, "dlopen with static TLS free");
    }
}

/// Each build reaches its slot the way its name says (hz3/src/tls.rs): the
/// plain build initial-exec, `_dlopen` through a TLS descriptor, `_portable`
/// (and every build on targets other than x86-64 and aarch64) through
/// `__tls_get_addr`. Fails when a flag did not reach the build.
#[test]
fn tls_model_matches_the_build() {
    for lib in [allocator(), dlopen_lib()] {
        let relocs = readelf(&["-r", "--wide"], &lib);
        let static_tls = is_initial_exec(&lib);
        let tlsdesc = relocs.contains("TLSDESC");
        let get_addr = relocs.contains("__tls_get_addr");
        let asm_slot = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
        let (want, ok) = if lib.name.ends_with("_portable.so") || !asm_slot {
            ("__tls_get_addr", get_addr && !static_tls && !tlsdesc)
        } else if lib.name.ends_with("_dlopen.so") {
            ("a TLS descriptor", tlsdesc && !static_tls && !get_addr)
        } else {
            (
                "initial-exec (STATIC_TLS or a TP-relative relocation)",
                static_tls && !tlsdesc && !get_addr,
            )
        };
        assert!(
            ok,
            "{}: expected {want}; STATIC_TLS={static_tls} TLSDESC={tlsdesc} __tls_get_addr={get_addr}",
            lib.name
        );
        eprintln!("{}: {want}", lib.name);
    }
}

/// Libraries with global-dynamic TLS dlopened while hz3 (preloaded) serves
/// allocations from 4 threads, then from 2 new ones (see the head comment):
/// every thread's DTV outgrows glibc's surplus and is reallocated through the
/// allocator while the allocator is in use.
#[test]
fn late_dynamic_tls_libraries_while_allocating() {
    let exe = compile_c("late_tls.c");
    let module = compile_c_shared("tls_module.c", "libtls_module.so");
    let scratch = Scratch::new("late_tls");
    // Copies under distinct names: glibc loads each file once.
    let mods: Vec<PathBuf> = (0..40)
        .map(|i| {
            let p = scratch.path(&format!("libtls_module_{i}.so"));
            std::fs::copy(&module, &p).expect("copy tls module");
            p
        })
        .collect();
    for lib in [allocator(), dlopen_lib()] {
        let mut cmd = Command::new(&exe);
        cmd.args(["--expect-lib", &lib.name]).args(&mods);
        preload(&mut cmd, &lib);
        limits(&mut cmd, None);
        let r = run(cmd, TIMEOUT);
        assert!(
            r.success() && r.stdout_str().contains("late_tls: all checks passed"),
            "{}: dlopen of 40 dynamic-TLS libraries while allocating\n{}",
            lib.name,
            r.describe()
        );
        eprintln!(
            "{}: 40 dynamic-TLS libraries dlopened while allocating: ok",
            lib.name
        );
    }
}
