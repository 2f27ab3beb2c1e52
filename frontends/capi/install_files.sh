#!/bin/bash
# strata — installs the C ABI's built files under a prefix:
#   PREFIX/include/strata/strata.h
#   PREFIX/lib/libstrata.so.1, PREFIX/lib/libstrata.so -> libstrata.so.1
#   PREFIX/lib/pkgconfig/strata.pc (prefix, version, Cflags, Libs filled in)
# Usage: install_files.sh LIB HEADER PC_IN PREFIX
# scripts/install.sh builds the files with Bazel and calls this; tests call
# it on files Bazel already built (a test must not run Bazel).
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 LIB HEADER PC_IN PREFIX" >&2
  exit 2
fi
lib=$1 header=$2 pc_in=$3 prefix=$4
for f in "$lib" "$header" "$pc_in"; do
  [ -f "$f" ] || { echo "install_files.sh: $f: no such file" >&2; exit 1; }
done
case "$prefix" in
  /*) ;;
  *) prefix="$(pwd)/$prefix" ;;
esac
case "$prefix" in
  *'|'* | *'&'* | *'\'*)
    echo "install_files.sh: the prefix may not contain '|', '&' or '\\'" >&2
    exit 1 ;;
esac

major=$(sed -n 's/^#define STRATA_ABI_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
minor=$(sed -n 's/^#define STRATA_ABI_VERSION_MINOR \([0-9]*\)$/\1/p' "$header")
if [ -z "$major" ] || [ -z "$minor" ]; then
  echo "install_files.sh: no STRATA_ABI_VERSION_MAJOR/MINOR in $header" >&2
  exit 1
fi

install -d "$prefix/include/strata" "$prefix/lib/pkgconfig"
install -m 0644 "$header" "$prefix/include/strata/strata.h"
install -m 0755 "$lib" "$prefix/lib/libstrata.so.$major"
# Bazel links the library with a RUNPATH into its own output tree
# ($ORIGIN/../../_solib_k8/...). Installed, that would name a directory next
# to the prefix (/tmp/_solib_k8 for /tmp/x): whoever can create it chooses
# the libfmt/libspdlog an embedder loads. The installed library finds them
# where the system keeps them.
patchelf --remove-rpath "$prefix/lib/libstrata.so.$major"
ln -sfn "libstrata.so.$major" "$prefix/lib/libstrata.so"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$major.$minor|g" "$pc_in" \
  > "$prefix/lib/pkgconfig/strata.pc"
chmod 0644 "$prefix/lib/pkgconfig/strata.pc"
echo "installed strata $major.$minor under $prefix"
