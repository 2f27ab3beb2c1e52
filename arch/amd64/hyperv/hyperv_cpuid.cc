#include "arch/amd64/hyperv/hyperv_cpuid.h"

#include <algorithm>
#include <cstring>

namespace strata::amd64::hyperv {

namespace {

enum class Reg : uint8_t { kEax, kEbx, kEdx };

// One group of CPUID bits that says a feature is there.
struct Bits {
  uint32_t leaf = 0;  // 0: unused
  Reg reg = Reg::kEax;
  uint32_t mask = 0;
};

struct FeatureInfo {
  Feature feature;
  std::string_view name;
  std::string_view what;
  Bits bits[2];
  // Features this one needs (as QEMU's kvm_hyperv_properties), as a
  // mask of Bit(feature).
  uint32_t needs;
};

constexpr uint32_t Bit(Feature f) { return 1u << static_cast<uint32_t>(f); }
static_assert(static_cast<size_t>(Feature::kCount) <= 32);

// Hyper-V TLFS, "Feature Discovery": 0x4000_0003 ("Hypervisor Feature
// Identification") and 0x4000_0004 ("Implementation Recommendations"); bit
// names as in Linux's hyperv-tlfs.h.
constexpr uint32_t kEaxVpRuntime = 1u << 0;
constexpr uint32_t kEaxTimeRefCount = 1u << 1;
constexpr uint32_t kEaxSynic = 1u << 2;
constexpr uint32_t kEaxSynTimers = 1u << 3;
constexpr uint32_t kEaxApicAccess = 1u << 4;
constexpr uint32_t kEaxVpIndex = 1u << 6;
constexpr uint32_t kEaxReset = 1u << 7;
constexpr uint32_t kEaxReferenceTsc = 1u << 9;
constexpr uint32_t kEaxFrequencyMsrs = 1u << 11;
constexpr uint32_t kEaxReenlightenment = 1u << 13;
constexpr uint32_t kEdxXmmInput = 1u << 4;
constexpr uint32_t kEdxFrequencyMsrs = 1u << 8;
constexpr uint32_t kEdxCrashMsrs = 1u << 10;
constexpr uint32_t kEdxExtGvaRangesFlush = 1u << 14;
constexpr uint32_t kEdxStimerDirect = 1u << 19;
constexpr uint32_t kRecRemoteTlbFlush = 1u << 2;
constexpr uint32_t kRecRelaxedTiming = 1u << 5;
constexpr uint32_t kRecDeprecatingAutoEoi = 1u << 9;
constexpr uint32_t kRecClusterIpi = 1u << 10;
constexpr uint32_t kRecExProcessorMasks = 1u << 11;

constexpr FeatureInfo kFeatures[] = {
    {Feature::kRelaxed, "relaxed", "relaxed timing",
     {{kLeafEnlightenments, Reg::kEax, kRecRelaxedTiming}}, 0},
    {Feature::kVapic, "vapic", "virtual APIC MSRs",
     {{kLeafFeatures, Reg::kEax, kEaxApicAccess}}, 0},
    {Feature::kTime, "time", "reference time counter and TSC page",
     {{kLeafFeatures, Reg::kEax, kEaxTimeRefCount | kEaxReferenceTsc}}, 0},
    {Feature::kCrash, "crash", "crash MSRs",
     {{kLeafFeatures, Reg::kEdx, kEdxCrashMsrs}}, 0},
    {Feature::kReset, "reset", "reset MSR",
     {{kLeafFeatures, Reg::kEax, kEaxReset}}, 0},
    {Feature::kVpIndex, "vpindex", "VP_INDEX MSR",
     {{kLeafFeatures, Reg::kEax, kEaxVpIndex}}, 0},
    {Feature::kRuntime, "runtime", "VP_RUNTIME MSR",
     {{kLeafFeatures, Reg::kEax, kEaxVpRuntime}}, 0},
    // The SynIC addresses VPs by index (QEMU's extra dependency).
    {Feature::kSynic, "synic", "synthetic interrupt controller",
     {{kLeafFeatures, Reg::kEax, kEaxSynic}}, Bit(Feature::kVpIndex)},
    {Feature::kStimer, "stimer", "synthetic timers",
     {{kLeafFeatures, Reg::kEax, kEaxSynTimers}},
     Bit(Feature::kSynic) | Bit(Feature::kTime)},
    {Feature::kStimerDirect, "stimer-direct",
     "direct-mode synthetic timers",
     {{kLeafFeatures, Reg::kEdx, kEdxStimerDirect}}, Bit(Feature::kStimer)},
    {Feature::kFrequencies, "frequencies", "frequency MSRs",
     {{kLeafFeatures, Reg::kEax, kEaxFrequencyMsrs},
      {kLeafFeatures, Reg::kEdx, kEdxFrequencyMsrs}},
     0},
    {Feature::kReenlightenment, "reenlightenment", "reenlightenment MSRs",
     {{kLeafFeatures, Reg::kEax, kEaxReenlightenment}}, 0},
    {Feature::kTlbFlush, "tlbflush", "paravirtual TLB flush",
     {{kLeafEnlightenments, Reg::kEax,
       kRecRemoteTlbFlush | kRecExProcessorMasks}},
     Bit(Feature::kVpIndex)},
    {Feature::kTlbFlushExt, "tlbflush-ext",
     "extended GVA ranges for TLB flush",
     {{kLeafFeatures, Reg::kEdx, kEdxExtGvaRangesFlush}},
     Bit(Feature::kTlbFlush)},
    {Feature::kIpi, "ipi", "paravirtual IPIs",
     {{kLeafEnlightenments, Reg::kEax, kRecClusterIpi | kRecExProcessorMasks}},
     Bit(Feature::kVpIndex)},
    {Feature::kAvic, "avic", "AutoEOI deprecation (APICv/AVIC friendly)",
     {{kLeafEnlightenments, Reg::kEax, kRecDeprecatingAutoEoi}}, 0},
    {Feature::kXmmInput, "xmm-input", "XMM fast hypercall input",
     {{kLeafFeatures, Reg::kEdx, kEdxXmmInput}}, 0},
};
static_assert(std::size(kFeatures) == static_cast<size_t>(Feature::kCount));

// Info() indexes the table by Feature: its rows must be in Feature order.
constexpr bool InFeatureOrder() {
  for (size_t i = 0; i < std::size(kFeatures); ++i) {
    if (static_cast<size_t>(kFeatures[i].feature) != i) return false;
  }
  return true;
}
static_assert(InFeatureOrder());

const FeatureInfo& Info(Feature f) {
  return kFeatures[static_cast<size_t>(f)];
}

size_t Index(Feature f) { return static_cast<size_t>(f); }

const FeatureInfo* FindByName(std::string_view name) {
  // QEMU spells avic hv-apicv too.
  if (name == "apicv") name = "avic";
  for (const FeatureInfo& i : kFeatures) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

uint32_t RegOf(const CpuidEntry& e, Reg r) {
  switch (r) {
    case Reg::kEax: return e.eax;
    case Reg::kEbx: return e.ebx;
    case Reg::kEdx: return e.edx;
  }
  return 0;
}

uint32_t& RegOf(CpuidEntry& e, Reg r) {
  switch (r) {
    case Reg::kEax: return e.eax;
    case Reg::kEbx: return e.ebx;
    case Reg::kEdx: return e.edx;
  }
  return e.eax;
}

CpuidEntry Leaf(uint32_t function) {
  CpuidEntry e;
  e.function = function;
  return e;
}

}  // namespace

std::string_view FeatureName(Feature f) { return Info(f).name; }

std::string FeatureDescription(Feature f) {
  return fmt::format("{} ({})", Info(f).what, Info(f).name);
}

std::vector<std::string_view> FeatureNames() {
  std::vector<std::string_view> out;
  for (const FeatureInfo& i : kFeatures) out.push_back(i.name);
  return out;
}

std::string FormatFeatures(const FeatureSet& s) {
  std::string out;
  for (const FeatureInfo& i : kFeatures) {
    if (!s[Index(i.feature)]) continue;
    if (!out.empty()) out += ",";
    out += i.name;
  }
  return out;
}

Result<Request> ParseRequest(std::string_view text) {
  Request r;
  if (text == "off" || text == "false") return r;
  if (text.empty()) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.hyperv is empty: use off, passthrough or a list of "
                     "features ({})",
                     fmt::join(FeatureNames(), ", "));
  }
  for (const Switch& sw :
       STRATA_TRY(ParseSwitches(text, "x86.hyperv: item"))) {
    if (sw.name == "off" || sw.name == "false") {
      return MakeError(Errc::kInvalidArgument,
                       "x86.hyperv: 'off' cannot be combined with other "
                       "items");
    }
    if (sw.name == "passthrough") {
      r.passthrough = sw.on;
      continue;
    }
    const FeatureInfo* f = FindByName(sw.name);
    if (f == nullptr) {
      return MakeError(Errc::kInvalidArgument,
                       "x86.hyperv: unknown Hyper-V feature '{}' (known: "
                       "passthrough, {})",
                       sw.name, fmt::join(FeatureNames(), ", "));
    }
    r.add[Index(f->feature)] = sw.on;
    r.remove[Index(f->feature)] = !sw.on;
  }
  if (!r.passthrough && r.add.none()) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.hyperv: the list enables no feature (use off, "
                     "passthrough or feature names)");
  }
  r.enabled = true;
  return r;
}

FeatureSet HostFeatures(std::span<const CpuidEntry> host) {
  FeatureSet out;
  for (const FeatureInfo& i : kFeatures) {
    bool all = true;
    for (const Bits& b : i.bits) {
      if (b.leaf == 0) continue;
      const CpuidEntry* e = FindLeaf(host, b.leaf);
      if (e == nullptr || (RegOf(*e, b.reg) & b.mask) != b.mask) all = false;
    }
    out[Index(i.feature)] = all;
  }
  return out;
}

Result<FeatureSet> Resolve(const Request& request,
                           std::span<const CpuidEntry> host) {
  if (!request.enabled) return FeatureSet();
  const FeatureSet offered = HostFeatures(host);
  FeatureSet set = request.passthrough ? offered : FeatureSet();
  set |= request.add;
  set &= ~request.remove;
  for (const FeatureInfo& i : kFeatures) {
    if (set[Index(i.feature)] && !offered[Index(i.feature)]) {
      return MakeError(Errc::kUnsupported,
                       "x86.hyperv: the Hyper-V {} is not supported by KVM on "
                       "this host",
                       FeatureDescription(i.feature));
    }
  }
  STRATA_TRY(CheckDependencies(set));
  return set;
}

Status CheckDependencies(const FeatureSet& s) {
  for (const FeatureInfo& i : kFeatures) {
    if (!s[Index(i.feature)]) continue;
    for (const FeatureInfo& need : kFeatures) {
      if ((i.needs & Bit(need.feature)) != 0 && !s[Index(need.feature)]) {
        return MakeError(Errc::kInvalidArgument,
                         "x86.hyperv: the Hyper-V {} needs the {}",
                         FeatureDescription(i.feature),
                         FeatureDescription(need.feature));
      }
    }
  }
  return Ok();
}

Result<std::vector<CpuidEntry>> BuildLeaves(std::span<const CpuidEntry> host,
                                            const FeatureSet& features,
                                            std::string_view vendor_id,
                                            bool passthrough) {
  if (vendor_id.size() > kVendorIdMaxLength) {
    return MakeError(Errc::kInvalidArgument,
                     "the Hyper-V vendor id '{}' is longer than {} characters",
                     vendor_id, kVendorIdMaxLength);
  }
  const CpuidEntry* iface = FindLeaf(host, kLeafInterface);
  if (iface == nullptr || iface->eax != kInterfaceSignature) {
    return MakeError(Errc::kUnsupported,
                     "KVM_GET_SUPPORTED_HV_CPUID has no \"Hv#1\" interface "
                     "leaf {:#x}: Hyper-V enlightenments are not supported by "
                     "KVM on this host",
                     kLeafInterface);
  }
  auto host_leaf = [&](uint32_t function) {
    const CpuidEntry* e = FindLeaf(host, function);
    CpuidEntry out = e != nullptr ? *e : Leaf(function);
    out.index = 0;
    out.flags = 0;
    return out;
  };
  std::vector<CpuidEntry> out;

  // The highest leaf (no nested-virtualization leaves here) and the
  // vendor id, NUL-padded, in EBX, ECX, EDX.
  CpuidEntry vendor = Leaf(kLeafVendorAndMax);
  vendor.eax = kLeafLimits;
  char id[kVendorIdMaxLength] = {};
  std::memcpy(id, vendor_id.data(), vendor_id.size());
  std::memcpy(&vendor.ebx, id, 4);
  std::memcpy(&vendor.ecx, id + 4, 4);
  std::memcpy(&vendor.edx, id + 8, 4);
  out.push_back(vendor);
  out.push_back(host_leaf(kLeafInterface));
  out.push_back(host_leaf(kLeafVersion));

  CpuidEntry feat = Leaf(kLeafFeatures);
  CpuidEntry rec = Leaf(kLeafEnlightenments);
  for (const FeatureInfo& i : kFeatures) {
    if (!features[Index(i.feature)]) continue;
    for (const Bits& b : i.bits) {
      if (b.leaf == kLeafFeatures) RegOf(feat, b.reg) |= b.mask;
      if (b.leaf == kLeafEnlightenments) RegOf(rec, b.reg) |= b.mask;
    }
  }
  // Any enlightenment goes with the hypercall interface; the SynIC with
  // its message and event hypercalls (TLFS, "Inter-Partition
  // Communication").
  feat.eax |= kFeatureHypercallMsrs;
  if (features[Index(Feature::kSynic)]) {
    feat.ebx |= kPrivilegePostMessages | kPrivilegeSignalEvents;
  }
  if (features[Index(Feature::kVapic)] && !features[Index(Feature::kAvic)]) {
    rec.eax |= kRecommendApicMsrs;
  }
  rec.ebx = passthrough ? host_leaf(kLeafEnlightenments).ebx
                        : kSpinlockNeverNotify;
  out.push_back(feat);
  out.push_back(rec);
  out.push_back(host_leaf(kLeafLimits));
  return out;
}

}  // namespace strata::amd64::hyperv
