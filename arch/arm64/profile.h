// strata — arm64 host profiles: what a VM on this host's KVM gets (GIC
// version, ITS, IPA size, VHE) and which host quirks it lives with, chosen
// from facts about the host.
//
// Theory. The arm64 backend probes the host once (arch/arm64/kvm/
// host_probe.h fills HostFacts: MIDR_EL1, KVM capabilities, the vGIC device
// types KVM can create, how KVM runs) and ChooseProfile turns the facts
// into a Profile. This file is pure logic — no KVM calls, no files — so the
// choice is tested on any host with recorded fact sets.
//
// Profiles:
//   thunderx   Cavium ThunderX (CN88xx, CN81xx, CN83xx; implementer 0x43,
//              parts 0x0a1-0x0a3). ARMv8.0: KVM is nVHE. Its GICv3 has no
//              GICv2 compatibility (no GICV), so only a vGICv3 exists and
//              gic_version 2 is refused. Errata workarounds are listed
//              (informational: the host kernel and the guest kernel apply
//              them, keyed on the MIDR the guest sees).
//   thunderx2  Cavium ThunderX2 CN99xx (0x43 part 0x0af; the Broadcom
//              Vulcan design it came from, 0x42 part 0x516). ARMv8.1: needs
//              KVM in VHE mode and a vGICv3 with an ITS.
//   generic    any other host: vGICv3 if KVM has one (with its ITS if any),
//              else vGICv2.
// "auto" (or no forced name) picks by MIDR; a MIDR-matched profile whose
// needs the host does not meet falls back to generic, and the reason says
// why. A forced profile the host cannot satisfy is an error naming the
// missing capability. Every profile needs KVM_CAP_ARM_PSCI_0_2 (CPU_ON and
// SYSTEM_OFF for the guest) and some vGIC.
//
// Errata are cited from Linux's Documentation/arch/arm64/silicon-errata.rst
// and arch/arm64/kernel/cpu_errata.c (the MIDR ranges).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace strata::arm64 {

// MIDR_EL1 fields (Arm ARM D23.2 "MIDR_EL1").
struct Midr {
  uint32_t implementer = 0;   // bits 31:24
  uint32_t variant = 0;       // bits 23:20 (major revision: "r<variant>")
  uint32_t architecture = 0;  // bits 19:16
  uint32_t part = 0;          // bits 15:4
  uint32_t revision = 0;      // bits 3:0 (minor revision: "p<revision>")
};
Midr DecodeMidr(uint64_t midr_el1);

// Implementer codes and part numbers (Linux arch/arm64/include/asm/cputype.h).
inline constexpr uint32_t kImplementerArm = 0x41;
inline constexpr uint32_t kImplementerBroadcom = 0x42;
inline constexpr uint32_t kImplementerCavium = 0x43;
inline constexpr uint32_t kPartCortexA53 = 0xd03;
inline constexpr uint32_t kPartCortexA57 = 0xd07;
inline constexpr uint32_t kPartCortexA72 = 0xd08;
inline constexpr uint32_t kPartNeoverseN1 = 0xd0c;
inline constexpr uint32_t kPartThunderX = 0x0a1;       // CN88xx
inline constexpr uint32_t kPartThunderX81xx = 0x0a2;
inline constexpr uint32_t kPartThunderX83xx = 0x0a3;
inline constexpr uint32_t kPartThunderX2 = 0x0af;      // CN99xx (Cavium)
inline constexpr uint32_t kPartVulcan = 0x516;         // Broadcom

// The IPA size of a VM created with IPA size 0 (KVM's default, and the
// only one without KVM_CAP_ARM_VM_IPA_SIZE).
inline constexpr uint32_t kDefaultIpaBits = 40;

// What the host offers (arch/arm64/kvm/host_probe.h gathers it).
struct HostFacts {
  uint64_t midr = 0;  // MIDR_EL1 of cpu0
  // Whether KVM runs in VHE mode (the host kernel at EL2); nullopt: unknown.
  std::optional<bool> vhe;
  // ID_AA64MMFR1_EL1 as KVM presents it to a vCPU; nullopt: not read.
  std::optional<uint64_t> id_aa64mmfr1;
  // KVM_CAP_ARM_VM_IPA_SIZE: the largest IPA size; 0 = cap absent (40).
  uint32_t max_ipa_bits = 0;
  // KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST succeeded for
  // KVM_DEV_TYPE_ARM_VGIC_V2 / _V3 / _ITS.
  bool vgic_v2 = false;
  bool vgic_v3 = false;
  bool vgic_its = false;
  bool pmu_v3 = false;        // KVM_CAP_ARM_PMU_V3
  bool psci_0_2 = false;      // KVM_CAP_ARM_PSCI_0_2
  bool nisv_to_user = false;  // KVM_CAP_ARM_NISV_TO_USER
  // kvm-arm.mode= from /proc/cmdline, if given (nvhe, protected, ...).
  std::optional<std::string> kvm_arm_mode;
};

// Whether KVM runs VHE, from the facts: HostFacts::vhe if known; else
// kvm-arm.mode=nvhe or =protected mean nVHE; else ID_AA64MMFR1_EL1.VH
// (bits 11:8) non-zero means VHE (Linux uses VHE whenever the CPU has it,
// it booted at EL2 and no mode forces nVHE); else unknown.
std::optional<bool> ResolveVhe(const HostFacts& facts);

// A host quirk the VM lives with: a short name and one line of why.
struct Workaround {
  std::string name;    // "Cavium erratum 27456"
  std::string reason;  // "broadcast TLBI may corrupt the i-cache; ..."
  friend bool operator==(const Workaround&, const Workaround&) = default;
};

struct Profile {
  std::string name;          // thunderx | thunderx2 | generic
  uint32_t gic_version = 3;  // 2 or 3
  bool its = false;          // a vITS with the vGICv3
  uint32_t ipa_bits = kDefaultIpaBits;
  bool vhe = false;          // KVM runs VHE (false also when unknown)
  bool pmu = false;          // a vPMU can be given (KVM_CAP_ARM_PMU_V3)
  bool nisv_to_user = false; // MMIO aborts without syndrome reach the VMM
  std::vector<Workaround> workarounds;
  // Why this profile: "MIDR 0x431f0a11 is Cavium ThunderX CN88xx pass 2.1
  // (implementer 0x43 part 0x0a1); KVM is nVHE; vGICv3 without v2
  // compatibility, with ITS; IPA 44 bits".
  std::string reason;
};

// The names ChooseProfile accepts, besides "auto".
inline constexpr std::string_view kProfileNames[] = {"thunderx", "thunderx2",
                                                     "generic"};

// Chooses the profile for the host. forced is the arm64.profile setting
// (thunderx, thunderx2, generic or auto; nullopt = auto). Errors:
// kInvalidArgument for an unknown name (listing the valid ones);
// kUnsupported when the host lacks what every profile needs, or what the
// forced one needs (naming the capability).
Result<Profile> ChooseProfile(const HostFacts& facts,
                              std::optional<std::string_view> forced);

// Applies an explicit arm64.gic_version (2 or 3) to a chosen profile:
// kInvalidArgument for another value; kUnsupported if the profile refuses
// it (thunderx: 2) or the host's KVM lacks that vGIC. Version 2 has no ITS.
Status ApplyGicOverride(Profile& profile, const HostFacts& facts,
                        uint32_t gic_version);

// What a VM of these settings gets on this host: ChooseProfile with
// arm64.profile (`profile`: a name or "auto"), then ApplyGicOverride when
// arm64.gic_version is 2 or 3 (`gic_version` 0 = the profile's). The errors
// of both, unchanged.
Result<Profile> ResolveProfile(const HostFacts& facts,
                               std::string_view profile,
                               uint32_t gic_version);

// Helpers for the probe, pure so they are tested everywhere.
//
// The value of `key=` on a kernel command line (/proc/cmdline): the last
// occurrence wins, as for the kernel's own parameters; a bare `key` gives
// "". nullopt if absent.
std::optional<std::string> CmdlineValue(std::string_view cmdline,
                                        std::string_view key);
// The contents of sysfs's .../regs/identification/midr_el1 ("0x...\n").
Result<uint64_t> ParseMidrText(std::string_view text);

// "Cavium ThunderX CN88xx pass 2.1 (implementer 0x43 part 0x0a1)", or
// "an unknown core (implementer 0x.. part 0x...)".
std::string DescribeMidr(uint64_t midr_el1);

}  // namespace strata::arm64
