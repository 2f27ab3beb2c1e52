// strata — arm64 machine-dependent half of vmmapi.h.
//
// Same names as arch/amd64/include/machine/vmmapi_machdep.h, ARMv8 values.
// The KVM backend for arm64 (EL2 via KVM, nVHE and VHE hosts) builds on
// these names; until it lands, the test command cross-compiles the MI core
// against this header set so the MI/MD split stays honest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "machine/vcpu_state.h"

namespace strata::md {

inline constexpr std::string_view kArchName = "arm64";

// Core registers (ARM ARM B1.2.1): X0–X30, SP (SP_EL0 or SP_ELx per
// PSTATE.SP), PC, PSTATE; plus the EL1 banked registers KVM keeps with them.
enum class Reg : uint16_t {
  kX0, kX1, kX2, kX3, kX4, kX5, kX6, kX7, kX8, kX9, kX10, kX11, kX12, kX13,
  kX14, kX15, kX16, kX17, kX18, kX19, kX20, kX21, kX22, kX23, kX24, kX25,
  kX26, kX27, kX28, kX29, kX30,
  kSp,       // SP_EL0
  kPc,
  kPstate,
  kSpEl1,
  kElrEl1,
  kSpsrEl1,
  kCount,
};

std::string_view RegName(Reg r);

inline constexpr Reg kRegPc = Reg::kPc;
inline constexpr Reg kRegSp = Reg::kSp;

// "System registers" are AArch64 system registers, named by their
// (op0, op1, CRn, CRm, op2) encoding as KVM's ARM64_SYS_REG() packs it.
constexpr uint64_t SysRegId(uint32_t op0, uint32_t op1, uint32_t crn,
                            uint32_t crm, uint32_t op2) {
  return (uint64_t{op0} << 14) | (uint64_t{op1} << 11) | (uint64_t{crn} << 7) |
         (uint64_t{crm} << 3) | op2;
}
// ARM ARM D17 (AArch64 system register descriptions).
inline constexpr uint64_t kSysRegMpidrEl1 = SysRegId(3, 0, 0, 0, 5);
inline constexpr uint64_t kSysRegSctlrEl1 = SysRegId(3, 0, 1, 0, 0);
inline constexpr uint64_t kSysRegCpacrEl1 = SysRegId(3, 0, 1, 0, 2);
inline constexpr uint64_t kSysRegTtbr0El1 = SysRegId(3, 0, 2, 0, 0);
inline constexpr uint64_t kSysRegTtbr1El1 = SysRegId(3, 0, 2, 0, 1);
inline constexpr uint64_t kSysRegTcrEl1 = SysRegId(3, 0, 2, 0, 2);
inline constexpr uint64_t kSysRegEsrEl1 = SysRegId(3, 0, 5, 2, 0);
inline constexpr uint64_t kSysRegFarEl1 = SysRegId(3, 0, 6, 0, 0);
inline constexpr uint64_t kSysRegMairEl1 = SysRegId(3, 0, 10, 2, 0);
inline constexpr uint64_t kSysRegVbarEl1 = SysRegId(3, 0, 12, 0, 0);
inline constexpr uint64_t kSysRegContextidrEl1 = SysRegId(3, 0, 13, 0, 1);
inline constexpr uint64_t kSysRegTpidrEl1 = SysRegId(3, 0, 13, 0, 4);
inline constexpr uint64_t kSysRegCntkctlEl1 = SysRegId(3, 0, 14, 1, 0);
inline constexpr uint64_t kSysRegCntvCtlEl0 = SysRegId(3, 3, 14, 3, 1);
inline constexpr uint64_t kSysRegCntvCvalEl0 = SysRegId(3, 3, 14, 3, 2);

// Machine options fixed at VM creation; config keys under `arm64.`.
// The platform fills in the interrupt controller's frames (its memory map);
// the backend creates the vGIC there.
struct MachineOptions {
  // auto, thunderx, thunderx2, generic (arch/arm64/profile.h): what the
  // "auto" values below resolve to; the backend resolves them at VM
  // creation (Vm::machine_options() has the result).
  std::string profile = "auto";
  uint32_t gic_version = 0;  // 0 = the profile's; else 2 or 3
  std::optional<bool> its;   // GICv3 ITS; unset = the profile's
  uint32_t ipa_bits = 0;     // 0 = host default (40)
  bool pmu = true;           // PMUv3 for the guest if the host has one
  bool psci_0_2 = true;      // in-kernel PSCI 0.2+ (CPU_ON/OFF, SYSTEM_OFF)
  bool mte = false;          // the Memory Tagging Extension (KVM_CAP_ARM_MTE)
  uint32_t gic_spis = 256;   // SPIs (INTIDs 32 .. 32 + gic_spis - 1)
  uint64_t gic_dist_base = 0x08000000;    // GICD (64 KiB)
  uint64_t gic_redist_base = 0x080a0000;  // v3: GICR frames, 128 KiB a vCPU
  uint64_t gic_redist_size = 0x00f60000;  // v3: room for 123 vCPUs
  uint64_t gic_cpu_base = 0x08010000;     // v2: GICC (8 KiB)
  uint64_t gic_its_base = 0x08080000;     // v3: ITS (128 KiB), if `its`
  uint32_t pmu_ppi = 23;                  // PMU overflow interrupt (INTID)
};

// A GICv3 redistributor: RD_base and SGI_base frames (GICv3 spec §12.10).
inline constexpr uint64_t kGicRedistStride = 0x20000;
inline constexpr uint64_t kGicDistSize = 0x10000;
inline constexpr uint64_t kGicItsSize = 0x20000;
inline constexpr uint64_t kGicCpuSize = 0x2000;

enum class ArchExitReason : uint16_t {
  kNone,
  kHypercall,      // HVC/SMC forwarded to user space (KVM_EXIT_HYPERCALL)
  kDebug,          // breakpoint / single step for the debugger
  kDataAbortNoSyndrome,  // KVM_EXIT_ARM_NISV: an MMIO access KVM cannot
                         // decode (ESR_EL2.ISV = 0, e.g. LDP or writeback)
  kCount,
};

std::string_view ArchExitName(ArchExitReason r);

struct ArchExit {
  ArchExitReason reason = ArchExitReason::kNone;
  uint64_t hypercall_nr = 0;        // function id (x0)
  uint64_t hypercall_args[6] = {};
  uint64_t* hypercall_ret = nullptr;
  uint64_t debug_pc = 0;
  uint32_t debug_esr = 0;           // ESR_EL2 syndrome
  uint64_t nisv_esr_iss = 0;        // kDataAbortNoSyndrome: ESR_EL2.ISS
  uint64_t nisv_fault_ipa = 0;      // ... and the faulting IPA
};

}  // namespace strata::md
