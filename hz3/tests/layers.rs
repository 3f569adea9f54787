//! The module map stays true. Each module's head comment says what it must not
//! touch, naming the modules in backticks in its "Must not touch" sentence;
//! this test checks those names against the module's code (before its unit
//! tests): no `crate::NAME` path, no `NAME` inside a `use crate::{...}` group.
//! And `lib.rs`'s module order names every module exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file: name -> source.
fn modules() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            m.insert(name, std::fs::read_to_string(&p).unwrap());
        }
    }
    m
}

/// The head comment (the leading `//!` lines), as one line of text.
fn head(src: &str) -> String {
    src.lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words in backticks in `text` that are module names.
fn names_in(text: &str, mods: &BTreeMap<String, String>) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| mods.contains_key(*w))
        .map(str::to_string)
        .collect()
}

/// The modules named in the "Must not touch" sentences of a head comment.
fn must_not_touch(head: &str, mods: &BTreeMap<String, String>) -> Vec<String> {
    let lower = head.to_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("must not touch") {
        let start = from + i;
        let rest = &head[start..];
        let end = rest.find(". ").map(|e| e + 1).unwrap_or(rest.len());
        out.extend(names_in(&rest[..end], mods));
        from = start + end;
    }
    out
}

/// The module's code before its unit tests, without comment lines.
fn code(src: &str) -> String {
    let cut = src.find("#[cfg(test)]").unwrap_or(src.len());
    let cut = cut.min(src.find("#[cfg(all(test").unwrap_or(src.len()));
    src[..cut]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `code` reaches: `crate::NAME` paths and names in `use crate::{...}` groups.
fn uses(code: &str, mods: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if mods.contains_key(name) {
                    out.push(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if mods.contains_key(&name) {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_keeps_its_must_not_touch_list() {
    let mods = modules();
    let mut bad = Vec::new();
    for (name, src) in &mods {
        if name == "lib" {
            continue;
        }
        let banned = must_not_touch(&head(src), &mods);
        if banned.is_empty() {
            bad.push(format!(
                "{name}.rs: no \"Must not touch\" list of modules in its head comment"
            ));
            continue;
        }
        let used = uses(&code(src), &mods);
        for b in &banned {
            if used.contains(b) {
                bad.push(format!("{name}.rs must not touch `{b}` but uses it"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn lib_names_every_module_in_its_order() {
    let mods = modules();
    let lib = head(&mods["lib"]);
    let order = &lib[lib
        .find("Module order")
        .expect("lib.rs states the module order")..];
    let named = names_in(order, &mods);
    for m in mods.keys().filter(|m| *m != "lib") {
        let n = named.iter().filter(|x| *x == m).count();
        assert_eq!(n, 1, "lib.rs's module order names `{m}` {n} times");
    }
}

/// The checker itself: a banned module reached in any of the three ways is found.
#[test]
fn the_checker_sees_each_kind_of_use() {
    let mut mods = BTreeMap::new();
    for m in ["a", "b", "c"] {
        mods.insert(m.to_string(), String::new());
    }
    let h = "Owns x. Must not touch things (`b`, `c`). Uses `a`.";
    assert_eq!(must_not_touch(h, &mods), ["b", "c"]);
    assert_eq!(uses("use crate::b;", &mods), ["b"]);
    assert_eq!(uses("let x = crate::c::f();", &mods), ["c"]);
    assert_eq!(uses("use crate::{a, b::X};", &mods), ["a", "b"]);
    assert!(uses(&code("// crate::b\nfn f() {}"), &mods).is_empty());
}
