#!/bin/bash
# strata — scripts/nested_stall.py against real QEMUs: a TCG machine with
# two vCPUs and its HMP monitor on a unix socket, as nested.sh boots the
# L1. The "kernel" is the firmware (no -kernel), and the symbols are a
# kallsyms file that names the firmware's range, so every pc it reports
# must be named and not called L2/user code. Also: a monitor that is not
# there is an error (exit 1) that says so.
set -u
stall=$1
fails=0
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
check() {  # NAME COND...: one result line
  local name=$1; shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
probe() {  # QEMU ARGS...: boots it with a monitor, runs the script, 3 samples
  local qemu=$1; shift
  local sock="$work/mon-${qemu##*-}.sock"
  if ! command -v "$qemu" >/dev/null; then
    echo "FAIL $qemu is not installed (scripts/setup.sh installs it)"
    fails=$((fails + 1)); return 1
  fi
  "$qemu" -accel tcg -smp 2 -m 128M -display none -nodefaults \
    -monitor "unix:$sock,server=on,wait=off" "$@" &
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  sleep 1
  python3 "$stall" "$sock" "$work/kallsyms" 3 > "$work/out" 2>&1
  echo $? > "$work/rc"
  kill %% 2>/dev/null; wait 2>/dev/null
  sed 's/^/  | /' "$work/out"
}
# Everything below 4 GiB is "firmware" here: a firmware pc is named.
printf '%s\n' "0000000000000000 T firmware_low" "00000000c0000000 t firmware_high" \
  "ffffffff81000000 T _text [fake_mod]" > "$work/kallsyms"

probe qemu-system-x86_64 -M pc -cpu max
check "x86: exit status 0" [ "$(cat "$work/rc")" = 0 ]
check "x86: 3 samples of 2 cpus" [ "$(grep -c '^nested-stall: sample [123] cpu [01] pc=' "$work/out")" = 6 ]
check "x86: every pc named from the symbols" \
  [ "$(grep -c 'firmware_\(low\|high\)+0x[0-9a-f]* (L1 kernel) cpl=[0-3] ii=[01] hlt=[01]' "$work/out")" = 6 ]

probe qemu-system-aarch64 -M virt -cpu cortex-a57
check "arm64: exit status 0" [ "$(cat "$work/rc")" = 0 ]
check "arm64: 3 samples of 2 cpus, named" \
  [ "$(grep -c '^nested-stall: sample [123] cpu [01] pc=[0-9a-f]* firmware_low+0x[0-9a-f]* (L1 kernel) EL[0-3][th]' "$work/out")" = 6 ]

# Symbols that do not cover the pcs: said, not invented.
printf '%s\n' "ffffffff81000000 T _text" > "$work/kallsyms"
probe qemu-system-x86_64 -M pc -cpu max
check "unnamed pcs are said to be outside the L1 kernel" \
  [ "$(grep -c 'not L1 kernel text' "$work/out")" = 6 ]

python3 "$stall" "$work/none.sock" "$work/kallsyms" 1 > "$work/out" 2>&1
rc=$?
sed 's/^/  | /' "$work/out"
check "no monitor: exit 1" [ "$rc" = 1 ]
check "no monitor: said" grep -q "cannot ask the L1's monitor" "$work/out"

echo "$((7 - fails)) passed, $fails failed"
[ "$fails" = 0 ]
