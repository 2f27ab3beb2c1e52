#!/bin/sh
# strata — /init of the nested testbeds' L1 initramfs (scripts/nested.sh):
# loads KVM, checks /dev/kvm, runs the cases of /cases.sh against it and
# powers the L1 off. busybox sh. Every line meant for the host starts with
# "nested: ".
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp
# With kvm-unit-tests to run (amd64), KVM's VMware backdoor is on: its
# vmware_backdoors test checks for it (user mode reaches the backdoor port
# and its pseudo-PMCs through KVM's #GP intercept), under strata and QEMU
# alike. The other cases run without that intercept.
# amd64: CPU 1 stays offline until kvm_pin holds KVM's static keys (see
# below), so that the L1 kernel patches its text for the modules and for
# the first VM while only one CPU runs: under multi-threaded TCG a CPU has
# been seen looping on a patched site's stale int3 (tests/nested/kvm_pin.cc).
one_cpu=""
if [ -x /bin/kvm_pin ] && [ -w /sys/devices/system/cpu/cpu1/online ]; then
  echo 0 > /sys/devices/system/cpu/cpu1/online && one_cpu=1
fi
for m in $(cat /modules/order); do
  p=""
  [ "$m" = kvm.ko ] && [ -f /kut/plan.sh ] && [ "$(uname -m)" = x86_64 ] &&
    p=enable_vmware_backdoor=1
  insmod "/modules/$m" $p || echo "nested: insmod $m $p failed"
done
echo "nested: L1 $(uname -r) $(uname -m), $(cut -d- -f2 /sys/devices/system/cpu/present 2>/dev/null |
  awk '{print $1 + 1}') cpus"
dmesg | grep -iE 'kvm|svm|hyp mode|vhe' | sed 's/^/nested: dmesg: /' | tail -n 8
# The L1 kernel's text symbols, once per kernel (scripts/nested.sh caches
# them): what names the pcs of a stalled L1 (scripts/nested_stall.py).
if [ -f /kallsyms.want ]; then
  echo "nested-kallsyms: begin"
  grep ' [tTwW] ' /proc/kallsyms | gzip -1 | base64
  echo "nested-kallsyms: end"
fi

if [ ! -c /dev/kvm ]; then
  echo "nested: FAIL kvm (no /dev/kvm in the L1)"
  echo "nested: done"
  poweroff -f
fi
echo "nested: PASS kvm (/dev/kvm is there)"
# amd64: hold KVM's static keys steady for the L1's life, so that no VM a
# case creates or destroys makes the L1 kernel patch its text under TCG
# (tests/nested/kvm_pin.cc says why).
if [ -x /bin/kvm_pin ]; then
  /bin/kvm_pin > /tmp/kvm_pin.out 2>&1 &
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s /tmp/kvm_pin.out ] && break; sleep 1; done
  cat /tmp/kvm_pin.out
  if grep -q "holding" /tmp/kvm_pin.out; then
    echo "nested: PASS kvm-pin (KVM's static keys held)"
  else
    echo "nested: FAIL kvm-pin (see the line above)"
  fi
fi
if [ -n "$one_cpu" ]; then
  echo 1 > /sys/devices/system/cpu/cpu1/online
  if [ "$(cat /sys/devices/system/cpu/cpu1/online)" = 1 ]; then
    echo "nested: PASS cpu1-online (CPU 1 back online: $(cat /sys/devices/system/cpu/online))"
  else
    echo "nested: FAIL cpu1-online (CPU 1 did not come back online)"
  fi
fi

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

# kut_args TEST_ARGS: a test's test_args with its command substitutions
# (kvmclock_test's `date +%s`) made here, when the test runs, as KUT's
# runner evals them; planned on the host, they would be its time then.
kut_args() {
  eval "set -- $1"
  echo "$*"
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

# --- Bazel-built tests (scripts/nested.sh svm --bazel-tests): /cases.sh is
# then /bt/plan.sh (scripts/nested_bazel_tests.py stage), bt_setup and one
# `bazel_test ID LIMIT CONFIG TARGET` per test. ---

# bt_setup "ULIMIT OPTIONS": every busybox applet on PATH (the tests'
# scripts use mktemp, dirname, ...; the names already there stay), /dev/fd
# and friends for bash's process substitution, devpts for the tests'
# terminals, the host's resource limits as the stager chose them (the
# L1's follow its small RAM: 1024 open files), overcommit for guests sized
# past the L1's RAM, and a quiet kernel console: its messages would cut
# into the encoded reports (the failing tests' logs carry the kernel's
# messages).
bt_setup() {
  mkdir -p /usr/bin /usr/sbin
  /bin/busybox --install -s 2>/dev/null  # at their usual paths (/usr/bin/env)
  ln -sf /proc/self/fd /dev/fd
  ln -sf /proc/self/fd/0 /dev/stdin
  ln -sf /proc/self/fd/1 /dev/stdout
  ln -sf /proc/self/fd/2 /dev/stderr
  mkdir -p /dev/pts /dev/shm
  mount -t devpts -o ptmxmode=0666 devpts /dev/pts
  mount -t tmpfs tmpfs /dev/shm
  for b_l in $(echo "$1" | sed 's/ \([0-9u]\)/=\1/g'); do  # -n=20000 -i=96367 ...
    ulimit ${b_l%=*} ${b_l#*=} || echo "nested: cannot set ulimit ${b_l%=*} ${b_l#*=}"
  done
  echo 1 > /proc/sys/vm/overcommit_memory
  dmesg -n 1
  mkdir -p /bt-tmp
  echo "nested: bazel tests: $(grep -c '^bazel_test' /cases.sh), $(free -m | awk '/Mem:/ {print $2}') MiB," \
    "limits $(ulimit -n) files, $(ulimit -i) signals, $(ulimit -u) processes"
}

# bt_send TAG ID FILE: FILE gzipped and base64-encoded on lines
# "bt-<TAG> ID <data>" (scripts/nested_bazel_tests.py collect).
bt_send() {
  gzip -c "$3" | base64 | sed "s/^/bt-$1 $2 /"
}

# bt_dump SID: the processes of session SID (a test that overran): each
# thread's state, wait channel, system call and kernel stack.
bt_dump() {
  for p in /proc/[0-9]*; do
    [ "$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f4)" = "$1" ] || continue
    echo "process ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline" | cut -c1-160)"
    for t in "$p"/task/*; do
      echo "  thread ${t##*/} $(sed 's/.*) //' "$t/stat" 2>/dev/null | cut -d' ' -f1)" \
        "$(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)" \
        "syscall=$(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)" \
        "$(grep -E '^(SigQ|SigPnd|ShdPnd|SigBlk)' "$t/status" 2>/dev/null | tr -s '\t\n' '  ')"
      sed 's/^/      /' "$t/stack" 2>/dev/null | head -n 10
    done
  done
}

# bazel_test ID LIMIT CONFIG TARGET: runs /bt/ID.sh (the test's command and
# environment as `bazel test` gives them) in a session of its own, with
# TEST_TMPDIR and the outputs on a fresh tmpfs, stdout and stderr in its
# log. Past LIMIT seconds (its TEST_TIMEOUT) the session gets SIGTERM, then
# SIGKILL 5 s later, and it has timed out. A test that writes no XML gets
# test-setup.sh's (one case: passed, or failed with its exit status or
# "Timed out"). Sends the XML, and if it failed the log (with the kernel's
# messages meanwhile),
# and prints `nested: PASS|FAIL|SKIP TARGET@CONFIG`.
bazel_test() {
  b_id=$1 b_limit=$2 b_name="$4@$3"
  echo "$b_name" > /tmp/case
  echo "bt: BEGIN $b_id $b_name"
  mount -t tmpfs -o mode=1777 tmpfs /bt-tmp || echo "nested: $b_name: cannot mount a tmpfs"
  mkdir -p /bt-tmp/tmp /bt-tmp/out/test.outputs /bt-tmp/out/test.outputs_manifest
  b_t0=$(cut -d. -f1 /proc/uptime)
  setsid /bt/$b_id.sh </dev/null >/bt-log 2>&1 &
  b_pid=$!
  ( trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "$b_limit" & s=$!
    wait $s
    [ -d /proc/$b_pid ] || exit 0
    echo "nested: $b_name: still running after $b_limit s: SIGTERM" | tee -a /bt-log
    echo timeout > /bt-tmp/timed-out
    bt_dump $b_pid >> /bt-log
    kill -TERM -$b_pid $b_pid 2>/dev/null; sleep 5
    kill -KILL -$b_pid $b_pid 2>/dev/null ) &
  b_watchdog=$!
  wait $b_pid
  b_rc=$?
  kill $b_watchdog 2>/dev/null
  wait $b_watchdog 2>/dev/null
  kill -KILL -$b_pid 2>/dev/null  # what the test left running
  b_secs=$(($(cut -d. -f1 /proc/uptime) - b_t0))
  b_xml=/bt-tmp/out/test.xml
  if [ ! -s "$b_xml" ]; then
    b_err="" b_errors=0
    if [ -f /bt-tmp/timed-out ]; then
      b_err='<error message="Timed out"></error>' b_errors=1
    elif [ "$b_rc" != 0 ]; then
      b_err="<error message=\"exited with error code $b_rc\"></error>" b_errors=1
    fi
    b_bin=$(sed -n 's/.*TEST_BINARY=\([^ ]*\).*/\1/p' /bt/$b_id.sh | tr -d "'")
    cat > "$b_xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="$b_bin" tests="1" failures="0" errors="$b_errors">
    <testcase name="$b_bin" status="run" duration="$b_secs" time="$b_secs">$b_err</testcase>
  </testsuite>
</testsuites>
EOF
  fi
  [ -f /bt-tmp/timed-out ] && b_rc=timeout
  b_cases=$(grep -c '<testcase' "$b_xml")
  b_bad=$(grep -cE '<(failure|error)[ >]' "$b_xml")
  b_skips=$(grep -c '<skipped' "$b_xml")
  bt_send x "$b_id" "$b_xml"
  if [ "$b_rc" != 0 ] || [ "$b_bad" != 0 ]; then
    # The kernel's messages since the test began, then the test's log (its
    # tail is what test_summary.py shows).
    { echo "--- the L1 kernel's messages during the test (dmesg)"
      dmesg | awk -v t0="$b_t0" '{ s = $0; sub(/^\[ */, "", s) } s + 0 >= t0' | tail -n 80
      echo "--- the test's log"; tail -n 3000 /bt-log; } > /bt-logtail
    bt_send l "$b_id" /bt-logtail
    tail -n 12 /bt-log | sed 's/^/nested:   log| /'
  fi
  echo "bt: END $b_id rc=$b_rc secs=$b_secs xml=$(md5sum < "$b_xml" | cut -d' ' -f1)"
  if [ "$b_rc" = 0 ] && [ "$b_bad" = 0 ]; then
    if [ "$b_skips" = "$b_cases" ]; then b_res=SKIP; else b_res=PASS; fi
  else
    b_res=FAIL
  fi
  echo "nested: $b_res $b_name ($b_cases cases, $b_bad failed, $b_skips skipped, exit $b_rc, $b_secs s)"
  umount /bt-tmp 2>/dev/null || umount -l /bt-tmp
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
