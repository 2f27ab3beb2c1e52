#include "arch/arm64/profile.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata::arm64 {
namespace {

// Fact sets as ProbeHostFacts would record them on such hosts. The MIDRs
// follow the cores' documented encodings; the capability sets follow what
// those hosts' KVMs offer (ThunderX: no GICV, so no vGICv2; ThunderX2 and
// Neoverse-N1: ARMv8.1+ with VHE).

// Cavium ThunderX CN88xx pass 2.1, kernel booted nVHE (ARMv8.0: no VHE).
HostFacts ThunderX88() {
  HostFacts f;
  f.midr = 0x431f0a11;
  f.vhe = false;
  f.id_aa64mmfr1 = 0x0000000000000020;  // VMIDBits 16; VH 0
  f.max_ipa_bits = 44;
  f.vgic_v3 = true;
  f.vgic_its = true;
  f.pmu_v3 = true;
  f.psci_0_2 = true;
  return f;
}

// Cavium ThunderX2 CN99xx: VHE, GICv3 with ITS, 44-bit IPA.
HostFacts ThunderX2() {
  HostFacts f;
  f.midr = 0x431f0af1;
  f.vhe = true;
  f.id_aa64mmfr1 = 0x0000000000000122;  // VH 1
  f.max_ipa_bits = 44;
  f.vgic_v3 = true;
  f.vgic_its = true;
  f.pmu_v3 = true;
  f.psci_0_2 = true;
  f.nisv_to_user = true;
  return f;
}

// QEMU's cortex-a57 as a nested L1 host: nVHE, vGICv3 only, no ITS,
// IPA size cap present at 40.
HostFacts CortexA57() {
  HostFacts f;
  f.midr = 0x411fd070;
  f.vhe = false;
  f.max_ipa_bits = 40;
  f.vgic_v3 = true;
  f.psci_0_2 = true;
  return f;
}

// QEMU's cortex-a57 on a GICv2 with the virtualization extensions
// (-M virt,virtualization=on,gic-version=2), as the el2-gicv2 testbed's
// L1 reports it: nVHE, vGICv2 only, IPA 44 bits.
HostFacts CortexA57Gicv2() {
  HostFacts f;
  f.midr = 0x411fd070;
  f.vhe = false;
  f.max_ipa_bits = 44;
  f.vgic_v2 = true;
  f.psci_0_2 = true;
  f.pmu_v3 = true;
  return f;
}

// Arm Neoverse-N1 r3p1: VHE, GICv3 with v2 compatibility and ITS.
HostFacts NeoverseN1() {
  HostFacts f;
  f.midr = 0x413fd0c1;
  f.vhe = true;
  f.max_ipa_bits = 48;
  f.vgic_v2 = true;
  f.vgic_v3 = true;
  f.vgic_its = true;
  f.pmu_v3 = true;
  f.psci_0_2 = true;
  f.nisv_to_user = true;
  return f;
}

std::vector<std::string> Names(const Profile& p) {
  std::vector<std::string> out;
  for (const Workaround& w : p.workarounds) {
    EXPECT_FALSE(w.reason.empty()) << w.name;
    out.push_back(w.name);
  }
  return out;
}

std::string ErrorOf(const Result<Profile>& r) {
  return r ? "(no error)" : r.error().message();
}
std::string ErrorOf(const Status& s) {
  return s ? "(no error)" : s.error().message();
}

using Strings = std::vector<std::string>;

TEST(Midr, Decodes) {
  const Midr m = DecodeMidr(0x431f0a11);
  EXPECT_EQ(m.implementer, 0x43u);
  EXPECT_EQ(m.variant, 1u);
  EXPECT_EQ(m.architecture, 0xfu);
  EXPECT_EQ(m.part, 0x0a1u);
  EXPECT_EQ(m.revision, 1u);
  // Bits above 31 (RES0) are ignored.
  const Midr high = DecodeMidr(0xffffffff00000000 | 0x413fd0c1);
  EXPECT_EQ(high.implementer, 0x41u);
  EXPECT_EQ(high.part, 0xd0cu);
  EXPECT_EQ(high.variant, 3u);
  EXPECT_EQ(high.revision, 1u);
}

TEST(Midr, Describes) {
  EXPECT_EQ(DescribeMidr(0x431f0a11),
            "Cavium ThunderX CN88xx pass 2.1 (implementer 0x43 part 0x0a1)");
  EXPECT_EQ(DescribeMidr(0x430f0a20),
            "Cavium ThunderX CN81xx pass 1.0 (implementer 0x43 part 0x0a2)");
  EXPECT_EQ(DescribeMidr(0x430f0a30),
            "Cavium ThunderX CN83xx pass 1.0 (implementer 0x43 part 0x0a3)");
  EXPECT_EQ(DescribeMidr(0x431f0af1),
            "Cavium ThunderX2 CN99xx pass 2.1 (implementer 0x43 part 0x0af)");
  EXPECT_EQ(DescribeMidr(0x420f5160),
            "Broadcom Vulcan (ThunderX2) r0p0 (implementer 0x42 part 0x516)");
  EXPECT_EQ(DescribeMidr(0x411fd070),
            "ARM Cortex-A57 r1p0 (implementer 0x41 part 0xd07)");
  EXPECT_EQ(DescribeMidr(0x413fd0c1),
            "ARM Neoverse-N1 r3p1 (implementer 0x41 part 0xd0c)");
  EXPECT_EQ(DescribeMidr(0x510f8000),
            "an unknown core (implementer 0x51 part 0x800)");
}

TEST(ChooseProfile, ThunderX) {
  auto p = ChooseProfile(ThunderX88(), std::nullopt);
  ASSERT_TRUE(p) << ErrorOf(p);
  EXPECT_EQ(p->name, "thunderx");
  EXPECT_EQ(p->gic_version, 3u);
  EXPECT_TRUE(p->its);
  EXPECT_EQ(p->ipa_bits, 44u);
  EXPECT_FALSE(p->vhe);
  EXPECT_TRUE(p->pmu);
  EXPECT_EQ(Names(*p), (Strings{"Cavium erratum 23154 (and 38545)",
                                "Cavium erratum 27456", "Cavium erratum 30115",
                                "no GICv2 compatibility"}));
  EXPECT_EQ(p->reason,
            "MIDR 0x431f0a11 is Cavium ThunderX CN88xx pass 2.1 (implementer "
            "0x43 part 0x0a1); KVM is nVHE; vGICv3 without v2 compatibility, "
            "with ITS; IPA 44 bits");
  // "auto" is the same choice.
  auto a = ChooseProfile(ThunderX88(), "auto");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, p->reason);
}

TEST(ChooseProfile, ThunderXErrataFollowThePass) {
  HostFacts f = ThunderX88();
  f.midr = 0x431f0a12;  // pass 2.2: past 27456, still 30115
  EXPECT_EQ(Names(*ChooseProfile(f, std::nullopt)),
            (Strings{"Cavium erratum 23154 (and 38545)",
                     "Cavium erratum 30115", "no GICv2 compatibility"}));
  f.midr = 0x432f0a10;  // pass 3.0: neither
  EXPECT_EQ(Names(*ChooseProfile(f, std::nullopt)),
            (Strings{"Cavium erratum 23154 (and 38545)",
                     "no GICv2 compatibility"}));
  f.midr = 0x430f0a20;  // CN81xx pass 1.0: both
  auto p81 = ChooseProfile(f, std::nullopt);
  EXPECT_EQ(p81->name, "thunderx");
  EXPECT_EQ(Names(*p81), (Strings{"Cavium erratum 23154 (and 38545)",
                                  "Cavium erratum 27456",
                                  "Cavium erratum 30115",
                                  "no GICv2 compatibility"}));
  f.midr = 0x430f0a31;  // CN83xx pass 1.1: past 30115
  EXPECT_EQ(Names(*ChooseProfile(f, std::nullopt)),
            (Strings{"Cavium erratum 23154 (and 38545)",
                     "no GICv2 compatibility"}));
}

TEST(ChooseProfile, ThunderXWithoutTheIpaSizeCap) {
  HostFacts f = ThunderX88();
  f.max_ipa_bits = 0;
  f.vgic_its = false;
  auto p = ChooseProfile(f, std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ipa_bits, 40u);
  EXPECT_FALSE(p->its);
  EXPECT_EQ(p->reason,
            "MIDR 0x431f0a11 is Cavium ThunderX CN88xx pass 2.1 (implementer "
            "0x43 part 0x0a1); KVM is nVHE; vGICv3 without v2 compatibility, "
            "no ITS; IPA 40 bits (KVM_CAP_ARM_VM_IPA_SIZE absent)");
}

TEST(ChooseProfile, ThunderX2) {
  auto p = ChooseProfile(ThunderX2(), std::nullopt);
  ASSERT_TRUE(p) << ErrorOf(p);
  EXPECT_EQ(p->name, "thunderx2");
  EXPECT_EQ(p->gic_version, 3u);
  EXPECT_TRUE(p->its);
  EXPECT_TRUE(p->vhe);
  EXPECT_EQ(p->ipa_bits, 44u);
  EXPECT_TRUE(p->nisv_to_user);
  EXPECT_EQ(Names(*p), Strings{"Cavium ThunderX2 erratum 219"});
  EXPECT_EQ(p->reason,
            "MIDR 0x431f0af1 is Cavium ThunderX2 CN99xx pass 2.1 (implementer "
            "0x43 part 0x0af); KVM is VHE; vGICv3 without v2 compatibility, "
            "with ITS; IPA 44 bits");
  // The Broadcom Vulcan MIDR is the same family.
  HostFacts vulcan = ThunderX2();
  vulcan.midr = 0x420f5160;
  EXPECT_EQ(ChooseProfile(vulcan, std::nullopt)->name, "thunderx2");
}

TEST(ChooseProfile, ThunderX2OnAnNvheHostFallsBackToGeneric) {
  HostFacts f = ThunderX2();
  f.vhe = std::nullopt;
  f.kvm_arm_mode = "nvhe";
  auto p = ChooseProfile(f, std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "generic");
  EXPECT_FALSE(p->vhe);
  EXPECT_TRUE(p->workarounds.empty());
  EXPECT_EQ(p->reason,
            "MIDR 0x431f0af1 is Cavium ThunderX2 CN99xx pass 2.1 (implementer "
            "0x43 part 0x0af), but the thunderx2 profile needs VHE, but KVM is "
            "nVHE (kvm-arm.mode=nvhe): generic instead; KVM is nVHE "
            "(kvm-arm.mode=nvhe); vGICv3 without v2 compatibility, with ITS; "
            "IPA 44 bits");
  // Forcing it is an error that names what is missing.
  auto forced = ChooseProfile(f, "thunderx2");
  ASSERT_FALSE(forced);
  EXPECT_EQ(forced.error().code(), Errc::kUnsupported);
  EXPECT_EQ(ErrorOf(forced),
            "arm64.profile=thunderx2 needs VHE, but KVM is nVHE "
            "(kvm-arm.mode=nvhe); MIDR 0x431f0af1 is Cavium ThunderX2 CN99xx "
            "pass 2.1 (implementer 0x43 part 0x0af)");
  // Without an ITS too.
  HostFacts no_its = ThunderX2();
  no_its.vgic_its = false;
  EXPECT_EQ(ChooseProfile(no_its, std::nullopt)->name, "generic");
  EXPECT_NE(ErrorOf(ChooseProfile(no_its, "thunderx2"))
                .find("needs an ITS (KVM_CREATE_DEVICE_TEST of "
                      "KVM_DEV_TYPE_ARM_VGIC_ITS failed)"),
            std::string::npos);
}

TEST(ChooseProfile, CortexA57IsGeneric) {
  auto p = ChooseProfile(CortexA57(), std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "generic");
  EXPECT_EQ(p->gic_version, 3u);
  EXPECT_FALSE(p->its);
  EXPECT_FALSE(p->vhe);
  EXPECT_FALSE(p->pmu);
  EXPECT_EQ(p->ipa_bits, 40u);
  EXPECT_TRUE(p->workarounds.empty());
  EXPECT_EQ(p->reason,
            "MIDR 0x411fd070 is ARM Cortex-A57 r1p0 (implementer 0x41 part "
            "0xd07), which has no profile of its own; KVM is nVHE; vGICv3 "
            "without v2 compatibility, no ITS; IPA 40 bits");
}

TEST(ChooseProfile, NeoverseN1IsGeneric) {
  auto p = ChooseProfile(NeoverseN1(), std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "generic");
  EXPECT_EQ(p->gic_version, 3u);
  EXPECT_TRUE(p->its);
  EXPECT_TRUE(p->vhe);
  EXPECT_EQ(p->ipa_bits, 48u);
  EXPECT_EQ(p->reason,
            "MIDR 0x413fd0c1 is ARM Neoverse-N1 r3p1 (implementer 0x41 part "
            "0xd0c), which has no profile of its own; KVM is VHE; vGICv3 with "
            "v2 compatibility, with ITS; IPA 48 bits");
}

TEST(ChooseProfile, AnUnknownCoreIsGenericAndTheReasonSaysSo) {
  HostFacts f = NeoverseN1();
  f.midr = 0x510f8000;
  auto p = ChooseProfile(f, std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "generic");
  EXPECT_EQ(p->reason.rfind("MIDR 0x510f8000 is an unknown core (implementer "
                            "0x51 part 0x800), so the generic profile; ",
                            0),
            0u)
      << p->reason;
  // A host with only a vGICv2 gets it.
  HostFacts v2 = f;
  v2.vgic_v3 = false;
  v2.vgic_its = false;
  auto p2 = ChooseProfile(v2, std::nullopt);
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->gic_version, 2u);
  EXPECT_FALSE(p2->its);
  EXPECT_NE(p2->reason.find("vGICv2 only"), std::string::npos) << p2->reason;
}

TEST(ChooseProfile, ForcedProfiles) {
  // generic anywhere with a vGIC.
  auto g = ChooseProfile(ThunderX88(), "generic");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->name, "generic");
  EXPECT_EQ(g->gic_version, 3u);
  EXPECT_EQ(g->reason.rfind("forced by arm64.profile=generic; MIDR "
                            "0x431f0a11 is Cavium ThunderX CN88xx",
                            0),
            0u)
      << g->reason;
  // thunderx on another vGICv3 host: its rule, but no ThunderX errata.
  auto t = ChooseProfile(NeoverseN1(), "thunderx");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->name, "thunderx");
  EXPECT_EQ(Names(*t), Strings{"no GICv2 compatibility"});
  // thunderx needs a vGICv3.
  HostFacts v2only = NeoverseN1();
  v2only.vgic_v3 = false;
  v2only.vgic_its = false;
  auto no_v3 = ChooseProfile(v2only, "thunderx");
  ASSERT_FALSE(no_v3);
  EXPECT_EQ(ErrorOf(no_v3),
            "arm64.profile=thunderx needs a vGICv3 (KVM_CREATE_DEVICE_TEST of "
            "KVM_DEV_TYPE_ARM_VGIC_V3 failed); MIDR 0x413fd0c1 is ARM "
            "Neoverse-N1 r3p1 (implementer 0x41 part 0xd0c)");
  // thunderx2 on a VHE host with vGICv3 and ITS is accepted (no TX2
  // errata claimed for a non-TX2 MIDR).
  auto t2 = ChooseProfile(NeoverseN1(), "thunderx2");
  ASSERT_TRUE(t2);
  EXPECT_TRUE(t2->workarounds.empty());
  // thunderx2 on the nVHE ThunderX.
  EXPECT_NE(ErrorOf(ChooseProfile(ThunderX88(), "thunderx2"))
                .find("arm64.profile=thunderx2 needs VHE, but KVM is nVHE;"),
            std::string::npos);
}

TEST(ChooseProfile, UnknownNamesListTheValidOnes) {
  auto r = ChooseProfile(ThunderX88(), "thunder");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(ErrorOf(r),
            "arm64.profile must be auto, thunderx, thunderx2 or generic, got "
            "'thunder'");
  EXPECT_FALSE(ChooseProfile(ThunderX88(), ""));
  EXPECT_FALSE(ChooseProfile(ThunderX88(), "ThunderX"));
}

TEST(ChooseProfile, WhatEveryProfileNeeds) {
  HostFacts no_psci = NeoverseN1();
  no_psci.psci_0_2 = false;
  auto r = ChooseProfile(no_psci, std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(ErrorOf(r).find("KVM_CAP_ARM_PSCI_0_2"), std::string::npos);
  HostFacts no_gic = NeoverseN1();
  no_gic.vgic_v2 = no_gic.vgic_v3 = no_gic.vgic_its = false;
  EXPECT_EQ(ErrorOf(ChooseProfile(no_gic, "generic")),
            "the host's KVM offers no vGIC (KVM_CREATE_DEVICE_TEST failed for "
            "KVM_DEV_TYPE_ARM_VGIC_V2 and _V3)");
}

TEST(ResolveVhe, FromTheFacts) {
  HostFacts f;
  EXPECT_EQ(ResolveVhe(f), std::nullopt);
  f.id_aa64mmfr1 = 0x100;  // VH = 1
  EXPECT_EQ(ResolveVhe(f), true);
  f.id_aa64mmfr1 = 0x0ff;  // VH = 0
  EXPECT_EQ(ResolveVhe(f), false);
  f.id_aa64mmfr1 = 0x100;
  f.kvm_arm_mode = "protected";
  EXPECT_EQ(ResolveVhe(f), false);
  f.kvm_arm_mode = "nvhe";
  EXPECT_EQ(ResolveVhe(f), false);
  f.kvm_arm_mode = "nested";  // not an nVHE mode: MMFR1 decides
  EXPECT_EQ(ResolveVhe(f), true);
  // An explicit fact wins.
  f.vhe = false;
  EXPECT_EQ(ResolveVhe(f), false);
}

TEST(ChooseProfile, VheUnknown) {
  HostFacts f = ThunderX2();
  f.vhe = std::nullopt;
  f.id_aa64mmfr1 = std::nullopt;
  auto p = ChooseProfile(f, std::nullopt);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "generic");
  EXPECT_FALSE(p->vhe);
  EXPECT_NE(p->reason.find("but the thunderx2 profile needs VHE, which could "
                           "not be determined: generic instead; whether KVM "
                           "runs VHE is unknown;"),
            std::string::npos)
      << p->reason;
  EXPECT_EQ(ErrorOf(ChooseProfile(f, "thunderx2"))
                .rfind("arm64.profile=thunderx2 needs VHE, which could not be "
                       "determined; ",
                       0),
            0u);
  // MMFR1.VH decides when the mode is not recorded.
  f.id_aa64mmfr1 = 0x100;
  EXPECT_EQ(ChooseProfile(f, std::nullopt)->name, "thunderx2");
  // Other profiles do not mind.
  HostFacts a57 = CortexA57();
  a57.vhe = std::nullopt;
  auto g = ChooseProfile(a57, std::nullopt);
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->vhe);
  EXPECT_NE(g->reason.find("whether KVM runs VHE is unknown"),
            std::string::npos);
}

TEST(ApplyGicOverride, IsCheckedAgainstTheProfileAndTheHost) {
  const HostFacts tx = ThunderX88();
  Profile p = *ChooseProfile(tx, std::nullopt);
  Status two = ApplyGicOverride(p, tx, 2);
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code(), Errc::kUnsupported);
  EXPECT_EQ(ErrorOf(two),
            "arm64.gic_version=2 is refused with the thunderx profile: the "
            "ThunderX GICv3 has no GICv2 compatibility (no GICV), so KVM "
            "cannot offer a vGICv2; use 3");
  EXPECT_EQ(p.gic_version, 3u);  // unchanged
  EXPECT_TRUE(ApplyGicOverride(p, tx, 3));
  EXPECT_EQ(p.gic_version, 3u);
  EXPECT_TRUE(p.its);
  EXPECT_NE(p.reason.find("; GICv3 from arm64.gic_version"),
            std::string::npos);

  // generic on a host with v2 compatibility: 2 is fine and has no ITS.
  const HostFacts n1 = NeoverseN1();
  Profile g = *ChooseProfile(n1, std::nullopt);
  ASSERT_TRUE(ApplyGicOverride(g, n1, 2));
  EXPECT_EQ(g.gic_version, 2u);
  EXPECT_FALSE(g.its);
  // ... and back to 3 brings the ITS back.
  ASSERT_TRUE(ApplyGicOverride(g, n1, 3));
  EXPECT_TRUE(g.its);

  // A host without a vGICv2 refuses 2, naming the device type.
  const HostFacts a57 = CortexA57();
  Profile a = *ChooseProfile(a57, std::nullopt);
  EXPECT_NE(ErrorOf(ApplyGicOverride(a, a57, 2))
                .find("KVM_DEV_TYPE_ARM_VGIC_V2"),
            std::string::npos);
  // A host without a vGICv3 refuses 3.
  HostFacts v2only = NeoverseN1();
  v2only.vgic_v3 = v2only.vgic_its = false;
  Profile v = *ChooseProfile(v2only, std::nullopt);
  EXPECT_NE(ErrorOf(ApplyGicOverride(v, v2only, 3))
                .find("KVM_DEV_TYPE_ARM_VGIC_V3"),
            std::string::npos);
  // thunderx2 is GICv3 with ITS.
  const HostFacts tx2 = ThunderX2();
  Profile t2 = *ChooseProfile(tx2, std::nullopt);
  EXPECT_NE(ErrorOf(ApplyGicOverride(t2, tx2, 2))
                .find("refused with the thunderx2 profile"),
            std::string::npos);
  // Only 2 and 3.
  Status four = ApplyGicOverride(g, n1, 4);
  ASSERT_FALSE(four);
  EXPECT_EQ(four.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(ErrorOf(four), "arm64.gic_version must be 2 or 3, got 4");
}

// ResolveProfile is what the backend and bhyverun --dump-dtb both use.
TEST(ResolveProfile, AGicv2OnlyHost) {
  const HostFacts f = CortexA57Gicv2();
  Profile p = *ResolveProfile(f, "auto", 0);
  EXPECT_EQ(p.name, "generic");
  EXPECT_EQ(p.gic_version, 2u);
  EXPECT_FALSE(p.its);
  EXPECT_NE(p.reason.find("vGICv2 only"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("KVM is nVHE"), std::string::npos) << p.reason;
  // Both ThunderX profiles need a vGICv3; asking for one says so.
  for (std::string_view forced : {"thunderx", "thunderx2"}) {
    Result<Profile> r = ResolveProfile(f, forced, 0);
    ASSERT_FALSE(r) << forced;
    EXPECT_EQ(r.error().code(), Errc::kUnsupported);
    EXPECT_NE(ErrorOf(r).find("needs"), std::string::npos) << ErrorOf(r);
  }
  EXPECT_NE(ErrorOf(ResolveProfile(f, "thunderx", 0)).find("a vGICv3"),
            std::string::npos);
  // An explicit GICv3 is refused, GICv2 confirmed.
  EXPECT_NE(ErrorOf(ResolveProfile(f, "auto", 3))
                .find("arm64.gic_version=3: vGICv3 is not supported"),
            std::string::npos);
  Profile two = *ResolveProfile(f, "generic", 2);
  EXPECT_EQ(two.gic_version, 2u);
  EXPECT_NE(two.reason.find("GICv2 from arm64.gic_version"), std::string::npos);
}

TEST(ResolveProfile, ForcesAndOverridesAsTheSettingsSay) {
  const HostFacts n1 = NeoverseN1();
  EXPECT_EQ(ResolveProfile(n1, "auto", 0)->gic_version, 3u);
  EXPECT_EQ(ResolveProfile(n1, "auto", 2)->gic_version, 2u);
  EXPECT_EQ(ResolveProfile(n1, "thunderx", 0)->name, "thunderx");
  EXPECT_EQ(ResolveProfile(n1, "bogus", 0).error().code(),
            Errc::kInvalidArgument);
}

}  // namespace
}  // namespace strata::arm64

namespace strata::arm64 {
namespace {

TEST(ProbeHelpers, CmdlineValue) {
  const std::string_view c =
      "BOOT_IMAGE=/vmlinuz root=/dev/sda1 kvm-arm.mode=nvhe quiet\n";
  EXPECT_EQ(CmdlineValue(c, "kvm-arm.mode"), "nvhe");
  EXPECT_EQ(CmdlineValue(c, "quiet"), "");
  EXPECT_EQ(CmdlineValue(c, "root"), "/dev/sda1");
  EXPECT_EQ(CmdlineValue(c, "kvm-arm"), std::nullopt);
  EXPECT_EQ(CmdlineValue(c, "mode"), std::nullopt);
  EXPECT_EQ(CmdlineValue("xkvm-arm.mode=nvhe", "kvm-arm.mode"), std::nullopt);
  // The last one wins.
  EXPECT_EQ(CmdlineValue("kvm-arm.mode=protected\tkvm-arm.mode=vhe",
                         "kvm-arm.mode"),
            "vhe");
  EXPECT_EQ(CmdlineValue("", "kvm-arm.mode"), std::nullopt);
  EXPECT_EQ(CmdlineValue("id_aa64mmfr1.vh=0", "id_aa64mmfr1.vh"), "0");
}

TEST(ProbeHelpers, ParseMidrText) {
  EXPECT_EQ(*ParseMidrText("0x00000000431f0a11\n"), 0x431f0a11u);
  EXPECT_EQ(*ParseMidrText("0x413FD0C1"), 0x413fd0c1u);
  EXPECT_FALSE(ParseMidrText(""));
  EXPECT_FALSE(ParseMidrText("0x"));
  EXPECT_FALSE(ParseMidrText("431f0a11"));
  EXPECT_FALSE(ParseMidrText("0x431g"));
  EXPECT_FALSE(ParseMidrText("0x10000000000000000"));  // 17 digits
}

}  // namespace
}  // namespace strata::arm64
