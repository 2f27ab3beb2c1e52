#!/bin/bash
# scripts/kut.py on an x86 kvm-unit-tests-shaped tree, planned for the
# nested SVM testbed's L1 (--plan: no VM runs here, so no /dev/kvm is
# needed): -cpu's named models go to x86.cpu_model when bhyverun knows
# them (arch/amd64/cpu_models.h), with the vendor and feature flags on top;
# a model or flag strata lacks is a SKIP naming it.
# test_args with a command substitution are made in the L1 when the test
# runs (init.sh's kut_args).
# args: kut.py bhyverun init.sh
set -uo pipefail
kut_py=$1 bhyverun=$2 init_sh=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/kut/x86"
printf 'ARCH=x86_64\nARCH_NAME=x86_64\nTARGET=qemu\n' > "$tmp/kut/config.mak"
: > "$tmp/kut/errata.txt"
for f in syscall access vmx pcid; do echo flat > "$tmp/kut/x86/$f.flat"; done
cat > "$tmp/kut/x86/unittests.cfg" <<'EOF'
[syscall]
file = syscall.flat
arch = x86_64
qemu_params = -cpu Opteron_G1,vendor=AuthenticAMD

[access-reduced-maxphyaddr]
file = access.flat
qemu_params = -cpu IvyBridge,phys-bits=36,host-phys-bits=off

[vmx-sky]
file = vmx.flat
qemu_params = -cpu Skylake-Server,host-phys-bits,+vmx

[sandy]
file = access.flat
qemu_params = -cpu SandyBridge,-xsave

[pcid]
file = pcid.flat
qemu_params = -cpu qemu64,+pcid,+invpcid

[svm_pause_filter]
file = pcid.flat
test_args = pause_filter_test
qemu_params = -cpu max,+svm -overcommit cpu-pm=on -m 4g

[memlock]
file = pcid.flat
qemu_params = -overcommit mem-lock=on

[vmware_backdoors]
file = pcid.flat
qemu_params = -machine vmport=on -cpu max
check = /sys/module/kvm/parameters/enable_vmware_backdoor=Y

[kvmclock_test]
file = pcid.flat
smp = 2
test_args = "10000000 `date +%s`"
EOF

python3 "$kut_py" "$tmp/kut" --plan "$tmp/plan" --bhyverun "$bhyverun" ||
  fail "kut.py --plan exited $?"
plan=$(cat "$tmp/plan/plan.sh")
echo "$plan"
line() { grep -qxF -- "$1" <<<"$plan" || fail "no plan line '$1'"; }
dev="-o pci.0.3.0.device=pci-testdev"
line "kut_case syscall 90 /bin/bhyverun -k /kut/x86/syscall.flat -c 1 -i /kut/env $dev -o x86.cpu_model=Opteron_G1 --cpu-vendor amd"
line "kut_case sandy 90 /bin/bhyverun -k /kut/x86/access.flat -c 1 -i /kut/env $dev -o x86.cpu_model=SandyBridge -o x86.cpu_features=-xsave -o x86.cpu_features_missing=drop"
line "kut_case pcid 90 /bin/bhyverun -k /kut/x86/pcid.flat -c 1 -i /kut/env $dev -o x86.cpu_features=+pcid,+invpcid -o x86.cpu_features_missing=drop"
# -overcommit cpu-pm=on: the guest's HLT/PAUSE/MWAIT without exits.
line "kut_case svm_pause_filter 90 /bin/bhyverun -k /kut/x86/pcid.flat -c 1 -i /kut/env $dev -o x86.cpu_features=+svm -o x86.cpu_features_missing=drop -o x86.cpu_pm=true -m 4G -a pause_filter_test"
# -machine vmport=on: the vmport device; KVM's half is checked in the L1.
line "kut_check vmware_backdoors /sys/module/kvm/parameters/enable_vmware_backdoor=Y && kut_case vmware_backdoors 90 /bin/bhyverun -k /kut/x86/pcid.flat -c 1 -i /kut/env $dev -o platform.vmport.device=vmport"
[ "$(grep -c "kut_case " <<<"$plan")" = 6 ] || fail "expected 6 planned tests"
# kvmclock_test's `date +%s` is made when the line runs, with init.sh's
# kut_args, not when it was planned.
kc=$(grep "^kut_case kvmclock_test " <<<"$plan")
grep -qF -- "-a \"\$(kut_args '\"10000000 \`date +%s\`\"')\"" <<<"$kc" ||
  fail "kvmclock_test's arguments are not made in the L1: $kc"
got=$(
  eval "$(sed -n '/^kut_args() {/,/^}/p' "$init_sh")"
  kut_case() { shift 2; printf '%s\n' "$@"; }
  date() { echo 1234567890; }  # the L1's clock, here
  eval "$kc" | tail -n 1)
[ "$got" = "10000000 1234567890" ] || fail "kvmclock_test's -a in the L1: '$got'"
python3 - "$tmp/plan" <<'PY' || fail "plan.json checks"
import json, sys
p = json.load(open(sys.argv[1] + "/plan.json"))
skip = {t["name"]: t["detail"] for t in p["tests"] if t["status"]}
assert skip["access-reduced-maxphyaddr"] == \
    "not supported by strata: -cpu phys-bits=36", skip
assert skip["vmx-sky"].startswith(
    "not supported by strata: -cpu Skylake-Server: not a model strata has"), skip
assert skip["memlock"] == \
    "not supported by strata: -overcommit mem-lock=on", skip
assert len(skip) == 3, skip
PY

# What the plan asks of bhyverun is what bhyverun accepts.
"$bhyverun" -o x86.cpu_model=Opteron_G1 --cpu-vendor amd --dump-config \
  > "$tmp/config" || fail "bhyverun refused x86.cpu_model=Opteron_G1"
grep -q '"cpu_model": "Opteron_G1"' "$tmp/config" || fail "no cpu_model in the config"
"$bhyverun" -o x86.cpu_model=Pentium4 --dump-config 2> "$tmp/err" &&
  fail "bhyverun accepted an unknown model"
grep -q "x86.cpu_model 'Pentium4' is not a known model: host, Opteron_G1" "$tmp/err" ||
  fail "unknown model: $(cat "$tmp/err")"

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "kut_x86_plan_test: all checks passed"
