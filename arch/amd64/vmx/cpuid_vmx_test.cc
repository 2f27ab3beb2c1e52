#include "arch/amd64/vmx/cpuid_vmx.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "machine/vmmapi_machdep.h"

namespace strata::amd64::vmx {
namespace {

constexpr uint32_t kSig = kCpuidFlagSignificantIndex;

// A small Intel-host table: max basic leaf 7 (so 0xB must be added), no 0x1F,
// a 3-level cache, and AMD bits KVM might pass through.
std::vector<CpuidEntry> SmallTable() {
  CpuidEntry l0{0x0, 0, 0, 0x7, 0, 0, 0};
  SetVendorString(l0, "GenuineIntel");
  CpuidEntry e0{0x80000000, 0, 0, 0x8000001f, 0, 0, 0};
  return {
      l0,
      {0x1, 0, 0, 0x000306c3, 0x00010800, 0x80202021, 0x078bfbff},
      {0x4, 0, kSig, 0x00000121, 0x01c0003f, 0x3f, 0},
      {0x4, 1, kSig, 0x00000143, 0x01c0003f, 0x1ff, 0},
      {0x4, 2, kSig, 0x00000163, 0x02c0003f, 0x1fff, 0x6},
      {0x4, 3, kSig, 0, 0, 0, 0},
      e0,
      {0x80000001, 0, 0, 0, 0, 0x00400007, 0x2c1bfbff},
      {0x80000008, 0, 0, 0x3027, 0, 0x3003, 0},
      {0x8000000a, 0, 0, 1, 0x10, 0, 0x1},
      {0x8000001e, 0, 0, 5, 0x100, 0, 0},
      {0x8000001f, 0, 0, 0, 0, 0, 0},
  };
}

const CpuidEntry* Find(const std::vector<CpuidEntry>& v, uint32_t fn,
                       uint32_t idx = 0) {
  return FindLeaf(std::span<const CpuidEntry>(v), fn, idx);
}

CpuidOptions Topo(uint32_t s, uint32_t c, uint32_t t) {
  CpuidOptions o;
  o.vendor = CpuVendor::kIntel;
  o.topo = {s, c, t};
  return o;
}

TEST(IntelCpuidPolicy, Identity) {
  IntelCpuidPolicy p;
  EXPECT_EQ(p.vendor(), CpuVendor::kIntel);
  EXPECT_EQ(p.vendor_string(), "GenuineIntel");
  ASSERT_EQ(p.hypercall_insn().size(), 3u);
  EXPECT_EQ(p.hypercall_insn()[0], 0x0f);
  EXPECT_EQ(p.hypercall_insn()[1], 0x01);
  EXPECT_EQ(p.hypercall_insn()[2], 0xc1);
  auto msrs = p.vendor_msrs();
  EXPECT_NE(std::find(msrs.begin(), msrs.end(), md::kMsrIa32FeatureControl),
            msrs.end());
  EXPECT_NE(std::find(msrs.begin(), msrs.end(), md::kMsrIa32MiscEnable),
            msrs.end());
}

TEST(IntelCpuidPolicy, AddsLeafBAndRaisesMaxBasicLeaf) {
  auto t = SmallTable();
  IntelCpuidPolicy().Apply(t, Topo(1, 3, 1), 2);
  EXPECT_EQ(Find(t, 0)->eax, 0xbu);
  ASSERT_NE(Find(t, 0xb, 0), nullptr);
  EXPECT_EQ(Find(t, 0xb, 0)->eax, 0u);       // no SMT bits
  EXPECT_EQ(Find(t, 0xb, 0)->ebx, 1u);
  EXPECT_EQ(Find(t, 0xb, 1)->eax, 2u);       // 3 cores need 2 bits
  EXPECT_EQ(Find(t, 0xb, 1)->ebx, 3u);
  EXPECT_EQ(Find(t, 0xb, 1)->edx, 2u);
  EXPECT_EQ(Find(t, 0x1f), nullptr);         // not offered, not invented
}

TEST(IntelCpuidPolicy, Leaf4ThreeCores) {
  auto t = SmallTable();
  IntelCpuidPolicy().Apply(t, Topo(1, 3, 1), 0);
  EXPECT_EQ(Find(t, 4, 0)->eax, (3u << 26) | 0x121u);
  EXPECT_EQ(Find(t, 4, 1)->eax, (3u << 26) | 0x143u);
  EXPECT_EQ(Find(t, 4, 2)->eax, (3u << 26) | (3u << 14) | 0x163u);
  EXPECT_EQ(Find(t, 4, 3)->eax, 0u);
}

TEST(IntelCpuidPolicy, Leaf4SaturatesWideTopologies) {
  // 128 cores x 2 threads: the 6-bit core field saturates at 63; the L3
  // sharing field holds 255.
  auto t = SmallTable();
  IntelCpuidPolicy().Apply(t, Topo(1, 128, 2), 0);
  EXPECT_EQ(Find(t, 4, 2)->eax >> 26, 63u);
  EXPECT_EQ((Find(t, 4, 2)->eax >> 14) & 0xfff, 255u);
  EXPECT_EQ((Find(t, 4, 0)->eax >> 14) & 0xfff, 1u);
}

TEST(IntelCpuidPolicy, RemovesAmdLeavesAndBits) {
  auto t = SmallTable();
  IntelCpuidPolicy().Apply(t, Topo(1, 1, 1), 0);
  EXPECT_EQ(Find(t, 0x80000000)->eax, 0x80000008u);
  EXPECT_EQ(Find(t, 0x8000000a), nullptr);
  EXPECT_EQ(Find(t, 0x8000001e), nullptr);
  EXPECT_EQ(Find(t, 0x8000001f), nullptr);
  const CpuidEntry* ext = Find(t, 0x80000001);
  EXPECT_EQ(ext->ecx, 0x1u);                  // LAHF only
  // SYSCALL, MP (19), NX, PDPE1GB, RDTSCP, LM stay; the aliases go.
  EXPECT_EQ(ext->edx, 0x2c180800u);
  EXPECT_EQ(Find(t, 0x80000008)->ecx, 0u);
  EXPECT_EQ(Find(t, 0x80000008)->eax, 0x3027u);
  EXPECT_NE(Find(t, 1)->ecx & kLeaf1EcxVmx, 0u);
}

TEST(IntelCpuidPolicy, LowMaxExtendedLeafIsNotRaised) {
  auto t = SmallTable();
  FindLeaf(t, 0x80000000)->eax = 0x80000004;
  IntelCpuidPolicy().Apply(t, Topo(1, 1, 1), 0);
  EXPECT_EQ(Find(t, 0x80000000)->eax, 0x80000004u);
}

TEST(IntelCpuidPolicy, RewritesLeaf1FWhenOffered) {
  auto t = SmallTable();
  FindLeaf(t, 0)->eax = 0x1f;
  t.push_back({0x1f, 0, kSig, 1, 2, 0x100, 7});
  t.push_back({0x1f, 1, kSig, 6, 32, 0x201, 7});
  t.push_back({0x1f, 2, kSig, 9, 64, 0x502, 7});  // a die level: dropped
  IntelCpuidPolicy().Apply(t, Topo(2, 2, 2), 6);
  EXPECT_EQ(Find(t, 0)->eax, 0x1fu);
  EXPECT_EQ(Find(t, 0x1f, 0)->eax, 1u);
  EXPECT_EQ(Find(t, 0x1f, 1)->eax, 2u);
  EXPECT_EQ(Find(t, 0x1f, 1)->ebx, 4u);
  EXPECT_EQ(Find(t, 0x1f, 2)->ecx, 2u);        // invalid level ends the list
  EXPECT_EQ(Find(t, 0x1f, 2)->edx, 6u);
  EXPECT_EQ(std::count_if(t.begin(), t.end(),
                          [](const CpuidEntry& e) { return e.function == 0x1f; }),
            3);
}


// Apply appends leaf 0xB (and 0x1F) levels; with no spare capacity the
// vector reallocates, so nothing looked up before may be used after (under
// ASan a stale pointer is a heap-use-after-free report).
TEST(IntelCpuidPolicy, GrowsATableWithoutLeafB) {
  for (uint32_t vcpu : {0u, 3u}) {
    auto t = SmallTable();
    EraseLeaf(t, 0x4);
    t.push_back({0x1f, 0, kSig, 1, 2, 0x100, 9});
    t.shrink_to_fit();
    IntelCpuidPolicy().Apply(t, Topo(1, 2, 2), vcpu);
    ASSERT_NE(Find(t, 0xb, 2), nullptr);
    ASSERT_NE(Find(t, 0x1f, 2), nullptr);
    EXPECT_EQ(Find(t, 0xb, 0)->edx, vcpu);
    EXPECT_EQ(Find(t, 0x1f, 1)->edx, vcpu);
    EXPECT_EQ(Find(t, 0)->eax, 0xbu);
    EXPECT_EQ(Find(t, 0x80000001)->ecx & kExtEcxSvm, 0u);
    EXPECT_EQ(Find(t, 0x8000001e), nullptr);
  }
}

}  // namespace
}  // namespace strata::amd64::vmx
