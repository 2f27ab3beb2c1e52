// strata — AMD (SVM host or AMD-personality guest) CPUID policy.
//
// What an AMD guest must see: the legacy multi-core description
// (CPUID.8000_0001:ECX CmpLegacy, CPUID.8000_0008:ECX NC/ApicIdCoreIdSize),
// the TopoExt leaves 0x8000_001E (and 0x8000_001D sharing counts) when
// TopoExt is offered, leaf 0xB (AMD APM Vol. 3 Appendix E, Fn0000_000B), the
// AMD mirror of CPUID.1:EDX in 0x8000_0001:EDX, and no Intel-only leaves or
// bits (VMX, SMX, leaf 4, leaf 0x1F).
#pragma once

#include "arch/amd64/cpuid.h"

namespace strata::amd64::svm {

// VMMCALL, AMD APM Vol. 3 "VMMCALL": 0f 01 d9.
inline constexpr uint8_t kVmmcallInsn[] = {0x0f, 0x01, 0xd9};

// AMD model-specific MSRs a guest reads or writes (AMD APM Vol. 2 §15.30,
// BKDG/PPR MSRC001_00xx).
inline constexpr uint32_t kMsrAmdSyscfg = 0xc0010010;
inline constexpr uint32_t kMsrAmdHwcr = 0xc0010015;
inline constexpr uint32_t kMsrAmdVmCr = 0xc0010114;
inline constexpr uint32_t kMsrAmdVmHsavePa = 0xc0010117;

class AmdCpuidPolicy final : public VendorPolicy {
 public:
  CpuVendor vendor() const override { return CpuVendor::kAmd; }
  std::string_view vendor_string() const override { return "AuthenticAMD"; }
  std::span<const uint8_t> hypercall_insn() const override {
    return kVmmcallInsn;
  }
  std::span<const uint32_t> vendor_msrs() const override;
  void Apply(std::vector<CpuidEntry>& leaves, const CpuidOptions& opts,
             uint32_t vcpu_index) const override;
};

}  // namespace strata::amd64::svm
