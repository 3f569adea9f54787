#!/usr/bin/env bash
# Coverage-guided fuzzing of the hz3 raw API against a shadow model
# (hz3/fuzz, libFuzzer through the libfuzzer-sys crate, stable Rust).
#
#   .ci/fuzz.sh [--lane NAME]... [--seconds N] [--hardened] [--jobs N] [--no-seeds]
#   .ci/fuzz.sh --lane fast --replay FILE...      # re-run saved inputs (crash reproduction)
#
# Builds hz3/fuzz once per lane (HZ3_LANE picks the lane at build time) into
# target/fuzz/, then fuzzes each lane for N seconds (default 30), starting from
# the committed seeds (hz3/fuzz/seeds) and the corpus kept in
# target/fuzz/corpus/<lane>. Any failed check or crash stops the run, leaves the
# input in target/fuzz/artifacts/<lane>/ and makes this script exit non-zero.
# Default lanes: all four. Long run (documented in hz3/tests/HARDENING.md):
#   .ci/fuzz.sh --seconds 3600 --jobs 2
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=()
seconds=30
hardened=0
jobs=1
replay=()
seeds=(hz3/fuzz/seeds)
while [ $# -gt 0 ]; do
  case "$1" in
    --lane) lanes+=("$2"); shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --hardened) hardened=1; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-seeds) seeds=(); shift ;;   # start from nothing (checks what coverage alone finds)
    --replay) shift; replay=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ${#lanes[@]} -eq 0 ]; then
  lanes=(fast scale mem_mstress mem_large)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# Sanitizer coverage on stable: the same instrumentation cargo-fuzz asks for,
# as plain -C flags. --target keeps the flags off build scripts.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cforce-frame-pointers=yes"
unset CARGO_BUILD_RUSTFLAGS
features=()
suffix=""
if [ "$hardened" = 1 ]; then
  features=(--features hardened)
  suffix="-hardened"
fi

status=0
for lane in "${lanes[@]}"; do
  name="$lane$suffix"
  echo "== fuzz: build lane $name"
  HZ3_LANE="$lane" nice -n 10 cargo build --release \
    --manifest-path hz3/fuzz/Cargo.toml --target "$host" \
    --target-dir target/fuzz/build "${features[@]}"
  mkdir -p target/fuzz/bin "target/fuzz/corpus/$name" "target/fuzz/artifacts/$name"
  bin="target/fuzz/bin/alloc_model-$name"
  cp "target/fuzz/build/$host/release/alloc_model" "$bin"

  if [ ${#replay[@]} -gt 0 ]; then
    echo "== fuzz: replay ${#replay[@]} input(s) on lane $name"
    "$bin" -rss_limit_mb=4096 "${replay[@]}" || status=1
    continue
  fi

  echo "== fuzz: lane $name for ${seconds}s"
  start=$(date +%s)
  args=(-max_total_time="$seconds" -max_len=2048 -timeout=30 -rss_limit_mb=4096
        -print_final_stats=1 -artifact_prefix="target/fuzz/artifacts/$name/")
  if [ "$jobs" -gt 1 ]; then
    args+=(-fork="$jobs" -ignore_crashes=0)
  fi
  log="target/fuzz/$name.log"
  if ! "$bin" "${args[@]}" "target/fuzz/corpus/$name" "${seeds[@]}" >"$log" 2>&1; then
    status=1
    echo "FAIL fuzz lane $name: see $log; crashing input(s):" >&2
    ls -l "target/fuzz/artifacts/$name/" >&2 || true
    tail -n 60 "$log" >&2
    echo "reproduce: .ci/fuzz.sh --lane $lane${suffix:+ --hardened} --replay target/fuzz/artifacts/$name/<file>" >&2
  else
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov: ' "$log" | tail -n 4
    echo "fuzz lane $name: ok in $(( $(date +%s) - start ))s"
  fi
done
if [ "$status" -ne 0 ]; then
  echo "== fuzz FAILED" >&2
  exit 1
fi
echo "== fuzz passed (lanes: ${lanes[*]}${suffix})"
