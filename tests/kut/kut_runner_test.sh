#!/bin/bash
# scripts/kut.sh against a kvm-unit-tests-shaped tree made of strata's own
# guests (CI cannot reach kvm-unit-tests itself): unittests.cfg parsing,
# option translation, the env module, status mapping (pass, fail, timeout,
# skip for arch/nodefault/missing file/unsupported option), the per-test and
# total lines and the JSON report.
# args: kut.sh kut.py bhyverun io.elf smp.elf hello.elf console.elf hyperv.elf
set -uo pipefail
kut_sh=$1 kut_py=$2 bhyverun=$3 io=$4 smp=$5 hello=$6 console=$7 hyperv=$8
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# shellcheck source=/dev/null
source "${TEST_SRCDIR}/strata/tests/require_kvm.sh"
require_kvm kut_runner_test RunsAKutShapedTree

# kut.sh finds kut.py beside itself.
mkdir -p "$tmp/scripts" "$tmp/tree/x86"
cp "$kut_sh" "$kut_py" "$tmp/scripts/"
cp "$io" "$tmp/tree/x86/io.flat"
cp "$smp" "$tmp/tree/x86/smp.flat"
cp "$hello" "$tmp/tree/x86/hello.flat"
cp "$console" "$tmp/tree/x86/console.flat"
cp "$hyperv" "$tmp/tree/x86/hyperv.flat"
cat > "$tmp/tree/config.mak" <<'EOF2'
ARCH=x86_64
EOF2
# An erratum every kernel has, and one none has.
cat > "$tmp/tree/errata.txt" <<'EOF2'
#---------------:-------------------------------:----------------
aaaaaaaaaaaa    : 2.6                           : old fix
bbbbbbbbbbbb    : 99.0                          : future fix
EOF2
cat > "$tmp/tree/x86/unittests.cfg" <<'EOF2'
# A comment
[io]
file = io.flat

[smp3]
file = smp.flat
smp = 3

[args]
file = hello.flat
test_args = "one 'two three' `echo four`"
qemu_params = -cpu qemu64,-x2apic,vendor=GenuineIntel -m 64 \
    -append five

[intel-max]
file = hello.flat
qemu_params = -enable-kvm -cpu max,host-phys-bits -m 1g

[nopcid]
file = hello.flat
qemu_params = -cpu qemu64,-pcid,-xsave

[skinit]
file = hello.flat
qemu_params = -cpu max,+skinit

[hyperv]
file = hello.flat
qemu_params = -cpu host,hv_passthrough

[hyperv-synic]
file = hyperv.flat
smp = 2
qemu_params = -cpu host,hv_passthrough -device hyperv-testdev

[hyperv-evmcs]
file = hello.flat
qemu_params = -cpu host,hv_evmcs

[q35]
file = hello.flat
qemu_params = -M q35

[nopit]
file = io.flat
qemu_params = -machine pit=off

[oldcpu]
file = hello.flat
qemu_params = -cpu Opteron_G1

[nomodel]
file = hello.flat
qemu_params = -cpu Cooperlake

[i386-only]
file = hello.flat
arch = i386

[tcg-only]
file = hello.flat
accel = tcg

[manual]
file = hello.flat
groups = nodefault

[missing]
file = nothere.flat

[tiny]
file = hello.flat
qemu_params = -m 1

[hang]
file = console.flat
test_args = echo 4
timeout = 3s
EOF2

# Whether this host's KVM offers Hyper-V enlightenments: the hyperv tests
# pass, or SKIP saying what KVM lacks (as QEMU would refuse them).
hv_probe=$("$bhyverun" -k "$hello" -o x86.hyperv=passthrough 2>&1 >/dev/null)
if [ $? = 1 ]; then hv=1; else hv=0; echo "no Hyper-V here: $hv_probe"; fi

out=$("$tmp/scripts/kut.sh" --bhyverun "$bhyverun" --json "$tmp/r.json" \
  "$tmp/tree" 2>&1)
rc=$?
echo "$out"
line() { grep -qxF -- "$1" <<<"$out" || fail "no line '$1'"; }
match() { grep -qE -- "$1" <<<"$out" || fail "no line matching '$1'"; }
line "PASS io (29 tests, 0 unexpected failures)"
line "PASS smp3 ()"
line "PASS args ()"
line "PASS intel-max ()"
line "PASS nopcid ()"
# KVM never offers SKINIT, on either vendor: dropped with a warning, as
# QEMU does, and the test runs.
line "PASS skinit ()"
if [ "$hv" = 1 ]; then
  line "PASS hyperv ()"
  match "^PASS hyperv-synic \(26 tests, 0 unexpected failures"
else
  match "^SKIP hyperv \(.*is not supported by KVM on this host"
  match "^SKIP hyperv-synic \(.*is not supported by KVM on this host"
fi
line "SKIP hyperv-evmcs (not supported by strata: -cpu flag hv_evmcs: strata has no Hyper-V 'evmcs' (x86.hyperv))"
line "SKIP q35 (not supported by strata: -M q35)"
line "PASS nopit (29 tests, 0 unexpected failures)"
# A named model strata has runs (KUT's syscall test uses Opteron_G1); one
# it lacks is refused, naming it.
line "PASS oldcpu ()"
match "^SKIP nomodel \(not supported by strata: -cpu Cooperlake: not a model strata has"
line "SKIP i386-only (i386 only)"
line "SKIP tcg-only (tcg only, strata is kvm)"
line "SKIP manual (test marked as manual run only)"
match "^SKIP missing \(Test file '.*/x86/nothere.flat' not found\)$"
match "^FAIL tiny \(exit status 8: .*\)$"
line "FAIL hang (timeout; duration=3s)"
if [ "$hv" = 1 ]; then
  line "10 passed, 2 failed, 7 skipped"
else
  line "8 passed, 2 failed, 9 skipped"
fi
[ "$rc" = 1 ] || fail "kut.sh exited $rc with failures, expected 1"

# The JSON report: every test, and what each guest saw.
python3 - "$tmp/r.json" "$hv" <<'PY' || fail "JSON report checks"
import json, sys
r = json.load(open(sys.argv[1]))
hv = sys.argv[2] == "1"
t = {x["name"]: x for x in r["tests"]}
assert (r["passed"], r["failed"], r["skipped"]) == ((10, 2, 7) if hv else (8, 2, 9)), r
assert "+skinit: KVM on this host lacks it, dropped" in t["skinit"]["stderr"], t["skinit"]
assert len(t) == 19, sorted(t)
assert "x86.cpu_model=Opteron_G1" in t["oldcpu"]["command"], t["oldcpu"]
cmd = t["hyperv-synic"]["command"]
assert "x86.hyperv=passthrough" in cmd, cmd
assert "platform.hvtestdev.device=hyperv-testdev" in cmd, cmd
assert "x86.pit=false" in t["nopit"]["command"], t["nopit"]
assert "x86.cpu_features=-pcid,-xsave" in t["nopcid"]["command"], t["nopcid"]
assert t["io"]["summary"] == "29 tests, 0 unexpected failures", t["io"]
assert t["io"]["status"] == "PASS" and t["io"]["seconds"] > 0
assert "3 of 3" in t["smp3"]["stdout"], t["smp3"]["stdout"]
out = t["args"]["stdout"]
assert "cmdline: " in out and out.split("cmdline: ")[1].split("\n")[0].endswith(
    "hello.flat one 'two three' four five"), out  # eval'd as KUT does
assert "modules: 1" in out, out           # the env file
assert "memory: lower" in out and "upper 64512 KiB" in out, out   # -m 64
cmd = t["args"]["command"]
assert ["-o", "x86.x2apic=false"] == cmd[cmd.index("x86.x2apic=false") - 1:
                                         cmd.index("x86.x2apic=false") + 1]
assert "intel" == cmd[cmd.index("--cpu-vendor") + 1], cmd
assert t["hang"]["status"] == "FAIL" and t["hang"]["exit_status"] == 124
assert t["tiny"]["first_error"], t["tiny"]
PY

# The env module: the host kernel's errata, not the future one, and the
# entries of $KVM_UNIT_TESTS_ENV.
printf 'FOO=bar\nTARGET=ignored\n' > "$tmp/old.env"
KVM_UNIT_TESTS_ENV="$tmp/old.env" python3 - "$tmp/scripts" "$tmp/tree" "$tmp" <<'PY' || fail "env file checks"
import sys
sys.path.insert(0, sys.argv[1])
import kut
lines = open(kut.write_env(sys.argv[2], sys.argv[3])).read().splitlines()
assert "ERRATA_aaaaaaaaaaaa=y" in lines, lines
assert not any(l.startswith("ERRATA_bbbb") for l in lines), lines
assert "FOO=bar" in lines and "TARGET=qemu" in lines, lines
assert not any(l == "TARGET=ignored" for l in lines), lines
assert any(l.startswith("KERNEL_VERSION=") for l in lines), lines
PY

# Named tests: only those run; a nodefault test runs when named.
out=$("$tmp/scripts/kut.sh" --bhyverun "$bhyverun" "$tmp/tree" manual io 2>&1)
echo "$out"
line "PASS manual ()"
line "PASS io (29 tests, 0 unexpected failures)"
line "2 passed, 0 failed, 0 skipped"

# Unknown test names and trees are refused.
if "$tmp/scripts/kut.sh" --bhyverun "$bhyverun" "$tmp/tree" nosuch 2>"$tmp/err"; then
  fail "an unknown test name was accepted"
fi
grep -q "no test 'nosuch'" "$tmp/err" || fail "unknown test: $(cat "$tmp/err")"
if "$tmp/scripts/kut.sh" --bhyverun "$bhyverun" "$tmp" 2>"$tmp/err"; then
  fail "a directory without x86/unittests.cfg was accepted"
fi
grep -q "unittests.cfg not found" "$tmp/err" || fail "bad tree: $(cat "$tmp/err")"

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "kut_runner_test: all checks passed"
