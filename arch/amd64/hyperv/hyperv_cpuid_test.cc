#include "arch/amd64/hyperv/hyperv_cpuid.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata::amd64::hyperv {
namespace {

// What KVM_GET_SUPPORTED_HV_CPUID returns on Linux 6.1
// (arch/x86/kvm/hyperv.c, kvm_get_hv_cpuid) with an in-kernel LAPIC.
std::vector<CpuidEntry> KvmTable() {
  auto leaf = [](uint32_t f, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    CpuidEntry e;
    e.function = f;
    e.eax = a;
    e.ebx = b;
    e.ecx = c;
    e.edx = d;
    return e;
  };
  uint32_t sig[3];
  std::memcpy(sig, "Linux KVM Hv", 12);
  return {
      leaf(0x40000000, 0x40000082, sig[0], sig[1], sig[2]),
      leaf(0x40000001, kInterfaceSignature, 0, 0, 0),
      leaf(0x40000002, 0x3839, 0xa0000, 0, 0),
      // runtime, time ref, synic, stimer, apic, hypercall, vp index, reset,
      // reference TSC, frequencies, reenlightenment, TSC invariant.
      leaf(0x40000003, 0xaaff, (1u << 4) | (1u << 5) | (1u << 20) | (1u << 11),
           0, (1u << 4) | (1u << 8) | (1u << 10) | (1u << 1) | (1u << 11) |
                  (1u << 14) | (1u << 19)),
      leaf(0x40000004,
           (1u << 2) | (1u << 3) | (1u << 5) | (1u << 10) | (1u << 11) |
               (1u << 9),
           0xfff, 0, 0),
      leaf(0x40000005, 1024, 64, 0, 0),
      leaf(0x40000080, 0, sig[0], sig[1], sig[2]),
      leaf(0x40000081, 0x31235356, 0, 0, 0),
      leaf(0x40000082, 2, 0, 0, 0),
      leaf(0x4000000a, (1u << 17) | (1u << 19), 1u << 0, 0, 0),
  };
}

const CpuidEntry* Find(const std::vector<CpuidEntry>& v, uint32_t f) {
  for (const CpuidEntry& e : v) {
    if (e.function == f) return &e;
  }
  return nullptr;
}

FeatureSet Set(std::initializer_list<Feature> fs) {
  FeatureSet s;
  for (Feature f : fs) s[static_cast<size_t>(f)] = true;
  return s;
}

TEST(HypervCpuidTest, OffAndEmpty) {
  auto off = ParseRequest("off");
  ASSERT_TRUE(off.has_value());
  EXPECT_FALSE(off->enabled);
  auto r = Resolve(*off, KvmTable());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->none());
  EXPECT_FALSE(ParseRequest("").has_value());
  EXPECT_FALSE(ParseRequest("off,time").has_value());
  // Only removals leave nothing to enable.
  EXPECT_FALSE(ParseRequest("-time").has_value());
}

TEST(HypervCpuidTest, UnknownNameListsTheKnownOnes) {
  auto r = ParseRequest("time,evmcs");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("'evmcs'"), std::string::npos);
  EXPECT_NE(r.error().message().find("stimer-direct"), std::string::npos);
  EXPECT_FALSE(ParseRequest("time=maybe").has_value());
}

TEST(HypervCpuidTest, PassthroughTakesWhatKvmOffers) {
  auto req = ParseRequest("passthrough");
  ASSERT_TRUE(req.has_value());
  auto set = Resolve(*req, KvmTable());
  ASSERT_TRUE(set.has_value()) << set.error().message();
  // Everything strata knows is in KVM 6.1's table.
  EXPECT_TRUE(set->all()) << FormatFeatures(*set);
}

TEST(HypervCpuidTest, PassthroughMinusOneAndItsDependents) {
  auto req = ParseRequest("passthrough,-stimer-direct");
  ASSERT_TRUE(req.has_value());
  auto set = Resolve(*req, KvmTable());
  ASSERT_TRUE(set.has_value()) << set.error().message();
  EXPECT_FALSE((*set)[static_cast<size_t>(Feature::kStimerDirect)]);
  EXPECT_TRUE((*set)[static_cast<size_t>(Feature::kStimer)]);
  // Removing synic while stimer stays is a broken set.
  auto broken = Resolve(*ParseRequest("passthrough,synic=off"), KvmTable());
  ASSERT_FALSE(broken.has_value());
  EXPECT_EQ(broken.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(broken.error().message().find("synthetic timers (stimer) needs"),
            std::string::npos)
      << broken.error().message();
}

TEST(HypervCpuidTest, ListIsExactAndDependenciesAreChecked) {
  auto set = Resolve(*ParseRequest("relaxed,time"), KvmTable());
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(*set, Set({Feature::kRelaxed, Feature::kTime}));
  EXPECT_EQ(FormatFeatures(*set), "relaxed,time");
  auto no_vpindex = Resolve(*ParseRequest("synic"), KvmTable());
  ASSERT_FALSE(no_vpindex.has_value());
  EXPECT_NE(no_vpindex.error().message().find("VP_INDEX MSR (vpindex)"),
            std::string::npos);
  auto ok = Resolve(*ParseRequest("vpindex,synic,time,stimer,stimer-direct"),
                    KvmTable());
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  // QEMU's alias.
  auto apicv = Resolve(*ParseRequest("apicv"), KvmTable());
  ASSERT_TRUE(apicv.has_value());
  EXPECT_EQ(*apicv, Set({Feature::kAvic}));
}

TEST(HypervCpuidTest, AFeatureKvmLacksIsNamed) {
  std::vector<CpuidEntry> t = KvmTable();
  for (CpuidEntry& e : t) {
    if (e.function == kLeafFeatures) e.edx &= ~(1u << 19);  // no direct
  }
  auto r = Resolve(*ParseRequest("vpindex,synic,time,stimer,stimer-direct"),
                   t);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  // kut.py turns this phrase into a SKIP naming the feature.
  EXPECT_NE(r.error().message().find("direct-mode synthetic timers "
                                     "(stimer-direct) is not supported by "
                                     "KVM on this host"),
            std::string::npos)
      << r.error().message();
  auto pass = Resolve(*ParseRequest("passthrough"), t);
  ASSERT_TRUE(pass.has_value());
  EXPECT_FALSE((*pass)[static_cast<size_t>(Feature::kStimerDirect)]);
}

TEST(HypervCpuidTest, LeavesForPassthrough) {
  const std::vector<CpuidEntry> host = KvmTable();
  auto set = Resolve(*ParseRequest("passthrough"), host);
  ASSERT_TRUE(set.has_value());
  auto leaves = BuildLeaves(host, *set, kDefaultVendorId, true);
  ASSERT_TRUE(leaves.has_value()) << leaves.error().message();
  ASSERT_EQ(leaves->size(), 6u);
  const CpuidEntry* v = Find(*leaves, kLeafVendorAndMax);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->eax, kLeafLimits);  // no syndbg or nested leaves
  char id[13] = {};
  std::memcpy(id, &v->ebx, 4);
  std::memcpy(id + 4, &v->ecx, 4);
  std::memcpy(id + 8, &v->edx, 4);
  EXPECT_STREQ(id, "Microsoft Hv");
  EXPECT_EQ(Find(*leaves, kLeafInterface)->eax, kInterfaceSignature);
  EXPECT_EQ(Find(*leaves, kLeafVersion)->ebx, 0xa0000u);
  const CpuidEntry* f = Find(*leaves, kLeafFeatures);
  // Everything KVM offers that strata passes through, and the hypercall
  // MSRs; not TSC-invariant control (bit 15), which strata does not offer.
  EXPECT_EQ(f->eax, 0x2affu);
  EXPECT_EQ(f->ebx, kPrivilegePostMessages | kPrivilegeSignalEvents);
  // Not the debugging bits (1, 11): syndbg stays out, as in QEMU.
  EXPECT_EQ(f->edx, (1u << 4) | (1u << 8) | (1u << 10) | (1u << 14) |
                        (1u << 19));
  const CpuidEntry* r = Find(*leaves, kLeafEnlightenments);
  // avic is on, so no "use the APIC MSRs" recommendation.
  EXPECT_EQ(r->eax, (1u << 2) | (1u << 5) | (1u << 9) | (1u << 10) |
                        (1u << 11));
  EXPECT_EQ(r->ebx, 0xfffu);
  EXPECT_EQ(Find(*leaves, kLeafLimits)->eax, 1024u);
  for (const CpuidEntry& e : *leaves) EXPECT_EQ(e.flags, 0u);
}

TEST(HypervCpuidTest, LeavesForAList) {
  const std::vector<CpuidEntry> host = KvmTable();
  auto leaves = BuildLeaves(host, Set({Feature::kVapic, Feature::kTime}),
                            "strata", false);
  ASSERT_TRUE(leaves.has_value());
  const CpuidEntry* f = Find(*leaves, kLeafFeatures);
  EXPECT_EQ(f->eax, (1u << 4) | (1u << 1) | (1u << 9) | kFeatureHypercallMsrs);
  EXPECT_EQ(f->ebx, 0u);  // no SynIC, no message hypercalls
  EXPECT_EQ(f->edx, 0u);
  const CpuidEntry* r = Find(*leaves, kLeafEnlightenments);
  EXPECT_EQ(r->eax, kRecommendApicMsrs);
  EXPECT_EQ(r->ebx, kSpinlockNeverNotify);
  const CpuidEntry* v = Find(*leaves, kLeafVendorAndMax);
  char id[13] = {};
  std::memcpy(id, &v->ebx, 4);
  std::memcpy(id + 4, &v->ecx, 4);
  std::memcpy(id + 8, &v->edx, 4);
  EXPECT_STREQ(id, "strata");
}

TEST(HypervCpuidTest, LeavesNeedTheInterfaceAndAShortVendorId) {
  std::vector<CpuidEntry> host = KvmTable();
  EXPECT_FALSE(BuildLeaves(host, {}, "a vendor id too long", false));
  std::erase_if(host, [](const CpuidEntry& e) {
    return e.function == kLeafInterface;
  });
  auto r = BuildLeaves(host, {}, kDefaultVendorId, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
}

}  // namespace
}  // namespace strata::amd64::hyperv
