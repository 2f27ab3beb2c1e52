#include "arch/amd64/cpuid.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace strata::amd64 {
namespace {

constexpr uint32_t kSig = kCpuidFlagSignificantIndex;

// A hand-written KVM_GET_SUPPORTED_CPUID table in the shape KVM returns on a
// recent Intel host, with the AMD extended leaves a Zen host adds, so both
// policies have something to rewrite. Topology fields hold host values that
// must not survive.
std::vector<CpuidEntry> SyntheticSupported() {
  auto vendor = [](uint32_t fn, uint32_t eax) {
    CpuidEntry e{fn, 0, 0, eax, 0, 0, 0};
    SetVendorString(e, "GenuineIntel");
    return e;
  };
  return {
      vendor(0x0, 0x1f),
      // Family 6 model 0x8f; EBX: CLFLUSH 8, 64 logical, APIC id 0x12.
      // ECX: SSE3 PCLMUL VMX SSSE3 FMA CX16 PCID SSE4.1/2 x2APIC MOVBE
      // POPCNT AES XSAVE AVX F16C RDRAND hypervisor. EDX: the usual + HTT.
      {0x1, 0, 0, 0x000806f8, 0x12400800, 0xf6fa3223, 0x178bfbff},
      // Leaf 4: L1d, L1i, L2, L3, terminator; host says 64 cores, L3 shared
      // by 128.
      {0x4, 0, kSig, 0xfc004121, 0x02c0003f, 0x0000003f, 0},
      {0x4, 1, kSig, 0xfc004122, 0x01c0003f, 0x0000003f, 0},
      {0x4, 2, kSig, 0xfc01c143, 0x03c0003f, 0x000007ff, 0},
      {0x4, 3, kSig, 0xfc1fc163, 0x03c0003f, 0x0000bfff, 0x4},
      {0x4, 4, kSig, 0, 0, 0, 0},
      {0x7, 0, kSig, 0x1, 0xf1bf07ab, 0x1b415f6e, 0xa4010c10},
      {0x7, 1, kSig, 0x00001c30, 0, 0, 0},
      // Architectural PMU v2: 4 GP counters of 48 bits.
      {0xa, 0, 0, 0x07300402, 0, 0, 0x00000603},
      {0xb, 0, kSig, 1, 2, 0x100, 0x12},
      {0xb, 1, kSig, 7, 64, 0x201, 0x12},
      {0xd, 0, kSig, 0x000602e7, 0x00000a88, 0x00002b00, 0},
      {0xd, 1, kSig, 0x0000000f, 0, 0, 0},
      {0xd, 2, kSig, 0x00000100, 0x00000240, 0, 0},
      {0x1f, 0, kSig, 1, 2, 0x100, 0x12},
      {0x1f, 1, kSig, 7, 64, 0x201, 0x12},
      {0x40000000, 0, 0, 0x40000001, kKvmSignatureEbx, kKvmSignatureEcx,
       kKvmSignatureEdx},
      {0x40000001, 0, 0, 0x01007afb, 0, 0, 0},
      vendor(0x80000000, 0x80000021),
      // ECX: LAHF, CmpLegacy, SVM, ABM, PREFETCHW, TopoExt; EDX: SYSCALL NX
      // PDPE1GB RDTSCP LM.
      {0x80000001, 0, 0, 0, 0, 0x00400127, 0x2c100800},
      {0x80000008, 0, 0, 0x00003030, 0x0100d000, 0x0000707f, 0},
      {0x8000000a, 0, 0, 0x1, 0x8000, 0, 0x0001b6ff},
      {0x8000001d, 0, kSig, 0x00004121, 0x01c0003f, 0x3f, 0},
      {0x8000001d, 1, kSig, 0x00004143, 0x01c0003f, 0x3ff, 0x2},
      {0x8000001d, 2, kSig, 0x0003c163, 0x03c0003f, 0x7fff, 0x1},
      {0x8000001d, 3, kSig, 0, 0, 0, 0},
      {0x8000001e, 0, 0, 0x12, 0x0103, 0x0, 0},
  };
}

std::vector<CpuidEntry> Build(const CpuidOptions& o, uint32_t vcpu) {
  auto r = BuildGuestCpuid(SyntheticSupported(), o, vcpu);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? *r : std::vector<CpuidEntry>{};
}

const CpuidEntry& Leaf(const std::vector<CpuidEntry>& v, uint32_t fn,
                       uint32_t idx = 0) {
  static const CpuidEntry kMissing{0xdeadbeef, 0, 0, 0, 0, 0, 0};
  const CpuidEntry* e = FindLeaf(std::span<const CpuidEntry>(v), fn, idx);
  EXPECT_NE(e, nullptr) << "missing leaf " << std::hex << fn << "." << idx;
  return e != nullptr ? *e : kMissing;
}

bool Has(const std::vector<CpuidEntry>& v, uint32_t fn) {
  return FindLeaf(std::span<const CpuidEntry>(v), fn) != nullptr;
}

std::string VendorOf(const CpuidEntry& e) {
  char s[13] = {};
  std::memcpy(s, &e.ebx, 4);
  std::memcpy(s + 4, &e.edx, 4);
  std::memcpy(s + 8, &e.ecx, 4);
  return s;
}

CpuidOptions Opts(CpuVendor v, uint32_t s, uint32_t c, uint32_t t) {
  CpuidOptions o;
  o.vendor = v;
  o.topo = {s, c, t};
  return o;
}

// --- Vendors -----------------------------------------------------------------

TEST(CpuidVendor, ParseVendor) {
  EXPECT_EQ(*ParseVendor("intel"), CpuVendor::kIntel);
  EXPECT_EQ(*ParseVendor("Intel"), CpuVendor::kIntel);
  EXPECT_EQ(*ParseVendor("GenuineIntel"), CpuVendor::kIntel);
  EXPECT_EQ(*ParseVendor("amd"), CpuVendor::kAmd);
  EXPECT_EQ(*ParseVendor("AMD"), CpuVendor::kAmd);
  EXPECT_EQ(*ParseVendor("AuthenticAMD"), CpuVendor::kAmd);
  auto bad = ParseVendor("via");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("'via'"), std::string::npos);
  EXPECT_EQ(VendorName(CpuVendor::kAmd), "amd");
}

TEST(CpuidVendor, VendorFromCpuid) {
  auto t = SyntheticSupported();
  EXPECT_EQ(VendorFromCpuid(t), CpuVendor::kIntel);
  SetVendorString(t[0], "AuthenticAMD");
  EXPECT_EQ(VendorFromCpuid(t), CpuVendor::kAmd);
  SetVendorString(t[0], "CentaurHauls");
  EXPECT_EQ(VendorFromCpuid(t), CpuVendor::kIntel);
  EXPECT_EQ(VendorFromCpuid({}), CpuVendor::kIntel);
}

TEST(CpuidVendor, PoliciesMatchVendor) {
  auto intel = MakeVendorPolicy(CpuVendor::kIntel);
  auto amd = MakeVendorPolicy(CpuVendor::kAmd);
  EXPECT_EQ(intel->vendor(), CpuVendor::kIntel);
  EXPECT_EQ(amd->vendor(), CpuVendor::kAmd);
  EXPECT_EQ(intel->vendor_string(), "GenuineIntel");
  EXPECT_EQ(amd->vendor_string(), "AuthenticAMD");
  const std::vector<uint8_t> vmcall = {0x0f, 0x01, 0xc1};
  const std::vector<uint8_t> vmmcall = {0x0f, 0x01, 0xd9};
  EXPECT_EQ(std::vector<uint8_t>(intel->hypercall_insn().begin(),
                                 intel->hypercall_insn().end()),
            vmcall);
  EXPECT_EQ(std::vector<uint8_t>(amd->hypercall_insn().begin(),
                                 amd->hypercall_insn().end()),
            vmmcall);
}

// --- APIC ids ----------------------------------------------------------------

TEST(CpuidApicId, SingleCpu) {
  CpuTopology t;
  EXPECT_EQ(ApicIdFor(t, 0), 0u);
  EXPECT_EQ(SmtIdBits(t), 0u);
  EXPECT_EQ(CoreIdBits(t), 0u);
  // Extra vCPUs go into further packages.
  EXPECT_EQ(ApicIdFor(t, 3), 3u);
}

TEST(CpuidApicId, PowersOfTwoAreContiguous) {
  CpuTopology t{2, 4, 2};
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ(ApicIdFor(t, i), i);
  EXPECT_EQ(SmtIdBits(t), 1u);
  EXPECT_EQ(CoreIdBits(t), 2u);
}

TEST(CpuidApicId, ThreeCoresLeaveHoles) {
  // 2 sockets x 3 cores x 2 threads: core field is 2 bits wide, so package 1
  // starts at id 8 and ids 6, 7 are never used.
  CpuTopology t{2, 3, 2};
  const uint32_t want[] = {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13};
  for (uint32_t i = 0; i < 12; ++i) EXPECT_EQ(ApicIdFor(t, i), want[i]) << i;
  // One vCPU beyond the topology: package 2.
  EXPECT_EQ(ApicIdFor(t, 12), 16u);
}

TEST(CpuidApicId, ThreeThreadsPerCore) {
  CpuTopology t{1, 2, 3};
  const uint32_t want[] = {0, 1, 2, 4, 5, 6};
  for (uint32_t i = 0; i < 6; ++i) EXPECT_EQ(ApicIdFor(t, i), want[i]) << i;
}

// --- Vendor-neutral leaves ---------------------------------------------------

TEST(CpuidBuild, VendorStrings) {
  auto intel = Build(Opts(CpuVendor::kIntel, 1, 1, 1), 0);
  EXPECT_EQ(VendorOf(Leaf(intel, 0)), "GenuineIntel");
  EXPECT_EQ(VendorOf(Leaf(intel, 0x80000000)), "GenuineIntel");
  auto amd = Build(Opts(CpuVendor::kAmd, 1, 1, 1), 0);
  EXPECT_EQ(VendorOf(Leaf(amd, 0)), "AuthenticAMD");
  EXPECT_EQ(VendorOf(Leaf(amd, 0x80000000)), "AuthenticAMD");
  EXPECT_EQ(Leaf(amd, 0).eax, 0x1fu);  // max basic leaf kept
}

TEST(CpuidBuild, Leaf1SingleCpu) {
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    auto c = Build(Opts(v, 1, 1, 1), 0);
    const CpuidEntry& l1 = Leaf(c, 1);
    EXPECT_EQ(l1.ebx >> 24, 0u);             // APIC id
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 1u);    // logical count
    EXPECT_EQ(l1.ebx & 0xffff, 0x0800u);     // CLFLUSH size kept
    EXPECT_EQ(l1.edx & kLeaf1EdxHtt, 0u);
    EXPECT_EQ(l1.eax, 0x000806f8u);
    EXPECT_NE(l1.ecx & kLeaf1EcxHypervisor, 0u);
    EXPECT_NE(l1.ecx & kLeaf1EcxX2apic, 0u);
    EXPECT_NE(l1.ecx & kLeaf1EcxTscDeadline, 0u);
  }
}

TEST(CpuidBuild, Leaf1Topology) {
  // 2 sockets x 4 cores x 2 threads, vCPU 11: package 1, core 1, thread 1.
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    auto c = Build(Opts(v, 2, 4, 2), 11);
    const CpuidEntry& l1 = Leaf(c, 1);
    EXPECT_EQ(l1.ebx >> 24, 11u);
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 8u);
    EXPECT_NE(l1.edx & kLeaf1EdxHtt, 0u);
  }
  // 3 cores x 2 threads: addressable ids per package = 8, vCPU 6 = id 8.
  auto c = Build(Opts(CpuVendor::kIntel, 2, 3, 2), 6);
  EXPECT_EQ(Leaf(c, 1).ebx >> 24, 8u);
  EXPECT_EQ((Leaf(c, 1).ebx >> 16) & 0xff, 8u);
}

TEST(CpuidBuild, HypervisorBitAndLeaves) {
  auto on = Build(Opts(CpuVendor::kIntel, 1, 1, 1), 0);
  const CpuidEntry& sig = Leaf(on, 0x40000000);
  EXPECT_EQ(sig.eax, 0x40000001u);
  char name[13] = {};
  std::memcpy(name, &sig.ebx, 4);
  std::memcpy(name + 4, &sig.ecx, 4);
  std::memcpy(name + 8, &sig.edx, 4);
  EXPECT_STREQ(name, "KVMKVMKVM");
  EXPECT_EQ(Leaf(on, 0x40000001).eax, 0x01007afbu);  // KVM's PV features kept

  CpuidOptions o = Opts(CpuVendor::kAmd, 1, 1, 1);
  o.hypervisor_bit = false;
  auto off = Build(o, 0);
  EXPECT_EQ(Leaf(off, 1).ecx & kLeaf1EcxHypervisor, 0u);
  EXPECT_FALSE(Has(off, 0x40000000));
  EXPECT_FALSE(Has(off, 0x40000001));
}

TEST(CpuidBuild, HypervisorLeafWithoutKvmFeatures) {
  auto t = SyntheticSupported();
  EraseLeaf(t, 0x40000000);
  EraseLeaf(t, 0x40000001);
  auto c = BuildGuestCpuid(t, Opts(CpuVendor::kIntel, 1, 1, 1), 0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(Leaf(*c, 0x40000000).eax, 0x40000001u);
  EXPECT_EQ(Leaf(*c, 0x40000001).eax, 0u);
}

TEST(CpuidBuild, HypervLeavesMoveKvmsTo0x40000100) {
  CpuidOptions o = Opts(CpuVendor::kAmd, 1, 1, 1);
  for (uint32_t f = 0x40000000; f <= 0x40000005; ++f) {
    CpuidEntry e;
    e.function = f;
    e.eax = f == 0x40000000 ? 0x40000005 : 0x100 + f;
    o.hyperv_leaves.push_back(e);
  }
  auto c = Build(o, 0);
  EXPECT_EQ(Leaf(c, 0x40000000).eax, 0x40000005u);
  EXPECT_EQ(Leaf(c, 0x40000003).eax, 0x40000103u);
  // KVM's signature, its max leaf and its features one block up.
  const CpuidEntry& kvm = Leaf(c, 0x40000100);
  EXPECT_EQ(kvm.eax, 0x40000101u);
  EXPECT_EQ(kvm.ebx, kKvmSignatureEbx);
  EXPECT_EQ(kvm.ecx, kKvmSignatureEcx);
  EXPECT_EQ(kvm.edx, kKvmSignatureEdx);
  EXPECT_EQ(Leaf(c, 0x40000101).eax, 0x01007afbu);
  EXPECT_NE(Leaf(c, 1).ecx & kLeaf1EcxHypervisor, 0u);
  // Hyper-V without the hypervisor bit, or leaves out of the Hyper-V
  // block, are refused.
  o.hypervisor_bit = false;
  EXPECT_FALSE(BuildGuestCpuid(SyntheticSupported(), o, 0).has_value());
  o.hypervisor_bit = true;
  o.hyperv_leaves[1].function = 0x40000100;
  EXPECT_FALSE(BuildGuestCpuid(SyntheticSupported(), o, 0).has_value());
}

TEST(CpuidBuild, X2apicAndTscDeadlineOff) {
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    CpuidOptions o = Opts(v, 2, 4, 2);
    o.x2apic = false;
    o.tsc_deadline = false;
    auto c = Build(o, 0);
    EXPECT_EQ(Leaf(c, 1).ecx & kLeaf1EcxX2apic, 0u);
    EXPECT_EQ(Leaf(c, 1).ecx & kLeaf1EcxTscDeadline, 0u);
  }
  // The supported table lacks TSC-deadline (as KVM's does); it is added.
  auto t = SyntheticSupported();
  EXPECT_EQ(FindLeaf(std::span<const CpuidEntry>(t), 1)->ecx &
                kLeaf1EcxTscDeadline,
            0u);
}

TEST(CpuidBuild, PmuAndIndexedLeavesKept) {
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    auto c = Build(Opts(v, 1, 2, 1), 1);
    EXPECT_EQ(Leaf(c, 0xa).eax, 0x07300402u);
    EXPECT_EQ(Leaf(c, 7, 0).flags, kSig);
    EXPECT_EQ(Leaf(c, 7, 1).eax, 0x1c30u);
    EXPECT_EQ(Leaf(c, 0xd, 2).ebx, 0x240u);
    EXPECT_EQ(Leaf(c, 0xd, 1).flags, kSig);
  }
}

// --- Intel policy on the full table -----------------------------------------

TEST(CpuidIntel, ExtendedTopologyLeaves) {
  // 2 sockets x 4 cores x 2 threads, vCPU 13 = package 1, core 2, thread 1.
  auto c = Build(Opts(CpuVendor::kIntel, 2, 4, 2), 13);
  for (uint32_t fn : {0xbu, 0x1fu}) {
    const CpuidEntry& smt = Leaf(c, fn, 0);
    EXPECT_EQ(smt.flags, kSig);
    EXPECT_EQ(smt.eax, 1u);                 // shift to core id
    EXPECT_EQ(smt.ebx, 2u);                 // threads per core
    EXPECT_EQ(smt.ecx, (1u << 8) | 0);      // level type SMT
    EXPECT_EQ(smt.edx, 13u);
    const CpuidEntry& core = Leaf(c, fn, 1);
    EXPECT_EQ(core.eax, 3u);                // shift to package id
    EXPECT_EQ(core.ebx, 8u);                // logical per package
    EXPECT_EQ(core.ecx, (2u << 8) | 1);     // level type core
    EXPECT_EQ(core.edx, 13u);
    const CpuidEntry& end = Leaf(c, fn, 2);
    EXPECT_EQ(end.eax, 0u);
    EXPECT_EQ(end.ebx, 0u);
    EXPECT_EQ(end.ecx, 2u);                 // level type invalid
    EXPECT_EQ(end.edx, 13u);
  }
}

TEST(CpuidIntel, ExtendedTopologyNonPowerOfTwo) {
  // 2 x 3 x 2: vCPU 7 = package 1, core 0, thread 1 -> id 9; widths 1 and 3.
  auto c = Build(Opts(CpuVendor::kIntel, 2, 3, 2), 7);
  EXPECT_EQ(Leaf(c, 0xb, 0).eax, 1u);
  EXPECT_EQ(Leaf(c, 0xb, 1).eax, 3u);
  EXPECT_EQ(Leaf(c, 0xb, 1).ebx, 6u);
  EXPECT_EQ(Leaf(c, 0xb, 0).edx, 9u);
  EXPECT_EQ(Leaf(c, 1).ebx >> 24, 9u);
}

TEST(CpuidIntel, CacheLeaf4) {
  // 4 cores x 2 threads: EAX[31:26] = 3, L1/L2 shared by 2 ids, L3 by 8.
  auto c = Build(Opts(CpuVendor::kIntel, 2, 4, 2), 0);
  EXPECT_EQ(Leaf(c, 4, 0).eax, (3u << 26) | (1u << 14) | 0x121);
  EXPECT_EQ(Leaf(c, 4, 1).eax, (3u << 26) | (1u << 14) | 0x122);
  EXPECT_EQ(Leaf(c, 4, 2).eax, (3u << 26) | (1u << 14) | 0x143);
  EXPECT_EQ(Leaf(c, 4, 3).eax, (3u << 26) | (7u << 14) | 0x163);
  EXPECT_EQ(Leaf(c, 4, 3).ecx, 0xbfffu);  // cache geometry untouched
  EXPECT_EQ(Leaf(c, 4, 4).eax, 0u);       // terminator untouched
  // Single CPU: no sharing.
  auto one = Build(Opts(CpuVendor::kIntel, 1, 1, 1), 0);
  EXPECT_EQ(Leaf(one, 4, 3).eax, 0x163u);
}

TEST(CpuidIntel, HidesAmdFeatures) {
  auto c = Build(Opts(CpuVendor::kIntel, 1, 4, 2), 0);
  const CpuidEntry& ext = Leaf(c, 0x80000001);
  EXPECT_EQ(ext.ecx & kExtEcxSvm, 0u);
  EXPECT_EQ(ext.ecx & kExtEcxCmpLegacy, 0u);
  EXPECT_EQ(ext.ecx & kExtEcxTopoExt, 0u);
  EXPECT_EQ(ext.ecx, 0x121u);             // LAHF, ABM, PREFETCHW stay
  EXPECT_EQ(ext.edx, 0x2c100800u);
  EXPECT_EQ(Leaf(c, 0x80000008).ecx, 0u);
  EXPECT_EQ(Leaf(c, 0x80000008).eax, 0x3030u);
  EXPECT_EQ(Leaf(c, 0x80000000).eax, 0x80000008u);
  EXPECT_FALSE(Has(c, 0x8000000a));
  EXPECT_FALSE(Has(c, 0x8000001d));
  EXPECT_FALSE(Has(c, 0x8000001e));
  EXPECT_NE(Leaf(c, 1).ecx & kLeaf1EcxVmx, 0u);  // own virtualization kept
}

// --- AMD policy on the full table --------------------------------------------

TEST(CpuidAmd, HidesIntelFeatures) {
  auto c = Build(Opts(CpuVendor::kAmd, 1, 1, 1), 0);
  EXPECT_EQ(Leaf(c, 1).ecx & kLeaf1EcxVmx, 0u);
  EXPECT_FALSE(Has(c, 4));
  EXPECT_FALSE(Has(c, 0x1f));
  EXPECT_NE(Leaf(c, 0x80000001).ecx & kExtEcxSvm, 0u);  // own bit kept
  // AMD mirrors CPUID.1:EDX into 0x8000_0001:EDX.
  EXPECT_EQ(Leaf(c, 0x80000001).edx & kExtEdxAmdAliases,
            0x178bfbffu & kExtEdxAmdAliases);
  EXPECT_EQ(Leaf(c, 0x80000001).edx & 0x2c100800u, 0x2c100800u);
}

TEST(CpuidAmd, LegacyCoreCount) {
  // 2 x 4 x 2: 8 threads per package -> NC = 7, ApicIdCoreIdSize = 3.
  auto c = Build(Opts(CpuVendor::kAmd, 2, 4, 2), 9);
  EXPECT_NE(Leaf(c, 0x80000001).ecx & kExtEcxCmpLegacy, 0u);
  const CpuidEntry& sz = Leaf(c, 0x80000008);
  EXPECT_EQ(sz.ecx & 0xff, 7u);
  EXPECT_EQ((sz.ecx >> 12) & 0xf, 3u);
  EXPECT_EQ(sz.eax, 0x3030u);
  // 3 cores x 1 thread: NC = 2 but the core id takes 2 bits.
  auto c3 = Build(Opts(CpuVendor::kAmd, 1, 3, 1), 2);
  EXPECT_EQ(Leaf(c3, 0x80000008).ecx & 0xff, 2u);
  EXPECT_EQ((Leaf(c3, 0x80000008).ecx >> 12) & 0xf, 2u);
  // A single CPU: no CmpLegacy, NC = 0.
  auto one = Build(Opts(CpuVendor::kAmd, 1, 1, 1), 0);
  EXPECT_EQ(Leaf(one, 0x80000001).ecx & kExtEcxCmpLegacy, 0u);
  EXPECT_EQ(Leaf(one, 0x80000008).ecx & 0xf0ff, 0u);
}

TEST(CpuidAmd, ExtendedApicIdLeaf) {
  // 2 x 4 x 2, vCPU 13: package 1, core 2, thread 1, APIC id 13.
  auto c = Build(Opts(CpuVendor::kAmd, 2, 4, 2), 13);
  const CpuidEntry& e = Leaf(c, 0x8000001e);
  EXPECT_EQ(e.eax, 13u);
  EXPECT_EQ(e.ebx, (1u << 8) | 2u);
  EXPECT_EQ(e.ecx, 1u);
  EXPECT_EQ(Leaf(c, 0x80000000).eax, 0x80000021u);
  // Cache sharing: L1/L2 by the 2 threads, L3 by the package's 8.
  EXPECT_EQ((Leaf(c, 0x8000001d, 0).eax >> 14) & 0xfff, 1u);
  EXPECT_EQ((Leaf(c, 0x8000001d, 1).eax >> 14) & 0xfff, 1u);
  EXPECT_EQ((Leaf(c, 0x8000001d, 2).eax >> 14) & 0xfff, 7u);
  // Leaf 0xB on AMD too.
  EXPECT_EQ(Leaf(c, 0xb, 1).eax, 3u);
  EXPECT_EQ(Leaf(c, 0xb, 0).edx, 13u);
}

// --- Errors ------------------------------------------------------------------

TEST(CpuidBuild, Errors) {
  auto t = SyntheticSupported();
  auto zero = BuildGuestCpuid(t, Opts(CpuVendor::kIntel, 1, 0, 1), 0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(zero.error().message().find("0 cores"), std::string::npos);

  auto range = BuildGuestCpuid(t, Opts(CpuVendor::kIntel, 1, 2, 1), 2);
  ASSERT_FALSE(range.has_value());
  EXPECT_NE(range.error().message().find("vCPU index 2"), std::string::npos);

  // Extra vCPUs past the topology product are fine up to max_vcpus.
  CpuidOptions o = Opts(CpuVendor::kIntel, 1, 2, 1);
  o.max_vcpus = 5;
  auto extra = BuildGuestCpuid(t, o, 4);
  ASSERT_TRUE(extra.has_value());
  EXPECT_EQ(Leaf(*extra, 0xb, 0).edx, 4u);
  EXPECT_FALSE(BuildGuestCpuid(t, o, 5).has_value());

  auto no_leaf0 = t;
  EraseLeaf(no_leaf0, 0);
  auto r = BuildGuestCpuid(no_leaf0, Opts(CpuVendor::kAmd, 1, 1, 1), 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("no leaf 0"), std::string::npos);

  // 300 vCPUs need x2APIC.
  CpuidOptions big = Opts(CpuVendor::kIntel, 1, 300, 1);
  big.x2apic = false;
  auto xapic = BuildGuestCpuid(t, big, 0);
  ASSERT_FALSE(xapic.has_value());
  EXPECT_NE(xapic.error().message().find("x2APIC"), std::string::npos);
  big.x2apic = true;
  auto x2 = BuildGuestCpuid(t, big, 299);
  ASSERT_TRUE(x2.has_value());
  EXPECT_EQ(Leaf(*x2, 0xb, 0).edx, 299u);
  EXPECT_EQ(Leaf(*x2, 1).ebx >> 24, 299u & 0xff);
  EXPECT_EQ((Leaf(*x2, 1).ebx >> 16) & 0xff, 0xffu);  // 512 saturates
}

// KVM's table differs by host: an AMD host reports no leaf 0xB (nor 4 or
// 0x1F), an old one no 0x8000_001E, a minimal one hardly anything. Every
// policy then appends leaves and the table reallocates under it; under ASan
// a pointer kept across that is a heap-use-after-free. The hypervisor leaves
// are kept in the input so the neutral pass does not grow the vector first.
TEST(CpuidBuild, TablesThatMustGrow) {
  const std::vector<std::vector<uint32_t>> removals = {
      {0xb},
      {0x4, 0xb, 0x1f},
      {0x8000001e},
      {0x4, 0xb, 0x1f, 0x8000001e, 0x8000001d},
      {0x4, 0x7, 0xa, 0xb, 0xd, 0x1f, 0x80000008, 0x8000000a, 0x8000001d,
       0x8000001e},
  };
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    for (const auto& drop : removals) {
      auto t = SyntheticSupported();
      for (uint32_t fn : drop) EraseLeaf(t, fn);
      FindLeaf(t, 0x80000001)->edx = 0x2c100800;  // KVM on an Intel host
      for (uint32_t vcpu : {0u, 5u, 7u}) {
        SCOPED_TRACE(::testing::Message()
                     << VendorName(v) << " without " << drop.size()
                     << " leaves, vCPU " << vcpu);
        auto r = BuildGuestCpuid(t, Opts(v, 2, 2, 2), vcpu);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        EXPECT_EQ(Leaf(*r, 0xb, 0).edx, vcpu);
        EXPECT_EQ(Leaf(*r, 0xb, 1).ebx, 4u);
        EXPECT_EQ(Leaf(*r, 1).ebx >> 24, vcpu);
        if (v == CpuVendor::kAmd) {
          EXPECT_EQ(Leaf(*r, 0x80000001).edx,
                    0x2c100800u | (0x178bfbffu & kExtEdxAmdAliases));
          EXPECT_EQ(Leaf(*r, 0x8000001e).eax, vcpu);
        } else {
          EXPECT_EQ(Leaf(*r, 0x80000001).edx, 0x2c100800u & ~kExtEdxAmdAliases);
          EXPECT_FALSE(Has(*r, 0x8000001e));
        }
      }
    }
  }
}

TEST(CpuidBuild, CheckCpuidOptionsWithoutAHostTable) {
  CpuidOptions o = Opts(CpuVendor::kIntel, 2, 2, 2);
  EXPECT_TRUE(CheckCpuidOptions(o));
  // The product of three 32-bit counts needs more than 64 bits: no wrap.
  for (const CpuTopology& t :
       {CpuTopology{65536, 65536, 2}, CpuTopology{UINT32_MAX, 2, 1},
        CpuTopology{UINT32_MAX, UINT32_MAX, UINT32_MAX}}) {
    o.topo = t;
    auto r = CheckCpuidOptions(o);
    ASSERT_FALSE(r.has_value()) << t.sockets << "x" << t.cores << "x"
                                << t.threads;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(r.error().message().find("more than 2^32 - 1 logical"),
              std::string::npos)
        << r.error().message();
  }
  o.topo = {UINT32_MAX, 1, 1};
  o.max_vcpus = 1;
  EXPECT_TRUE(CheckCpuidOptions(o));  // APIC id 0 only
  o.topo = {1, 0, 1};
  EXPECT_FALSE(CheckCpuidOptions(o));
  o.topo = {1, 300, 1};
  o.max_vcpus = 0;
  o.x2apic = false;
  EXPECT_FALSE(CheckCpuidOptions(o));
}

// --- The host's KVM ----------------------------------------------------------

// Debian 12's linux-libc-dev declares kvm_cpuid2's flexible array with
// __DECLARE_FLEX_ARRAY, which in C++ (unlike C) wraps it next to an empty
// struct of size 1: sizeof(kvm_cpuid2) becomes 12, `entries` moves to offset
// 12, and the ioctl numbers derived from it make KVM answer EINVAL. Use the
// kernel's layout: an 8-byte header followed by the entries.
struct KvmCpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(kvm_cpuid_entry2) == 40);
constexpr unsigned long kKvmGetSupportedCpuid =
    _IOWR(KVMIO, 0x05, KvmCpuidHeader);
constexpr unsigned long kKvmSetCpuid2 = _IOW(KVMIO, 0x90, KvmCpuidHeader);

struct KvmCpuidBuffer {
  explicit KvmCpuidBuffer(uint32_t n)
      : bytes(sizeof(KvmCpuidHeader) + n * sizeof(kvm_cpuid_entry2)) {
    header()->nent = n;
  }
  KvmCpuidHeader* header() {
    return reinterpret_cast<KvmCpuidHeader*>(bytes.data());
  }
  kvm_cpuid_entry2* entries() {
    return reinterpret_cast<kvm_cpuid_entry2*>(bytes.data() +
                                               sizeof(KvmCpuidHeader));
  }
  std::vector<uint8_t> bytes;
};

std::vector<CpuidEntry> HostSupported(int kvm) {
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    KvmCpuidBuffer buf(n);
    if (ioctl(kvm, kKvmGetSupportedCpuid, buf.bytes.data()) == 0) {
      std::vector<CpuidEntry> out;
      for (uint32_t i = 0; i < buf.header()->nent; ++i) {
        const kvm_cpuid_entry2& e = buf.entries()[i];
        out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
      }
      return out;
    }
    if (errno != E2BIG) break;
  }
  ADD_FAILURE() << "KVM_GET_SUPPORTED_CPUID: " << std::strerror(errno);
  return {};
}

TEST(CpuidHostKvm, BuildsForBothVendorsAndKvmAcceptsIt) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    std::fprintf(stderr, "SKIPPED: /dev/kvm missing (%s)\n",
                 std::strerror(errno));
    GTEST_SKIP() << "SKIPPED: /dev/kvm missing";
  }
  std::vector<CpuidEntry> supported = HostSupported(kvm);
  ASSERT_FALSE(supported.empty());
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  ASSERT_GE(vm, 0) << std::strerror(errno);
  uint32_t vcpu_id = 0;
  for (CpuVendor v : {CpuVendor::kIntel, CpuVendor::kAmd}) {
    CpuidOptions o = Opts(v, 2, 2, 2);
    auto c = BuildGuestCpuid(supported, o, 5);
    ASSERT_TRUE(c.has_value()) << c.error().message();
    EXPECT_EQ(VendorOf(Leaf(*c, 0)),
              std::string(MakeVendorPolicy(v)->vendor_string()));
    EXPECT_EQ(Leaf(*c, 1).ebx >> 24, 5u);
    EXPECT_NE(Leaf(*c, 1).ecx & kLeaf1EcxHypervisor, 0u);
    EXPECT_EQ(Leaf(*c, 0xb, 0).edx, 5u);
    // KVM itself must accept the table on a fresh vCPU.
    int fd = ioctl(vm, KVM_CREATE_VCPU, vcpu_id++);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    KvmCpuidBuffer buf(static_cast<uint32_t>(c->size()));
    for (size_t i = 0; i < c->size(); ++i) {
      const CpuidEntry& e = (*c)[i];
      kvm_cpuid_entry2& k = buf.entries()[i];
      k = {};
      k.function = e.function;
      k.index = e.index;
      k.flags = e.flags;
      k.eax = e.eax;
      k.ebx = e.ebx;
      k.ecx = e.ecx;
      k.edx = e.edx;
    }
    EXPECT_EQ(ioctl(fd, kKvmSetCpuid2, buf.bytes.data()), 0)
        << VendorName(v) << ": KVM_SET_CPUID2: " << std::strerror(errno);
    close(fd);
  }
  close(vm);
  close(kvm);
}


// --- Named feature overrides (x86.cpu_features) -----------------------------

TEST(CpuidFeatures, Parse) {
  auto r = ParseCpuFeatures("+pcid,-xsave,umip=off,,invpcid=on");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].name, "pcid");
  EXPECT_TRUE((*r)[0].on);
  EXPECT_EQ((*r)[1].name, "xsave");
  EXPECT_FALSE((*r)[1].on);
  EXPECT_FALSE((*r)[2].on);
  EXPECT_TRUE((*r)[3].on);
  EXPECT_TRUE(ParseCpuFeatures("")->empty());
  auto unknown = ParseCpuFeatures("+pcid,+warp-drive");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(unknown.error().message().find("'warp-drive'"), std::string::npos);
  EXPECT_NE(unknown.error().message().find("invpcid"), std::string::npos);
  EXPECT_FALSE(ParseCpuFeatures("umip=maybe"));
  auto names = CpuFeatureNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(CpuidFeatures, OffClearsAndOnKeepsSupportedBits) {
  CpuidOptions o = Opts(CpuVendor::kIntel, 1, 1, 1);
  o.features = *ParseCpuFeatures("-pcid,-xsave,-invpcid,-umip,-rdtscp");
  auto v = Build(o, 0);
  EXPECT_EQ(Leaf(v, 1).ecx & (1u << 17), 0u);  // pcid
  EXPECT_EQ(Leaf(v, 1).ecx & (1u << 26), 0u);  // xsave
  EXPECT_EQ(Leaf(v, 7).ebx & (1u << 10), 0u);  // invpcid
  EXPECT_EQ(Leaf(v, 7).ecx & (1u << 2), 0u);   // umip
  EXPECT_EQ(Leaf(v, 0x80000001).edx & (1u << 27), 0u);  // rdtscp
  // Everything else as without overrides.
  auto plain = Build(Opts(CpuVendor::kIntel, 1, 1, 1), 0);
  EXPECT_EQ(Leaf(v, 1).ecx | (1u << 17) | (1u << 26), Leaf(plain, 1).ecx);
  EXPECT_EQ(Leaf(v, 7).eax, Leaf(plain, 7).eax);

  // Last one wins; "+" of a supported bit sets it again.
  o.features = *ParseCpuFeatures("-pcid,+pcid,+umip,+la57");
  v = Build(o, 0);
  EXPECT_NE(Leaf(v, 1).ecx & (1u << 17), 0u);
  EXPECT_NE(Leaf(v, 7).ecx & (1u << 2), 0u);
  EXPECT_NE(Leaf(v, 7).ecx & (1u << 16), 0u);
}

TEST(CpuidFeatures, OnNeedsKvmSupport) {
  CpuidOptions o = Opts(CpuVendor::kIntel, 1, 1, 1);
  o.features = *ParseCpuFeatures("+rtm");  // 7.0:EBX[11] absent above
  auto r = BuildGuestCpuid(SyntheticSupported(), o, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("+rtm (CPUID.7H.0:EBX[11])"),
            std::string::npos)
      << r.error().message();
  // A leaf the host table lacks entirely.
  auto t = SyntheticSupported();
  EraseLeaf(t, 0x8000000a);
  o.features = *ParseCpuFeatures("+npt");
  EXPECT_FALSE(BuildGuestCpuid(t, o, 0));
  // Turning off a bit of a missing leaf is fine.
  o.features = *ParseCpuFeatures("-npt");
  EXPECT_TRUE(BuildGuestCpuid(t, o, 0));
}


TEST(CpuidSpeculationMsrs, FollowTheGuestCpuid) {
  std::vector<CpuidEntry> v = {{0x7, 0, kSig, 0, 0, 0, 0},
                               {0x80000008, 0, 0, 0, 0, 0, 0}};
  EXPECT_EQ(UnenumeratedSpeculationMsrs(v),
            (std::vector<uint32_t>{kMsrSpecCtrl, kMsrPredCmd, kMsrFlushCmd}));
  v[0].edx = 1u << 26;  // SPEC_CTRL: IBRS and IBPB
  EXPECT_EQ(UnenumeratedSpeculationMsrs(v),
            (std::vector<uint32_t>{kMsrFlushCmd}));
  v[0].edx = 1u << 28;  // FLUSH_L1D only
  EXPECT_EQ(UnenumeratedSpeculationMsrs(v),
            (std::vector<uint32_t>{kMsrSpecCtrl, kMsrPredCmd}));
  v[0].edx = 0;
  v[1].ebx = 1u << 12;  // AMD IBPB: PRED_CMD only
  EXPECT_EQ(UnenumeratedSpeculationMsrs(v),
            (std::vector<uint32_t>{kMsrSpecCtrl, kMsrFlushCmd}));
  v[1].ebx = 1u << 24;  // AMD SSBD: SPEC_CTRL
  EXPECT_EQ(UnenumeratedSpeculationMsrs(v),
            (std::vector<uint32_t>{kMsrPredCmd, kMsrFlushCmd}));
  // No leaves at all: nothing is enumerated.
  EXPECT_EQ(UnenumeratedSpeculationMsrs({}).size(), 3u);
}


TEST(CpuidFeatures, MissingFeaturesAreThePlusFlagsKvmLacks) {
  auto f = *ParseCpuFeatures("+pcid,+rtm,-skinit,+skinit,+umip");
  EXPECT_EQ(MissingFeatures(SyntheticSupported(), f),
            (std::vector<std::string>{"rtm", "skinit"}));
  EXPECT_TRUE(MissingFeatures(SyntheticSupported(), {}).empty());
}

}  // namespace
}  // namespace strata::amd64
