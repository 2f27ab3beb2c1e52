// strata — Intel (VT-x host or Intel-personality guest) CPUID policy.
//
// What an Intel guest must see: the deterministic cache leaf 4 and the
// extended topology leaves 0xB/0x1F describing the configured topology,
// no AMD-only features (SVM, CmpLegacy, TopoExt, AMD perf counters, the
// AMD mirror of CPUID.1:EDX in 0x8000_0001:EDX) and no extended leaves past
// 0x8000_0008, the last one Intel defines (SDM Vol. 2A CPUID, Table 3-8).
#pragma once

#include "arch/amd64/cpuid.h"

namespace strata::amd64::vmx {

// VMCALL, SDM Vol. 2C "VMCALL": 0f 01 c1.
inline constexpr uint8_t kVmcallInsn[] = {0x0f, 0x01, 0xc1};

// Largest extended leaf an Intel CPU reports (SDM Vol. 2A CPUID, Table 3-8).
inline constexpr uint32_t kIntelMaxExtLeaf = 0x80000008;

class IntelCpuidPolicy final : public VendorPolicy {
 public:
  CpuVendor vendor() const override { return CpuVendor::kIntel; }
  std::string_view vendor_string() const override { return "GenuineIntel"; }
  std::span<const uint8_t> hypercall_insn() const override {
    return kVmcallInsn;
  }
  std::span<const uint32_t> vendor_msrs() const override;
  void Apply(std::vector<CpuidEntry>& leaves, const CpuidOptions& opts,
             uint32_t vcpu_index) const override;
};

}  // namespace strata::amd64::vmx
