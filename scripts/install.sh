#!/bin/bash
# strata — builds the C ABI and installs it under PREFIX:
#   PREFIX/include/strata/strata.h
#   PREFIX/lib/libstrata.so.1 (+ the libstrata.so link)
#   PREFIX/lib/pkgconfig/strata.pc
# and the VMM with its kvm-unit-tests tools:
#   PREFIX/bin/bhyverun
#   PREFIX/bin/strata-qemu-system-x86_64 -> ../libexec/strata/ (with kut.py)
#   PREFIX/bin/strata-lkvm -> ../libexec/strata/ (kvmtool-compatible front)
# Usage: scripts/install.sh PREFIX
# Then: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig \
#         gcc app.c $(pkg-config --cflags --libs strata)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
prefix=$1
case "$prefix" in
  /*) ;;
  *) prefix="$(pwd)/$prefix" ;;
esac
cd "$(dirname "$0")/.."
./scripts/setup.sh
bazel build //frontends/capi:libstrata.so //frontends/bhyverun
bin=$(bazel info bazel-bin)
frontends/capi/install_files.sh "$bin/frontends/capi/libstrata.so" \
  frontends/capi/strata.h frontends/capi/strata.pc.in "$prefix"
install -d "$prefix/bin" "$prefix/libexec/strata"
install -m 0755 "$bin/frontends/bhyverun/bhyverun" "$prefix/bin/bhyverun"
install -m 0755 scripts/strata-qemu-system-x86_64 "$prefix/libexec/strata/"
install -m 0755 scripts/strata-lkvm "$prefix/libexec/strata/"
install -m 0644 scripts/kut.py "$prefix/libexec/strata/"
ln -sf ../libexec/strata/strata-qemu-system-x86_64 \
  "$prefix/bin/strata-qemu-system-x86_64"
ln -sf ../libexec/strata/strata-lkvm "$prefix/bin/strata-lkvm"
