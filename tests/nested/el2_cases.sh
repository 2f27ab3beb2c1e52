# strata — what the nested EL2 testbeds check in their L1 (Debian's arm64
# cloud kernel at EL2 under QEMU's virt machine, gic-version=3). Until the
# arm64 KVM backend exists (issue 7) there is no bhyverun to run: the cases
# check that the L1 is the testbed it claims to be. Sourced by
# tests/nested/init.sh.
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
  el2-nvhe) check hyp-mode-nvhe 'kvm \[[0-9]+\]: Hyp mode initialized successfully' \
              "KVM in nVHE mode" ;;
  # -cpu max has VHE: the host kernel runs at EL2, as on ThunderX2 (CN99xx).
  el2-vhe) check hyp-mode-vhe 'kvm \[[0-9]+\]: VHE mode initialized successfully' \
             "KVM in VHE mode" ;;
  *) echo "nested: FAIL mode (unknown strata.mode '$mode')" ;;
esac
# QEMU's GICv3 has no GICv2 compatibility interface: KVM offers vGICv3 only,
# like ThunderX's GICv3.
check vgic-v3 'kvm \[[0-9]+\]: GIC system register CPU interface enabled' \
  "KVM's vGICv3 over the GICv3 system registers"
check no-gicv2-emulation 'kvm \[[0-9]+\]: (disabling GICv2 emulation|GICv3: no GICV resource entry)' \
  "no GICv2 compatibility in the host GIC"
