#!/usr/bin/env bash
# The benchmark matrix's main job:
#   1. build the hz3 lanes (cargo xtask build-lanes) — a lane without
#      lanes/<name>.toml is skipped with a loud note and shows as MISSING;
#   2. install the peer allocators (setup-peers.sh);
#   3. build the runner and driver (release);
#   4. run the matrix (quick by default, --full for the 30-run matrix);
#   5. print where the dashboard is.
#
#   bench-matrix/run.sh                    # quick matrix (a few minutes on 2 cores)
#   bench-matrix/run.sh --full             # full matrix (hours)
#   bench-matrix/run.sh --pin --threads 1,8   # any other `bench-matrix run` flag passes through
#   SKIP_LANES=1 bench-matrix/run.sh       # do not (re)build the lanes
#   SKIP_PEERS=1 bench-matrix/run.sh       # do not touch apt
#
# Exit status: 0 when the matrix ran and the lanes that are defined built; 1
# when a defined lane failed to build (the matrix still runs and marks it MISSING).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
status=0

loud() { if [ -t 2 ]; then printf '\033[1;31m%s\033[0m\n' "$*" >&2; else printf '%s\n' "$*" >&2; fi; }
step() { printf '\n== %s\n' "$*" >&2; }

step "1/4 hz3 lanes"
if [ "${SKIP_LANES:-0}" = 1 ]; then
    echo "SKIP_LANES=1: using whatever is in $TARGET/lanes/" >&2
else
    # The lanes are the manifests in lanes/ (bench-matrix finds them the same way).
    defined=()
    for f in lanes/*.toml; do
        [ -f "$f" ] && defined+=("$(basename "$f" .toml)")
    done
    if [ ${#defined[@]} -eq 0 ]; then
        loud "!! no lane is defined under lanes/: the matrix will have peers only"
    elif [ ! -f xtask/Cargo.toml ]; then
        loud "!! xtask/ is not a crate yet: cannot build lanes (${defined[*]}); they will be reported MISSING"
        status=1
    else
        echo "building lanes: ${defined[*]}" >&2
        if ! cargo xtask build-lanes; then
            loud "!! cargo xtask build-lanes failed: lanes that did not build will be reported MISSING"
            status=1
        fi
    fi
fi

step "2/4 peer allocators"
if [ "${SKIP_PEERS:-0}" = 1 ]; then
    echo "SKIP_PEERS=1: not installing peers" >&2
else
    bash bench-matrix/setup-peers.sh </dev/null || loud "!! some peers are missing: they will be reported MISSING"
fi

step "3/4 build bench-matrix"
cargo build --release -p bench-matrix || { loud "!! bench-matrix failed to build"; exit 2; }

step "4/4 run the matrix"
"$TARGET/release/bench-matrix" run --root "$ROOT" "$@" || { loud "!! bench-matrix run failed"; exit 2; }

exit $status
