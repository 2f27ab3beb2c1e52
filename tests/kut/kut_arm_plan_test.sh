#!/bin/bash
# scripts/kut.py on an arm64 kvm-unit-tests-shaped tree, planned for a
# nested testbed's L1 (--plan: no VM runs here, an arm64 bhyverun runs only
# there): arm/unittests.cfg's options translated (smp with $MAX_SMP,
# -machine gic-version, -cpu, -m, test_args; skips naming what strata lacks),
# a --target=kvmtool tree's kvmtool_params, the QEMU baseline's command as
# KUT's arm/run builds it, and --results-from classifying an L1's log.
# args: kut.py
set -uo pipefail
kut_py=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mk_tree() {  # DIR TARGET
  mkdir -p "$1/arm"
  printf 'ARCH=arm64\nARCH_NAME=aarch64\nTARGET=%s\n' "$2" > "$1/config.mak"
  printf 'aaaaaaaaaaaa    : 2.6     : old fix\n' > "$1/errata.txt"
  for f in selftest gic psci mte; do echo flat > "$1/arm/$f.flat"; done
  cat > "$1/arm/unittests.cfg" <<'EOF'
[selftest-setup]
file = selftest.flat
smp = 2
test_args = 'setup smp=2 mem=256'
qemu_params = -m 256
kvmtool_params = --mem 256
groups = selftest

[gicv2-ipi]
file = gic.flat
smp = $((($MAX_SMP < 8)?$MAX_SMP:8))
test_args = ipi
qemu_params = -machine gic-version=2
kvmtool_params = --irqchip=gicv2

[its-trigger]
file = gic.flat
smp = $MAX_SMP
test_args = its-trigger
qemu_params = -machine gic-version=3
kvmtool_params = --irqchip=gicv3-its
arch = arm64

[its-migration]
file = gic.flat
test_args = its-migration
qemu_params = -machine gic-version=3
groups = its migration
disabled_if = [[ "$TARGET" != qemu ]]

[gic-host]
file = gic.flat
qemu_params = """-machine virt,gic-version=host \
  -cpu max"""

[psci]
file = psci.flat
smp = $MAX_SMP

[mte-sync]
file = mte.flat
test_args = sync
qemu_params = -machine mte=on

[a57]
file = psci.flat
qemu_params = -cpu cortex-a72

[chardev]
file = psci.flat
qemu_params = -chardev pty,id=x -serial chardev:x

[pci-dev]
file = psci.flat
qemu_params = -device pci-testdev -m 512

[arm32]
file = psci.flat
arch = arm

[tcg]
file = psci.flat
accel = tcg

[missing]
file = nothere.flat
EOF
}

mk_tree "$tmp/kut" qemu
mk_tree "$tmp/kutk" kvmtool
# The arm64 bhyverun is the L1's; it need not exist (or run) here.
python3 "$kut_py" "$tmp/kut" --plan "$tmp/plan" --bhyverun /bin/bhyverun \
  --max-smp 12 || fail "kut.py --plan exited $?"
plan=$(cat "$tmp/plan/plan.sh")
echo "$plan"
line() { grep -qxF -- "$1" <<<"$plan" || fail "no plan line '$1'"; }
line "kut_case selftest-setup 90 /bin/bhyverun -k /kut/arm/selftest.flat -c 2 -i /kut/env -m 256M -a 'setup smp=2 mem=256'"
line "kut_case gicv2-ipi 90 /bin/bhyverun -k /kut/arm/gic.flat -c 8 -i /kut/env -o arm64.gic_version=2 -a ipi"
line "kut_case its-trigger 90 /bin/bhyverun -k /kut/arm/gic.flat -c 12 -i /kut/env -o arm64.gic_version=3 -a its-trigger"
line "kut_case gic-host 90 /bin/bhyverun -k /kut/arm/gic.flat -c 1 -i /kut/env -o arm64.gic_version=auto"
line "kut_case psci 90 /bin/bhyverun -k /kut/arm/psci.flat -c 12 -i /kut/env"
line "kut_case mte-sync 90 /bin/bhyverun -k /kut/arm/mte.flat -c 1 -i /kut/env -o arm64.mte=true -a sync"
# A migration test is planned under kut_migrate (init.sh migrates it
# with bhyverun --save-on-signal / --restore).
line "kut_migrate its-migration 90 /bin/bhyverun -k /kut/arm/gic.flat -c 1 -i /kut/env -o arm64.gic_version=3 -a its-migration"
[ "$(grep -c ^kut_case <<<"$plan")" = 6 ] || fail "expected 6 planned tests"
python3 - "$tmp/plan" <<'PY' || fail "plan.json checks"
import json, sys
p = json.load(open(sys.argv[1] + "/plan.json"))
assert p["dir"] == "arm" and p["files"] == ["gic.flat", "mte.flat", "psci.flat", "selftest.flat"], p
skip = {t["name"]: t["detail"] for t in p["tests"] if t["status"]}
want = {
    "chardev": "not supported by strata: -chardev pty,id=x",
    "arm32": "arm only",
    "tcg": "tcg only, strata is kvm",
    # The /bin/bhyverun planned for cannot run here, so no pci-testdev is
    # assumed; the device's name is taken as -device's value, not as an
    # option of its own.
    "pci-dev": "not supported by strata: -device pci-testdev",
}
for k, v in want.items():
    assert skip.get(k) == v, (k, skip.get(k))
assert skip["a57"].startswith("not supported by strata: -cpu cortex-a72: "), skip
assert skip["missing"].endswith("/arm/nothere.flat' not found"), skip
env = open(sys.argv[1] + "/env").read().splitlines()
assert env[:2] == ["TARGET=qemu", "QEMU_ACCEL=kvm"], env
assert "ERRATA_aaaaaaaaaaaa=y" in env, env
PY

# The L1's log: bhyverun's exit status is the guest's EXIT: STATUS=n.
cat > "$tmp/l1.log" <<'EOF'
nested-kut: BEGIN selftest-setup
nested-kut: OUT SUMMARY: 2 tests
nested-kut: END rc=1 secs=1
nested-kut: BEGIN gicv2-ipi
nested-kut: OUT SUMMARY: 3 tests, 1 unexpected failures
nested-kut: OUT FAIL: gicv2: ipi: self: Interrupts received
nested-kut: END rc=3 secs=2
nested-kut: BEGIN its-trigger
nested-kut: OUT SUMMARY: 1 tests, 1 skipped
nested-kut: END rc=77 secs=1
nested-kut: BEGIN its-migration
nested-kut: OUT migrations: 1
nested-kut: OUT SUMMARY: 4 tests
nested-kut: END rc=1 secs=3
nested-kut: BEGIN gic-host
nested-kut: ERR bhyverun: arm64: vGICv3: no such device
nested-kut: END rc=6 secs=0
EOF
out=$(python3 "$kut_py" "$tmp/kut" --plan "$tmp/plan" --results-from "$tmp/l1.log" \
  --bhyverun /bin/bhyverun)
echo "$out"
res() { grep -qxF -- "$1" <<<"$out" || fail "no result line '$1'"; }
res "PASS selftest-setup (2 tests)"
res "FAIL gicv2-ipi (3 tests, 1 unexpected failures)"
res "SKIP its-trigger (1 tests, 1 skipped)"
res "FAIL gic-host (exit status 6: bhyverun: arm64: vGICv3: no such device)"
res "FAIL psci (did not finish in the L1)"
res "FAIL mte-sync (did not finish in the L1)"
res "PASS its-migration (4 tests; 1 migration(s))"
res "2 passed, 4 failed, 7 skipped"

# A --target=kvmtool tree: its kvmtool_params, the kvmtool layout.
python3 "$kut_py" "$tmp/kutk" --plan "$tmp/plank" --bhyverun /bin/bhyverun \
  --max-smp 2 || fail "kut.py --plan (kvmtool) exited $?"
plan=$(cat "$tmp/plank/plan.sh")
echo "$plan"
line "kut_case selftest-setup 90 /bin/bhyverun -k /kut/arm/selftest.flat -c 2 -i /kut/env -o arm64.layout=kvmtool -m 256M -o arm64.pmu=false -a 'setup smp=2 mem=256'"
line "kut_case gicv2-ipi 90 /bin/bhyverun -k /kut/arm/gic.flat -c 2 -i /kut/env -o arm64.layout=kvmtool -o arm64.gic_version=2 -o arm64.pmu=false -a ipi"
line "kut_case its-trigger 90 /bin/bhyverun -k /kut/arm/gic.flat -c 2 -i /kut/env -o arm64.layout=kvmtool -o arm64.gic_version=3 -o arm64.its=true -o arm64.pmu=false -a its-trigger"
line "kut_case mte-sync 90 /bin/bhyverun -k /kut/arm/mte.flat -c 1 -i /kut/env -o arm64.layout=kvmtool -o arm64.pmu=false -a sync"
grep -q "its-migration" "$tmp/plank/plan.sh" && fail "its-migration planned for kvmtool"
grep -q 'disabled because: \[\[ \\"$TARGET\\" != qemu \]\]' "$tmp/plank/plan.json" ||
  fail "its-migration not disabled for TARGET=kvmtool"
head -n 1 "$tmp/plank/env" | grep -qx TARGET=kvmtool || fail "kvmtool env: $(head -n 2 "$tmp/plank/env")"
grep -q QEMU_ACCEL "$tmp/plank/env" && fail "kvmtool env has QEMU_ACCEL"

# The QEMU baseline in the L1: KUT's arm/run command (mach-virt with the
# host's GIC, chr-testdev for the exit status, pci-testdev).
python3 "$kut_py" "$tmp/kut" --vmm qemu --plan "$tmp/planq" \
  --bhyverun /bin/bhyverun --max-smp 2 gicv2-ipi || fail "kut.py --plan --vmm qemu exited $?"
plan=$(cat "$tmp/planq/plan.sh")
echo "$plan"
grep -q "its-migration" "$tmp/planq/plan.sh" && fail "its-migration planned for QEMU"
line "kut_case gicv2-ipi 90 /bin/qemu -nodefaults -machine virt,gic-version=host -accel kvm -cpu host -device virtio-serial-device -device virtconsole,chardev=ctd -chardev testdev,id=ctd -device pci-testdev -display none -serial stdio -kernel /kut/arm/gic.flat -smp 2 -append ipi -machine gic-version=2 -initrd /kut/env"

# --arch x86 on an arm tree looks for x86/unittests.cfg.
python3 "$kut_py" "$tmp/kut" --arch x86 --plan "$tmp/planx" 2>"$tmp/err" &&
  fail "--arch x86 on an arm tree was accepted"
grep -q "x86/unittests.cfg not found" "$tmp/err" || fail "--arch x86: $(cat "$tmp/err")"

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "kut_arm_plan_test: all checks passed"
