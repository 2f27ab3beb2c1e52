#include "arch/amd64/cpu_models.h"

#include <gtest/gtest.h>

namespace strata::amd64 {
namespace {

constexpr uint32_t kSig = kCpuidFlagSignificantIndex;

// A KVM_GET_SUPPORTED_CPUID table of a recent host (the shape of
// cpuid_test.cc's): more than any model here asks for.
std::vector<CpuidEntry> Supported() {
  auto vendor = [](uint32_t fn, uint32_t eax) {
    CpuidEntry e{fn, 0, 0, eax, 0, 0, 0};
    SetVendorString(e, "AuthenticAMD");
    return e;
  };
  return {
      vendor(0x0, 0x1f),
      {0x1, 0, 0, 0x00830f10, 0x00400800, 0xf6fa3223, 0x178bfbff},
      {0x5, 0, 0, 0x40, 0x40, 0x3, 0x11},
      {0x6, 0, 0, 0x4, 0, 0, 0},
      {0x7, 0, kSig, 0x1, 0xf1bf07ab, 0x1b415f6e, 0xa4010c10},
      {0x7, 1, kSig, 0x00001c30, 0, 0, 0},
      {0xa, 0, 0, 0x07300402, 0, 0, 0x00000603},
      {0xd, 0, kSig, 0x000602e7, 0x00000a88, 0x00002b00, 0},
      {0xd, 1, kSig, 0x0000000f, 0, 0, 0},
      {0xd, 2, kSig, 0x00000100, 0x00000240, 0, 0},
      {0xd, 5, kSig, 0x00000040, 0x00000440, 0, 0},
      {0x1f, 0, kSig, 1, 2, 0x100, 0x12},
      {0x40000000, 0, 0, 0x40000001, kKvmSignatureEbx, kKvmSignatureEcx,
       kKvmSignatureEdx},
      {0x40000001, 0, 0, 0x01007afb, 0, 0, 0},
      vendor(0x80000000, 0x80000021),
      // ECX: LAHF, CmpLegacy, SVM, ABM, PREFETCHW, TopoExt; EDX: SYSCALL NX
      // PDPE1GB RDTSCP LM.
      {0x80000001, 0, 0, 0, 0, 0x00400127, 0x2c100800},
      {0x80000007, 0, 0, 0, 0, 0, 0x100},
      {0x80000008, 0, 0, 0x00003030, 0x0100d000, 0x0000707f, 0},
      {0x8000000a, 0, 0, 0x1, 0x8000, 0, 0x0001b6ff},
      {0x80000021, 0, 0, 0x45, 0, 0, 0},
      {0xc0000000, 0, 0, 0xc0000001, 0, 0, 0},
  };
}

const CpuidEntry* Leaf(const std::vector<CpuidEntry>& v, uint32_t fn,
                       uint32_t idx = 0) {
  return FindLeaf(std::span<const CpuidEntry>(v), fn, idx);
}

std::vector<CpuidEntry> Guest(const char* model, CpuVendor vendor) {
  CpuidOptions o;
  o.model = FindCpuModel(model);
  EXPECT_NE(o.model, nullptr) << model;
  o.vendor = vendor;
  auto r = BuildGuestCpuid(Supported(), o, 0);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : std::vector<CpuidEntry>{};
}

TEST(CpuModels, NamesAreQemus) {
  EXPECT_EQ(CpuModelNames(),
            (std::vector<std::string_view>{"Opteron_G1", "Opteron_G2",
                                           "SandyBridge", "IvyBridge"}));
  EXPECT_EQ(FindCpuModel("opteron_g1"), nullptr);  // exact, as QEMU
  EXPECT_EQ(FindCpuModel("host"), nullptr);
}

TEST(CpuModels, Signature) {
  EXPECT_EQ(CpuSignature(6, 58, 9), 0x000306a9u);   // Ivy Bridge
  EXPECT_EQ(CpuSignature(6, 42, 1), 0x000206a1u);   // Sandy Bridge
  EXPECT_EQ(CpuSignature(15, 6, 1), 0x00000f61u);   // Opteron (K8)
  EXPECT_EQ(CpuSignature(0x17, 0x31, 0), 0x00830f10u);  // Zen 2
}

// kvm-unit-tests' syscall test runs on -cpu Opteron_G1,vendor=AuthenticAMD.
TEST(CpuModels, OpteronG1IsAK8) {
  const std::vector<CpuidEntry> g = Guest("Opteron_G1", CpuVendor::kAmd);
  const CpuidEntry* l1 = Leaf(g, 0x1);
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(l1->eax, 0x00000f61u);
  EXPECT_EQ(l1->edx, 0x078bfbffu);  // no HTT with one thread
  // SSE3 from the model; x2APIC, TSC deadline and the hypervisor bit are
  // strata's own knobs, on by default.
  EXPECT_EQ(l1->ecx, (1u << 0) | kLeaf1EcxX2apic | kLeaf1EcxTscDeadline |
                         kLeaf1EcxHypervisor);
  // Level 5, raised to 0xB by the AMD policy's topology leaf.
  EXPECT_EQ(Leaf(g, 0x0)->eax, 0xbu);
  EXPECT_NE(Leaf(g, 0x5), nullptr);
  EXPECT_NE(Leaf(g, 0xb), nullptr);
  for (uint32_t gone : {0x6u, 0x7u, 0xau, 0xdu, 0x1fu, 0x8000000au,
                        0x80000021u, 0xc0000000u}) {
    EXPECT_EQ(Leaf(g, gone), nullptr) << std::hex << gone;
  }
  EXPECT_EQ(Leaf(g, 0x80000000)->eax, 0x80000008u);
  const CpuidEntry* ext = Leaf(g, 0x80000001);
  ASSERT_NE(ext, nullptr);
  // LM NX SYSCALL, and the CPUID.1:EDX bits AMD repeats (the policy).
  EXPECT_EQ(ext->edx, 0x20100800u | (0x078bfbffu & kExtEdxAmdAliases));
  EXPECT_EQ(ext->ecx & (kExtEcxSvm | kExtEcxTopoExt), 0u);
  EXPECT_EQ(Leaf(g, 0x80000007)->edx, 0u);
  EXPECT_EQ(Leaf(g, 0x80000008)->ebx, 0u);
  EXPECT_EQ(Leaf(g, 0x80000008)->eax, 0x00003030u);  // address sizes kept
  EXPECT_EQ(BrandString(g), "AMD Opteron 240 (Gen 1 Class Opteron)");
  // The KVM leaves are strata's as always.
  EXPECT_EQ(Leaf(g, 0x40000000)->ebx, kKvmSignatureEbx);
}

TEST(CpuModels, OpteronG2KeepsSvmAndItsLeaf) {
  const std::vector<CpuidEntry> g = Guest("Opteron_G2", CpuVendor::kAmd);
  EXPECT_NE(Leaf(g, 0x80000001)->ecx & kExtEcxSvm, 0u);
  EXPECT_EQ(Leaf(g, 0x80000000)->eax, 0x8000000au);
  EXPECT_NE(Leaf(g, 0x8000000a), nullptr);
  EXPECT_EQ(Leaf(g, 0x1)->ecx & (1u << 13), 1u << 13);  // CX16
}

TEST(CpuModels, IvyBridgeKeepsOnlyItsFeatures) {
  const std::vector<CpuidEntry> g = Guest("IvyBridge", CpuVendor::kIntel);
  EXPECT_EQ(Leaf(g, 0x1)->eax, 0x000306a9u);
  EXPECT_EQ(Leaf(g, 0x0)->eax, 0xdu);
  const CpuidEntry* l7 = Leaf(g, 0x7, 0);
  ASSERT_NE(l7, nullptr);
  EXPECT_EQ(l7->eax, 0u);
  EXPECT_EQ(l7->ebx, 0x281u);  // FSGSBASE SMEP ERMS
  EXPECT_EQ(l7->ecx, 0u);
  EXPECT_EQ(l7->edx, 0u);
  EXPECT_EQ(Leaf(g, 0x7, 1), nullptr);
  EXPECT_EQ(Leaf(g, 0x6)->eax, 0x4u);  // ARAT
  // XSAVE: x87, SSE and AVX; the size covers AVX's 256 bytes at 576.
  const CpuidEntry* x0 = Leaf(g, 0xd, 0);
  ASSERT_NE(x0, nullptr);
  EXPECT_EQ(x0->eax, 0x7u);
  EXPECT_EQ(x0->edx, 0u);
  EXPECT_EQ(x0->ecx, 0x340u);
  EXPECT_EQ(Leaf(g, 0xd, 1)->eax, 0x1u);  // XSAVEOPT only
  EXPECT_NE(Leaf(g, 0xd, 2), nullptr);
  EXPECT_EQ(Leaf(g, 0xd, 5), nullptr);    // AVX-512 state goes
  EXPECT_EQ(Leaf(g, 0xa), nullptr);       // no vPMU
  EXPECT_EQ(Leaf(g, 0x80000001)->ecx & 1u, 1u);        // LAHF_LM
  EXPECT_EQ(Leaf(g, 0x80000001)->edx, 0x28100800u);    // LM RDTSCP NX SYSCALL
  EXPECT_EQ(BrandString(g), "Intel Xeon E3-12xx v2 (Ivy Bridge)");
}

TEST(CpuModels, BitsTheHostLacksAreReported) {
  std::vector<CpuidEntry> host = Supported();
  FindLeaf(host, 0x1)->ecx &= ~(1u << 28);  // no AVX
  FindLeaf(host, 0x7, 0)->ebx &= ~1u;       // no FSGSBASE
  std::vector<CpuidEntry> leaves = host;
  const std::vector<std::string> missing =
      ApplyCpuModel(leaves, *FindCpuModel("IvyBridge"));
  EXPECT_EQ(missing, (std::vector<std::string>{"CPUID.1:ECX[28]",
                                               "CPUID.7.0:EBX[0]"}));
  EXPECT_EQ(FindLeaf(leaves, 0x1)->ecx & (1u << 28), 0u);
  std::vector<CpuidEntry> all = Supported();
  EXPECT_TRUE(ApplyCpuModel(all, *FindCpuModel("IvyBridge")).empty());
}

TEST(CpuModels, FeatureOverridesApplyOnTopOfTheModel) {
  CpuidOptions o;
  o.model = FindCpuModel("Opteron_G1");
  o.vendor = CpuVendor::kAmd;
  o.features = *ParseCpuFeatures("+pcid,+rdtscp,-x2apic");
  auto g = BuildGuestCpuid(Supported(), o, 0);
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_NE(FindLeaf(std::span<const CpuidEntry>(*g), 0x1)->ecx & (1u << 17), 0u);
  EXPECT_EQ(FindLeaf(std::span<const CpuidEntry>(*g), 0x1)->ecx & kLeaf1EcxX2apic, 0u);
  EXPECT_NE(FindLeaf(std::span<const CpuidEntry>(*g), 0x80000001)->edx & (1u << 27), 0u);
}

TEST(BrandString, WithoutAModel) {
  CpuidOptions o;
  o.vendor = CpuVendor::kAmd;
  o.brand = "AMD EPYC 7B13 64-Core Processor";
  auto g = BuildGuestCpuid(Supported(), o, 0);
  ASSERT_TRUE(g);
  EXPECT_EQ(BrandString(*g), "AMD EPYC 7B13 64-Core Processor");
  // 47 characters and the terminating NUL fill the 48 bytes.
  std::vector<CpuidEntry> leaves;
  SetBrandString(leaves, std::string(60, 'x'));
  EXPECT_EQ(BrandString(leaves), std::string(47, 'x'));
  EXPECT_EQ(BrandString(std::vector<CpuidEntry>{}), "");
  // No brand asked for: KVM's (empty) leaves stay as they are.
  o.brand.clear();
  auto none = BuildGuestCpuid(Supported(), o, 0);
  ASSERT_TRUE(none);
  EXPECT_EQ(BrandString(*none), "");
}

}  // namespace
}  // namespace strata::amd64
