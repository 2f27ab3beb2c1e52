#!/bin/bash
# strata — the C ABI as an embedder outside Bazel gets it: install the built
# library, header and pkg-config file into a temporary prefix
# (install_files.sh), build examples/embed_c/boot.c there with plain gcc and
# pkg-config (C99, pedantic, warnings as errors), and run it against the io
# guest on /dev/kvm, checking what it reports. Without /dev/kvm the run is
# SKIPPED (reported as a skipped test case), after the install and build.
# Usage: embed_c_test.sh INSTALL_FILES LIB HEADER PC_IN BOOT_C IO_ELF
set -uo pipefail
install_files=$1 lib=$2 header=$3 pc_in=$4 boot_c=$5 io_elf=$6
tmp=${TEST_TMPDIR:-$(mktemp -d)}
prefix=$tmp/prefix
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$install_files" "$lib" "$header" "$pc_in" "$prefix" || { echo "FAIL: install"; exit 1; }
for f in include/strata/strata.h lib/libstrata.so.1 lib/pkgconfig/strata.pc; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
[ "$(readlink "$prefix/lib/libstrata.so")" = libstrata.so.1 ] ||
  fail "lib/libstrata.so is not a link to libstrata.so.1"
if readelf -dW "$prefix/lib/libstrata.so.1" | grep -E 'R(UN)?PATH' >/dev/null; then
  fail "the installed library has a RUNPATH: $(readelf -dW "$prefix/lib/libstrata.so.1" | grep PATH)"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion strata)" = 1.0 ] || fail "pkg-config --modversion: $(pkg-config --modversion strata)"
[ "$(pkg-config --variable=prefix strata)" = "$prefix" ] || fail "strata.pc prefix: $(pkg-config --variable=prefix strata)"

# A sanitizer build of the library needs the same runtime in the program
# (it must come first in the initial library list).
san=()
if ldd "$lib" | grep libasan >/dev/null; then san=(-fsanitize=address,undefined); fi
if ldd "$lib" | grep libtsan >/dev/null; then san=(-fsanitize=thread); fi

mkdir -p "$tmp/build"
cp "$boot_c" "$tmp/build/boot.c"
# shellcheck disable=SC2046  # pkg-config's words are separate flags
if ! gcc -std=c99 -Wall -Wextra -Werror -pedantic "${san[@]}" \
    $(pkg-config --cflags strata) "$tmp/build/boot.c" -o "$tmp/build/boot" \
    $(pkg-config --libs strata) -Wl,-rpath,"$prefix/lib"; then
  echo "FAIL: building boot.c with gcc and pkg-config"
  exit 1
fi
ldd "$tmp/build/boot" | grep -F "libstrata.so.1 => $prefix/lib/libstrata.so.1" >/dev/null ||
  fail "boot does not load the installed library: $(ldd "$tmp/build/boot" | grep strata)"
echo "built boot.c against $prefix"

# shellcheck source=/dev/null
source "${TEST_SRCDIR}/strata/tests/require_kvm.sh"
require_kvm embed_c_test RunsTheIoGuest

out=$("$tmp/build/boot" "$io_elf" </dev/null 2>"$tmp/boot.err")
rc=$?
echo "$out"
cat "$tmp/boot.err" >&2
[ "$rc" = 0 ] || fail "boot exited $rc"
expect() { grep -qxF -- "$1" <<<"$out" || fail "no line '$1' in boot's output"; }
expect "boot: exit guest-exit, status 1"
expect "boot: port 0x9f0: 4 reads, 1 writes (last 0x0)"
expect "boot: mmio 0xfe000000: 3 reads, 1 writes (last 0xffffffff)"
expect "boot: PASS"
# The guest's console reached boot's stdout.
expect "PASS: unclaimed port 0x9f0 reads all-ones (0xff 0xffff 0xffffffff)"
expect "SUMMARY: 29 tests, 0 unexpected failures"
if [ -s "$tmp/boot.err" ]; then fail "boot wrote to stderr"; fi

if ((failures)); then
  echo "$failures failures"
  exit 1
fi
echo "PASS: the installed C ABI builds with gcc + pkg-config and boots the io guest"
