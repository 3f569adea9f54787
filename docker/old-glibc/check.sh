#!/usr/bin/env bash
# Does every lane .so load and pass the C edge tests on an older glibc?
# Builds a Debian 11 (bullseye, glibc 2.31) root filesystem with debootstrap
# from the Debian mirror, imports it with `docker import` (cached tarball), and
# inside it compiles hz3/tests/c/edge.c with that system's gcc and runs it
# under LD_PRELOAD of every lane's plain and hardened .so:
#   edge.c --expect-lib libhz3_<lane>.so --require-exports --glibc-realloc0
#          --mallinfo-accounting  (single-threaded, then 4 threads)
#
#   docker/old-glibc/check.sh [--suite bullseye] [--lane NAME ...]
#
# Needs root (debootstrap, dockerd) and the Debian mirror; the lanes must be
# built (cargo xtask build-lanes, and --hardened).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SUITE=bullseye
LANES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --suite) SUITE=$2; shift ;;
        --lane) LANES+=("$2"); shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#LANES[@]} -gt 0 ] || mapfile -t LANES < <(cd "$ROOT" && cargo xtask lanes)
CACHE=${HZ3_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hz3-docker}
IMAGE="hz3-base:$SUITE-gcc"
log() { printf '[old-glibc] %s\n' "$*" >&2; }
die() { printf '[old-glibc] FAIL: %s\n' "$*" >&2; exit 1; }
mkdir -p "$CACHE"

docker info >/dev/null 2>&1 || die "no docker engine answers (docker/build-and-prove.sh starts one)"
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    tarball="$CACHE/debian-$SUITE-gcc-amd64.tar"
    if [ ! -f "$tarball" ]; then
        command -v debootstrap >/dev/null || die "debootstrap is not installed"
        mirror=${HZ3_DEBIAN_MIRROR:-http://deb.debian.org/debian}
        rootfs="$CACHE/rootfs-$SUITE.$$"
        log "debootstrap --variant=minbase --include=gcc,libc6-dev $SUITE from $mirror"
        nice -n 15 debootstrap --variant=minbase --include=gcc,libc6-dev "$SUITE" "$rootfs" "$mirror" \
            >"$CACHE/debootstrap-$SUITE.log" 2>&1 || { tail -20 "$CACHE/debootstrap-$SUITE.log" >&2; die "debootstrap failed"; }
        tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    docker import --change 'CMD ["bash"]' "$tarball" "$IMAGE" >/dev/null
fi
glibc=$(docker run --rm --network none "$IMAGE" ldd --version | head -1)
log "$IMAGE: $glibc"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lanes"
for lane in "${LANES[@]}"; do
    for so in "$ROOT/target/lanes/$lane/libhz3_$lane.so" "$ROOT/target/lanes/$lane/libhz3_${lane}_hardened.so"; do
        [ -f "$so" ] || die "missing $so (cargo xtask build-lanes --lane $lane [--hardened])"
        cp "$so" "$stage/lanes/"
    done
done
# shellcheck disable=SC2016 # expanded inside the container
docker run --rm --network none -v "$ROOT/hz3/tests/c:/src:ro" -v "$ROOT/docker/old-glibc:/compat:ro" \
    -v "$stage/lanes:/lanes:ro" "$IMAGE" bash -c '
set -eu
cd /tmp
gcc -O1 -fno-builtin -pthread -I/src -include /compat/compat.h /src/edge.c -o edge -ldl
for so in /lanes/*.so; do
    name=$(basename "$so")
    out=$(LD_PRELOAD=$so timeout 300 ./edge --expect-lib "$name" --require-exports --glibc-realloc0 --mallinfo-accounting 2>&1) \
        || { echo "$out" | tail -20; echo "FAIL $name"; exit 1; }
    echo "$out" | grep -q "edge: all checks passed" || { echo "$out" | tail -5; echo "FAIL $name (did not finish)"; exit 1; }
    echo "ok   $name: edge.c passed under $(ldd --version | head -1)"
done
'
log "every lane loads and passes edge.c on $SUITE ($glibc)"
