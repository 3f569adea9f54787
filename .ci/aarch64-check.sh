#!/usr/bin/env bash
# aarch64 on an x86-64 machine: cross-builds a lane's three TLS builds for
# aarch64-unknown-linux-gnu (`cargo xtask build-lanes --target`), checks each
# reaches its thread-local slot the way hz3/src/tls.rs says (initial-exec for the
# plain build, a TLS descriptor for `_dlopen`, `__tls_get_addr` for `_portable`)
# and needs at most GLIBC_2.17, then runs C tests under qemu-aarch64 (user mode,
# the cross libc as the guest's root): edge.c (every malloc API semantic) with
# the plain build preloaded, late_tls.c (40 libraries with dynamic TLS dlopened
# while 4 threads allocate) with each build preloaded, and dlopen_host.c (hz3
# dlopened once static TLS is used up: the plain build refused, `_dlopen` loads).
#
#   bash .ci/aarch64-check.sh [LANE]     (default: fast)
#
# Installs what it needs (rustup target; Debian packages gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user-static). On an arm64 machine the whole suite
# runs natively instead (`bash .ci/test-lane.sh LANE`, ci.yml's arm64 job).
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
lane="${1:-fast}"
triple=aarch64-unknown-linux-gnu
start=$SECONDS

rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
need=()
for tool in aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64-static:qemu-user-static; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  echo "aarch64-check: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

for flavour in "" --dlopen --portable-tls; do
  # shellcheck disable=SC2086 # empty flavour: no argument
  cargo xtask build-lanes --lane "$lane" --target "$triple" $flavour
done
dir="target/lanes-$triple/$lane"
plain="$PWD/$dir/libhz3_$lane.so"
dlopen="$PWD/$dir/libhz3_${lane}_dlopen.so"
portable="$PWD/$dir/libhz3_${lane}_portable.so"

out="target/aarch64-check/$lane"
rm -rf "$out"
mkdir -p "$out"
cc=aarch64-linux-gnu-gcc
c=hz3/tests/c
$cc -O1 -fno-builtin -pthread -I$c $c/edge.c -o "$out/edge" -ldl
$cc -O1 -fno-builtin -pthread -I$c $c/late_tls.c -o "$out/late_tls" -ldl
$cc -O1 -pthread $c/dlopen_host.c -o "$out/dlopen_host" -ldl
$cc -O1 -fPIC -shared $c/tls_module.c -o "$out/libtls_module.so"
mods=()
for i in $(seq 0 39); do
  cp "$out/libtls_module.so" "$out/libtls_module_$i.so"
  mods+=("$PWD/$out/libtls_module_$i.so")
done
fillers=()
i=0
for size in 4096 2048 1024 512 256 128 64 32 16 16; do
  $cc -O1 -fPIC -shared -DSIZE=$size $c/tls_filler.c -o "$out/libtls_filler_${i}_$size.so"
  fillers+=("$PWD/$out/libtls_filler_${i}_$size.so")
  i=$((i + 1))
done

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }

# The slot each build reaches (relocations; the aarch64 BFD linker sets no
# STATIC_TLS flag, the R_AARCH64_TLS_TPREL64 relocation is the initial-exec mark).
tls_kind() {
  local r
  r=$(aarch64-linux-gnu-readelf -r --wide "$1")
  case "$r" in
    *__tls_get_addr*) echo tls_get_addr ;;
    *TLSDESC*) echo tlsdesc ;;
    *TLS_TPREL64*) echo initial-exec ;;
    *) echo none ;;
  esac
}
for want in "$plain:initial-exec" "$dlopen:tlsdesc" "$portable:tls_get_addr"; do
  so=${want%:*}
  got=$(tls_kind "$so")
  if [ "$got" = "${want##*:}" ]; then ok "${so##*/}: $got slot"; else bad "${so##*/}: $got slot, expected ${want##*:}"; fi
  vers=$(aarch64-linux-gnu-readelf -V "$so" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  if [ "$vers" = GLIBC_2.17 ]; then ok "${so##*/}: needs $vers at most"; else bad "${so##*/}: needs $vers (floor GLIBC_2.17)"; fi
done

export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
q() { timeout 600 qemu-aarch64-static "$@"; }
log="$out/log"

if q -E LD_PRELOAD="$plain" "$out/edge" --expect-lib "libhz3_$lane.so" --strict --threads 2 >"$log" 2>&1 &&
  grep -q "edge: all checks passed" "$log"; then
  ok "edge.c under qemu, ${plain##*/} preloaded"
else
  bad "edge.c under qemu, ${plain##*/} preloaded"; tail -20 "$log"
fi

for so in "$plain" "$dlopen" "$portable"; do
  if q -E LD_PRELOAD="$so" "$out/late_tls" --expect-lib "${so##*/}" "${mods[@]}" >"$log" 2>&1 &&
    grep -q "late_tls: all checks passed" "$log"; then
    ok "late_tls.c under qemu (40 dynamic-TLS libraries dlopened while allocating), ${so##*/} preloaded"
  else
    bad "late_tls.c under qemu, ${so##*/} preloaded"; tail -20 "$log"
  fi
done

# dlopen once static TLS is used up: the initial-exec build must be refused
# (exit 3, glibc's message), the descriptor build must load and serve 8 threads.
set +e
q "$out/dlopen_host" "$plain" "${fillers[@]}" >"$log" 2>&1
rc=$?
set -e
if [ $rc = 3 ] && grep -q "static TLS exhausted" "$log" && grep -q "cannot allocate memory in static TLS block" "$log"; then
  ok "dlopen_host.c under qemu: ${plain##*/} refused with static TLS used up"
else
  bad "dlopen_host.c under qemu: ${plain##*/} (exit $rc)"; tail -20 "$log"
fi
if q "$out/dlopen_host" "$dlopen" "${fillers[@]}" >"$log" 2>&1 && grep -q "dlopen_host: ok" "$log" &&
  grep -q "static TLS exhausted" "$log"; then
  ok "dlopen_host.c under qemu: ${dlopen##*/} dlopened with static TLS used up, 8 threads"
else
  bad "dlopen_host.c under qemu: ${dlopen##*/}"; tail -20 "$log"
fi

echo "aarch64-check: lane $lane, $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
