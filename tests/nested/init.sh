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

# The L1's pulse: a line every 20 s while it runs, naming the case under
# way. A log that stops growing altogether means the L1 itself stopped
# (scripts/nested.sh cuts it off early and says so); a case that overruns
# while the pulse goes on is the case's own hang (see dump_vmm).
( while sleep 20; do
    echo "nested-pulse: $(cut -d' ' -f1 /proc/uptime) s, in $(cat /tmp/case 2>/dev/null)"
  done ) &

# dump_vmm PID: what a hung bhyverun's threads are doing (state, kernel
# wait channel, the system call each one is in: 16 is ioctl, 0xae80 is
# KVM_RUN; 202 is futex).
dump_vmm() {
  for t in /proc/$1/task/*; do
    [ -d "$t" ] || continue
    echo "nested:   thread ${t##*/} $(cut -d' ' -f3 "$t/stat" 2>/dev/null)" \
      "$(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)" \
      "syscall=$(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
  done
}

# run_watched NAME COMMAND...: runs COMMAND (a bhyverun) with stdout in
# /tmp/out and stderr in /tmp/err; its status in $rc. A run past
# CASE_LIMIT seconds (120; every case takes a few) is dumped (dump_vmm),
# asked to stop with SIGTERM (bhyverun kicks its vCPUs out and exits: that
# it does, or does not, is itself a finding), dumped again after 5 s and
# killed.
run_watched() {
  w_name=$1
  shift
  echo "$w_name" > /tmp/case
  "$@" </dev/null >/tmp/out 2>/tmp/err &
  pid=$!
  ( trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "${CASE_LIMIT:-120}" & s=$!
    wait $s
    [ -d /proc/$pid ] || exit 0
    echo "nested: $w_name: still running after ${CASE_LIMIT:-120} s; its threads:"
    dump_vmm $pid
    kill -TERM $pid; sleep 5
    [ -d /proc/$pid ] || exit 0  # it ended (status 143)
    echo "nested: $w_name: SIGTERM did not end it in 5 s; its threads:"
    dump_vmm $pid
    kill -KILL $pid ) &
  watchdog=$!
  wait $pid
  rc=$?
  kill $watchdog 2>/dev/null
  wait $watchdog 2>/dev/null
}

# case NAME STATUS TEXT ARGS...: runs bhyverun ARGS (run_watched); passes
# if it exits with STATUS and its stdout contains TEXT (and no "FAIL:"
# line).
case_() {
  name=$1 want=$2 text=$3
  shift 3
  t0=$(cut -d' ' -f1 /proc/uptime)
  run_watched "$name" /bin/bhyverun "$@"
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

# migrate_run OUT ERR LIMIT BHYVERUN ARGS...: runs bhyverun ARGS and
# migrates its VM at each migration point the guest announces (the lines of
# kvm-unit-tests' lib/migrate.c: "Now migrate the VM" and its "(quiet)"
# form, "Skipped VM migration", "Begin/End continuous migration"): SIGUSR2
# makes that bhyverun save the VM to a snapshot and exit 0, and a new
# `bhyverun --restore` continues it with a key on stdin (the guest waits in
# getchar()). A migration point is a line in the current instance's output
# (the line before a save is the previous instance's). OUT and ERR get every
# instance's output in order, without the save notices; the status is the
# last instance's (124 past LIMIT seconds), MIGRATIONS how many happened.
migrate_run() {
  m_out=$1 m_err=$2 m_limit=$3 m_bin=$4
  shift 4
  : > "$m_out"; : > "$m_err"
  MIGRATIONS=0
  m_end=$(($(cut -d. -f1 /proc/uptime) + m_limit))
  rm -f /tmp/mig.snap /tmp/mig.prev
  "$m_bin" "$@" --save-on-signal /tmp/mig.snap </dev/null >/tmp/mig.out 2>/tmp/mig.err &
  m_pid=$!
  while :; do
    m_rc=""
    while kill -0 $m_pid 2>/dev/null; do
      if [ "$(cut -d. -f1 /proc/uptime)" -ge "$m_end" ]; then
        kill -KILL $m_pid; wait $m_pid; m_rc=124; break
      fi
      if grep -qE 'Now migrate the VM|Skipped VM migration|(Begin|End) continuous migration' /tmp/mig.out; then
        kill -USR2 $m_pid
        break
      fi
      sleep 0.1
    done
    [ -z "$m_rc" ] && { wait $m_pid; m_rc=$?; }
    cat /tmp/mig.out >> "$m_out"
    grep -v 'bhyverun: snapshot saved to' /tmp/mig.err >> "$m_err"
    if [ "$m_rc" = 0 ] && grep -q 'bhyverun: snapshot saved to' /tmp/mig.err; then
      MIGRATIONS=$((MIGRATIONS + 1))
      mv /tmp/mig.snap /tmp/mig.prev
      echo | "$m_bin" --restore /tmp/mig.prev --save-on-signal /tmp/mig.snap >/tmp/mig.out 2>/tmp/mig.err &
      m_pid=$!
      continue
    fi
    return "$m_rc"
  done
}

# kut_check NAME "PATH=VALUE ...": a test's `check` lines, which KUT
# evaluates on the machine the test runs on (here, the L1): true if every
# PATH holds VALUE, else a SKIP line for kut.py --results-from, and false.
kut_check() {
  for c in $2; do
    have=$(cat "${c%%=*}" 2>/dev/null)
    if [ "$have" != "${c#*=}" ]; then
      echo "nested-kut: SKIP $1 ${c%%=*} not equal to ${c#*=} (it is '$have')"
      return 1
    fi
  done
  return 0
}

# kut_migrate NAME LIMIT BHYVERUN ARGS...: kut_case for a kvm-unit-tests
# migration test (group migration), migrated with migrate_run.
kut_migrate() {
  name=$1 limit=$2
  shift 2
  echo "nested-kut: BEGIN $name"
  start=$(cut -d. -f1 /proc/uptime)
  migrate_run /tmp/kout /tmp/kerr "$limit" "$@"
  rc=$?
  secs=$(($(cut -d. -f1 /proc/uptime) - start))
  echo "nested-kut: OUT migrations: $MIGRATIONS"
  grep '^SUMMARY: ' /tmp/kout | tail -n 1 | sed 's/^/nested-kut: OUT /'
  grep -m 1 -iE '^FAIL|abort' /tmp/kout | sed 's/^/nested-kut: OUT /'
  grep -vi warn /tmp/kerr | grep . | head -n 3 | sed 's/^/nested-kut: ERR /'
  echo "nested-kut: END rc=$rc secs=$secs"
}

. /cases.sh
[ -f /linux/bench ] && . /linux_bench.sh
if [ -f /kut/plan.sh ]; then
  echo "nested: kvm-unit-tests: $(grep -cE 'kut_(case|migrate) ' /kut/plan.sh) tests"
  . /kut/plan.sh
fi
if [ -f /kut/exitcost.sh ]; then
  echo "nested: exit cost: $(grep -c ^ec_run /kut/exitcost.sh) runs"
  . /kut/exitcost.sh
fi
echo "nested: done"
poweroff -f
