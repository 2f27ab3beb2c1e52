#!/bin/sh
# strata — /init of the nested testbeds' L1 initramfs (scripts/nested.sh):
# loads KVM, checks /dev/kvm, runs the cases of /cases.sh against it and
# powers the L1 off. busybox sh. Every line meant for the host starts with
# "nested: ".
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp
for m in $(cat /modules/order); do
  insmod "/modules/$m" || echo "nested: insmod $m failed"
done
echo "nested: L1 $(uname -r) $(uname -m), $(grep -c ^processor /proc/cpuinfo) cpus"
dmesg | grep -iE 'kvm|svm|hyp mode|vhe' | sed 's/^/nested: dmesg: /' | tail -n 8

if [ ! -c /dev/kvm ]; then
  echo "nested: FAIL kvm (no /dev/kvm in the L1)"
  echo "nested: done"
  poweroff -f
fi
echo "nested: PASS kvm (/dev/kvm is there)"

# case NAME STATUS TEXT ARGS...: runs bhyverun ARGS; passes if it exits with
# STATUS and its stdout contains TEXT (and no "FAIL:" line).
case_() {
  name=$1 want=$2 text=$3
  shift 3
  t0=$(cut -d' ' -f1 /proc/uptime)
  timeout 300 /bin/bhyverun "$@" </dev/null >/tmp/out 2>/tmp/err
  rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  if [ "$rc" = "$want" ] && grep -qF -- "$text" /tmp/out && ! grep -q '^FAIL:' /tmp/out; then
    echo "nested: PASS $name ($(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s)"
  else
    echo "nested: FAIL $name (exit $rc, wanted $want and \"$text\")"
    tail -n 6 /tmp/out | sed 's/^/nested:   out| /'
    tail -n 4 /tmp/err | sed 's/^/nested:   err| /'
  fi
}

# kut_case NAME LIMIT COMMAND...: one kvm-unit-tests test of /kut/plan.sh
# (scripts/kut.py --plan): its exit status, SUMMARY and first FAIL line and
# its stderr without warnings, for kut.py --results-from to classify.
kut_case() {
  name=$1 limit=$2
  shift 2
  echo "nested-kut: BEGIN $name"
  start=$(cut -d. -f1 /proc/uptime)
  timeout -s KILL "$limit" "$@" </dev/null >/tmp/kout 2>/tmp/kerr
  rc=$?
  secs=$(($(cut -d. -f1 /proc/uptime) - start))
  # busybox timeout kills the test: status 137 (KUT's runner says 124).
  [ "$rc" = 137 ] && [ "$secs" -ge "$((limit - 1))" ] && rc=124
  grep '^SUMMARY: ' /tmp/kout | tail -n 1 | sed 's/^/nested-kut: OUT /'
  grep -m 1 -iE '^FAIL|abort' /tmp/kout | sed 's/^/nested-kut: OUT /'
  grep -vi warn /tmp/kerr | grep . | head -n 3 | sed 's/^/nested-kut: ERR /'
  echo "nested-kut: END rc=$rc secs=$secs"
}

# ec_run ROUND TEST VMM COMMAND...: one vmexit.flat run of
# /kut/exitcost.sh (bench/kut_exit_cost.py --plan): the cycles KUT printed
# for TEST, for kut_exit_cost.py --results-from.
ec_run() {
  round=$1 test=$2 vmm=$3
  shift 3
  timeout -s KILL 180 "$@" </dev/null >/tmp/eout 2>/dev/null
  rc=$?
  c=$(sed -n "s/^$test \([0-9][0-9]*\).*/\1/p" /tmp/eout | head -n 1)
  echo "nested-ec: $round $test $vmm ${c:-none} rc=$rc"
}
ec_floor() {
  "$@" 2>&1 | sed 's/^/nested-ec: /'
}

. /cases.sh
[ -f /linux/bench ] && . /linux_bench.sh
if [ -f /kut/plan.sh ]; then
  echo "nested: kvm-unit-tests: $(grep -c ^kut_case /kut/plan.sh) tests"
  . /kut/plan.sh
fi
if [ -f /kut/exitcost.sh ]; then
  echo "nested: exit cost: $(grep -c ^ec_run /kut/exitcost.sh) runs"
  . /kut/exitcost.sh
fi
echo "nested: done"
poweroff -f
