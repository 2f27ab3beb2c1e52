#!/bin/bash
# strata — prints the ABI of a built libstrata.so, one item a line, sorted:
# its SONAME, then every defined dynamic symbol as "<nm type> <name>@@<version>"
# (the version node itself shows as "A STRATA_1"). abi.txt is this output,
# checked in; abi_test compares the two.
# Usage: abi_symbols.sh LIB
set -euo pipefail
lib=$1
soname=$(readelf -dW "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
echo "SONAME ${soname:-none}"
nm -D --defined-only --with-symbol-versions "$lib" | awk '{print $2, $3}' | LC_ALL=C sort
