#!/bin/bash
# The Hyper-V option translation of scripts/kut.py and of the QEMU-compatible
# front, without a VM (no /dev/kvm needed; kut_runner_test and
# qemu_front_test boot guests where /dev/kvm is): kvm-unit-tests' Hyper-V
# tests (-cpu host,hv_passthrough, the individual hv-* flags, hv-vendor-id,
# -device hyperv-testdev) and what strata lacks (hv-evmcs, hv-spinlocks=N,
# another -device) SKIPped naming it; -device/-accel options that need no
# translation; a test's `check` lines planned for the L1 (kut_check) and
# --results-from classifying an L1's log, a failed check included.
# args: kut.py strata-qemu-system-x86_64 bhyverun
set -uo pipefail
kut_py=$1 front_src=$2 bhyverun=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/tree/x86"
echo ARCH=x86_64 > "$tmp/tree/config.mak"
for f in hyperv_synic hyperv_stimer hyperv_clock hello; do
  echo flat > "$tmp/tree/x86/$f.flat"
done
cat > "$tmp/tree/x86/unittests.cfg" <<'EOF'
[hyperv_synic]
file = hyperv_synic.flat
smp = 2
qemu_params = -cpu host,hv_passthrough -device hyperv-testdev
groups = hyperv

[hyperv_stimer_direct]
file = hyperv_stimer.flat
smp = 2
test_args = direct
qemu_params = -cpu host,hv_passthrough
groups = hyperv

[hyperv_clock]
file = hyperv_clock.flat
smp = 2
qemu_params = -cpu host,hv_passthrough
arch = x86_64
groups = hyperv
check = /sys/devices/system/clocksource/clocksource0/current_clocksource=tsc

[hv_flags]
file = hello.flat
qemu_params = -cpu host,hv_relaxed,hv-vpindex=on,hv_time,+hv-synic,hv_stimer,hv-stimer-direct=off,hv_vendor_id=strata,hv-apicv

[hv_only_off]
file = hello.flat
qemu_params = -cpu host,hv-time=off

[hv_evmcs]
file = hello.flat
qemu_params = -cpu host,hv_passthrough,hv-evmcs

[hv_spinlocks]
file = hello.flat
qemu_params = -cpu host,hv_spinlocks=0x1fff

[devices]
file = hello.flat
qemu_params = -accel kvm -device pci-testdev -device isa-debug-exit -m 64

[edu]
file = hello.flat
qemu_params = -device edu
EOF

python3 "$kut_py" "$tmp/tree" --bhyverun "$bhyverun" --plan "$tmp/plan" \
  >"$tmp/out" 2>&1 || fail "kut.py --plan failed: $(cat "$tmp/out")"
plan=$(cat "$tmp/plan/plan.sh")
echo "$plan"
has() { grep -qF -- "$1" <<<"$plan" || fail "plan.sh has no '$1'"; }
has "kut_case hyperv_synic 90 /bin/bhyverun -k /kut/x86/hyperv_synic.flat -c 2 -i /kut/env -o pci.0.3.0.device=pci-testdev -o x86.hyperv=passthrough -o platform.hvtestdev.device=hyperv-testdev"
has "kut_case hyperv_stimer_direct 90 /bin/bhyverun -k /kut/x86/hyperv_stimer.flat -c 2 -i /kut/env -o pci.0.3.0.device=pci-testdev -o x86.hyperv=passthrough -a direct"
# check lines are the L1's to evaluate, whatever this host's clocksource.
has "kut_check hyperv_clock /sys/devices/system/clocksource/clocksource0/current_clocksource=tsc && kut_case hyperv_clock 90 /bin/bhyverun -k /kut/x86/hyperv_clock.flat"
has "-o x86.hyperv_vendor_id=strata -o x86.hyperv=relaxed,vpindex,time,synic,stimer,-stimer-direct,apicv"
has "kut_case devices 90 /bin/bhyverun -k /kut/x86/hello.flat -c 1 -i /kut/env -o pci.0.3.0.device=pci-testdev -m 64M"
grep -q "hv_only_off 90 /bin/bhyverun -k /kut/x86/hello.flat -c 1 -i /kut/env -o pci.0.3.0.device=pci-testdev$" <<<"$plan" ||
  fail "hv-time=off alone should enable no Hyper-V feature"

python3 - "$tmp/plan/plan.json" <<'PY' || fail "plan.json checks"
import json, sys
t = {e["name"]: e for e in json.load(open(sys.argv[1]))["tests"]}
def skip(name, text):
    assert t[name]["status"] == "SKIP", t[name]
    assert text in t[name]["detail"], t[name]
skip("hv_evmcs", "-cpu flag hv-evmcs: strata has no Hyper-V 'evmcs'")
skip("hv_spinlocks", "-cpu flag hv_spinlocks=0x1fff: strata has no Hyper-V setting 'spinlocks'")
skip("edu", "-device edu")
for name in ("hyperv_synic", "hyperv_clock", "hv_flags", "devices"):
    assert t[name]["status"] is None, t[name]
PY

# What an L1 prints (tests/nested/init.sh): a pass, a Hyper-V feature the
# L1's KVM lacks, a check that did not hold there.
cat > "$tmp/l1.log" <<'EOF'
nested-kut: BEGIN hyperv_synic
nested-kut: OUT SUMMARY: 1 tests
nested-kut: END rc=1 secs=3
nested-kut: BEGIN hyperv_stimer_direct
nested-kut: ERR bhyverun: x86.hyperv: the Hyper-V direct-mode synthetic timers (stimer-direct) is not supported by KVM on this host
nested-kut: END rc=6 secs=0
nested-kut: SKIP hyperv_clock /sys/devices/system/clocksource/clocksource0/current_clocksource not equal to tsc (it is 'hpet')
EOF
res=$(python3 "$kut_py" "$tmp/tree" --bhyverun "$bhyverun" --plan "$tmp/plan" \
  --results-from "$tmp/l1.log" 2>&1)
echo "$res"
line() { grep -qxF -- "$1" <<<"$res" || fail "no line '$1'"; }
line "PASS hyperv_synic (1 tests)"
line "SKIP hyperv_stimer_direct (the Hyper-V direct-mode synthetic timers (stimer-direct) is not supported by KVM on this host)"
line "SKIP hyperv_clock (/sys/devices/system/clocksource/clocksource0/current_clocksource not equal to tsc (it is 'hpet'))"
line "SKIP hv_evmcs (not supported by strata: -cpu flag hv-evmcs: strata has no Hyper-V 'evmcs' (x86.hyperv))"

# The QEMU-compatible front maps the same options onto bhyverun (a stand-in
# that prints its arguments, asking the real one only KUT's probes).
cp "$front_src" "$kut_py" "$tmp/"
cat > "$tmp/bhyverun" <<EOF
#!/bin/bash
case "\$1" in -h|--dump-config) exec "$bhyverun" "\$@" ;; esac
echo "ARGS: \$*"
EOF
chmod +x "$tmp/bhyverun"
export STRATA_BHYVERUN=$tmp/bhyverun
front="$tmp/strata-qemu-system-x86_64"
"$front" -device '?' | grep -qF '"hyperv-testdev"' || fail "-device '?' lacks hyperv-testdev"
out=$("$front" -nodefaults -device pc-testdev -machine accel=kvm -kernel k.flat -smp 2 \
  -cpu host,hv_passthrough -device hyperv-testdev 2>&1)
grep -qF -- "ARGS: -k k.flat -c 2 -o x86.hyperv=passthrough -o platform.hvtestdev.device=hyperv-testdev" <<<"$out" ||
  fail "front: $out"
"$front" -kernel k.flat -cpu host,hv_evmcs >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "front: hv_evmcs exit $rc, expected 2"
grep -qF "hv_evmcs" "$tmp/err" || fail "front: hv_evmcs not named: $(cat "$tmp/err")"

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "kut_hyperv_plan_test: all checks passed"
