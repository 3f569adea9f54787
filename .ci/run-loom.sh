#!/usr/bin/env bash
# loom model tests (every test named loom_* in the hz3 library): the lock-free
# owner-shared stash (hz3/src/inbox.rs), every interleaving of a few
# producers and consumers under loom's weak-memory model, and the futex Mutex
# (hz3/src/sync.rs) where its loom tests are present. Own target dir: --cfg loom
# must not reach the normal build. See hz3/tests/HARDENING.md.
#   .ci/run-loom.sh                          # CI: preemption bound 4 (all models ~15 s)
#   LOOM_MAX_PREEMPTIONS=5 .ci/run-loom.sh   # deeper (~1-2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-4}"
start=$(date +%s)
nice -n 10 cargo test -p hz3 --lib --release --target-dir target/loom -- loom --test-threads=1 "$@"
echo "loom: ok in $(( $(date +%s) - start ))s"
