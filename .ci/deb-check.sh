#!/usr/bin/env bash
# Debian packages of the lanes (.github/scripts/package-deb.sh): builds them,
# then for each one unpacks it into a scratch root and checks its content, the
# SONAME, that `pkg-config --cflags --libs hz3-<lane>` compiles and links a C
# program against it (NEEDED libhz3_<lane>.so), and that the program's
# allocations come from hz3. docker/build-and-prove.sh installs the same
# packages with apt-get inside the images.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash .github/scripts/package-deb.sh --out "$out/debs" "$@"
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
n=0
for deb in "$out"/debs/*.deb; do
    pkg=$(dpkg-deb -f "$deb" Package)
    lane=${pkg#hz3-}; lane=${lane//-/_}
    root="$out/root-$pkg"
    dpkg-deb -x "$deb" "$root"
    lib="$root/usr/lib/x86_64-linux-gnu"
    for f in "$lib/libhz3_$lane.so" "$lib/libhz3_${lane}_hardened.so" "$lib/pkgconfig/$pkg.pc" \
             "$root/usr/include/$pkg/hz3.h" "$root/usr/share/doc/$pkg/copyright" \
             "$root/usr/share/doc/$pkg/README.Debian"; do
        [ -f "$f" ] || fail "$deb lacks ${f#"$root"}"
    done
    readelf -d "$lib/libhz3_$lane.so" | grep -q "SONAME.*\[libhz3_$lane.so\]" || fail "$pkg: no SONAME"
    flags=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --define-variable=prefix="$root/usr" --cflags --libs "$pkg")
    cat >"$out/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <hz3.h>
int main(void) {
    void *p[1000];
    for (int i = 0; i < 1000; i++) p[i] = malloc(16 + i);
    struct hz3_stats s;
    if (hz3_stats_get(NULL) != sizeof s) return 2;
    hz3_stats_get(&s);
    for (int i = 0; i < 1000; i++) free(p[i]);
    printf("%llu\n", (unsigned long long)s.span_bytes);
    return s.span_bytes > 0 ? 0 : 1;
}
C
    # shellcheck disable=SC2086 # pkg-config output is a list of flags
    gcc -O1 -o "$out/prog-$lane" "$out/prog.c" $flags
    readelf -d "$out/prog-$lane" | grep -q "NEEDED.*\[libhz3_$lane.so\]" || fail "$pkg: the program does not need libhz3_$lane.so"
    bytes=$(LD_LIBRARY_PATH="$lib" "$out/prog-$lane") || fail "$pkg: the linked program failed"
    echo "deb-check: $pkg ok (linked with pkg-config; hz3 span bytes $bytes)"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no packages were built"
echo "deb-check: OK ($n packages)"
