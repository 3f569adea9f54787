#!/usr/bin/env bash
# Install what the benchmark matrix needs on Debian: the peer allocators
# (jemalloc, mimalloc, tcmalloc), valgrind for the callgrind gate, and the
# real programs the `prog_*` workloads run (sqlite3, python3, lua5.4, gcc, z3,
# ghostscript, redis-server + redis-tools).
# Idempotent and non-interactive: installs only what is missing, runs
# `apt-get update` only when the package lists are empty or an install fails,
# never reads stdin. Prints the peer .so paths the runner will preload.
#
#   bench-matrix/setup-peers.sh                 # peers + valgrind
#   WITH_CHROMIUM=1 bench-matrix/setup-peers.sh # also chromium (dashboard screenshots)
#   NO_PROGRAMS=1 bench-matrix/setup-peers.sh   # skip the real programs (prog_* workloads
#                                               # then report them MISSING)
#
# Exit status: 0 when every peer is present afterwards, 1 otherwise.
set -uo pipefail

PKGS=(libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 valgrind)
[ "${WITH_CHROMIUM:-0}" = 1 ] && PKGS+=(chromium)
# The real programs of the prog_* workloads (bench-matrix/src/programs.rs).
PROGRAM_PKGS=(sqlite3 python3 lua5.4 gcc z3 ghostscript redis-server redis-tools)
[ "${NO_PROGRAMS:-0}" = 1 ] || PKGS+=("${PROGRAM_PKGS[@]}")

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "!! setup-peers: apt-get not found; install by hand: ${missing[*]}" >&2
    else
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
        export DEBIAN_FRONTEND=noninteractive
        APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confold)
        echo "setup-peers: installing ${missing[*]}"
        # Fresh machines have empty package lists: update first, once.
        if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
            $SUDO apt-get update -q </dev/null
        fi
        if ! $SUDO apt-get install "${APT_OPTS[@]}" "${missing[@]}" </dev/null; then
            echo "setup-peers: install failed, refreshing package lists once and retrying"
            $SUDO apt-get update -q </dev/null
            $SUDO apt-get install "${APT_OPTS[@]}" "${missing[@]}" </dev/null \
                || echo "!! setup-peers: apt-get install failed for: ${missing[*]}" >&2
        fi
    fi
fi

# Report what the runner will find. Paths are Debian's (multiarch); the real
# names come from dpkg -L so a rename would show up here.
status=0
report() { # name package expected-path
    local name=$1 pkg=$2 want=$3 real
    real=$(dpkg -L "$pkg" 2>/dev/null | grep -E "/$(basename "$want")\$" | head -n1)
    if [ -f "$want" ]; then
        printf '  %-9s %s\n' "$name" "$want"
    elif [ -n "$real" ]; then
        printf '  %-9s %s  (!! runner expects %s)\n' "$name" "$real" "$want"
        status=1
    else
        printf '  %-9s MISSING (package %s)\n' "$name" "$pkg"
        status=1
    fi
}
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
echo "peer allocators:"
printf '  %-9s %s\n' glibc "(system malloc, no LD_PRELOAD)"
report jemalloc libjemalloc2 "/usr/lib/$MA/libjemalloc.so.2"
report mimalloc libmimalloc2.0 "/usr/lib/$MA/libmimalloc.so.2"
report tcmalloc libtcmalloc-minimal4 "/usr/lib/$MA/libtcmalloc_minimal.so.4"
if command -v valgrind >/dev/null; then
    echo "valgrind: $(valgrind --version)"
else
    echo "valgrind: MISSING (callgrind-gate will not run)"
fi
if [ "${NO_PROGRAMS:-0}" = 1 ]; then
    echo "programs: skipped (NO_PROGRAMS=1); the prog_* workloads will report them MISSING"
else
    echo "programs (prog_* workloads):"
    for b in sqlite3 python3 lua5.4 gcc z3 gs redis-server redis-benchmark redis-cli; do
        if command -v "$b" >/dev/null; then
            printf '  %-16s %s\n' "$b" "$(command -v "$b")"
        else
            printf '  %-16s MISSING\n' "$b"
        fi
    done
fi
exit $status
