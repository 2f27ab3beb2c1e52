# strata — the L2 Linux boot timed under bhyverun and under QEMU (amd64:
# -M pc and -M microvm; arm64: -M virt with the host's GIC; KVM) in the same L1, on the same
# kernel and initramfs (nested.sh --linux). Five alternating runs each;
# prints the median seconds to power-off (ACPI S5 / PSCI SYSTEM_OFF) and
# the largest max RSS. Sourced by tests/nested/init.sh.
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
boot() {  # VMM ARGS...: prints "seconds rss_kb" or "fail"
  t0=$(cut -d' ' -f1 /proc/uptime)
  # A boot that has not powered off after 120 s is stopped (busybox
  # timeout runs the VMM itself, so time -v still measures it): a failed
  # run, with its last lines, instead of a bench that waits forever.
  time -v timeout -s TERM 120 "$@" </dev/null >/tmp/lout 2>/tmp/lerr
  rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' /tmp/lerr | tail -n 1)
  if [ "$rc" = 0 ] && grep -q "L2-MARKER: linux up" /tmp/lout; then
    echo "$t0 $t1 ${rss:-0}" | awk '{printf "%.2f %d\n", $2 - $1, $3}'
  else
    echo fail
    grep -q "terminated by signal 15" /tmp/lerr && echo "nested:   $1: no power-off after 120 s, stopped" >&2
    { tail -n 3 /tmp/lout; grep -v '^	' /tmp/lerr | head -n 3; } | sed 's/^/nested:   | /' >&2
  fi
}
s_t="" q_t="" m_t="" s_rss=0 q_rss=0 m_rss=0 fails=0
for i in 1 2 3 4 5; do
  r=$(boot /bin/bhyverun -c 2 -m 256M -k /linux/vmlinuz -i /linux/initrd -a "$APPEND")
  if [ "$r" = fail ]; then fails=$((fails + 1)); else
    s_t="$s_t ${r% *}"; [ "${r#* }" -gt "$s_rss" ] && s_rss=${r#* }; fi
  # shellcheck disable=SC2086
  r=$(boot /bin/qemu $QEMU_MACHINE -accel kvm -cpu host -smp 2 -m 256M -nographic -nodefaults \
        -serial stdio -no-reboot -kernel /linux/vmlinuz -initrd /linux/initrd -append "$APPEND")
  if [ "$r" = fail ]; then fails=$((fails + 1)); else
    q_t="$q_t ${r% *}"; [ "${r#* }" -gt "$q_rss" ] && q_rss=${r#* }; fi
  if [ -n "${MICROVM_MACHINE:-}" ]; then
    # shellcheck disable=SC2086
    r=$(boot /bin/qemu $MICROVM_MACHINE -accel kvm -cpu host -smp 2 -m 256M -nographic -nodefaults \
          -serial stdio -no-reboot -kernel /linux/vmlinuz -initrd /linux/initrd -append "$APPEND")
    if [ "$r" = fail ]; then fails=$((fails + 1)); else
      m_t="$m_t ${r% *}"; [ "${r#* }" -gt "$m_rss" ] && m_rss=${r#* }; fi
  fi
done
microvm=""
[ -n "${MICROVM_MACHINE:-}" ] &&
  microvm=", qemu-microvm $(echo $m_t | median) s (runs:$m_t; max RSS $((m_rss / 1024)) MiB)"
echo "linux-boot: strata $(echo $s_t | median) s (runs:$s_t; max RSS $((s_rss / 1024)) MiB), $QEMU_LABEL $(echo $q_t | median) s (runs:$q_t; max RSS $((q_rss / 1024)) MiB)$microvm"
[ "$fails" = 0 ] || echo "linux-boot: $fails runs failed"
