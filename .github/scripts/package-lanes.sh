#!/usr/bin/env bash
# Package every hz3 lane as its own release archive, plus SHA256SUMS.
#
#   .github/scripts/package-lanes.sh [--out DIR] [--lane NAME ...] [--rebuild]
#   .github/scripts/package-lanes.sh --check      only check that release.yml runs this script
#
# Output (DIR defaults to target/distrib-lanes):
#   hz3-<lane>-<target>.tar.xz   one per lane, holding
#       hz3-<lane>-<target>/lib/libhz3_<lane>.so
#       hz3-<lane>-<target>/lib/libhz3.so -> libhz3_<lane>.so
#       hz3-<lane>-<target>/lib/libhz3_<lane>_hardened.so   (integrity checks on every operation)
#       hz3-<lane>-<target>/lib/libhz3_<lane>_dlopen.so     (global-dynamic TLS, for dlopen hosts)
#       hz3-<lane>-<target>/include/hz3.h
#       hz3-<lane>-<target>/lane-info.json    (from cargo xtask build-lanes)
#       hz3-<lane>-<target>/lane.toml         (the manifest the lane was built from)
#       hz3-<lane>-<target>/README.md, LICENSE-MIT, LICENSE-APACHE
#       hz3-<lane>-<target>/SHA256SUMS        (of the files above)
#   SHA256SUMS                   of the archives
#
# .github/workflows/release.yml runs this on a version tag, once per target
# (x86_64 and aarch64 runners), and uploads the archives to the GitHub release;
# nothing else builds release archives.
# Archives are reproducible: fixed order, owner and mtime (SOURCE_DATE_EPOCH,
# default the last commit's time), single-threaded xz.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/target/distrib-lanes"
LANES=()
REBUILD=0
CHECK_ONLY=0
TARGET=

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || { usage >&2; exit 2; }; OUT=$2; shift ;;
        --lane) [ $# -ge 2 ] || { usage >&2; exit 2; }; LANES+=("$2"); shift ;;
        --rebuild) REBUILD=1 ;;
        --target) [ $# -ge 2 ] || { usage >&2; exit 2; }; TARGET=$2; shift ;;
        --check) CHECK_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

log() { printf '[package-lanes] %s\n' "$*" >&2; }
die() { printf '[package-lanes] FAIL: %s\n' "$*" >&2; exit 1; }

if [ ${#LANES[@]} -eq 0 ]; then
    for f in "$ROOT"/lanes/*.toml; do
        [ -e "$f" ] && LANES+=("$(basename "$f" .toml)")
    done
fi
[ ${#LANES[@]} -gt 0 ] || die "no lanes (lanes/*.toml is empty)"
if [ -z "$TARGET" ]; then
    TARGET=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
    TARGET=${TARGET:-x86_64-unknown-linux-gnu}
fi

# The release workflow must run this script, or the archives would not be released.
check_release_workflow() {
    local wf="$ROOT/.github/workflows/release.yml"
    [ -f "$wf" ] || die "missing $wf"
    grep -q 'package-lanes\.sh' "$wf" || die "$wf does not run .github/scripts/package-lanes.sh"
    log "release.yml runs package-lanes.sh (${#LANES[@]} lanes: ${LANES[*]})"
}
check_release_workflow
[ "$CHECK_ONLY" -eq 0 ] || exit 0

VERSION=$(cd "$ROOT" && cargo pkgid -p hz3 2>/dev/null) || die "cargo pkgid -p hz3 failed"
VERSION=${VERSION##*[#@]}
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
HEADER="$ROOT/hz3/include/hz3.h"
[ -f "$HEADER" ] || die "missing $HEADER"

build_lane() {
    local lane=$1 dir="$ROOT/target/lanes/$1"
    if [ "$REBUILD" -eq 1 ] || [ ! -f "$dir/libhz3_$lane.so" ] || [ ! -f "$dir/lane-info.json" ]; then
        log "cargo xtask build-lanes --lane $lane"
        (cd "$ROOT" && nice -n 15 cargo xtask build-lanes --lane "$lane") || die "build of lane $lane failed"
    fi
    if [ "$REBUILD" -eq 1 ] || [ ! -f "$dir/libhz3_${lane}_hardened.so" ]; then
        log "cargo xtask build-lanes --lane $lane --hardened"
        (cd "$ROOT" && nice -n 15 cargo xtask build-lanes --lane "$lane" --hardened) || die "hardened build of lane $lane failed"
    fi
    if [ "$REBUILD" -eq 1 ] || [ ! -f "$dir/libhz3_${lane}_dlopen.so" ]; then
        log "cargo xtask build-lanes --lane $lane --dlopen"
        (cd "$ROOT" && nice -n 15 cargo xtask build-lanes --lane "$lane" --dlopen) || die "dlopen build of lane $lane failed"
    fi
    [ -f "$dir/libhz3_${lane}_dlopen.so" ] || die "missing $dir/libhz3_${lane}_dlopen.so after the build"
    [ -f "$dir/libhz3_$lane.so" ] || die "missing $dir/libhz3_$lane.so after the build"
    [ -f "$dir/libhz3_${lane}_hardened.so" ] || die "missing $dir/libhz3_${lane}_hardened.so after the build"
    [ -f "$dir/lane-info.json" ] || die "missing $dir/lane-info.json after the build"
}

# The .so must export the allocator and, on a native target, load and name its lane.
check_lane_so() {
    local lane=$1 so=$2 sym cfg
    for sym in malloc free calloc realloc posix_memalign aligned_alloc malloc_usable_size; do
        nm -D --defined-only "$so" | awk '{print $NF}' | grep -qx "$sym" \
            || die "$so does not export $sym"
    done
    if [ "$TARGET" = "$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')" ]; then
        # hz3 initialises on the first allocation: run a program that allocates.
        cfg=$(HZ3_PRINT_CONFIG=1 LD_PRELOAD="$so" sort --version 2>&1 >/dev/null | grep '^hz3:' || true)
        grep -Eq "lane[=: ]+\"?${lane}([^a-z0-9_]|\$)" <<<"$cfg" \
            || die "$so: HZ3_PRINT_CONFIG=1 does not name lane $lane (got: $cfg)"
    fi
}

mkdir -p "$OUT"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
archives=()
for lane in "${LANES[@]}"; do
    build_lane "$lane"
    so="$ROOT/target/lanes/$lane/libhz3_$lane.so"
    check_lane_so "$lane" "$so"
    check_lane_so "$lane" "$ROOT/target/lanes/$lane/libhz3_${lane}_hardened.so"
    check_lane_so "$lane" "$ROOT/target/lanes/$lane/libhz3_${lane}_dlopen.so"
    name="hz3-$lane-$TARGET"
    d="$stage/$name"
    mkdir -p "$d/lib" "$d/include"
    install -m 0755 "$so" "$d/lib/libhz3_$lane.so"
    ln -s "libhz3_$lane.so" "$d/lib/libhz3.so"
    install -m 0755 "$ROOT/target/lanes/$lane/libhz3_${lane}_hardened.so" "$d/lib/libhz3_${lane}_hardened.so"
    install -m 0755 "$ROOT/target/lanes/$lane/libhz3_${lane}_dlopen.so" "$d/lib/libhz3_${lane}_dlopen.so"
    install -m 0644 "$HEADER" "$d/include/hz3.h"
    install -m 0644 "$ROOT/target/lanes/$lane/lane-info.json" "$d/lane-info.json"
    [ -f "$ROOT/lanes/$lane.toml" ] && install -m 0644 "$ROOT/lanes/$lane.toml" "$d/lane.toml"
    # The crate is MIT OR Apache-2.0: both texts ship in every archive.
    for f in LICENSE-MIT LICENSE-APACHE; do
        [ -f "$ROOT/$f" ] || die "$ROOT/$f is missing: every archive ships both licenses"
        install -m 0644 "$ROOT/$f" "$d/"
    done
    cat >"$d/README.md" <<EOF
# hz3 $VERSION, lane \`$lane\` ($TARGET)

Built from commit $REVISION.

Use it for one program:

    LD_PRELOAD=\$PWD/lib/libhz3.so your-program

or link against it (\`-I include -L lib -lhz3\`). \`lib/libhz3_${lane}_hardened.so\` is
the hardened build: integrity checks on every operation, for debugging and for
programs that want misuse caught. \`lib/libhz3_${lane}_dlopen.so\` is for
programs that load the allocator with dlopen instead of LD_PRELOAD or linking
(plugins, language runtimes): its thread-local slot is global-dynamic, so it
loads even when other libraries have used up glibc's static TLS, for about 11
more instructions per malloc/free pair. \`HZ3_PRINT_CONFIG=1\` makes the
library print its lane configuration to stderr. \`lane-info.json\` and \`lane.toml\`
describe the lane; \`SHA256SUMS\` lists the checksums of these files
(\`sha256sum -c SHA256SUMS\`).
EOF
    (cd "$d" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum >"$stage/sums.tmp")
    mv "$stage/sums.tmp" "$d/SHA256SUMS"
    find "$d" -exec touch -h -d "@$EPOCH" {} +
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" --format=gnu \
        -C "$stage" -cf - "$name" | xz -T1 -6 >"$OUT/$name.tar.xz.tmp"
    mv "$OUT/$name.tar.xz.tmp" "$OUT/$name.tar.xz"
    archives+=("$name.tar.xz")
    log "wrote $OUT/$name.tar.xz ($(du -h "$OUT/$name.tar.xz" | cut -f1))"
done
(cd "$OUT" && sha256sum "${archives[@]}" >SHA256SUMS)
log "wrote $OUT/SHA256SUMS:"
sed 's/^/    /' "$OUT/SHA256SUMS" >&2
