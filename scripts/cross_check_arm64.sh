#!/bin/bash
# Cross-compiles the machine-independent core against arch/arm64's MD
# headers with Debian's aarch64-linux-gnu-g++, so the MI/MD split is checked
# on every run. Writes "PASS <file>" / "FAIL <file>" lines to $1.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
: > "$out"
CXX=aarch64-linux-gnu-g++
if ! command -v $CXX >/dev/null; then
  echo "FAIL cross-arm64:compiler-missing" >> "$out"
  exit 0
fi
# Header-only libraries are architecture independent; expose just those.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
for d in fmt spdlog nlohmann; do ln -s "/usr/include/$d" "$inc/$d"; done
FLAGS=(-std=c++20 -Wall -Wextra -Werror -Werror=implicit-fallthrough
       -Wno-unused-parameter -I. -Iarch/arm64/include -isystem "$inc"
       -DSPDLOG_FMT_EXTERNAL -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB)
files=$(ls core/*.cc core/kvm/*.cc devices/*.cc arch/arm64/*.cc 2>/dev/null | grep -v '_test\.cc$')
for f in $files; do
  if log=$($CXX "${FLAGS[@]}" -c "$f" -o /dev/null 2>&1); then
    echo "PASS cross-arm64:$f" >> "$out"
  else
    echo "FAIL cross-arm64:$f" >> "$out"
    echo "--- $f"; echo "$log" | head -20
  fi
done
for f in $(ls core/kvm/*.c 2>/dev/null); do
  if log=$(aarch64-linux-gnu-gcc -Wall -Wextra -Werror -c "$f" -o /dev/null 2>&1); then
    echo "PASS cross-arm64:$f" >> "$out"
  else
    echo "FAIL cross-arm64:$f" >> "$out"
    echo "--- $f"; echo "$log" | head -20
  fi
done
grep -c PASS "$out" | sed 's/$/ files cross-compiled for arm64/'
