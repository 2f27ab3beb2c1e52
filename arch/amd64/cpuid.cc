#include "arch/amd64/cpuid.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cctype>
#include <cstring>
#include <optional>

#include "arch/amd64/cpu_models.h"
#include "arch/amd64/svm/cpuid_svm.h"
#include "arch/amd64/vmx/cpuid_vmx.h"

namespace strata::amd64 {

namespace {

constexpr std::string_view kIntelVendorString = "GenuineIntel";
constexpr std::string_view kAmdVendorString = "AuthenticAMD";
// Hygon Dhyana is a licensed Zen: AMD's CPUID layout and SVM.
constexpr std::string_view kHygonVendorString = "HygonGenuine";
constexpr size_t kVendorStringLen = 12;

// 0xff is the xAPIC broadcast id, so xAPIC mode can address ids 0..254
// (SDM Vol. 3 §10.6.1); x2APIC reserves 0xffffffff (SDM Vol. 3 §10.12.9).
constexpr uint64_t kMaxXapicId = 0xfe;
constexpr uint64_t kMaxX2apicId = 0xfffffffe;
constexpr uint32_t kLeaf1EbxCountMax = 0xff;  // EBX[23:16] is 8 bits wide

// Bits needed to encode `n` distinct values: ceil(log2(n)), 0 for n <= 1.
uint32_t FieldBits(uint32_t n) {
  return n <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(n - 1));
}

uint32_t AtLeastOne(uint32_t n) { return n == 0 ? 1 : n; }

// ApicIdFor without truncation, for range checks.
uint64_t ApicId64(const CpuTopology& t, uint32_t vcpu_index) {
  const uint32_t threads = AtLeastOne(t.threads);
  const uint32_t cores = AtLeastOne(t.cores);
  const uint64_t smt = vcpu_index % threads;
  const uint64_t core = (vcpu_index / threads) % cores;
  const uint64_t pkg = vcpu_index / (static_cast<uint64_t>(threads) * cores);
  const uint32_t smt_bits = SmtIdBits(t);
  const uint32_t core_bits = CoreIdBits(t);
  return (pkg << (smt_bits + core_bits)) | (core << smt_bits) | smt;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool Matches(const CpuidEntry& e, uint32_t function, uint32_t index) {
  return e.function == function &&
         ((e.flags & kCpuidFlagSignificantIndex) == 0 || e.index == index);
}

}  // namespace

std::string_view VendorName(CpuVendor v) {
  switch (v) {
    case CpuVendor::kIntel: return "intel";
    case CpuVendor::kAmd: return "amd";
  }
  return "?";
}

Result<CpuVendor> ParseVendor(std::string_view s) {
  if (EqualsIgnoreCase(s, "intel") || s == kIntelVendorString) {
    return CpuVendor::kIntel;
  }
  if (EqualsIgnoreCase(s, "amd") || s == kAmdVendorString) {
    return CpuVendor::kAmd;
  }
  return MakeError(Errc::kInvalidArgument,
                   "unknown CPU vendor '{}': use intel, amd, GenuineIntel or "
                   "AuthenticAMD",
                   s);
}

CpuVendor VendorFromCpuid(std::span<const CpuidEntry> leaves) {
  const CpuidEntry* l0 = FindLeaf(leaves, kLeafVendor);
  if (l0 == nullptr) return CpuVendor::kIntel;
  char s[kVendorStringLen];
  std::memcpy(s, &l0->ebx, 4);
  std::memcpy(s + 4, &l0->edx, 4);
  std::memcpy(s + 8, &l0->ecx, 4);
  std::string_view v(s, kVendorStringLen);
  if (v == kAmdVendorString || v == kHygonVendorString) return CpuVendor::kAmd;
  return CpuVendor::kIntel;
}

uint32_t SmtIdBits(const CpuTopology& t) { return FieldBits(t.threads); }
uint32_t CoreIdBits(const CpuTopology& t) { return FieldBits(t.cores); }

uint32_t ApicIdFor(const CpuTopology& t, uint32_t vcpu_index) {
  return static_cast<uint32_t>(ApicId64(t, vcpu_index));
}

CpuidEntry* FindLeaf(std::vector<CpuidEntry>& leaves, uint32_t function,
                     uint32_t index) {
  for (auto& e : leaves) {
    if (Matches(e, function, index)) return &e;
  }
  return nullptr;
}

const CpuidEntry* FindLeaf(std::span<const CpuidEntry> leaves,
                           uint32_t function, uint32_t index) {
  for (const auto& e : leaves) {
    if (Matches(e, function, index)) return &e;
  }
  return nullptr;
}

void SetLeaf(std::vector<CpuidEntry>& leaves, const CpuidEntry& e) {
  for (auto& x : leaves) {
    if (x.function == e.function &&
        ((e.flags & kCpuidFlagSignificantIndex) == 0 || x.index == e.index)) {
      x = e;
      return;
    }
  }
  leaves.push_back(e);
}

void EraseLeaf(std::vector<CpuidEntry>& leaves, uint32_t function) {
  std::erase_if(leaves,
                [function](const CpuidEntry& e) { return e.function == function; });
}

void SetVendorString(CpuidEntry& e, std::string_view vendor12) {
  assert(vendor12.size() == kVendorStringLen);
  std::memcpy(&e.ebx, vendor12.data(), 4);
  std::memcpy(&e.edx, vendor12.data() + 4, 4);
  std::memcpy(&e.ecx, vendor12.data() + 8, 4);
}

void WriteExtendedTopology(std::vector<CpuidEntry>& leaves, uint32_t function,
                           const CpuTopology& topo, uint32_t x2apic_id) {
  // SDM Vol. 2A CPUID leaf 0BH/1FH: per level, EAX[4:0] = right shift of the
  // x2APIC id that yields the id of the next level up, EBX[15:0] = logical
  // processors at this level, ECX[7:0] = the subleaf, ECX[15:8] = level type,
  // EDX = x2APIC id of this logical processor. The first level with type 0
  // ends the list.
  constexpr uint32_t kLevelTypeShift = 8;
  constexpr uint32_t kEbxCountMask = 0xffff;
  const uint32_t smt_shift = SmtIdBits(topo);
  const uint32_t core_shift = smt_shift + CoreIdBits(topo);
  const uint32_t threads = AtLeastOne(topo.threads);
  const uint64_t per_pkg = static_cast<uint64_t>(threads) * AtLeastOne(topo.cores);
  struct Level {
    uint32_t shift;
    uint64_t count;
    uint32_t type;
  };
  const Level levels[] = {
      {smt_shift, threads, kTopologyLevelSmt},
      {core_shift, per_pkg, kTopologyLevelCore},
      {0, 0, kTopologyLevelInvalid},
  };
  EraseLeaf(leaves, function);
  uint32_t sub = 0;
  for (const Level& l : levels) {
    CpuidEntry e;
    e.function = function;
    e.index = sub;
    e.flags = kCpuidFlagSignificantIndex;
    e.eax = l.shift;
    e.ebx = static_cast<uint32_t>(std::min<uint64_t>(l.count, kEbxCountMask));
    e.ecx = (l.type << kLevelTypeShift) | sub;
    e.edx = x2apic_id;
    leaves.push_back(e);
    ++sub;
  }
}

void RaiseMaxLeaf(std::vector<CpuidEntry>& leaves, uint32_t range_leaf,
                  uint32_t leaf) {
  CpuidEntry* r = FindLeaf(leaves, range_leaf);
  if (r != nullptr && r->eax < leaf) r->eax = leaf;
}

std::unique_ptr<VendorPolicy> MakeVendorPolicy(CpuVendor v) {
  switch (v) {
    case CpuVendor::kIntel: return std::make_unique<vmx::IntelCpuidPolicy>();
    case CpuVendor::kAmd: return std::make_unique<svm::AmdCpuidPolicy>();
  }
  return nullptr;
}

Status CheckCpuidOptions(const CpuidOptions& opts) {
  const CpuTopology& topo = opts.topo;
  if (topo.sockets == 0 || topo.cores == 0 || topo.threads == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "CPU topology {} sockets x {} cores x {} threads: every "
                     "count must be at least 1",
                     topo.sockets, topo.cores, topo.threads);
  }
  // Three 32-bit factors fit in 96 bits, not 64: multiply checked.
  uint64_t product = 0;
  if (__builtin_mul_overflow(uint64_t{topo.sockets}, topo.cores, &product) ||
      __builtin_mul_overflow(product, topo.threads, &product) ||
      product > UINT32_MAX) {
    return MakeError(Errc::kInvalidArgument,
                     "CPU topology {} sockets x {} cores x {} threads has "
                     "more than 2^32 - 1 logical processors",
                     topo.sockets, topo.cores, topo.threads);
  }
  if (!opts.hyperv_leaves.empty() && !opts.hypervisor_bit) {
    return MakeError(Errc::kInvalidArgument,
                     "Hyper-V enlightenments need the hypervisor CPUID bit "
                     "and leaves (x86.hypervisor_bit=true)");
  }
  for (const CpuidEntry& e : opts.hyperv_leaves) {
    if (e.function < kLeafHypervisorBase ||
        e.function >= kLeafKvmBaseWithHyperv) {
      return MakeError(Errc::kInvalidArgument,
                       "Hyper-V CPUID leaf {:#x} is outside 0x40000000-"
                       "0x400000ff",
                       e.function);
    }
  }
  const uint32_t max_vcpus =
      opts.max_vcpus != 0 ? opts.max_vcpus : static_cast<uint32_t>(product);
  // Ids grow with the index, so the last vCPU has the largest.
  const uint64_t top_id = ApicId64(topo, max_vcpus - 1);
  if (top_id > kMaxX2apicId) {
    return MakeError(Errc::kInvalidArgument,
                     "{} vCPUs in a {}x{}x{} topology need APIC ids beyond "
                     "32 bits",
                     max_vcpus, topo.sockets, topo.cores, topo.threads);
  }
  if (!opts.x2apic && top_id > kMaxXapicId) {
    return MakeError(Errc::kInvalidArgument,
                     "vCPU {} would get APIC id {}, which needs x2APIC "
                     "(xAPIC ids stop at 254): enable x2apic or use fewer "
                     "vCPUs",
                     max_vcpus - 1, top_id);
  }
  return Ok();
}

namespace {

enum class Reg { kEax, kEbx, kEcx, kEdx };

// One named feature bit (SDM Vol. 2A Table 3-8ff, AMD APM Vol. 3 App. E;
// names as QEMU's target/i386/cpu.c spells them).
struct FeatureBit {
  std::string_view name;
  uint32_t function;
  uint32_t index;
  Reg reg;
  uint32_t bit;
};

constexpr FeatureBit kFeatureBits[] = {
    {"vmx", kLeafFeatures, 0, Reg::kEcx, 5},
    {"pcid", kLeafFeatures, 0, Reg::kEcx, 17},
    {"x2apic", kLeafFeatures, 0, Reg::kEcx, 21},
    {"tsc-deadline", kLeafFeatures, 0, Reg::kEcx, 24},
    {"xsave", kLeafFeatures, 0, Reg::kEcx, 26},
    {"avx", kLeafFeatures, 0, Reg::kEcx, 28},
    {"rdrand", kLeafFeatures, 0, Reg::kEcx, 30},
    {"fsgsbase", kLeafStructuredFeatures, 0, Reg::kEbx, 0},
    {"smep", kLeafStructuredFeatures, 0, Reg::kEbx, 7},
    {"invpcid", kLeafStructuredFeatures, 0, Reg::kEbx, 10},
    {"rtm", kLeafStructuredFeatures, 0, Reg::kEbx, 11},
    {"smap", kLeafStructuredFeatures, 0, Reg::kEbx, 20},
    {"umip", kLeafStructuredFeatures, 0, Reg::kEcx, 2},
    {"pku", kLeafStructuredFeatures, 0, Reg::kEcx, 3},
    {"la57", kLeafStructuredFeatures, 0, Reg::kEcx, 16},
    {"rdpid", kLeafStructuredFeatures, 0, Reg::kEcx, 22},
    {"svm", kLeafExtFeatures, 0, Reg::kEcx, 2},
    {"skinit", kLeafExtFeatures, 0, Reg::kEcx, 12},
    {"pdpe1gb", kLeafExtFeatures, 0, Reg::kEdx, 26},
    {"rdtscp", kLeafExtFeatures, 0, Reg::kEdx, 27},
    {"npt", kLeafAmdSvm, 0, Reg::kEdx, 0},
};

const FeatureBit* FindFeature(std::string_view name) {
  for (const FeatureBit& f : kFeatureBits) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

uint32_t& RegOf(CpuidEntry& e, Reg r) {
  switch (r) {
    case Reg::kEax: return e.eax;
    case Reg::kEbx: return e.ebx;
    case Reg::kEcx: return e.ecx;
    case Reg::kEdx: return e.edx;
  }
  return e.eax;
}

std::string FeatureWhere(const FeatureBit& f) {
  static constexpr const char* kRegNames[] = {"EAX", "EBX", "ECX", "EDX"};
  return fmt::format("CPUID.{:X}H.{}:{}[{}]", f.function, f.index,
                     kRegNames[static_cast<int>(f.reg)], f.bit);
}

// Applies opts.features to `leaves`; "+" only where `supported` has the bit.
Status ApplyFeatureOverrides(std::vector<CpuidEntry>& leaves,
                             std::span<const CpuidEntry> supported,
                             const CpuidOptions& opts) {
  for (const CpuFeatureOverride& o : opts.features) {
    const FeatureBit* f = FindFeature(o.name);
    if (f == nullptr) {
      return MakeError(Errc::kInvalidArgument, "unknown CPU feature '{}'",
                       o.name);
    }
    const uint32_t mask = 1u << f->bit;
    CpuidEntry* leaf = FindLeaf(leaves, f->function, f->index);
    if (!o.on) {
      if (leaf != nullptr) RegOf(*leaf, f->reg) &= ~mask;
      continue;
    }
    const CpuidEntry* host = FindLeaf(supported, f->function, f->index);
    CpuidEntry copy = host ? *host : CpuidEntry{};
    if (host == nullptr || leaf == nullptr || !(RegOf(copy, f->reg) & mask)) {
      return MakeError(Errc::kUnsupported,
                       "CPU feature +{} ({}) is not supported by KVM on this "
                       "host",
                       o.name, FeatureWhere(*f));
    }
    RegOf(*leaf, f->reg) |= mask;
  }
  return Ok();
}

}  // namespace

std::vector<std::string> MissingFeatures(
    std::span<const CpuidEntry> supported,
    std::span<const CpuFeatureOverride> features) {
  std::vector<std::string> out;
  for (const CpuFeatureOverride& o : features) {
    const FeatureBit* f = FindFeature(o.name);
    if (!o.on || f == nullptr) continue;
    const CpuidEntry* host = FindLeaf(supported, f->function, f->index);
    CpuidEntry copy = host ? *host : CpuidEntry{};
    if (host == nullptr || !(RegOf(copy, f->reg) & (1u << f->bit))) {
      out.push_back(o.name);
    }
  }
  return out;
}

std::vector<uint32_t> UnenumeratedSpeculationMsrs(
    std::span<const CpuidEntry> guest) {
  auto bit = [&](uint32_t fn, uint32_t idx, Reg r, uint32_t b) {
    const CpuidEntry* e = FindLeaf(guest, fn, idx);
    if (e == nullptr) return false;
    CpuidEntry copy = *e;
    return (RegOf(copy, r) & (1u << b)) != 0;
  };
  const bool spec_ctrl = bit(kLeafStructuredFeatures, 0, Reg::kEdx, 26);
  const bool flush_l1d = bit(kLeafStructuredFeatures, 0, Reg::kEdx, 28);
  const bool amd_ibpb = bit(kLeafAddressSizes, 0, Reg::kEbx, 12);
  const bool amd_ibrs = bit(kLeafAddressSizes, 0, Reg::kEbx, 14);
  const bool amd_stibp = bit(kLeafAddressSizes, 0, Reg::kEbx, 15);
  const bool amd_ssbd = bit(kLeafAddressSizes, 0, Reg::kEbx, 24);
  std::vector<uint32_t> out;
  if (!spec_ctrl && !amd_ibrs && !amd_stibp && !amd_ssbd) {
    out.push_back(kMsrSpecCtrl);
  }
  if (!spec_ctrl && !amd_ibpb) out.push_back(kMsrPredCmd);
  if (!flush_l1d) out.push_back(kMsrFlushCmd);
  return out;
}

std::vector<std::string_view> CpuFeatureNames() {
  std::vector<std::string_view> names;
  for (const FeatureBit& f : kFeatureBits) names.push_back(f.name);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<Switch>> ParseSwitches(std::string_view text,
                                          std::string_view what) {
  std::vector<Switch> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view()
                                           : text.substr(comma + 1);
    if (item.empty()) continue;
    Switch sw;
    if (item[0] == '+' || item[0] == '-') {
      sw.on = item[0] == '+';
      item.remove_prefix(1);
    } else if (const size_t eq = item.find('='); eq != std::string_view::npos) {
      const std::string_view v = item.substr(eq + 1);
      if (v == "on" || v == "true") {
        sw.on = true;
      } else if (v == "off" || v == "false") {
        sw.on = false;
      } else {
        return MakeError(Errc::kInvalidArgument,
                         "{} '{}': the value must be on or off", what, item);
      }
      item = item.substr(0, eq);
    }
    sw.name = item;
    out.push_back(sw);
  }
  return out;
}

Result<std::vector<CpuFeatureOverride>> ParseCpuFeatures(
    std::string_view text) {
  std::vector<CpuFeatureOverride> out;
  for (const Switch& sw : STRATA_TRY(ParseSwitches(text, "CPU feature"))) {
    if (FindFeature(sw.name) == nullptr) {
      return MakeError(Errc::kInvalidArgument,
                       "unknown CPU feature '{}' (known: {})", sw.name,
                       fmt::join(CpuFeatureNames(), ", "));
    }
    out.push_back({std::string(sw.name), sw.on});
  }
  return out;
}

Result<std::vector<CpuidEntry>> BuildGuestCpuid(
    std::span<const CpuidEntry> supported, const CpuidOptions& opts,
    uint32_t vcpu_index) {
  STRATA_TRY(CheckCpuidOptions(opts));
  const CpuTopology& topo = opts.topo;
  const uint32_t max_vcpus =
      opts.max_vcpus != 0 ? opts.max_vcpus
                          : topo.sockets * topo.cores * topo.threads;
  if (vcpu_index >= max_vcpus) {
    return MakeError(Errc::kInvalidArgument,
                     "vCPU index {} is out of range: the VM has at most {} "
                     "vCPUs",
                     vcpu_index, max_vcpus);
  }
  if (FindLeaf(supported, kLeafVendor) == nullptr) {
    return MakeError(Errc::kInvalidArgument,
                     "the supported CPUID table has no leaf 0; pass the "
                     "table from KVM_GET_SUPPORTED_CPUID");
  }
  if (FindLeaf(supported, kLeafFeatures) == nullptr) {
    return MakeError(Errc::kInvalidArgument,
                     "the supported CPUID table has no leaf 1; pass the "
                     "table from KVM_GET_SUPPORTED_CPUID");
  }

  std::vector<CpuidEntry> leaves(supported.begin(), supported.end());
  // A named model first (what it drops was reported when the VM was
  // configured), so that everything below applies to the model's view.
  if (opts.model != nullptr) {
    (void)ApplyCpuModel(leaves, *opts.model);
  } else if (!opts.brand.empty()) {
    SetBrandString(leaves, opts.brand);
  }
  std::unique_ptr<VendorPolicy> policy = MakeVendorPolicy(opts.vendor);

  // Vendor string in leaf 0 and, as QEMU does for either vendor, in
  // 0x8000_0000 (where AMD defines it and Intel reserves it).
  SetVendorString(*FindLeaf(leaves, kLeafVendor), policy->vendor_string());
  if (CpuidEntry* ext = FindLeaf(leaves, kLeafExtMax)) {
    SetVendorString(*ext, policy->vendor_string());
  }

  // Leaf 1 (SDM Vol. 2A CPUID, Table 3-8 / 3-10).
  const uint32_t apic_id = ApicIdFor(topo, vcpu_index);
  const uint32_t pkg_bits = SmtIdBits(topo) + CoreIdBits(topo);
  const uint32_t per_pkg = topo.cores * topo.threads;
  {
    // Scoped: the hypervisor leaves below are appended, which may reallocate
    // `leaves` and leave a reference to leaf 1 dangling.
    CpuidEntry& l1 = *FindLeaf(leaves, kLeafFeatures);
    // EBX[31:24] is the initial APIC id's low byte; EBX[23:16] the number of
    // addressable logical processor ids in the package, valid when HTT is set.
    constexpr uint32_t kEbxIdAndCountMask = 0xffff0000;
    const uint32_t count =
        std::min<uint32_t>(
            pkg_bits >= 8 ? kLeaf1EbxCountMax + 1 : 1u << pkg_bits,
            kLeaf1EbxCountMax);
    l1.ebx = (l1.ebx & ~kEbxIdAndCountMask) |
             ((apic_id & 0xff) << kLeaf1EbxApicIdShift) |
             (count << kLeaf1EbxLogicalCountShift);
    if (per_pkg > 1) {
      l1.edx |= kLeaf1EdxHtt;
    } else {
      l1.edx &= ~kLeaf1EdxHtt;
  }
  auto set_bit = [](uint32_t& reg, uint32_t bit, bool on) {
    reg = on ? (reg | bit) : (reg & ~bit);
  };
  set_bit(l1.ecx, kLeaf1EcxHypervisor, opts.hypervisor_bit);
  set_bit(l1.ecx, kLeaf1EcxX2apic, opts.x2apic);
  set_bit(l1.ecx, kLeaf1EcxTscDeadline, opts.tsc_deadline);
  }

  // Hypervisor leaves (Linux Documentation/virt/kvm/x86/cpuid.rst): the KVM
  // signature with its max leaf and KVM's paravirt features as reported,
  // or nothing when the guest is told it runs on bare metal. With Hyper-V
  // enlightenments Hyper-V's leaves come first (a guest looks for them at
  // 0x4000_0000: Hyper-V TLFS, "Feature Discovery") and KVM's move to
  // 0x4000_0100, where
  // KVM itself and Linux's kvm_cpuid_base() still find them.
  std::optional<CpuidEntry> kvm_features;
  if (const CpuidEntry* f = FindLeaf(supported, kLeafKvmFeatures)) {
    kvm_features = *f;
  }
  std::erase_if(leaves, [](const CpuidEntry& e) {
    return e.function >= kLeafHypervisorBase &&
           e.function <= kLeafHypervisorLast;
  });
  if (opts.hypervisor_bit) {
    const uint32_t kvm_base = opts.hyperv_leaves.empty()
                                  ? kLeafHypervisorBase
                                  : kLeafKvmBaseWithHyperv;
    for (const CpuidEntry& e : opts.hyperv_leaves) leaves.push_back(e);
    CpuidEntry sig;
    sig.function = kvm_base;
    sig.eax = kvm_base + (kLeafKvmFeatures - kLeafHypervisorBase);
    sig.ebx = kKvmSignatureEbx;
    sig.ecx = kKvmSignatureEcx;
    sig.edx = kKvmSignatureEdx;
    leaves.push_back(sig);
    CpuidEntry feat = kvm_features.value_or(CpuidEntry{});
    feat.function = sig.eax;
    leaves.push_back(feat);
  }

  // Leaf 0xA (PMU) stays as KVM reports it: kvm-unit-tests' boot code reads
  // it, and version 0 (no PMU) is a valid answer.
  policy->Apply(leaves, opts, vcpu_index);
  STRATA_TRY(ApplyFeatureOverrides(leaves, supported, opts));
  // KVM does not care about order; sorted tables read and diff better.
  std::stable_sort(leaves.begin(), leaves.end(),
                   [](const CpuidEntry& a, const CpuidEntry& b) {
                     return a.function != b.function ? a.function < b.function
                                                     : a.index < b.index;
                   });
  return leaves;
}

}  // namespace strata::amd64
