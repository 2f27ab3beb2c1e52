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
  # zlib: gunzip of arm64 kernels (arch/arm64/loader), both architectures
  zlib1g-dev zlib1g-dev:arm64
  # The C ABI's install and its tests: pkg-config, and patchelf to drop the
  # build tree's RUNPATH from the installed libstrata.so.1
  pkgconf patchelf
  # Peer tools for the firmware tables' test (iasl -d, dmidecode --from-dump)
  acpica-tools dmidecode
  # Cross-build of the arm64 side from amd64 (--config=arm64): compiler,
  # arm64 libraries through Debian multiarch, qemu-user to run the tests
  g++-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross
  libgtest-dev:arm64 libgmock-dev:arm64 qemu-user-static
  # Peer tools the tests check strata's output with
  acpica-tools dmidecode
  # Peer tool for the DTB tests (dtc -I dtb, fdtget: //arch/arm64/platform:fdt_test)
  device-tree-compiler
  # The nested testbeds (scripts/nested.sh): QEMU's TCG with SVM and EL2,
  # and the L1 initramfs
  qemu-system-x86 qemu-system-arm busybox-static cpio
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
updated=""
apt_update() { [ -n "$updated" ] || $SUDO apt-get update -qq; updated=1; }

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture (multiarch)" >&2
  $SUDO dpkg --add-architecture arm64
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libfdt-dev is not Multi-Arch: same (libfdt-dev:arm64 would remove the amd64
# package), so unpack the :arm64 .deb of the installed version where
# WORKSPACE's @libfdt_arm64 looks.
FDT_ARM64=/opt/strata/arm64/libfdt-dev
fdt_version=$(dpkg-query -W -f='${Version}' libfdt-dev:amd64)
if [ "$(cat "$FDT_ARM64/VERSION" 2>/dev/null)" != "$fdt_version" ]; then
  echo "setup: unpacking libfdt-dev:arm64 $fdt_version into $FDT_ARM64" >&2
  apt_update
  deb_dir=$(mktemp -d)
  if [ "$(id -u)" = 0 ]; then chown _apt "$deb_dir" 2>/dev/null || true; fi  # apt's download user
  (cd "$deb_dir" && apt-get download -qq "libfdt-dev:arm64=$fdt_version")
  $SUDO rm -rf "$FDT_ARM64"
  $SUDO mkdir -p "$FDT_ARM64"
  $SUDO dpkg-deb -x "$deb_dir"/libfdt-dev_*_arm64.deb "$FDT_ARM64"
  echo "$fdt_version" | $SUDO tee "$FDT_ARM64/VERSION" >/dev/null
  rm -rf "$deb_dir"
fi

if [ ! -e /dev/kvm ]; then
  echo "setup: WARNING: /dev/kvm is missing; KVM tests will be SKIPPED (STRATA_L1_TESTS=1 scripts/test.sh runs them in the nested SVM testbed's L1)" >&2
fi
