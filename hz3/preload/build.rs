//! Build script of the preload object: gives the cdylib the SONAME of the file
//! the lane builder (`cargo xtask build-lanes`) installs it as,
//! `libhz3_<lane>.so`, `libhz3_<lane>_hardened.so` (`_dlopen`, `_portable`), so programs linked with
//! `-lhz3_<lane>` record that name and packages can ship it as is; and lists
//! libpthread.so.0 and libdl.so.2 as NEEDED for glibc before 2.34.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=HZ3_LANE");
    println!("cargo:rerun-if-env-changed=HZ3_LANE_FILE");
    let lane = match (env::var("HZ3_LANE_FILE"), env::var("HZ3_LANE")) {
        (Ok(f), _) if !f.is_empty() => std::path::Path::new(&f)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "custom".into()),
        (_, Ok(l)) if !l.is_empty() => l,
        _ => "fast".into(),
    };
    let hardened = if env::var_os("CARGO_FEATURE_HARDENED").is_some() {
        "_hardened"
    } else {
        ""
    };
    // The TLS flavours of `cargo xtask build-lanes --dlopen / --portable-tls`.
    let tls = if env::var_os("CARGO_FEATURE_DLOPEN").is_some() {
        "_dlopen"
    } else if env::var_os("CARGO_FEATURE_PORTABLE_TLS").is_some() {
        "_portable"
    } else {
        ""
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhz3_{lane}{hardened}{tls}.so");
    // Never unloaded: blocks it handed out, its thread-exit key destructor and
    // the purge thread outlive any dlclose of the dlopen build.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // glibc before 2.34 defines the thread-key calls hz3 binds at their old
    // version (hz3/src/glibc_abi.rs) in libpthread.so.0, not libc.so.6: list it
    // as NEEDED (on newer glibc it is an empty compatibility object).
    println!("cargo:rustc-cdylib-link-arg=-Wl,--push-state,--no-as-needed,-l:libpthread.so.0,--pop-state");
    // The same for dlopen/dlsym (libdl.so.2 before 2.34), used when operator new
    // fails to find libstdc++'s new-handler and std::bad_alloc (c_abi.rs).
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--push-state,--no-as-needed,-l:libdl.so.2,--pop-state"
    );
}
