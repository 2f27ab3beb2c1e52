#include "arch/amd64/svm/cpuid_svm.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace strata::amd64::svm {
namespace {

constexpr uint32_t kSig = kCpuidFlagSignificantIndex;

// A small AMD-host table: Zen-like, TopoExt offered, 0x8000_001E present.
std::vector<CpuidEntry> SmallTable() {
  CpuidEntry l0{0x0, 0, 0, 0x10, 0, 0, 0};
  SetVendorString(l0, "AuthenticAMD");
  CpuidEntry e0{0x80000000, 0, 0, 0x80000020, 0, 0, 0};
  SetVendorString(e0, "AuthenticAMD");
  return {
      l0,
      {0x1, 0, 0, 0x00a00f11, 0x00100800, 0xfef83203 | kLeaf1EcxVmx,
       0x178bfbff},
      {0x4, 0, kSig, 0x121, 0, 0, 0},
      {0x7, 0, kSig, 0, 0x219c91a9, 0, 0},
      {0xb, 0, kSig, 1, 2, 0x100, 9},
      {0xd, 0, kSig, 0x207, 0x340, 0x988, 0},
      {0x1f, 0, kSig, 1, 2, 0x100, 9},
      e0,
      {0x80000001, 0, 0, 0x00a00f11, 0, 0x75c237ff, 0x2fd3fbff},
      {0x80000008, 0, 0, 0x3030, 0x0100d000, 0x0001700f, 0},
      {0x8000001d, 0, kSig, 0x00004121, 0x01c0003f, 0x3f, 0},
      {0x8000001d, 1, kSig, 0x00004143, 0x01c0003f, 0x3ff, 0x2},
      {0x8000001d, 2, kSig, 0x0003c163, 0x03c0003f, 0x7fff, 0x1},
      {0x8000001d, 3, kSig, 0, 0, 0, 0},
      {0x8000001e, 0, 0, 9, 0x104, 0x3, 0},
  };
}

const CpuidEntry* Find(const std::vector<CpuidEntry>& v, uint32_t fn,
                       uint32_t idx = 0) {
  return FindLeaf(std::span<const CpuidEntry>(v), fn, idx);
}

CpuidOptions Topo(uint32_t s, uint32_t c, uint32_t t) {
  CpuidOptions o;
  o.vendor = CpuVendor::kAmd;
  o.topo = {s, c, t};
  return o;
}

TEST(AmdCpuidPolicy, Identity) {
  AmdCpuidPolicy p;
  EXPECT_EQ(p.vendor(), CpuVendor::kAmd);
  EXPECT_EQ(p.vendor_string(), "AuthenticAMD");
  ASSERT_EQ(p.hypercall_insn().size(), 3u);
  EXPECT_EQ(p.hypercall_insn()[0], 0x0f);
  EXPECT_EQ(p.hypercall_insn()[1], 0x01);
  EXPECT_EQ(p.hypercall_insn()[2], 0xd9);
  auto msrs = p.vendor_msrs();
  for (uint32_t m : {0xc0010015u, 0xc0010114u, 0xc0010010u}) {
    EXPECT_NE(std::find(msrs.begin(), msrs.end(), m), msrs.end()) << m;
  }
}

TEST(AmdCpuidPolicy, HidesIntelLeavesAndBits) {
  auto t = SmallTable();
  AmdCpuidPolicy().Apply(t, Topo(1, 1, 1), 0);
  EXPECT_EQ(Find(t, 1)->ecx & kLeaf1EcxVmx, 0u);
  EXPECT_EQ(Find(t, 4), nullptr);
  EXPECT_EQ(Find(t, 0x1f), nullptr);
  EXPECT_NE(Find(t, 0x80000001)->ecx & kExtEcxSvm, 0u);
  EXPECT_EQ(Find(t, 0xd, 0)->ebx, 0x340u);    // untouched
}

TEST(AmdCpuidPolicy, ThreadsOnly) {
  // 1 core x 2 threads: NC = 1, ApicIdCoreIdSize = 1, CmpLegacy on.
  auto t = SmallTable();
  AmdCpuidPolicy().Apply(t, Topo(1, 1, 2), 1);
  EXPECT_NE(Find(t, 0x80000001)->ecx & kExtEcxCmpLegacy, 0u);
  EXPECT_EQ(Find(t, 0x80000008)->ecx, 0x00011001u);  // PerfTscSize kept
  EXPECT_EQ(Find(t, 0x8000001e)->eax, 1u);
  EXPECT_EQ(Find(t, 0x8000001e)->ebx, 0x100u);
  EXPECT_EQ(Find(t, 0xb, 0)->edx, 1u);
  EXPECT_EQ(Find(t, 0xb, 0)->eax, 1u);
}

TEST(AmdCpuidPolicy, SingleCpuClearsCmpLegacy) {
  auto t = SmallTable();
  AmdCpuidPolicy().Apply(t, Topo(1, 1, 1), 0);
  EXPECT_EQ(Find(t, 0x80000001)->ecx & kExtEcxCmpLegacy, 0u);
  EXPECT_EQ(Find(t, 0x80000008)->ecx & 0xf0ff, 0u);
  EXPECT_EQ((Find(t, 0x8000001d, 2)->eax >> 14) & 0xfff, 0u);
}

TEST(AmdCpuidPolicy, ThreeCoresExtendedApicId) {
  // 3 sockets x 3 cores x 1 thread, vCPU 7: package 2, core 1, APIC id 9.
  auto t = SmallTable();
  AmdCpuidPolicy().Apply(t, Topo(3, 3, 1), 7);
  const CpuidEntry* e = Find(t, 0x8000001e);
  EXPECT_EQ(e->eax, 9u);
  EXPECT_EQ(e->ebx, 1u);                      // 1 thread per unit, unit 1
  EXPECT_EQ(e->ecx, 2u);                      // node 2
  EXPECT_EQ(Find(t, 0x80000008)->ecx & 0xff, 2u);
  EXPECT_EQ((Find(t, 0x80000008)->ecx >> 12) & 0xf, 2u);
  EXPECT_EQ((Find(t, 0x8000001d, 2)->eax >> 14) & 0xfff, 2u);
}

TEST(AmdCpuidPolicy, NoTopoExtMeansNoTopoExtLeaves) {
  auto t = SmallTable();
  FindLeaf(t, 0x80000001)->ecx &= ~kExtEcxTopoExt;
  AmdCpuidPolicy().Apply(t, Topo(1, 4, 2), 3);
  EXPECT_EQ(Find(t, 0x8000001e), nullptr);
  EXPECT_EQ(Find(t, 0x8000001d), nullptr);
  EXPECT_EQ(Find(t, 0x80000008)->ecx & 0xff, 7u);
}

TEST(AmdCpuidPolicy, TopoExtAddsMissingLeafAndRange) {
  auto t = SmallTable();
  EraseLeaf(t, 0x8000001e);
  FindLeaf(t, 0x80000000)->eax = 0x80000008;
  AmdCpuidPolicy().Apply(t, Topo(1, 2, 1), 1);
  ASSERT_NE(Find(t, 0x8000001e), nullptr);
  EXPECT_EQ(Find(t, 0x8000001e)->eax, 1u);
  EXPECT_EQ(Find(t, 0x80000000)->eax, 0x8000001eu);
}

TEST(AmdCpuidPolicy, MirrorsLeaf1Edx) {
  auto t = SmallTable();
  FindLeaf(t, 0x80000001)->edx = 0x2c100800;  // as KVM on an Intel host
  AmdCpuidPolicy().Apply(t, Topo(1, 1, 1), 0);
  EXPECT_EQ(Find(t, 0x80000001)->edx,
            0x2c100800u | (0x178bfbffu & kExtEdxAmdAliases));
}


// On an AMD host KVM's supported table has no leaf 0xB (nor 4 or 0x1F), so
// Apply must append the topology levels and the vector reallocates: nothing
// Apply looked up before may be used after. shrink_to_fit leaves no spare
// capacity, so under ASan a stale pointer is a heap-use-after-free report.
std::vector<CpuidEntry> TableWithout(std::initializer_list<uint32_t> leaves) {
  auto t = SmallTable();
  for (uint32_t fn : leaves) EraseLeaf(t, fn);
  t.shrink_to_fit();
  return t;
}

TEST(AmdCpuidPolicy, GrowsATableWithoutLeafB) {
  for (uint32_t vcpu : {0u, 1u, 5u}) {
    auto t = TableWithout({0x4, 0xb, 0x1f});
    FindLeaf(t, 0x80000001)->edx = 0x2c100800;  // as KVM on an Intel host
    t.shrink_to_fit();
    AmdCpuidPolicy().Apply(t, Topo(2, 2, 2), vcpu);
    ASSERT_NE(Find(t, 0xb, 0), nullptr);
    ASSERT_NE(Find(t, 0xb, 2), nullptr);
    EXPECT_EQ(Find(t, 0xb, 0)->edx, vcpu);
    EXPECT_EQ(Find(t, 0x80000001)->edx,
              0x2c100800u | (0x178bfbffu & kExtEdxAmdAliases));
    EXPECT_EQ(Find(t, 1)->ecx & kLeaf1EcxVmx, 0u);
  }
}

TEST(AmdCpuidPolicy, GrowsATableWithoutTheTopoExtLeaf) {
  auto t = TableWithout({0x4, 0xb, 0x1f, 0x8000001e});
  AmdCpuidPolicy().Apply(t, Topo(1, 4, 1), 3);
  ASSERT_NE(Find(t, 0x8000001e), nullptr);
  EXPECT_EQ(Find(t, 0x8000001e)->eax, 3u);
  EXPECT_EQ(Find(t, 0x8000001e)->ebx, 3u);  // 1 thread per unit, unit 3
  EXPECT_EQ(Find(t, 0xb, 1)->ebx, 4u);
}

TEST(AmdCpuidPolicy, GrowsAMinimalTable) {
  // Only what BuildGuestCpuid requires plus the extended feature leaf.
  CpuidEntry l0{0x0, 0, 0, 0x1, 0, 0, 0};
  SetVendorString(l0, "AuthenticAMD");
  std::vector<CpuidEntry> t = {
      l0,
      {0x1, 0, 0, 0x00a00f11, 0, 0, 0x178bfbff},
      {0x80000001, 0, 0, 0, 0, kExtEcxTopoExt, 0},
  };
  t.shrink_to_fit();
  AmdCpuidPolicy().Apply(t, Topo(1, 2, 2), 3);
  EXPECT_EQ(Find(t, 0)->eax, 0xbu);
  EXPECT_EQ(Find(t, 0x80000001)->edx, 0x178bfbffu & kExtEdxAmdAliases);
  ASSERT_NE(Find(t, 0x8000001e), nullptr);
  EXPECT_EQ(Find(t, 0x8000001e)->eax, 3u);
}

}  // namespace
}  // namespace strata::amd64::svm
