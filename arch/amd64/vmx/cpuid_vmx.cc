#include "arch/amd64/vmx/cpuid_vmx.h"

#include <algorithm>

#include "machine/vmmapi_machdep.h"

namespace strata::amd64::vmx {

namespace {

// IA32_FEATURE_CONTROL (lock, VMX enables) and IA32_MISC_ENABLE (fast
// strings, MONITOR enable, limit-CPUID) are Intel-only and guest-visible
// state (SDM Vol. 4 Table 2-2).
constexpr uint32_t kIntelMsrs[] = {
    md::kMsrIa32FeatureControl,
    md::kMsrIa32MiscEnable,
};

// CPUID.4 fields (SDM Vol. 2A CPUID, Table 3-8, leaf 04H).
constexpr uint32_t kLeaf4TypeMask = 0x1f;          // EAX[4:0], 0 = no more
constexpr uint32_t kLeaf4LevelShift = 5;           // EAX[7:5]
constexpr uint32_t kLeaf4LevelMask = 0x7;
constexpr uint32_t kLeaf4SharingShift = 14;        // EAX[25:14]
constexpr uint32_t kLeaf4SharingMax = 0xfff;
constexpr uint32_t kLeaf4CoresShift = 26;          // EAX[31:26]
constexpr uint32_t kLeaf4CoresMax = 0x3f;
constexpr uint32_t kLeaf4TopologyMask =
    (kLeaf4SharingMax << kLeaf4SharingShift) | (kLeaf4CoresMax << kLeaf4CoresShift);
// Caches at these levels are private to one core; higher ones are shared by
// the package (the layout every current Intel part uses).
constexpr uint32_t kLastPerCoreCacheLevel = 2;

// AMD-defined CPUID.8000_0001:ECX bits that an Intel CPU reports as 0 and
// whose meaning depends on AMD-only leaves or MSRs.
constexpr uint32_t kAmdOnlyExtEcx = kExtEcxCmpLegacy | kExtEcxSvm |
                                    kExtEcxExtApicSpace | kExtEcxSkinit |
                                    kExtEcxTopoExt | kExtEcxPerfCtrCore |
                                    kExtEcxPerfCtrNb;

// The extended range ends where the Centaur range (0xC000_0000) begins.
constexpr uint32_t kExtRangeLast = 0xbfffffff;

uint32_t MaskFor(uint32_t bits, uint32_t max) {
  return bits >= 32 ? max : std::min<uint32_t>((1u << bits) - 1, max);
}

}  // namespace

std::span<const uint32_t> IntelCpuidPolicy::vendor_msrs() const {
  return kIntelMsrs;
}

void IntelCpuidPolicy::Apply(std::vector<CpuidEntry>& leaves,
                             const CpuidOptions& opts,
                             uint32_t vcpu_index) const {
  const CpuTopology& topo = opts.topo;
  const uint32_t smt_bits = SmtIdBits(topo);
  const uint32_t core_bits = CoreIdBits(topo);
  const uint32_t x2apic_id = ApicIdFor(topo, vcpu_index);

  // Leaf 4: EAX[31:26] = addressable core ids in the package - 1,
  // EAX[25:14] = addressable logical processor ids sharing the cache - 1;
  // both are powers of two minus one because they count APIC-id space.
  for (CpuidEntry& e : leaves) {
    if (e.function != kLeafCacheParams || (e.eax & kLeaf4TypeMask) == 0) continue;
    const uint32_t level = (e.eax >> kLeaf4LevelShift) & kLeaf4LevelMask;
    const uint32_t sharing_bits =
        level <= kLastPerCoreCacheLevel ? smt_bits : smt_bits + core_bits;
    e.eax = (e.eax & ~kLeaf4TopologyMask) |
            (MaskFor(core_bits, kLeaf4CoresMax) << kLeaf4CoresShift) |
            (MaskFor(sharing_bits, kLeaf4SharingMax) << kLeaf4SharingShift);
  }

  // Leaf 0xB is what Linux and kvm-unit-tests use for x2APIC topology; make
  // sure the basic range reaches it. Leaf 0x1F only when KVM offers it.
  WriteExtendedTopology(leaves, kLeafExtTopology, topo, x2apic_id);
  RaiseMaxLeaf(leaves, kLeafVendor, kLeafExtTopology);
  if (FindLeaf(leaves, kLeafV2ExtTopology) != nullptr) {
    WriteExtendedTopology(leaves, kLeafV2ExtTopology, topo, x2apic_id);
  }

  if (CpuidEntry* ext = FindLeaf(leaves, kLeafExtFeatures)) {
    ext->ecx &= ~kAmdOnlyExtEcx;
    ext->edx &= ~kExtEdxAmdAliases;
  }
  // CPUID.8000_0008:ECX is reserved on Intel (AMD's NC/ApicIdCoreIdSize).
  if (CpuidEntry* sizes = FindLeaf(leaves, kLeafAddressSizes)) sizes->ecx = 0;

  // Intel stops at 0x8000_0008; AMD leaves beyond it (SVM features, cache
  // topology, extended APIC id, ...) would contradict the vendor.
  std::erase_if(leaves, [](const CpuidEntry& e) {
    return e.function > kIntelMaxExtLeaf && e.function <= kExtRangeLast;
  });
  if (CpuidEntry* ext_max = FindLeaf(leaves, kLeafExtMax)) {
    ext_max->eax = std::min(ext_max->eax, kIntelMaxExtLeaf);
  }
}

}  // namespace strata::amd64::vmx
