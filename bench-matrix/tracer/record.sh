#!/usr/bin/env bash
# Re-record bench-matrix/traces/python3.hz3trc, the trace the `trace_python3`
# workload replays:
#
#   1. builds the LD_PRELOAD tracer (tracer/hz3trace.c) with cc;
#   2. runs Debian's python3 (installed with apt-get if missing, as
#      setup-peers.sh does) on tracer/alloc_heavy.py under the tracer, with
#      PYTHONMALLOC=malloc (every Python object through malloc, not pymalloc's
#      arenas), PYTHONHASHSEED=0, an empty environment and ASLR off
#      (setarch -R), so two recordings are byte-identical;
#   3. packs it with `hz3-bench-driver trace-pack`: validated, subsampled by
#      objects (about one in k, fixed by a hash of the object id, the smallest
#      k that fits in MAX_BYTES, default 1000000) so the committed file stays
#      under 1 MB, validated again; prints its summary.
#
#   bash bench-matrix/tracer/record.sh                 # writes bench-matrix/traces/python3.hz3trc
#   OUT=/tmp/p.hz3trc RAW=/tmp/raw.hz3trc bash bench-matrix/tracer/record.sh
#
# Then `cargo build --release -p bench-matrix` (the driver embeds the file).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/bench-matrix/traces/python3.hz3trc}
MAX_BYTES=${MAX_BYTES:-1000000}
PY=/usr/bin/python3

if [ ! -x "$PY" ]; then
    echo "record: $PY missing, installing Debian's python3"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
    export DEBIAN_FRONTEND=noninteractive
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        $SUDO apt-get update -q </dev/null
    fi
    $SUDO apt-get install -y -q --no-install-recommends python3 </dev/null \
        || { $SUDO apt-get update -q </dev/null && $SUDO apt-get install -y -q --no-install-recommends python3 </dev/null; }
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RAW=${RAW:-$WORK/raw.hz3trc}

cc -O2 -Wall -Wextra -shared -fPIC -o "$WORK/hz3trace.so" "$HERE/hz3trace.c" -ldl -lpthread

NOASLR=(setarch "$(uname -m)" -R)
if ! "${NOASLR[@]}" true 2>/dev/null; then
    echo "record: setarch -R refused here; recording with ASLR on (a few frees may move between recordings)" >&2
    NOASLR=()
fi

echo "record: $("$PY" --version) on $(basename "$HERE")/alloc_heavy.py"
env -i PATH=/usr/bin:/bin PYTHONHASHSEED=0 PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1 \
    "${NOASLR[@]}" \
    env HZ3TRACE_OUT="$RAW" HZ3TRACE_VERBOSE=1 LD_PRELOAD="$WORK/hz3trace.so" \
    "$PY" -S "$HERE/alloc_heavy.py"
echo "record: raw recording $(stat -c %s "$RAW") bytes"

DRIVER=${DRIVER:-$ROOT/target/release/hz3-bench-driver}
if [ ! -x "$DRIVER" ]; then
    (cd "$ROOT" && cargo build --release -q -p bench-matrix --bin hz3-bench-driver)
fi
"$DRIVER" trace-pack "$RAW" "$OUT" --max-bytes "$MAX_BYTES"
echo "record: wrote $OUT ($(stat -c %s "$OUT") bytes)"
"$DRIVER" trace-info "$OUT"
