#!/usr/bin/env bash
# The crate as crates.io would get it: `cargo package` and `cargo publish
# --dry-run` for hz3, then a fresh program that depends on the packaged crate
# (not the workspace) is built and run with the default lane, with a lane
# feature, and with two lane features (which must be refused).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

echo "== cargo package -p hz3"
cargo package -p hz3 --allow-dirty
echo "== cargo publish --dry-run -p hz3"
cargo publish --dry-run -p hz3 --allow-dirty

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
pkg="$root/target/package/hz3-$version"
[ -f "$pkg/Cargo.toml" ] || { echo "package-check: $pkg was not unpacked" >&2; exit 1; }
for f in lanes/fast.toml lanes/scale.toml lanes/mem_mstress.toml lanes/mem_large.toml \
         README.md LICENSE-MIT LICENSE-APACHE include/hz3.h; do
    [ -f "$pkg/$f" ] || { echo "package-check: the packaged crate lacks $f" >&2; exit 1; }
done

user=$(mktemp -d)
trap 'rm -rf "$user"' EXIT
mkdir -p "$user/src"
cat >"$user/src/main.rs" <<'RS'
#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

fn main() {
    let v: Vec<u64> = (0..100_000).collect();
    let s: u64 = v.iter().sum();
    assert_eq!(s, 4_999_950_000);
    println!("lane={}", hz3::config::LANE);
}
RS
export CARGO_TARGET_DIR="$root/target/package-check"
unset HZ3_LANE HZ3_LANE_FILE
check() { # check <expected lane> [feature...]
    local want=$1 features
    shift
    features=
    [ $# -eq 0 ] || features=$(printf '"%s", ' "$@")
    cat >"$user/Cargo.toml" <<TOML
[package]
name = "hz3-user"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
hz3 = { path = "$pkg", features = [${features%, }] }

[workspace]
TOML
    local got
    got=$(cd "$user" && cargo run -q --release)
    [ "$got" = "lane=$want" ] || { echo "package-check: features [$*] gave '$got', want lane=$want" >&2; exit 1; }
    echo "package-check: features [$*] -> $got"
}
check fast
check scale lane-scale
check mem_mstress lane-mem-mstress
if out=$(cd "$user" && sed -i 's/features = \[[^]]*\]/features = ["lane-fast", "lane-scale"]/' Cargo.toml \
        && cargo build -q --release 2>&1); then
    echo "package-check: two lane features were accepted" >&2
    exit 1
fi
grep -q "more than one lane feature" <<<"$out" \
    || { echo "package-check: two lane features failed without saying why: $out" >&2; exit 1; }
echo "package-check: two lane features -> refused (more than one lane feature)"
echo "package-check: OK"
