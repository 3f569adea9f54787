#!/usr/bin/env bash
# The lanes' A/B pages (issue: "per lane, the A/B against fast"):
#   fast-vs-baseline  the fast lane as built at a baseline commit (default: the
#                     last commit before any other lane existed) -> fast now:
#                     shows nothing added for the other lanes slowed it;
#   scale             fast -> scale on remote-heavy and many-thread cells;
#   mem_mstress       fast -> mem_mstress on mstress (throughput and RSS);
#   mem_large         fast -> mem_large on malloc_large.
# Each page goes to bench-matrix/results/lane-ab/<name>/ab.md (+ ab.json).
#
#   bash bench-matrix/lane-ab.sh                 # all four (a few minutes on 2 cores)
#   bash bench-matrix/lane-ab.sh scale mem_large # some of them
#   BASELINE=<commit> RUNS=15 bash bench-matrix/lane-ab.sh fast-vs-baseline
#
# Uses ops per CPU-second (--metric cpu): steadier than wall time on a shared
# machine. Lanes against lanes: no peers needed; builds what it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BASELINE=${BASELINE:-0424754}
RUNS=${RUNS:-9}
OUT=$ROOT/bench-matrix/results/lane-ab
which=("$@")
[ ${#which[@]} -eq 0 ] && which=(fast-vs-baseline scale mem_mstress mem_large)

cargo xtask build-lanes
cargo build --release -p bench-matrix
BM=$TARGET/release/bench-matrix
mkdir -p "$OUT"

ab() { # name a b workloads threads
    echo "== A/B $1: $2 -> $3 ($4 at $5 threads)" >&2
    # Exit 3 is a NO-GO verdict, which is a result here (a lane trades some
    # cells for others), not a failure.
    local rc=0
    "$BM" ab --root "$ROOT" --a "$2" --b "$3" --workloads "$4" --threads "$5" \
        --runs "$RUNS" --metric cpu --out "$OUT/$1" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        echo "lane-ab: A/B $1 failed (exit $rc)" >&2
        exit "$rc"
    fi
}

for name in "${which[@]}"; do
    case "$name" in
    fast-vs-baseline)
        wt=$TARGET/ab-baseline/src-$BASELINE
        if [ ! -d "$wt" ]; then
            git worktree add --force --detach "$wt" "$BASELINE" >&2
        fi
        # The baseline's own workspace, its default lane (fast), its own lock file.
        (cd "$wt" && cargo build --release -p hz3-preload --target-dir "$TARGET/ab-baseline/build-$BASELINE" >&2)
        so=$TARGET/ab-baseline/libhz3_fast_$BASELINE.so
        cp "$TARGET/ab-baseline/build-$BASELINE/release/libhz3_preload.so" "$so"
        ab fast-vs-baseline "$so" fast small,medium,mixed,dist_app,remote_r50_2k,mstress 1,8
        ;;
    scale) ab scale fast scale remote_r50_2k,remote_r90_32k,small,mstress 8,32 ;;
    mem_mstress) ab mem_mstress fast mem_mstress mstress,small,mixed 1,8,32 ;;
    mem_large) ab mem_large fast mem_large malloc_large,mixed 1,8,32 ;;
    *)
        echo "lane-ab: unknown A/B '$name' (fast-vs-baseline, scale, mem_mstress, mem_large)" >&2
        exit 2
        ;;
    esac
done
echo "pages: $OUT/*/ab.md" >&2
