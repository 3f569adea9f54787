#!/usr/bin/env bash
# Build one Debian package per hz3 lane (dpkg-deb, no other tooling).
#
#   .github/scripts/package-deb.sh [--out DIR] [--lanes-dir DIR] [--lane NAME ...]
#
# Output (DIR defaults to target/debian): hz3-<lane>_<version>_amd64.deb
# (underscores in lane names become dashes: hz3-mem-mstress), holding
#   /usr/lib/x86_64-linux-gnu/libhz3_<lane>.so            SONAME libhz3_<lane>.so
#   /usr/lib/x86_64-linux-gnu/libhz3_<lane>_hardened.so   the hardened build
#   /usr/lib/x86_64-linux-gnu/pkgconfig/hz3-<lane>.pc     pkg-config --libs hz3-<lane>
#   /usr/include/hz3-<lane>/hz3.h                          (per lane: packages co-install)
#   /usr/share/hz3-<lane>/{lane-info.json,lane.toml}      what the lane is
#   /usr/share/doc/hz3-<lane>/{copyright,README.Debian}
# Installing a package changes no program; README.Debian says how to preload
# the lane into one program or system-wide (/etc/ld.so.preload).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/target/debian"
LANES=()
LANES_DIR=   # prebuilt lanes in DIR/<lane>/ (nothing is built then); default target/lanes
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift ;;
        --lane) LANES+=("$2"); shift ;;
        --lanes-dir) LANES_DIR=$(cd "$2" && pwd); shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() { printf '[package-deb] FAIL: %s\n' "$*" >&2; exit 1; }
[ ${#LANES[@]} -gt 0 ] || mapfile -t LANES < <(cd "$ROOT" && cargo xtask lanes)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
MULTIARCH=x86_64-linux-gnu
mkdir -p "$OUT"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

for lane in "${LANES[@]}"; do
    dir="${LANES_DIR:-$ROOT/target/lanes}/$lane"
    so="$dir/libhz3_$lane.so"
    hso="$dir/libhz3_${lane}_hardened.so"
    if [ -z "$LANES_DIR" ]; then
        [ -f "$so" ] || (cd "$ROOT" && cargo xtask build-lanes --lane "$lane")
        [ -f "$hso" ] || (cd "$ROOT" && cargo xtask build-lanes --lane "$lane" --hardened)
    fi
    for f in "$so" "$hso" "$dir/lane-info.json"; do
        [ -f "$f" ] || die "missing $f"
    done
    readelf -d "$so" | grep -q "SONAME.*\[libhz3_$lane.so\]" || die "$so has no SONAME libhz3_$lane.so"
    pkg="hz3-${lane//_/-}"
    d="$stage/$pkg"
    rm -rf "$d"
    libdir="$d/usr/lib/$MULTIARCH"
    doc="$d/usr/share/doc/$pkg"
    share="$d/usr/share/$pkg"
    mkdir -p "$d/DEBIAN" "$libdir/pkgconfig" "$d/usr/include/$pkg" "$doc" "$share"
    install -m 0644 "$so" "$libdir/libhz3_$lane.so"
    install -m 0644 "$hso" "$libdir/libhz3_${lane}_hardened.so"
    install -m 0644 "$ROOT/hz3/include/hz3.h" "$d/usr/include/$pkg/hz3.h"
    install -m 0644 "$dir/lane-info.json" "$share/lane-info.json"
    install -m 0644 "$ROOT/lanes/$lane.toml" "$share/lane.toml"
    cat >"$libdir/pkgconfig/$pkg.pc" <<PC
prefix=/usr
libdir=\${prefix}/lib/$MULTIARCH
includedir=\${prefix}/include/$pkg

Name: $pkg
Description: hz3 memory allocator, lane $lane
Version: $VERSION
URL: https://github.com/hz3-alloc/hz3
Libs: -L\${libdir} -lhz3_$lane
Cflags: -I\${includedir}
PC
    {
        echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        echo "Upstream-Name: hz3"
        echo "Source: https://github.com/hz3-alloc/hz3"
        echo
        echo "Files: *"
        echo "Copyright: The hz3 developers"
        echo "License: MIT or Apache-2.0"
        echo
        echo "License: MIT"
        sed 's/^$/./; s/^/ /' "$ROOT/LICENSE-MIT"
        echo
        echo "License: Apache-2.0"
        echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
    } >"$doc/copyright"
    cat >"$doc/README.Debian" <<TXT
hz3, lane $lane
===============

Installing this package changes no program. To use the lane:

One program:
    LD_PRELOAD=/usr/lib/$MULTIARCH/libhz3_$lane.so program

Linked in (C/C++):
    cc prog.c \$(pkg-config --cflags --libs $pkg)

System-wide (every dynamically linked program started afterwards; undo by
removing the line):
    echo /usr/lib/$MULTIARCH/libhz3_$lane.so >> /etc/ld.so.preload

The hardened build (integrity checks on every operation) is
/usr/lib/$MULTIARCH/libhz3_${lane}_hardened.so. HZ3_PRINT_CONFIG=1 prints the
lane's configuration to stderr; /usr/share/$pkg/lane-info.json and lane.toml
describe it.
TXT
    glibc=$(objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    size=$(du -sk --exclude=DEBIAN "$d" | cut -f1)
    cat >"$d/DEBIAN/control" <<CTL
Package: $pkg
Version: $VERSION
Architecture: amd64
Maintainer: The hz3 developers <hz3@users.noreply.github.com>
Depends: libc6 (>= $glibc)
Section: libs
Priority: optional
Installed-Size: $size
Homepage: https://github.com/hz3-alloc/hz3
Description: hz3 memory allocator, lane $lane
 A malloc replacement written in Rust, loaded with LD_PRELOAD or linked in.
 $(sed -n 's/^description = "\(.*\)"/\1/p' "$ROOT/lanes/$lane.toml" | head -1)
CTL
    echo "activate-noawait ldconfig" >"$d/DEBIAN/triggers"
    find "$d" -type d -exec chmod 0755 {} +
    deb="$OUT/${pkg}_${VERSION}_amd64.deb"
    dpkg-deb --root-owner-group -Zxz --build "$d" "$deb" >/dev/null
    echo "[package-deb] wrote $deb"
done
