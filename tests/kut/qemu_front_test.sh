#!/bin/bash
# scripts/strata-qemu-system-x86_64 as kvm-unit-tests' scripts use it: the
# probes of scripts/arch-run.bash and x86/run (--help naming QEMU and its
# version, -device '?' listing the test devices, the missing-kernel probe),
# the full command line x86/run builds running one of strata's guests, and
# refusals naming the option.
# args: strata-qemu-system-x86_64 kut.py bhyverun io.elf smp.elf hyperv.elf
set -uo pipefail
front_src=$1 kut_py=$2 bhyverun=$3 io=$4 smp=$5 hyperv=$6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# shellcheck source=/dev/null
source "${TEST_SRCDIR}/strata/tests/require_kvm.sh"
require_kvm qemu_front_test RunsKutsCommandLine

cp "$front_src" "$kut_py" "$tmp/"
front="$tmp/strata-qemu-system-x86_64"
export STRATA_BHYVERUN=$bhyverun

# search_qemu_binary: --help must mention QEMU; env_params reads the
# version from its first line.
"$front" --help | grep -q QEMU || fail "--help does not mention QEMU"
IFS='[ .]' read -r _ _ _ major minor micro _ <<<"$("$front" -h | head -1)"
[ "$major.$minor.$micro" = 7.2.0 ] || fail "version '$major.$minor.$micro' from -h"
# x86/run: the test devices.
devs=$("$front" -device '?' 2>&1)
for d in '"pc-testdev"' '"pci-testdev"' '"hyperv-testdev"'; do
  grep -qF "$d" <<<"$devs" || fail "-device '?' does not list $d"
done

KUT_OPTS=(--no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard
          -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4
          -display none -serial stdio -device pci-testdev -machine accel=kvm)
# The premature-failure probe: a missing kernel named in a "could not load
# kernel" message (else KUT skips every test).
out=$("$front" "${KUT_OPTS[@]}" -kernel _NO_FILE_4Uhere_ -smp 1 2>&1)
grep -q "_NO_FILE_4Uhere_" <<<"$out" && grep -qi "could not load kernel" <<<"$out" ||
  fail "missing kernel: '$out'"

# A test as x86/run starts it: status (0 << 1) | 1, nothing but warnings on
# stderr (KUT fails a pass with anything else there; the io guest probes
# unclaimed addresses on purpose, which strata warns about).
printf 'NR_CPUS=2\n' > "$tmp/env"
"$front" "${KUT_OPTS[@]}" -kernel "$io" -smp 2 -cpu qemu64,+x2apic,+tsc-deadline \
  -m 64 -initrd "$tmp/env" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || fail "io guest: exit $rc, expected 1: $(tail -3 "$tmp/err")"
grep -q "SUMMARY: 29 tests, 0 unexpected failures" "$tmp/out" || fail "io guest: $(tail -3 "$tmp/out")"
grep -vi warn "$tmp/err" | grep -q . && fail "io guest: stderr: $(grep -vi warn "$tmp/err" | head -3)"
"$front" "${KUT_OPTS[@]}" -kernel "$smp" -smp 3 >"$tmp/out" 2>"$tmp/err"
grep -q "smp: 3 of 3 cpus up" "$tmp/out" || fail "smp guest: $(tail -3 "$tmp/out")"
"$front" "${KUT_OPTS[@]}" -kernel "$io" -append "a 'b c'" -smp 1 >/dev/null 2>&1
[ $? = 1 ] || fail "-append: io guest did not pass"

# kvm-unit-tests' hyperv_synic options on strata's hyperv guest: it passes,
# or bhyverun says what this host's KVM lacks (KUT's runner then fails the
# test, as it would QEMU's refusal).
"$front" "${KUT_OPTS[@]}" -kernel "$hyperv" -smp 2 -cpu host,hv_passthrough \
  -device hyperv-testdev >"$tmp/out" 2>"$tmp/err"
rc=$?
if grep -q "is not supported by KVM on this host" "$tmp/err"; then
  echo "no Hyper-V in this host's KVM: $(cat "$tmp/err")"
elif [ "$rc" != 1 ] || ! grep -q "SUMMARY: 26 tests, 0 unexpected failures" "$tmp/out"; then
  fail "hyperv guest: exit $rc: $(tail -3 "$tmp/out") $(tail -3 "$tmp/err")"
fi
"$front" -kernel "$io" -cpu host,hv_evmcs >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] && grep -qF "hv_evmcs" "$tmp/err" ||
  fail "hv_evmcs: exit $rc, expected 2 naming it: $(cat "$tmp/err")"

# A named CPU model strata has (KUT's syscall test runs -cpu Opteron_G1).
"$front" "${KUT_OPTS[@]}" -kernel "$io" -smp 1 -cpu Opteron_G1 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] && grep -q "SUMMARY: 29 tests, 0 unexpected failures" "$tmp/out" ||
  fail "-cpu Opteron_G1: exit $rc: $(tail -3 "$tmp/out") $(tail -3 "$tmp/err")"

# Refusals name the option and never exit 1 or 77.
for bad in "-M q35" "-device intel-iommu" "-cpu Cooperlake" "-overcommit mem-lock=on" \
           "-machine accel=tcg" "-serial none"; do
  # shellcheck disable=SC2086
  "$front" -kernel "$io" $bad >/dev/null 2>"$tmp/err"
  rc=$?
  [ "$rc" = 2 ] || fail "'$bad': exit $rc, expected 2"
  first=${bad%% *}
  grep -qF -- "${bad#* }" "$tmp/err" || grep -qF -- "$first" "$tmp/err" ||
    fail "'$bad': the message does not name it: $(cat "$tmp/err")"
done

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "qemu_front_test: all checks passed"
