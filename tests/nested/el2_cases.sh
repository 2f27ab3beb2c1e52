# strata — what the nested EL2 testbeds run in their L1 (Debian's arm64
# cloud kernel at EL2 under QEMU's virt machine): first that the L1 is the
# testbed it claims to be, then strata's arm64 guests under that KVM (nVHE
# on -cpu cortex-a57, VHE on -cpu max, both with a GICv3; nVHE on a GICv2
# in el2-gicv2). Sourced by tests/nested/init.sh; see case_.
mode=$(sed -n 's/.*strata\.mode=\([^ ]*\).*/\1/p' /proc/cmdline)
dmesg > /tmp/dmesg
check() {  # NAME PATTERN WHAT
  if grep -qE -- "$2" /tmp/dmesg; then
    echo "nested: PASS $1"
  else
    echo "nested: FAIL $1 (no kernel line matching '$2': $3)"
  fi
}
case $mode in
  # cortex-a57 has no VHE: KVM runs its hypervisor at EL2 apart from the
  # host kernel (nVHE), as on ThunderX (CN88xx).
  el2-nvhe|el2-gicv2) check hyp-mode-nvhe 'kvm \[[0-9]+\]: Hyp mode initialized successfully' \
              "KVM in nVHE mode" ;;
  # -cpu max has VHE: the host kernel runs at EL2, as on ThunderX2 (CN99xx).
  el2-vhe) check hyp-mode-vhe 'kvm \[[0-9]+\]: VHE mode initialized successfully' \
             "KVM in VHE mode" ;;
  *) echo "nested: FAIL mode (unknown strata.mode '$mode')" ;;
esac
if [ "$mode" = el2-gicv2 ]; then
  # The host GIC is a GICv2 with the virtualization extensions: its node
  # has the four regions GICD, GICC, GICH and GICV (16 bytes each), which
  # KVM needs for a vGICv2 (the profile cases show it offers only that).
  gicv2_node=""
  for d in /sys/firmware/devicetree/base/intc*; do
    grep -q "arm,cortex-a15-gic" "$d/compatible" 2>/dev/null && gicv2_node=$d
  done
  if [ -n "$gicv2_node" ] && [ "$(wc -c < "$gicv2_node/reg")" -ge 64 ] &&
     ! grep -q "GIC system register CPU interface" /tmp/dmesg; then
    echo "nested: PASS host-gicv2 (${gicv2_node##*/}: GICD, GICC, GICH, GICV)"
  else
    echo "nested: FAIL host-gicv2 (no arm,cortex-a15-gic node with GICH/GICV regions)"
  fi
else
  # QEMU's GICv3 has no GICv2 compatibility interface: KVM offers vGICv3
  # only, like ThunderX's GICv3.
  check vgic-v3 'kvm \[[0-9]+\]: GIC system register CPU interface enabled' \
    "KVM's vGICv3 over the GICv3 system registers"
  check no-gicv2-emulation 'kvm \[[0-9]+\]: (disabling GICv2 emulation|GICv3: no GICV resource entry)' \
    "no GICv2 compatibility in the host GIC"
fi

# case_err NAME STATUS TEXT ARGS...: as case_, but TEXT must be in stderr
# (the VMM's own diagnostic).
case_err() {
  name=$1 want=$2 text=$3
  shift 3
  run_watched "$name" /bin/bhyverun "$@"
  if [ "$rc" = "$want" ] && grep -qF -- "$text" /tmp/err; then
    echo "nested: PASS $name"
  else
    echo "nested: FAIL $name (exit $rc, wanted $want and \"$text\" on stderr)"
    tail -n 4 /tmp/out | sed 's/^/nested:   out| /'
    tail -n 6 /tmp/err | sed 's/^/nested:   err| /'
  fi
}

G=/guests
# The host profile bhyverun chooses, and why (-l info): QEMU's cortex-a57
# and max are neither ThunderX part, so generic — with KVM's mode seen
# right: nVHE on cortex-a57 (as ThunderX), VHE on max (as ThunderX2).
# A forced profile is checked against the host's capabilities: ThunderX
# (GICv3, no GICv2) runs on either GICv3 L1, ThunderX2 needs VHE and an
# ITS; on the GICv2 host neither runs, and the generic profile takes the
# vGICv2 (no ITS, at most 8 vCPUs).
case $mode in
  el2-nvhe)
    case_err profile 1 "KVM is nVHE" -l info -k $G/hello.flat
    case_err profile-thunderx2-refused 6 "arm64.profile=thunderx2 needs VHE, but KVM is nVHE" \
      -o arm64.profile=thunderx2 -k $G/hello.flat ;;
  el2-vhe)
    case_err profile 1 "KVM is VHE" -l info -k $G/hello.flat
    case_err profile-thunderx2-forced 1 "host profile thunderx2 (forced)" \
      -l info -o arm64.profile=thunderx2 -k $G/hello.flat ;;
  el2-gicv2)
    case_err profile 1 "vGICv2 only" -l info -k $G/hello.flat
    case_err profile-thunderx-refused 6 "arm64.profile=thunderx needs a vGICv3" \
      -o arm64.profile=thunderx -k $G/hello.flat
    case_err gicv3-refused 6 "vGICv3 is not supported" -o arm64.gic_version=3 -k $G/hello.flat
    case_err its-refused 6 "no vGICv3 ITS" -o arm64.its=true -k $G/hello.flat
    case_err gicv2-nine-vcpus 8 "limit of 8 vCPUs" -c 9 -k $G/hello.flat ;;
esac
case_err profile-generic 1 "host profile generic" -l info -k $G/hello.flat
if [ "$mode" != el2-gicv2 ]; then
  case_err profile-thunderx-forced 1 "host profile thunderx (forced)" -l info \
    -o arm64.profile=thunderx -k $G/hello.flat
  # The thunderx profile refuses GICv2 whatever the host has.
  case_err profile-thunderx-gicv2 6 "arm64.gic_version" -o arm64.profile=thunderx \
    -o arm64.gic_version=2 -k $G/hello.flat
fi
# The built-in demo guest: PSCI CPU_ON for every vCPU, SYSTEM_OFF (status 0).
case_ demo 0 "vcpus: 4 of 4 checked in" -c 4
# Exit status through kvm-unit-tests' "EXIT: STATUS=1" line (code 0).
case_ hello 1 "hello: done" -k $G/hello.flat -a "one two"
case_ hello-bootargs 1 "bootargs: one two" -k $G/hello.flat -a "one two"
case_ poweroff 0 "poweroff: calling PSCI SYSTEM_OFF" -k $G/poweroff.flat
case_ reset 2 "reset: calling PSCI SYSTEM_RESET" -k $G/reset.flat
case_ smp8 1 "vcpus: 8 of 8 checked in" -c 8 -k $G/smp.flat
# The virtual timer's PPI and SGIs through the vGIC the host has (the
# guests find it in the device tree); GICv2's limit is 8 CPUs.
gic=3
[ "$mode" = el2-gicv2 ] && gic=2
case_ timer 1 "PASS: GICv$gic distributor" -k $G/timer.flat
case_ sgi4 1 "sgi: 4 of 4 cpus received their SGI" -c 4 -k $G/sgi.flat
case_ sgi8 1 "sgi: 8 of 8 cpus received their SGI" -c 8 -k $G/sgi.flat
case_ mmio 1 "mmio: read 0xa000000 -> 0x0" -k $G/mmio.flat
case_ psci 1 "SUMMARY:" -c 2 -k $G/psci.flat
# A load pair to device space: no syndrome for KVM to decode; the VM stops
# with strata's diagnostic and a register dump (status 6).
case_err nisv 6 "has no valid syndrome" -k $G/nisv.flat
# A guest's unclaimed MMIO read is a VM-stopping error when asked for.
case_err unclaimed-fatal 6 "0xa000000" -o bus.unclaimed_fatal=true -k $G/mmio.flat
# Without the exit line the guest's SYSTEM_OFF after "EXIT:" is a clean 0.
case_ hello-no-exit-line 0 "EXIT: STATUS=1" -o uart0.exit_line=false -k $G/hello.flat
# A GICv3 L1 has no GICv2 compatibility (as ThunderX): v2 is refused.
[ "$mode" != el2-gicv2 ] &&
  case_err gicv2-refused 6 "vGICv2" -o arm64.gic_version=2 -k $G/hello.flat
# The device tree the guest gets (the GIC the host profile chose).
compat=arm,gic-v3
[ "$mode" = el2-gicv2 ] && compat=arm,cortex-a15-gic
/bin/bhyverun --dump-dtb /tmp/virt.dtb -c 2 </dev/null >/tmp/out 2>/tmp/err
rc=$?
if [ "$rc" = 0 ] && grep -q "linux,dummy-virt" /tmp/virt.dtb && grep -q "$compat" /tmp/virt.dtb; then
  echo "nested: PASS dump-dtb ($(wc -c < /tmp/virt.dtb) bytes)"
else
  echo "nested: FAIL dump-dtb (exit $rc, or no linux,dummy-virt and $compat)"
  tail -n 4 /tmp/err | sed 's/^/nested:   err| /'
fi
# Snapshots (bhyverun --save-on-signal / --restore): migrate.flat sets up
# memory, system and debug registers, GIC configuration and a ticking
# virtual timer, waits for a key at its migration point; migrate_run
# (init.sh) saves it on SIGUSR2 in one bhyverun and restores it in another,
# which gets the key; the restored guest checks that everything survived.
migrate_case() {  # NAME ARGS...
  name=$1
  shift
  t0=$(cut -d' ' -f1 /proc/uptime)
  migrate_run /tmp/out /tmp/err 300 /bin/bhyverun "$@"
  rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  if [ "$rc" = 1 ] && [ "$MIGRATIONS" = 1 ] && grep -q "migrate: all state survived" /tmp/out &&
     ! grep -q '^FAIL:' /tmp/out && ! grep -q . /tmp/err; then
    echo "nested: PASS $name ($MIGRATIONS migration, $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s, snapshot $(wc -c < /tmp/mig.prev) bytes)"
  else
    echo "nested: FAIL $name (exit $rc after $MIGRATIONS migrations, wanted 1 after 1)"
    grep -E '^FAIL' /tmp/out | head -n 4 | sed 's/^/nested:   out| /'
    tail -n 4 /tmp/out | sed 's/^/nested:   out| /'
    tail -n 4 /tmp/err | sed 's/^/nested:   err| /'
  fi
}
migrate_case snapshot-migrate -k $G/migrate.flat
# Two vCPUs: the secondary is still powered off (its MP state is saved).
migrate_case snapshot-migrate-smp2 -c 2 -k $G/migrate.flat
# Bad snapshot files: a clear error and status 8 (bad input), never a crash.
head -c 3000 /tmp/mig.prev > /tmp/snap.cut
case_err snapshot-truncated 8 "truncated" --restore /tmp/snap.cut
cp /tmp/mig.prev /tmp/snap.bad
printf 'Z' | dd of=/tmp/snap.bad bs=1 seek=20000 conv=notrunc 2>/dev/null
case_err snapshot-corrupt 8 "fails its checksum" --restore /tmp/snap.bad
case_err snapshot-not-a-snapshot 8 "not a strata snapshot" --restore $G/hello.flat
case_err snapshot-missing 8 "No such file" --restore /tmp/no-such-snapshot
case_err snapshot-restore-options 8 "--restore takes the machine" --restore /tmp/mig.prev -c 2
# The same snapshot restores again (the file is not consumed).
echo | timeout 300 /bin/bhyverun --restore /tmp/mig.prev >/tmp/out 2>/tmp/err
rc=$?
if [ "$rc" = 1 ] && grep -q "migrate: all state survived" /tmp/out; then
  echo "nested: PASS snapshot-restore-again"
else
  echo "nested: FAIL snapshot-restore-again (exit $rc)"
  tail -n 4 /tmp/out | sed 's/^/nested:   out| /'
  tail -n 4 /tmp/err | sed 's/^/nested:   err| /'
fi
# A snapshot bhyverun cannot take whole is refused, naming why, and the VM
# goes on: with MTE (VHE L1: its KVM offers MTE) the allocation tags would
# not be saved. SIGTERM then stops the VM (status 6).
if [ "$mode" = el2-vhe ]; then
  rm -f /tmp/mte.snap
  /bin/bhyverun --save-on-signal /tmp/mte.snap -o arm64.mte=true -k $G/migrate.flat \
    </dev/null >/tmp/out 2>/tmp/err &
  pid=$!
  n=0
  while ! grep -q "Now migrate the VM" /tmp/out && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
  kill -USR2 $pid
  n=0
  while ! grep -q "not supported" /tmp/err && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  sleep 0.5
  alive=no
  kill -0 $pid 2>/dev/null && alive=yes
  kill -TERM $pid
  wait $pid
  rc=$?
  if [ "$alive" = yes ] && [ "$rc" = 6 ] && [ ! -e /tmp/mte.snap ] && [ ! -e /tmp/mte.snap.tmp ] &&
     grep -q "arm64.mte=true are not supported" /tmp/err; then
    echo "nested: PASS snapshot-mte-refused"
  else
    echo "nested: FAIL snapshot-mte-refused (exit $rc, running after the refusal: $alive)"
    tail -n 4 /tmp/out | sed 's/^/nested:   out| /'
    tail -n 4 /tmp/err | sed 's/^/nested:   err| /'
  fi
fi
# Linux (Debian's arm64 cloud kernel, an Image) as an L2: the generated
# device tree's CPUs and memory, the PL011 console (SPI 1 through the
# vGIC), PSCI SYSTEM_OFF from poweroff -f ending bhyverun with status 0.
case_ linux-boot 0 "L2-MARKER: linux up, cpus 2," -c 2 -m 256M -k /linux/vmlinuz -i /linux/initrd -a "console=ttyAMA0 quiet panic=-1"
# The MMIO-exit benchmark: the same guest loop under a raw KVM_RUN loop and
# under strata, alternating (figures, not assertions: the case checks that
# it runs; the lines go to the log).
if timeout 300 /bin/mmio_exit_bench --exits 4000 --trials 5 >/tmp/bench 2>&1 &&
   grep -q "ratio strata/raw" /tmp/bench; then
  echo "nested: PASS mmio-exit-bench"
else
  echo "nested: FAIL mmio-exit-bench"
fi
grep -E "raw KVM_RUN|strata  |ratio|user-space|SIGNAL_MASK" /tmp/bench | sed 's/^/nested: bench| /'
