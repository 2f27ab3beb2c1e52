#!/bin/bash
# strata — an arm64 QEMU for the arm64 nested testbed's L1 (scripts/nested.sh
# el2-nvhe|el2-vhe).
#
#   scripts/nested_arm64_qemu.sh CACHE_DIR
#
# What: makes (once) a self-contained arm64 sysroot holding
# usr/bin/qemu-system-aarch64, every shared library it needs (at Debian's
# paths, lib/aarch64-linux-gnu and usr/lib/aarch64-linux-gnu) and the dynamic
# loader at lib/ld-linux-aarch64.so.1 (with what it points to), and prints
# the sysroot's path on stdout. Nothing else: no docs, locales, keymaps,
# modules or firmware. `-M virt -kernel ... -nodefaults` needs no ROM (only a
# NIC would want efi-virtio.rom; use -nodefaults or -nic none).
#
# Why: the baselines run QEMU inside the arm64 L1 against the L1's /dev/kvm
# (qemu-system-aarch64 -M virt -accel kvm -cpu host). The host's QEMU is an
# amd64 binary, so the arm64 one comes from Debian's arm64 packages, which is
# all a CI machine can reach: qemu-system-arm:arm64 (the host's qemu-system-arm
# version when the mirror has it) and the packages of the sonames its binary
# (and then its libraries) name in DT_NEEDED. A soname is mapped to its
# package with dpkg -S on the host's copy of that library (multiarch: the
# amd64 or arm64 one), falling back to trying the arm64 Depends of the
# packages already fetched; nothing needs apt-file. Fails loudly if a package
# cannot be downloaded or a soname cannot be found.
#
# Cache layout (outside the tree, e.g. ~/.cache/strata/nested):
#   CACHE_DIR/qemu-arm64/.complete   marker, written last
#   CACHE_DIR/qemu-arm64/VERSION     stamp: QEMU version and this script's
#                                    layout; a mismatch rebuilds the directory
#   CACHE_DIR/qemu-arm64/packages    the .debs used, "name version" a line
#   CACHE_DIR/qemu-arm64/sysroot/    the sysroot (printed)
# The .debs are not kept: a complete, matching directory downloads nothing.
# Check it on an amd64 host with
#   qemu-aarch64-static -L SYSROOT SYSROOT/usr/bin/qemu-system-aarch64 --version
set -euo pipefail

LAYOUT=1  # bump when what goes into the sysroot changes

die() { echo "nested_arm64_qemu: error: $*" >&2; exit 1; }
say() { echo "nested_arm64_qemu: $*" >&2; }

[ $# = 1 ] || { echo "usage: scripts/nested_arm64_qemu.sh CACHE_DIR" >&2; exit 2; }
mkdir -p "$1"
cache=$(realpath "$1")
dir="$cache/qemu-arm64"

# --- Which QEMU: the host's qemu-system-arm version if the mirror has it ---
candidate() {
  apt-cache show --no-all-versions qemu-system-arm:arm64 2>/dev/null |
    sed -n 's/^Version: //p' | head -1
}
cand=$(candidate)
if [ -z "$cand" ]; then  # no arm64 package lists yet on this machine
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq >&2 || true
  cand=$(candidate)
fi
[ -n "$cand" ] ||
  die "apt-cache knows no qemu-system-arm:arm64 (needs the arm64 architecture: scripts/setup.sh, or dpkg --add-architecture arm64 && apt-get update)"
ver=$(dpkg-query -W -f='${Version}' qemu-system-arm:amd64 2>/dev/null || true)
if [ "$ver" != "$cand" ] && ! apt-cache show "qemu-system-arm:arm64=$ver" >/dev/null 2>&1; then
  [ -n "$ver" ] && say "warning: the mirror has no qemu-system-arm:arm64 $ver (the host's); using $cand"
  ver=$cand
fi
stamp="qemu-system-arm:arm64 $ver layout $LAYOUT"

if [ -f "$dir/.complete" ] && [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$stamp" ]; then
  echo "$dir/sysroot"
  exit 0
fi

# --- Build it in a scratch directory next to the cache, then move it in ---
say "making an arm64 qemu-system-aarch64 $ver sysroot in $dir"
tmp=$(mktemp -d "$cache/.qemu-arm64.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage="$tmp/stage" sysroot="$tmp/sysroot"
mkdir -p "$stage" "$sysroot" "$tmp/debs"
declare -A fetched=()   # package name -> version
declare -A copied=()    # sysroot-relative path -> 1
declare -A scanned=()   # soname -> 1

# fetch NAME [VERSION]: apt-get download NAME:arm64 and unpack it into $stage.
fetch() {
  local name=$1 want=${2:-} d out deb debs
  [ -n "${fetched[$name]:-}" ] && return 0
  d="$tmp/debs/$name"
  mkdir -p "$d"
  # apt's _apt user downloads when we are root (as scripts/nested.sh does).
  if [ "$(id -u)" = 0 ]; then chown _apt "$d" 2>/dev/null || true; fi
  if ! out=$(cd "$d" && apt-get download -qq "$name:arm64${want:+=$want}" 2>&1); then
    printf '%s\n' "$out" | grep -v '^W: Download is performed unsandboxed' >&2 || true
    die "apt-get download $name:arm64${want:+=$want} failed (is Debian's mirror reachable?)"
  fi
  debs=("$d"/*.deb)
  deb=${debs[0]}
  [ -f "$deb" ] || die "apt-get download $name:arm64 left no .deb"
  dpkg-deb -x "$deb" "$stage" || die "cannot unpack $deb"
  fetched[$name]=$(dpkg-deb -f "$deb" Version)
  rm -f "$deb"
}

# find_lib SONAME: its stage-relative path, if an unpacked package has it.
find_lib() {
  local d
  for d in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib; do
    if [ -e "$stage/$d/$1" ] || [ -L "$stage/$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

# package_of SONAME: the Debian package that ships it, from the host's dpkg
# database (the same package name on every architecture).
package_of() {
  local p
  p=$(dpkg -S "*-linux-gnu/$1" 2>/dev/null |
        awk -v so="$1" '{ path = $NF
          if (path ~ ("^(/usr)?/lib/(x86_64|aarch64)-linux-gnu/" so "$")) {
            sub(/[:,].*/, "", $1); print $1; exit } }') || true
  [ -n "$p" ] && apt-cache show "$p:arm64" >/dev/null 2>&1 && echo "$p"
}

# copy REL: stage/REL into the sysroot, following a chain of symlinks; an
# ELF file's DT_NEEDED sonames are then resolved in turn.
copy() {
  local rel=$1 t
  while [ -z "${copied[$rel]:-}" ]; do
    [ -e "$stage/$rel" ] || [ -L "$stage/$rel" ] || die "no $rel in the unpacked packages"
    copied[$rel]=1
    mkdir -p "$sysroot/$(dirname "$rel")"
    if [ -L "$stage/$rel" ]; then
      cp -P "$stage/$rel" "$sysroot/$rel"
      t=$(readlink "$stage/$rel")
      case $t in /*) ;; *) t="/$(dirname "$rel")/$t" ;; esac
      rel=$(realpath -ms "$t"); rel=${rel#/}
    else
      cp -p "$stage/$rel" "$sysroot/$rel"
      needs "$rel"
      return 0
    fi
  done
}

# needs REL: resolve the DT_NEEDED sonames of the ELF file stage/REL.
needs() {
  local so p path cand
  for so in $(readelf -d "$stage/$1" 2>/dev/null |
                sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'); do
    [ -n "${scanned[$so]:-}" ] && continue
    scanned[$so]=1
    if ! path=$(find_lib "$so"); then
      p=$(package_of "$so") || true
      if [ -n "$p" ]; then
        fetch "$p"
        path=$(find_lib "$so") || path=""
      fi
      if [ -z "$path" ]; then
        # Fallback: dpkg-shlibdeps put the soname's package in the Depends
        # of some package we have; try those not fetched yet.
        for cand in $(for p in "${!fetched[@]}"; do
                        apt-cache depends "$p:arm64" 2>/dev/null |
                          sed -n 's/^ *Depends: \([^<>: ]*\).*/\1/p'
                      done | sort -u); do
          [ -n "${fetched[$cand]:-}" ] && continue
          say "looking for $so in $cand"
          fetch "$cand"
          path=$(find_lib "$so") && break || path=""
        done
      fi
      [ -n "$path" ] || die "no arm64 package found for $so (needed by $1)"
    fi
    copy "$path"
  done
}

fetch qemu-system-arm "$ver"
bin=usr/bin/qemu-system-aarch64
[ -f "$stage/$bin" ] || die "qemu-system-arm:arm64 $ver has no $bin"
copy "$bin"
interp=$(readelf -l "$stage/$bin" |
           sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ -n "$interp" ] || die "$bin names no program interpreter"
copy "${interp#/}"

for p in "${!fetched[@]}"; do echo "$p ${fetched[$p]}"; done | sort > "$tmp/packages"
rm -rf "$stage" "$tmp/debs"
echo "$stamp" > "$tmp/VERSION"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
chmod 755 "$dir"
say "$(wc -l < "$dir/packages") packages, $(du -sh "$dir/sysroot" | cut -f1)"
echo "$dir/sysroot"
