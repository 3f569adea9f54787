#!/usr/bin/env bash
# Build the hz3 Docker image of one lane (or of every lane) and prove it works:
# a container runs real programs and an allocation workload with hz3 preloaded,
# shown by the process maps and by the lane's own HZ3_PRINT_CONFIG output.
#
#   docker/build-and-prove.sh                 every lane (same as --all)
#   docker/build-and-prove.sh --lane scale    one lane (repeatable)
#
# What it does, each step skipped when already done:
#   1. makes sure a Docker engine answers (installs Debian's docker.io and starts
#      dockerd in the background when none runs; needs root for that);
#   2. makes sure the base image exists; a missing debian:bookworm-slim is built
#      locally with debootstrap from the machine's configured Debian mirror and
#      imported, and the root filesystem tarball is cached for later runs;
#   3. builds target/lanes/<lane>/libhz3_<lane>{,_hardened}.so with `cargo xtask
#      build-lanes` when absent (or always, with --rebuild), and the lane's Debian
#      package (.github/scripts/package-deb.sh);
#   4. builds hz3:<lane> and hz3:<lane>-hardened from docker/Dockerfile
#      (--build-arg LANE=<lane> [--build-arg VARIANT=hardened]): the image
#      installs the package with `apt-get install ./….deb`;
#   5. proves each image (labels, package installed, same .so bytes, maps,
#      printed lane config, real programs whose output must equal the same run
#      without hz3).
# Exits non-zero if any lane fails; prints a table of step times at the end.
#
# Environment:
#   HZ3_DOCKER_CACHE    cache directory (default ${XDG_CACHE_HOME:-~/.cache}/hz3-docker)
#   HZ3_DEBIAN_MIRROR   Debian mirror for debootstrap (default: from /etc/apt sources)
#   DOCKER_BUILDKIT     default 0 (the classic builder needs no buildx plugin)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE="$ROOT/docker/Dockerfile"
DEFAULT_LANE=fast
BASE=debian:bookworm-slim
TAG_PREFIX=hz3
LANES_DIR=
REBUILD=0
PLAIN_ONLY=0
PULL=0
LANES=()
CACHE=${HZ3_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hz3-docker}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

usage() {
    cat <<EOF
usage: $0 [--all | --lane NAME ...] [options]
  --all              every lane in lanes/*.toml (the default)
  --lane NAME        this lane; repeat for several
  --base IMAGE       base image (default $BASE)
  --pull             try 'docker pull' for a missing base before building one locally
  --lanes-dir DIR    take prebuilt lanes from DIR/<lane>/ instead of target/lanes
                     (nothing is compiled then; for testing the script itself)
  --rebuild          run 'cargo xtask build-lanes' even when the .so exists
  --plain-only       skip the hardened images
  --tag-prefix NAME  image name (default $TAG_PREFIX): images are NAME:<lane>
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --all) LANES=() ;;
        --lane) [ $# -ge 2 ] || { usage >&2; exit 2; }; LANES+=("$2"); shift ;;
        --lane=*) LANES+=("${1#--lane=}") ;;
        --base) [ $# -ge 2 ] || { usage >&2; exit 2; }; BASE=$2; shift ;;
        --pull) PULL=1 ;;
        --lanes-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; LANES_DIR=$(cd "$2" && pwd); shift ;;
        --rebuild) REBUILD=1 ;;
        --plain-only) PLAIN_ONLY=1 ;;
        --tag-prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; TAG_PREFIX=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [ ${#LANES[@]} -eq 0 ]; then
    for f in "$ROOT"/lanes/*.toml; do
        [ -e "$f" ] && LANES+=("$(basename "$f" .toml)")
    done
    [ ${#LANES[@]} -gt 0 ] || LANES=(fast scale mem_mstress mem_large)
fi
for lane in "${LANES[@]}"; do
    [[ $lane =~ ^[a-z0-9_]+$ ]] || { echo "bad lane name: $lane" >&2; exit 2; }
done

log() { printf '[hz3-docker] %s\n' "$*" >&2; }
indent() { sed 's/^/    /'; }
die() { printf '[hz3-docker] FAIL: %s\n' "$*" >&2; exit 1; }

# Step timing: `timed NAME cmd...` runs cmd in a subshell with errexit on,
# records its wall time in $TIMES_FILE and returns its status.
TIMES_FILE=
timed() {
    local name=$1 start end rc ms errexit=0
    shift
    case $- in *e*) errexit=1 ;; esac
    start=$(date +%s%N)
    set +e
    (set -e; "$@")
    rc=$?
    [ "$errexit" -eq 0 ] || set -e
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    printf '%-36s %5d.%01ds%s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) \
        "$([ "$rc" -eq 0 ] || echo "  (failed, exit $rc)")" >>"$TIMES_FILE"
    return "$rc"
}
print_times() {
    [ -s "$TIMES_FILE" ] || return 0
    log "step times:"
    sed 's/^/    /' "$TIMES_FILE" >&2
    rm -f "$TIMES_FILE"
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (run as root or do it by hand)"
}

apt_install() {
    need_root "installing $*"
    log "apt-get install -y $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$CACHE/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$CACHE/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$CACHE/apt.log" 2>&1 \
            || { tail -20 "$CACHE/apt.log" >&2; die "apt-get install $* failed"; }
    fi
}

# ---------------------------------------------------------------- 1. docker
ensure_docker() {
    command -v docker >/dev/null 2>&1 || apt_install docker.io
    if docker info >/dev/null 2>&1; then
        log "docker engine: $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?') (already running)"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    need_root "starting dockerd"
    log "no docker engine answers: starting dockerd in the background (log: $CACHE/dockerd.log)"
    nohup dockerd >"$CACHE/dockerd.log" 2>&1 &
    echo $! >"$CACHE/dockerd.pid"
    local i
    for i in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            log "dockerd $(cat "$CACHE/dockerd.pid") up after ${i}s: $(docker version -f '{{.Server.Version}}')"
            return 0
        fi
        kill -0 "$(cat "$CACHE/dockerd.pid")" 2>/dev/null || break
        sleep 1
    done
    tail -20 "$CACHE/dockerd.log" >&2 || true
    die "dockerd did not come up"
}

# ---------------------------------------------------------------- 2. base image
# The Debian mirror this machine's apt uses (deb822 .sources first, then .list).
debian_mirror() {
    if [ -n "${HZ3_DEBIAN_MIRROR:-}" ]; then
        echo "$HZ3_DEBIAN_MIRROR"
        return
    fi
    local f uri=
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""; on = 1
                for (i = 1; i <= NF; i++) {
                    l = $i
                    if (l ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", l); uris = l }
                    else if (l ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", l); suites = l }
                    else if (l ~ /^Enabled:[ \t]*[Nn]o/) { on = 0 }
                }
                split(uris, u, /[ \t]+/)
                if (on && u[1] ~ /^https?:/ && u[1] !~ /security/ && suites !~ /-security/) { print u[1]; exit }
            }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            uri=$(awk '$1 == "deb" {
                    i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($i ~ /^https?:/ && $i !~ /security/ && $(i + 1) !~ /-security/) { print $i; exit }
                }' "$f")
            [ -n "$uri" ] && break
        done
    fi
    # A non-Debian host (e.g. Ubuntu) has no Debian mirror configured.
    if [ -z "$uri" ] || ! grep -qs '^ID=debian' /etc/os-release; then
        uri=http://deb.debian.org/debian
    fi
    echo "${uri%/}"
}

# Build the root filesystem tarball of a minimal bookworm (cached).
make_base_tarball() {
    local tarball=$1 suite=bookworm mirror rootfs
    mirror=$(debian_mirror)
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    need_root "debootstrap"
    rootfs="$CACHE/rootfs.$$"
    rm -rf "$rootfs"
    log "debootstrap --variant=minbase $suite from $mirror (log: $CACHE/debootstrap.log)"
    if ! nice -n 15 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
        tail -20 "$CACHE/debootstrap.log" >&2
        rm -rf "$rootfs"
        die "debootstrap failed"
    fi
    # Slim it the way Debian's -slim images are: no docs, man pages, locales,
    # apt lists or downloaded .debs, and keep later installs from adding them.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/* "$rootfs"/tmp/* \
        "$rootfs"/etc/hostname "$rootfs"/etc/machine-id
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d" "$rootfs/etc/apt/apt.conf.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" \
        >"$rootfs/etc/apt/sources.list"
    : >"$rootfs/etc/machine-id"
    tar --numeric-owner --sort=name -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "base tarball: $tarball ($(du -h "$tarball" | cut -f1))"
}

ensure_base() {
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        log "base image $BASE present ($(docker image inspect -f '{{.Id}}' "$BASE" | cut -c1-19))"
        return 0
    fi
    if [ "$PULL" -eq 1 ] && docker pull "$BASE"; then
        return 0
    fi
    [ "$BASE" = debian:bookworm-slim ] \
        || die "base image $BASE is missing and only debian:bookworm-slim can be built locally"
    local arch tarball
    arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
    tarball="$CACHE/debian-bookworm-minbase-$arch.tar"
    if [ -f "$tarball" ]; then
        log "base image $BASE missing: importing the cached $tarball"
    else
        log "base image $BASE missing and no registry is used: building it locally"
        make_base_tarball "$tarball"
    fi
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change 'LABEL io.hz3.base=debootstrap-minbase-bookworm' \
        --message "debootstrap --variant=minbase bookworm (hz3 docker/build-and-prove.sh)" \
        "$tarball" "$BASE" >/dev/null
    log "imported $BASE ($(docker image inspect -f '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# ---------------------------------------------------------------- 3. lane .so
lane_dir() {
    if [ -n "$LANES_DIR" ]; then echo "$LANES_DIR/$1"; else echo "$ROOT/target/lanes/$1"; fi
}

ensure_lane_so() {
    local lane=$1 dir
    dir=$(lane_dir "$lane")
    if [ -z "$LANES_DIR" ] && { [ "$REBUILD" -eq 1 ] || [ ! -f "$dir/libhz3_$lane.so" ] || [ ! -f "$dir/lane-info.json" ]; }; then
        log "building lane $lane: cargo xtask build-lanes --lane $lane"
        (cd "$ROOT" && nice -n 15 cargo xtask build-lanes --lane "$lane") \
            || die "cargo xtask build-lanes --lane $lane failed"
    fi
    if [ -z "$LANES_DIR" ] && { [ "$REBUILD" -eq 1 ] || [ ! -f "$dir/libhz3_${lane}_hardened.so" ]; }; then
        log "building lane $lane (hardened): cargo xtask build-lanes --lane $lane --hardened"
        (cd "$ROOT" && nice -n 15 cargo xtask build-lanes --lane "$lane" --hardened) \
            || die "cargo xtask build-lanes --lane $lane --hardened failed"
    fi
    [ -f "$dir/libhz3_$lane.so" ] || die "missing $dir/libhz3_$lane.so"
    [ -f "$dir/libhz3_${lane}_hardened.so" ] || die "missing $dir/libhz3_${lane}_hardened.so"
    [ -f "$dir/lane-info.json" ] || die "missing $dir/lane-info.json"
    mkdir -p "$CACHE/debs-$lane"
    rm -f "$CACHE/debs-$lane"/*.deb
    bash "$ROOT/.github/scripts/package-deb.sh" --lanes-dir "$(dirname "$dir")" --lane "$lane" \
        --out "$CACHE/debs-$lane" >&2 || die "package-deb.sh --lane $lane failed"
}

project_version() {
    local id
    if id=$(cd "$ROOT" && cargo pkgid -p hz3 2>/dev/null); then
        echo "${id##*[#@]}"
    else
        sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -1
    fi
}

# ---------------------------------------------------------------- 4. image
# The image tag of a lane and variant ("" or "hardened").
image_tag() { echo "$1${2:+-$2}"; }

build_image() {
    local lane=$1 variant=$2 ctx tag
    tag=$(image_tag "$lane" "$variant")
    # A minimal staged context (the repository's target/ is gigabytes) laid out
    # like the repository, so the Dockerfile also works with the repo as context.
    ctx=$(mktemp -d)
    mkdir -p "$ctx/target/debian"
    cp -p "$CACHE/debs-$lane"/*.deb "$ctx/target/debian/"
    cp "$DOCKERFILE" "$ctx/Dockerfile"
    log "docker build --build-arg LANE=$lane --build-arg VARIANT=$variant -t $TAG_PREFIX:$tag"
    if ! docker build --network none --pull=false -f "$ctx/Dockerfile" \
        --build-arg "BASE=$BASE" --build-arg "LANE=$lane" --build-arg "VARIANT=$variant" \
        --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
        -t "$TAG_PREFIX:$tag" -t "$TAG_PREFIX:$tag-$VERSION" "$ctx" >"$CACHE/build-$tag.log" 2>&1; then
        tail -30 "$CACHE/build-$tag.log" >&2
        rm -rf "$ctx"
        die "docker build for $tag failed (log: $CACHE/build-$tag.log)"
    fi
    rm -rf "$ctx"
}

# ---------------------------------------------------------------- 5. proof
# Runs inside the container: real programs with hz3 preloaded, each compared
# with the same program run without hz3 (env -u LD_PRELOAD).
# shellcheck disable=SC2016
PROVE_IN_CONTAINER='
set -eu
fail() { echo "in-container FAIL: $*" >&2; exit 1; }
lane=$1
so=/usr/local/lib/hz3/libhz3_$lane.so
[ "$LD_PRELOAD" = /usr/local/lib/hz3/libhz3.so ] || fail "LD_PRELOAD is \"$LD_PRELOAD\""

# (a) sort: 200k lines from a fixed-seed generator, 2 sort threads with a small
#     buffer (many allocations freed across threads), then uniq and a checksum.
gen() { awk "BEGIN { x = 12345; for (i = 0; i < 200000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf \"%d key%d %s\\n\", x % 50000, i, substr(\"abcdefghijklmnopqrstuvwxyz\", x % 26 + 1) } }"; }
with=$(gen | sort -S 2M --parallel=2 -k1,1n -k2,2 | uniq -c -w 6 | sha256sum)
without=$(gen | env -u LD_PRELOAD sort -S 2M --parallel=2 -k1,1n -k2,2 | env -u LD_PRELOAD uniq -c -w 6 | sha256sum)
[ "$with" = "$without" ] || fail "sort output differs with hz3"
echo "sort --parallel=2 over 200000 lines: same sha256 with and without hz3 (${with%% *})"

# (b) perl: hashes, arrays and strings of many sizes, half freed, then checked;
#     the process asserts that hz3 is mapped into it.
perl_work='\''
open(my $m, "<", "/proc/self/maps") or die; my $hz3 = grep { /libhz3/ } <$m>;
my (%h, @keep); my $x = 7; my $sum = 0;
for my $i (1 .. 150000) {
    $x = ($x * 1103515245 + 12345) % 2147483648;
    my $len = 1 + $x % 700;                 # small and medium sizes
    $len = 5000 + $x % 300000 if $i % 997 == 0;   # some large ones
    $h{"k$i"} = "v" x $len;
    push @keep, [ $i, $len ] if $i % 3 == 0;
}
for my $i (1 .. 150000) { delete $h{"k$i"} if $i % 2 == 0 }
$sum += length($h{$_}) for keys %h;
$sum += $_->[1] for @keep;
print "hz3_mapped=", ($hz3 ? "yes" : "no"), " keys=", scalar(keys %h), " sum=$sum\n";
'\''
pw=$(perl -e "$perl_work")
pwo=$(env -u LD_PRELOAD perl -e "$perl_work")
case "$pw" in hz3_mapped=yes*) ;; *) fail "perl: hz3 not mapped: $pw" ;; esac
case "$pwo" in hz3_mapped=no*) ;; *) fail "perl baseline unexpectedly has hz3: $pwo" ;; esac
[ "${pw#hz3_mapped=yes}" = "${pwo#hz3_mapped=no}" ] || fail "perl result differs: $pw vs $pwo"
echo "perl workload (150000 blocks, 1 B..300 KB): $pw"

# (c) bash associative array and C++ programs (apt: operator new/delete).
b=$(bash -c "declare -A m; for i in \$(seq 1 30000); do m[k\$i]=\$i\$i; done; for i in \$(seq 1 2 30000); do unset \"m[k\$i]\"; done; echo \${#m[@]}")
[ "$b" = 15000 ] || fail "bash associative array: $b"
echo "bash associative array (30000 inserts, 15000 unsets): ok"
apt-get --version | head -1
apt-get check >/dev/null 2>&1 || fail "apt-get check failed under hz3"
echo "apt-get check (C++, reads the dpkg database): ok"
n=$(dpkg-query -W -f "\${Package}\n" | wc -l)
[ "$n" -gt 50 ] || fail "dpkg-query listed $n packages"
echo "dpkg-query listed $n packages: ok"
'

prove_lane() {
    local lane=$1 variant=$2
    local img lib pkg label env_ld host_sum img_sum maps cfg out
    img="$TAG_PREFIX:$(image_tag "$lane" "$variant")"
    lib="/usr/lib/x86_64-linux-gnu/libhz3_${lane}${variant:+_$variant}.so"
    pkg="hz3-${lane//_/-}"
    log "proving $img"
    label=$(docker image inspect -f '{{index .Config.Labels "io.hz3.lane"}}' "$img")
    [ "$label" = "$lane" ] || die "$img: label io.hz3.lane is '$label', expected '$lane'"
    env_ld=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$img" | grep '^LD_PRELOAD=' || true)
    [ "$env_ld" = LD_PRELOAD=/usr/local/lib/hz3/libhz3.so ] || die "$img: image env has '$env_ld'"
    echo "  labels: title=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$img")" \
        "version=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$img")" \
        "io.hz3.lane=$label; $env_ld"

    docker run --rm --network none "$img" dpkg -s "$pkg" | grep -q '^Status: install ok installed' \
        || die "$img: package $pkg is not installed"
    echo "  dpkg -s $pkg: install ok installed ($(docker run --rm --network none "$img" dpkg-query -W -f '${Version}' "$pkg"))"
    host_sum=$(sha256sum "$(lane_dir "$lane")/$(basename "$lib")" | cut -d' ' -f1)
    img_sum=$(docker run --rm --network none "$img" sha256sum "$lib" | cut -d' ' -f1)
    if [ -z "$host_sum" ] || [ "$host_sum" != "$img_sum" ]; then
        die "$img: the .so in the image differs from the built one"
    fi
    echo "  $lib in the image = the built file (sha256 ${host_sum:0:16}...)"

    docker run --rm --network none "$img" cat /usr/local/lib/hz3/lane-info.json \
        | grep -Eq "\"lane\": *\"$lane\"" || die "$img: lane-info.json does not name lane $lane"
    echo "  /usr/local/lib/hz3/lane-info.json names lane $lane"

    maps=$(docker run --rm --network none "$img" grep libhz3 /proc/self/maps) \
        || die "$img: libhz3 is not in the maps of a process in the container"
    grep -q "$lib" <<<"$maps" || die "$img: maps name another file: $maps"
    echo "  grep libhz3 /proc/self/maps (inside the container):"
    indent <<<"$maps"

    cfg=$(docker run --rm --network none -e HZ3_PRINT_CONFIG=1 "$img" sort --version 2>&1 >/dev/null | grep '^hz3:' || true)
    [ -n "$cfg" ] || die "$img: HZ3_PRINT_CONFIG=1 printed no 'hz3:' line"
    # The lane must be named: "lane=NAME", "lane: NAME", "lane \"NAME\"" or "NAME lane".
    grep -Eq "lane[^a-z0-9_]{1,3}${lane}([^a-z0-9_]|\$)|(^|[^a-z0-9_])${lane} lane" <<<"$cfg" \
        || die "$img: HZ3_PRINT_CONFIG output does not name lane $lane: $cfg"
    echo "  HZ3_PRINT_CONFIG=1 sort --version (stderr):"
    indent <<<"$cfg"

    echo "  workload inside the container:"
    out=$(docker run --rm --network none "$img" timeout 300 bash -c "$PROVE_IN_CONTAINER" prove "$lane" 2>&1) \
        || { indent <<<"$out" >&2; die "$img: the in-container workload failed"; }
    indent <<<"$out"
    if [ "$lane" != "$DEFAULT_LANE" ]; then
        echo "  non-default lane selected with --build-arg LANE=$lane: ok"
    fi
    echo "  image size: $(docker image inspect -f '{{.Size}}' "$img" | awk '{printf "%.1f MB", $1/1e6}')" \
        "(base $(docker image inspect -f '{{.Size}}' "$BASE" | awk '{printf "%.1f MB", $1/1e6}'))"
    log "PASS $img"
}

# ---------------------------------------------------------------- main
mkdir -p "$CACHE"
[ -f "$DOCKERFILE" ] || die "missing $DOCKERFILE"
TIMES_FILE="$CACHE/times.$$"
: >"$TIMES_FILE"
log "lanes: ${LANES[*]}; base: $BASE; cache: $CACHE"
trap print_times EXIT

timed "docker engine" ensure_docker
timed "base image $BASE" ensure_base
VERSION=$(project_version)
VERSION=${VERSION:-0.0.0-dev}
REVISION=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]; then REVISION="$REVISION-dirty"; fi

set +e
# The steps are plain commands, not `if`/`&&` conditions: bash ignores errexit
# inside anything run as a condition, even in a subshell that sets it again.
failed=()
VARIANTS=("")
[ "$PLAIN_ONLY" -eq 1 ] || VARIANTS+=(hardened)
images=()
for lane in "${LANES[@]}"; do
    timed "lane $lane: .so and .deb" ensure_lane_so "$lane"
    rc=$?
    for variant in "${VARIANTS[@]}"; do
        tag=$(image_tag "$lane" "$variant")
        vrc=$rc
        if [ "$vrc" -eq 0 ]; then
            timed "$tag: docker build" build_image "$lane" "$variant"
            vrc=$?
        fi
        if [ "$vrc" -eq 0 ]; then
            timed "$tag: prove" prove_lane "$lane" "$variant"
            vrc=$?
        fi
        if [ "$vrc" -eq 0 ]; then images+=("$TAG_PREFIX:$tag"); else failed+=("$tag"); fi
    done
done
set -e

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED lanes: ${failed[*]}"
    exit 1
fi
log "all lanes passed: ${LANES[*]} (images: ${images[*]})"
