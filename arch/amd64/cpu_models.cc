#include "arch/amd64/cpu_models.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace strata::amd64 {

namespace {

// CPUID.1:EDX (SDM Vol. 2A Table 3-11).
constexpr uint32_t kFpu = 1u << 0, kVme = 1u << 1, kDe = 1u << 2,
                   kPse = 1u << 3, kTsc = 1u << 4, kMsr = 1u << 5,
                   kPae = 1u << 6, kMce = 1u << 7, kCx8 = 1u << 8,
                   kApic = 1u << 9, kSep = 1u << 11, kMtrr = 1u << 12,
                   kPge = 1u << 13, kMca = 1u << 14, kCmov = 1u << 15,
                   kPat = 1u << 16, kPse36 = 1u << 17, kClflush = 1u << 19,
                   kMmx = 1u << 23, kFxsr = 1u << 24, kSse = 1u << 25,
                   kSse2 = 1u << 26;
// Every model here has this Pentium Pro-and-later set (QEMU spells it out
// per model).
constexpr uint32_t kP6Edx = kFpu | kVme | kDe | kPse | kTsc | kMsr | kPae |
                            kMce | kCx8 | kApic | kSep | kMtrr | kPge | kMca |
                            kCmov | kPat | kPse36 | kClflush | kMmx | kFxsr |
                            kSse | kSse2;
static_assert(kP6Edx == 0x078bfbff);

// CPUID.1:ECX (SDM Vol. 2A Table 3-10).
constexpr uint32_t kSse3 = 1u << 0, kPclmulqdq = 1u << 1, kSsse3 = 1u << 9,
                   kCx16 = 1u << 13, kSse41 = 1u << 19, kSse42 = 1u << 20,
                   kX2apic = 1u << 21, kPopcnt = 1u << 23,
                   kTscDeadline = 1u << 24, kAes = 1u << 25,
                   kXsave = 1u << 26, kAvx = 1u << 28, kF16c = 1u << 29,
                   kRdrand = 1u << 30;
// CPUID.6:EAX: APIC timer always running (ARAT).
constexpr uint32_t kArat = 1u << 2;
// CPUID.(EAX=7,ECX=0):EBX.
constexpr uint32_t kFsgsbase = 1u << 0, kSmep = 1u << 7, kErms = 1u << 9;
// CPUID.(EAX=0DH,ECX=1):EAX.
constexpr uint32_t kXsaveopt = 1u << 0;
// CPUID.8000_0001:EDX and ECX (AMD APM Vol. 3, Appendix E).
constexpr uint32_t kSyscall = 1u << 11, kNx = 1u << 20, kRdtscp = 1u << 27,
                   kLm = 1u << 29;
constexpr uint32_t kLahfLm = 1u << 0, kSvm = 1u << 2;

constexpr uint32_t kSandyBridgeEcx = kAvx | kXsave | kAes | kTscDeadline |
                                     kPopcnt | kX2apic | kSse42 | kSse41 |
                                     kCx16 | kSsse3 | kPclmulqdq | kSse3;

constexpr CpuModel kModels[] = {
    {.name = "Opteron_G1",
     .vendor = CpuVendor::kAmd,
     .family = 15, .model = 6, .stepping = 1,
     .level = 5, .xlevel = 0x80000008,
     .leaf1_edx = kP6Edx, .leaf1_ecx = kSse3,
     .leaf6_eax = 0, .leaf7_ebx = 0, .leaf7_ecx = 0, .leaf7_edx = 0,
     .xsave_eax = 0,
     .ext_edx = kLm | kNx | kSyscall, .ext_ecx = 0,
     .model_id = "AMD Opteron 240 (Gen 1 Class Opteron)"},
    {.name = "Opteron_G2",
     .vendor = CpuVendor::kAmd,
     .family = 15, .model = 6, .stepping = 1,
     .level = 5, .xlevel = 0x80000008,
     .leaf1_edx = kP6Edx, .leaf1_ecx = kCx16 | kSse3,
     .leaf6_eax = 0, .leaf7_ebx = 0, .leaf7_ecx = 0, .leaf7_edx = 0,
     .xsave_eax = 0,
     .ext_edx = kLm | kNx | kSyscall, .ext_ecx = kSvm | kLahfLm,
     .model_id = "AMD Opteron 22xx (Gen 2 Class Opteron)"},
    {.name = "SandyBridge",
     .vendor = CpuVendor::kIntel,
     .family = 6, .model = 42, .stepping = 1,
     .level = 0xd, .xlevel = 0x80000008,
     .leaf1_edx = kP6Edx, .leaf1_ecx = kSandyBridgeEcx,
     .leaf6_eax = kArat, .leaf7_ebx = 0, .leaf7_ecx = 0, .leaf7_edx = 0,
     .xsave_eax = kXsaveopt,
     .ext_edx = kLm | kRdtscp | kNx | kSyscall, .ext_ecx = kLahfLm,
     .model_id = "Intel Xeon E312xx (Sandy Bridge)"},
    {.name = "IvyBridge",
     .vendor = CpuVendor::kIntel,
     .family = 6, .model = 58, .stepping = 9,
     .level = 0xd, .xlevel = 0x80000008,
     .leaf1_edx = kP6Edx, .leaf1_ecx = kSandyBridgeEcx | kF16c | kRdrand,
     .leaf6_eax = kArat, .leaf7_ebx = kFsgsbase | kSmep | kErms,
     .leaf7_ecx = 0, .leaf7_edx = 0,
     .xsave_eax = kXsaveopt,
     .ext_edx = kLm | kRdtscp | kNx | kSyscall, .ext_ecx = kLahfLm,
     .model_id = "Intel Xeon E3-12xx v2 (Ivy Bridge)"},
};

// XSAVE state components (SDM Vol. 1 §13.1): x87 and SSE always, AVX's
// upper halves with AVX.
constexpr uint32_t kXcr0X87Sse = 0x3;
constexpr uint32_t kXcr0Avx = 0x4;
constexpr uint32_t kXsaveLegacyAndHeader = 512 + 64;

constexpr uint32_t kLeafThermal = 0x6;
constexpr uint32_t kLeafPmu = 0xa;
constexpr uint32_t kLeafBrandFirst = 0x80000002;
constexpr uint32_t kLeafBrandLast = 0x80000004;
constexpr uint32_t kLeafPowerMgmt = 0x80000007;
constexpr uint32_t kLeafCentaurBase = 0xc0000000;
constexpr size_t kBrandBytes = 48;

// Masks `reg` with the model's `want`; appends the bits KVM lacked.
void Mask(uint32_t& reg, uint32_t want, std::string_view where,
          std::vector<std::string>& missing) {
  for (uint32_t bits = want & ~reg; bits != 0; bits &= bits - 1) {
    missing.push_back(fmt::format("{}[{}]", where, std::countr_zero(bits)));
  }
  reg &= want;
}

}  // namespace

const CpuModel* FindCpuModel(std::string_view name) {
  for (const CpuModel& m : kModels) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::vector<std::string_view> CpuModelNames() {
  std::vector<std::string_view> out;
  for (const CpuModel& m : kModels) out.push_back(m.name);
  return out;
}

uint32_t CpuSignature(uint32_t family, uint32_t model, uint32_t stepping) {
  // Family 0xF carries the rest in ExtendedFamily; models past 0xF put the
  // high nibble in ExtendedModel (which family 6 and 0xF parts use).
  const uint32_t base_family = std::min(family, 0xfu);
  const uint32_t ext_family = family > 0xf ? family - 0xf : 0;
  return (stepping & 0xf) | ((model & 0xf) << 4) | (base_family << 8) |
         (((model >> 4) & 0xf) << 16) | ((ext_family & 0xff) << 20);
}

std::vector<std::string> ApplyCpuModel(std::vector<CpuidEntry>& leaves,
                                       const CpuModel& m) {
  std::vector<std::string> missing;
  const bool svm = [&] {
    const CpuidEntry* ext = FindLeaf(leaves, kLeafExtFeatures);
    return (m.ext_ecx & kSvm) && ext != nullptr && (ext->ecx & kSvm);
  }();
  // The extended level: the model's, or the SVM leaf's when the model has
  // SVM and KVM offers it (QEMU raises xlevel the same way).
  const uint32_t xlevel = svm ? std::max(m.xlevel, kLeafAmdSvm) : m.xlevel;
  std::erase_if(leaves, [&](const CpuidEntry& e) {
    if (e.function > m.level && e.function < kLeafHypervisorBase) return true;
    if (e.function > xlevel && e.function >= kLeafExtMax) return true;
    if (e.function >= kLeafCentaurBase) return true;
    if (e.function == kLeafPmu) return true;  // no vPMU
    if (e.function == kLeafStructuredFeatures && e.index != 0) return true;
    return false;
  });
  const bool avx = (m.leaf1_ecx & kAvx) != 0;
  const uint32_t xcr0 = kXcr0X87Sse | (avx ? kXcr0Avx : 0);
  if (!(m.leaf1_ecx & kXsave)) EraseLeaf(leaves, kLeafXsave);
  // XSAVE components the model does not have go with their subleaves.
  std::erase_if(leaves, [&](const CpuidEntry& e) {
    return e.function == kLeafXsave && e.index >= 2 && e.index < 32 &&
           !(xcr0 & (1u << e.index));
  });
  uint32_t xsave_size = kXsaveLegacyAndHeader;
  for (const CpuidEntry& e : leaves) {
    if (e.function == kLeafXsave && e.index >= 2 && e.index < 32) {
      xsave_size = std::max(xsave_size, e.ebx + e.eax);  // offset + size
    }
  }

  for (CpuidEntry& e : leaves) {
    switch (e.function) {
      case kLeafVendor:
        e.eax = m.level;
        break;
      case kLeafFeatures:
        e.eax = CpuSignature(m.family, m.model, m.stepping);
        Mask(e.edx, m.leaf1_edx, "CPUID.1:EDX", missing);
        // x2APIC and the TSC deadline timer are strata's knobs
        // (x86.x2apic, x86.tsc_deadline; KVM's table leaves the latter
        // out, KVM_CAP_TSC_DEADLINE_TIMER), set after the model.
        Mask(e.ecx, m.leaf1_ecx & ~(kX2apic | kTscDeadline), "CPUID.1:ECX",
             missing);
        break;
      case kLeafThermal:
        Mask(e.eax, m.leaf6_eax, "CPUID.6:EAX", missing);
        e.ebx = e.ecx = e.edx = 0;
        break;
      case kLeafStructuredFeatures:
        e.eax = 0;  // no subleaves past 0
        Mask(e.ebx, m.leaf7_ebx, "CPUID.7.0:EBX", missing);
        Mask(e.ecx, m.leaf7_ecx, "CPUID.7.0:ECX", missing);
        Mask(e.edx, m.leaf7_edx, "CPUID.7.0:EDX", missing);
        break;
      case kLeafXsave:
        if (e.index == 0) {
          e.eax &= xcr0;
          e.edx = 0;
          e.ebx = kXsaveLegacyAndHeader;  // KVM recomputes it from XCR0
          e.ecx = xsave_size;
        } else if (e.index == 1) {
          Mask(e.eax, m.xsave_eax, "CPUID.0DH.1:EAX", missing);
          e.ebx = e.ecx = e.edx = 0;  // no supervisor state (XSS)
        }
        break;
      case kLeafExtMax:
        e.eax = xlevel;
        break;
      case kLeafExtFeatures:
        Mask(e.edx, m.ext_edx, "CPUID.8000_0001:EDX", missing);
        Mask(e.ecx, m.ext_ecx, "CPUID.8000_0001:ECX", missing);
        break;
      case kLeafPowerMgmt:
        e.edx = 0;  // no invariant TSC or other power features
        break;
      case kLeafAddressSizes:
        e.ebx = 0;  // no speculation-control or other extended features
        break;
      default:
        break;
    }
  }
  SetBrandString(leaves, m.model_id);
  return missing;
}

void SetBrandString(std::vector<CpuidEntry>& leaves, std::string_view brand) {
  char bytes[kBrandBytes] = {};
  std::memcpy(bytes, brand.data(), std::min(brand.size(), kBrandBytes - 1));
  for (uint32_t f = kLeafBrandFirst; f <= kLeafBrandLast; ++f) {
    const char* p = bytes + (f - kLeafBrandFirst) * 16;
    CpuidEntry e;
    e.function = f;
    std::memcpy(&e.eax, p, 4);
    std::memcpy(&e.ebx, p + 4, 4);
    std::memcpy(&e.ecx, p + 8, 4);
    std::memcpy(&e.edx, p + 12, 4);
    SetLeaf(leaves, e);
  }
  RaiseMaxLeaf(leaves, kLeafExtMax, kLeafBrandLast);
}

std::string BrandString(std::span<const CpuidEntry> leaves) {
  std::string out;
  for (uint32_t f = kLeafBrandFirst; f <= kLeafBrandLast; ++f) {
    const CpuidEntry* e = FindLeaf(leaves, f);
    if (e == nullptr) return "";
    char p[16];
    std::memcpy(p, &e->eax, 4);
    std::memcpy(p + 4, &e->ebx, 4);
    std::memcpy(p + 8, &e->ecx, 4);
    std::memcpy(p + 12, &e->edx, 4);
    out.append(p, 16);
  }
  out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
  return out;
}

}  // namespace strata::amd64
