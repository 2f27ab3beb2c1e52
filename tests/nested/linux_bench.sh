# strata — the L2 Linux boot timed under bhyverun and under QEMU (amd64:
# -M pc and -M microvm; arm64: -M virt with the host's GIC; KVM) in the same
# L1, on the same kernel and initramfs (nested.sh --linux). Five alternating
# runs each; prints the median seconds from the VMM's start to the marker
# line on its console (boot-to-marker), the median to its exit after the
# guest's power-off (ACPI S5 / PSCI SYSTEM_OFF), and the largest max RSS.
# Sourced by tests/nested/init.sh.
case $(uname -m) in
  aarch64)
    APPEND="console=ttyAMA0 quiet panic=-1"
    QEMU_MACHINE="-M virt,gic-version=host" QEMU_LABEL=qemu-virt ;;
  *)
    APPEND="console=ttyS0 quiet panic=-1"
    QEMU_MACHINE="-M pc" QEMU_LABEL=qemu-pc
    # microvm: no PCI, no firmware tables but ACPI's reduced hardware (the
    # GED's sleep register powers off), qboot, the ISA serial port.
    MICROVM_MACHINE="-M microvm" ;;
esac
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Copies the console to /tmp/lout and notes (in /tmp/lmark) when the marker
# line arrives: the same reader for every VMM, no fork per line.
watch_marker() {
  while IFS= read -r l; do
    case $l in
      *"L2-MARKER: linux up"*) read -r up _ < /proc/uptime; echo "$up" > /tmp/lmark ;;
    esac
    printf '%s\n' "$l"
  done > /tmp/lout
}
boot() {  # VMM ARGS...: prints "to_marker to_exit rss_kb" or "fail"
  rm -f /tmp/lmark
  read -r t0 _ < /proc/uptime
  # A boot that has not powered off after 120 s is stopped (busybox
  # timeout runs the VMM itself, so time -v still measures it): a failed
  # run, with its last lines, instead of a bench that waits forever.
  # busybox's time applet (not a shell keyword in ash).
  # shellcheck disable=SC2023
  { time -v timeout -s TERM 120 "$@" </dev/null 2>/tmp/lerr; echo $? > /tmp/lrc; } | watch_marker
  rc=$(cat /tmp/lrc)
  read -r t1 _ < /proc/uptime
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' /tmp/lerr | tail -n 1)
  if [ "$rc" = 0 ] && [ -s /tmp/lmark ]; then
    echo "$t0 $(cat /tmp/lmark) $t1 ${rss:-0}" | awk '{printf "%.2f %.2f %d\n", $2 - $1, $3 - $1, $4}'
  else
    echo fail
    grep -q "terminated by signal 15" /tmp/lerr && echo "nested:   $1: no power-off after 120 s, stopped" >&2
    { tail -n 3 /tmp/lout; grep -v '^	' /tmp/lerr | head -n 3; } | sed 's/^/nested:   | /' >&2
  fi
}
# The runs of one VMM, a line "to_marker to_exit rss_kb" each, in /tmp/runs.NAME.
record() { [ "$2" = fail ] && { fails=$((fails + 1)); return; }; echo "$2" >> "/tmp/runs.$1"; }
summary() {  # NAME: "<median> s (runs: ...; to exit <median> s; max RSS N MiB)"
  t=$(cut -d' ' -f1 "/tmp/runs.$1" | tr '\n' ' ')
  x=$(cut -d' ' -f2 "/tmp/runs.$1" | median)
  rss=$(cut -d' ' -f3 "/tmp/runs.$1" | sort -n | tail -n 1)
  echo "$(echo "$t" | median) s (runs: ${t% }; to exit $x s; max RSS $((rss / 1024)) MiB)"
}
fails=0
rm -f /tmp/runs.*
for i in 1 2 3 4 5; do
  s=$(boot /bin/bhyverun -c 2 -m 256M -k /linux/vmlinuz -i /linux/initrd -a "$APPEND")
  record strata "$s"
  # shellcheck disable=SC2086
  q=$(boot /bin/qemu $QEMU_MACHINE -accel kvm -cpu host -smp 2 -m 256M -nographic -nodefaults \
        -serial stdio -no-reboot -kernel /linux/vmlinuz -initrd /linux/initrd -append "$APPEND")
  record qemu "$q"
  # The two runs of a round, back to back, share the L1's speed of the
  # moment: their ratio does not carry the drift between rounds.
  [ "$s" != fail ] && [ "$q" != fail ] &&
    echo "${s%% *} ${q%% *}" | awk '{printf "%.3f\n", $1 / $2}' >> /tmp/runs.ratio
  if [ -n "${MICROVM_MACHINE:-}" ]; then
    # shellcheck disable=SC2086
    record microvm "$(boot /bin/qemu $MICROVM_MACHINE -accel kvm -cpu host -smp 2 -m 256M -nographic -nodefaults \
          -serial stdio -no-reboot -kernel /linux/vmlinuz -initrd /linux/initrd -append "$APPEND")"
  fi
done
microvm=""
[ -n "${MICROVM_MACHINE:-}" ] && microvm=", qemu-microvm $(summary microvm)"
echo "linux-boot: strata $(summary strata), $QEMU_LABEL $(summary qemu)$microvm"
[ -s /tmp/runs.ratio ] &&
  echo "linux-boot: strata / $QEMU_LABEL per round: median $(median < /tmp/runs.ratio) (rounds: $(tr '\n' ' ' < /tmp/runs.ratio | sed 's/ $//'))"
[ "$fails" = 0 ] || echo "linux-boot: $fails runs failed"
