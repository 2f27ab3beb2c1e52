// strata — arm64 vCPU register file as seen through the API.
#pragma once

#include <cstdint>

namespace strata::md {

// The EL1 state beyond the core registers that a VMM saves and restores
// (ARM ARM D1.2 and the EL1 system registers of D17).
struct VcpuState {
  uint64_t sp_el1 = 0, elr_el1 = 0, spsr_el1 = 0;
  uint64_t sctlr_el1 = 0, tcr_el1 = 0, ttbr0_el1 = 0, ttbr1_el1 = 0;
  uint64_t mair_el1 = 0, vbar_el1 = 0, esr_el1 = 0, far_el1 = 0;
  uint64_t cpacr_el1 = 0, contextidr_el1 = 0, tpidr_el1 = 0;
  uint64_t cntkctl_el1 = 0, mpidr_el1 = 0;
};

// FP/SIMD state: V0–V31, FPSR, FPCR.
struct FpuState {
  uint64_t v[32][2] = {};
  uint32_t fpsr = 0;
  uint32_t fpcr = 0;
};

// PSTATE values (ARM ARM C5.2.18 SPSR_EL1 layout).
inline constexpr uint64_t kPstateModeEl1h = 0x5;
inline constexpr uint64_t kPstateDaifMask = 0xfull << 6;

}  // namespace strata::md
