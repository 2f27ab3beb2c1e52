#!/bin/bash
# strata — the ABI check: libstrata.so must export exactly what abi.txt lists
# (SONAME, and each defined dynamic symbol with its version). An accidental
# change — a function renamed, removed, or exported by mistake — fails here
# with the difference.
# Usage: abi_test.sh ABI_SYMBOLS_SH LIB ABI_TXT
set -uo pipefail
symbols=$1 lib=$2 want=$3
have=$("$symbols" "$lib") || { echo "FAIL: cannot read the symbols of $lib"; exit 1; }
if diff_out=$(diff -u --label "frontends/capi/abi.txt (checked in)" \
                 --label "libstrata.so (built)" "$want" <(echo "$have")); then
  echo "PASS: libstrata.so exports the $(($(wc -l < "$want") - 1)) entries of abi.txt"
  exit 0
fi
cat <<MSG
FAIL: the exported ABI of libstrata.so differs from frontends/capi/abi.txt:
$diff_out

If this change is deliberate:
  - only additions are allowed within ABI 1: add the functions to strata.h,
    to a new version node in strata.map (STRATA_1.<minor> inheriting
    STRATA_1) and bump STRATA_ABI_VERSION_MINOR;
  - removing or changing a function means a new major version (SONAME).
Then regenerate the list and commit it with the change:
  bazel build //frontends/capi:libstrata.so
  frontends/capi/abi_symbols.sh bazel-bin/frontends/capi/libstrata.so \\
    > frontends/capi/abi.txt
MSG
exit 1
