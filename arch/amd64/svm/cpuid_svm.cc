#include "arch/amd64/svm/cpuid_svm.h"

#include <algorithm>
#include <optional>

namespace strata::amd64::svm {

namespace {

// HWCR and SYSCFG are read by guests at boot (Linux checks them for TSC and
// memory-encryption features); VM_CR and VM_HSAVE_PA are the SVM control
// MSRs a nested hypervisor programs (AMD APM Vol. 2 §15.30).
constexpr uint32_t kAmdMsrs[] = {
    kMsrAmdSyscfg,
    kMsrAmdHwcr,
    kMsrAmdVmCr,
    kMsrAmdVmHsavePa,
};

// CPUID.1:ECX bits that are Intel technologies with no AMD meaning.
constexpr uint32_t kIntelOnlyLeaf1Ecx = kLeaf1EcxVmx | kLeaf1EcxSmx;

// CPUID.8000_0008:ECX (AMD APM Vol. 3 Appendix E, Fn8000_0008): NC = threads in the package
// minus one, ApicIdCoreIdSize = APIC-id bits below the package id.
constexpr uint32_t kNcMask = 0xff;              // ECX[7:0]
constexpr uint32_t kApicIdCoreIdSizeShift = 12;  // ECX[15:12]
constexpr uint32_t kApicIdCoreIdSizeMask = 0xf;
constexpr uint32_t kSizesTopologyMask =
    kNcMask | (kApicIdCoreIdSizeMask << kApicIdCoreIdSizeShift);

// CPUID.8000_001E (AMD APM Vol. 3 Appendix E, Fn8000_001E): EAX = extended APIC id,
// EBX[15:8] = threads per compute unit - 1, EBX[7:0] = compute unit id,
// ECX[10:8] = nodes per processor - 1, ECX[7:0] = node id.
constexpr uint32_t kThreadsPerCuShift = 8;
constexpr uint32_t kIdFieldMask = 0xff;

// CPUID.8000_001D (AMD APM Vol. 3 Appendix E, Fn8000_001D): EAX[4:0] cache type (0 = end),
// EAX[7:5] level, EAX[25:14] logical processors sharing the cache - 1.
constexpr uint32_t kCacheTypeMask = 0x1f;
constexpr uint32_t kCacheLevelShift = 5;
constexpr uint32_t kCacheLevelMask = 0x7;
constexpr uint32_t kSharingShift = 14;
constexpr uint32_t kSharingMax = 0xfff;
// L1 and L2 are per core on every Zen part; L3 is shared by the package.
constexpr uint32_t kLastPerCoreCacheLevel = 2;

}  // namespace

std::span<const uint32_t> AmdCpuidPolicy::vendor_msrs() const {
  return kAmdMsrs;
}

void AmdCpuidPolicy::Apply(std::vector<CpuidEntry>& leaves,
                           const CpuidOptions& opts,
                           uint32_t vcpu_index) const {
  const CpuTopology& topo = opts.topo;
  const uint32_t x2apic_id = ApicIdFor(topo, vcpu_index);
  // BuildGuestCpuid rejects zero counts; keep Apply total anyway.
  const uint32_t threads = std::max(topo.threads, 1u);
  const uint32_t cores = std::max(topo.cores, 1u);
  const uint32_t per_pkg = cores * threads;
  const uint32_t core_id = (vcpu_index / threads) % cores;
  const uint32_t pkg_id = vcpu_index / per_pkg;

  // Copy what later steps need from leaf 1: WriteExtendedTopology and
  // SetLeaf append entries, and a pointer into `leaves` does not survive the
  // reallocation (on an AMD host KVM's table has no leaf 0xB to replace).
  std::optional<uint32_t> leaf1_edx;
  if (CpuidEntry* l1 = FindLeaf(leaves, kLeafFeatures)) {
    l1->ecx &= ~kIntelOnlyLeaf1Ecx;
    leaf1_edx = l1->edx;
  }

  // Leaf 4 is reserved on AMD (Linux reads 0x8000_001D instead); leaf 0x1F
  // is Intel's. KVM returns zeros for absent leaves inside the basic range,
  // which is what AMD hardware returns.
  EraseLeaf(leaves, kLeafCacheParams);
  EraseLeaf(leaves, kLeafV2ExtTopology);
  // Leaf 0xB is architectural on AMD too (AMD APM Vol. 3 Appendix E,
  // Fn0000_000B) and the only place a guest finds x2APIC ids above 255.
  WriteExtendedTopology(leaves, kLeafExtTopology, topo, x2apic_id);
  RaiseMaxLeaf(leaves, kLeafVendor, kLeafExtTopology);

  bool topoext = false;
  if (CpuidEntry* ext = FindLeaf(leaves, kLeafExtFeatures)) {
    // CmpLegacy: "core multi-processing legacy mode": the package has more
    // than one logical processor, counted by CPUID.8000_0008:ECX[NC].
    if (per_pkg > 1) {
      ext->ecx |= kExtEcxCmpLegacy;
    } else {
      ext->ecx &= ~kExtEcxCmpLegacy;
    }
    // AMD duplicates these CPUID.1:EDX bits here; KVM on an Intel host does
    // not, and AMD-only kernels test them in this leaf.
    if (leaf1_edx) ext->edx |= *leaf1_edx & kExtEdxAmdAliases;
    topoext = (ext->ecx & kExtEcxTopoExt) != 0;
  }

  if (CpuidEntry* sizes = FindLeaf(leaves, kLeafAddressSizes)) {
    const uint32_t id_bits = SmtIdBits(topo) + CoreIdBits(topo);
    const uint32_t nc = per_pkg > 1 ? std::min(per_pkg - 1, kNcMask) : 0;
    const uint32_t size_field =
        per_pkg > 1 ? std::min(id_bits, kApicIdCoreIdSizeMask) : 0;
    sizes->ecx = (sizes->ecx & ~kSizesTopologyMask) | nc |
                 (size_field << kApicIdCoreIdSizeShift);
  }

  if (topoext) {
    CpuidEntry e;
    e.function = kLeafAmdExtApicId;
    e.eax = x2apic_id;
    e.ebx = ((threads - 1) & kIdFieldMask) << kThreadsPerCuShift |
            (core_id & kIdFieldMask);
    // One node per package: nodes per processor - 1 = 0, node id = package.
    e.ecx = pkg_id & kIdFieldMask;
    e.edx = 0;
    SetLeaf(leaves, e);
    RaiseMaxLeaf(leaves, kLeafExtMax, kLeafAmdExtApicId);
    for (CpuidEntry& c : leaves) {
      if (c.function != kLeafAmdCacheTopology || (c.eax & kCacheTypeMask) == 0) {
        continue;
      }
      const uint32_t level = (c.eax >> kCacheLevelShift) & kCacheLevelMask;
      const uint32_t sharing =
          std::min(level <= kLastPerCoreCacheLevel ? threads : per_pkg,
                   kSharingMax + 1) - 1;
      c.eax = (c.eax & ~(kSharingMax << kSharingShift)) |
              (sharing << kSharingShift);
    }
  } else {
    // Without TopoExt these leaves are reserved (AMD APM Vol. 3
    // Appendix E, Fn8000_001D/Fn8000_001E).
    EraseLeaf(leaves, kLeafAmdExtApicId);
    EraseLeaf(leaves, kLeafAmdCacheTopology);
  }
}

}  // namespace strata::amd64::svm
