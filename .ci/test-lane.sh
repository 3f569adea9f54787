#!/usr/bin/env bash
# Builds one lane and runs the whole test suite against it (the CI matrix calls this per lane).
# More arguments go to `cargo xtask test`, e.g. `.ci/test-lane.sh fast --portable-tls`
# (the suite through the portable TLS slot of non-x86-64 targets).
set -euo pipefail
cd "$(dirname "$0")/.."
lane="${1:?usage: .ci/test-lane.sh <lane> [--hardened|--dlopen|--portable-tls]}"
shift
cargo xtask test --lane "$lane" "$@"
