// strata — probing an arm64 host's KVM for the facts ChooseProfile needs
// (arch/arm64/profile.h). arm64 builds only; run once per process, before
// the VM is created.
//
// What it reads, and how:
//   midr            /sys/devices/system/cpu/cpu0/regs/identification/
//                   midr_el1 (Linux 4.7+); if that cannot be read, the
//                   scratch vCPU's MIDR_EL1 (KVM shows the host's).
//   caps            KVM_CHECK_EXTENSION on the /dev/kvm fd:
//                   KVM_CAP_ARM_VM_IPA_SIZE (its value is the largest IPA
//                   size; 0 when absent), KVM_CAP_ARM_PMU_V3,
//                   KVM_CAP_ARM_PSCI_0_2, KVM_CAP_ARM_NISV_TO_USER.
//   vGIC types      a scratch VM (KVM_CREATE_VM, default type: 40-bit IPA)
//                   and KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST for
//                   KVM_DEV_TYPE_ARM_VGIC_V2, _V3 and _ITS: the test flag
//                   asks whether KVM could create one, creating nothing.
//   id_aa64mmfr1    a scratch vCPU 0 of that VM: KVM_ARM_PREFERRED_TARGET,
//                   KVM_ARM_VCPU_INIT, then KVM_GET_ONE_REG of
//                   ARM64_SYS_REG(3, 0, 0, 7, 1). Left unset if any step
//                   fails (VHE may then be unknown).
//   kvm_arm_mode    kvm-arm.mode= from /proc/cmdline, if given.
//   vhe             set to false when the command line forces nVHE —
//                   kvm-arm.mode=nvhe or =protected, or the idreg override
//                   id_aa64mmfr1.vh=0 that kvm-arm.mode=nvhe stands for —
//                   and left unset otherwise, for ResolveVhe to decide from
//                   ID_AA64MMFR1_EL1.VH (bits 11:8).
//
// Why VHE is inferred, and the limits. No interface says which mode KVM
// runs in (the kernel logs "VHE mode initialized" or "Hyp mode
// initialized", but the log may be unreadable or rotated). Linux runs KVM
// in VHE mode exactly when it booted at EL2 on a CPU with VHE and nothing
// forced nVHE; it booted at EL2, or /dev/kvm would not exist; the command
// line shows the forcing. What remains is whether the CPU has VHE, which
// ID_AA64MMFR1_EL1.VH says. We read it as KVM presents it to a vCPU,
// because EL0 cannot read the host's (Linux's EL0 ID register emulation
// hides VH). Limits: a kernel may hide EL2 features from a vCPU that has no
// nested virtualisation, so VH can read 0 on a VHE host — the error is on
// the safe side (a profile that needs VHE falls back to generic, and
// forcing it fails saying VHE is missing); a kernel built without VHE
// support (CONFIG_ARM64_VHE=n, before Linux 5.x made it unconditional) on
// VHE hardware would be reported as VHE; kvm-arm.mode=protected and
// nvhe given by the bootloader through the device tree's chosen/bootargs
// are the same /proc/cmdline. Mixed-CPU systems are judged by cpu0.
//
// Every fd it opens is closed before it returns.
#pragma once

#include "arch/arm64/profile.h"
#include "core/result.h"

namespace strata::arm64 {

// kvm_sys_fd: an open /dev/kvm. Errors: kIo when KVM_CHECK_EXTENSION or
// KVM_CREATE_VM fails, or when neither sysfs nor the scratch vCPU gives
// the MIDR.
Result<HostFacts> ProbeHostFacts(int kvm_sys_fd);

}  // namespace strata::arm64
