//! The binary interface of a lane `.so`, read from the file (binutils'
//! `readelf`): its glibc symbol-version needs stay at or below `GLIBC_2.17`, so
//! it loads on Debian 11, Ubuntu 20.04 and RHEL 8 (hz3/src/glibc_abi.rs), and
//! its SONAME is the file name packages install it under, and it is marked
//! NODELETE (hz3/preload/build.rs).
//! Plain and hardened builds of the lane under test.

mod common;

use common::*;

/// The newest glibc a lane `.so` may need, as (major, minor).
const GLIBC_FLOOR: (u32, u32) = (2, 17);

/// Every `GLIBC_x.y` version named in the `.gnu.version_r` (version needs) section.
fn glibc_needs(lib: &Lib) -> Vec<(u32, u32)> {
    let text = readelf(&["-V", "--wide"], lib);
    let needs = text
        .split("Version needs section")
        .nth(1)
        .unwrap_or_else(|| panic!("{}: no version needs section:\n{text}", lib.name));
    let mut v: Vec<(u32, u32)> = needs
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|w| {
            let mut it = w.split('.');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn lane_so_needs_at_most_glibc_2_17() {
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        let needs = glibc_needs(lib);
        assert!(
            !needs.is_empty(),
            "{}: no GLIBC version needs read",
            lib.name
        );
        let too_new: Vec<String> = needs
            .iter()
            .filter(|&&v| v > GLIBC_FLOOR)
            .map(|(a, b)| format!("GLIBC_{a}.{b}"))
            .collect();
        let syms: Vec<String> = readelf(&["--dyn-syms", "--wide"], lib)
            .lines()
            .filter(|l| too_new.iter().any(|v| l.contains(&format!("@{v}"))))
            .filter_map(|l| l.split_whitespace().find(|w| w.contains('@')))
            .map(str::to_string)
            .collect();
        assert!(
            too_new.is_empty(),
            "{} needs {} (symbols {}): it will not load on glibc {}.{}",
            lib.name,
            too_new.join(", "),
            syms.join(", "),
            GLIBC_FLOOR.0,
            GLIBC_FLOOR.1
        );
        eprintln!(
            "{}: glibc needs {}",
            lib.name,
            needs
                .iter()
                .map(|(a, b)| format!("{a}.{b}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

#[test]
fn lane_so_soname_is_its_file_name() {
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        let dynamic = readelf(&["-d"], lib);
        let want = format!("Library soname: [{}]", lib.name);
        assert!(
            dynamic.contains(&want),
            "{}: SONAME is not its file name:\n{dynamic}",
            lib.name
        );
    }
}

/// The library is marked NODELETE: a `dlclose` of the dlopen build must not
/// unmap the code its handed-out blocks, its thread-exit key destructor and
/// the purge thread still need.
#[test]
fn lane_so_is_never_unloaded() {
    let (plain, hardened) = libraries();
    for lib in [&plain, &hardened] {
        let dynamic = readelf(&["-d"], lib);
        let flags = dynamic
            .lines()
            .find(|l| l.contains("(FLAGS_1)"))
            .unwrap_or("");
        assert!(
            flags.contains("NODELETE"),
            "{}: not marked NODELETE:\n{dynamic}",
            lib.name
        );
    }
}
