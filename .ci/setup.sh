#!/usr/bin/env bash
# Installs the system packages the tests need (idempotent, non-interactive).
set -euo pipefail
need=()
for tool in gcc:gcc g++:g++ readelf:binutils python3:python3 git:git valgrind:valgrind; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
