#!/usr/bin/env bash
# Builds one lane and runs the whole test suite against it (the CI matrix calls this per lane).
set -euo pipefail
cd "$(dirname "$0")/.."
lane="${1:?usage: .ci/test-lane.sh <lane>}"
cargo xtask test --lane "$lane"
