#!/bin/bash
# strata — install everything the build and tests need, from Debian packages.
# Idempotent: when every package is present it only checks and returns.
set -euo pipefail

PACKAGES=(
  # Build: Bazel 4.2.3 and its Java rules, host toolchain
  bazel-bootstrap bazel-rules-java g++ gcc binutils python3
  # Libraries (see third_party/)
  libfmt-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  googletest libfdt-dev
  # Cross-build of the arm64 side from amd64
  g++-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -e /dev/kvm ]; then
  echo "setup: WARNING: /dev/kvm is missing; KVM tests will be SKIPPED" >&2
fi
