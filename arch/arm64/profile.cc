#include "arch/arm64/profile.h"

#include <cctype>

#include <fmt/format.h>

namespace strata::arm64 {

namespace {

enum class Family { kOther, kThunderX, kThunderX2 };

struct CoreName {
  uint32_t implementer;
  uint32_t part;
  std::string_view name;
  Family family;
};

// Linux arch/arm64/include/asm/cputype.h.
constexpr CoreName kCores[] = {
    {kImplementerArm, kPartCortexA53, "ARM Cortex-A53", Family::kOther},
    {kImplementerArm, kPartCortexA57, "ARM Cortex-A57", Family::kOther},
    {kImplementerArm, kPartCortexA72, "ARM Cortex-A72", Family::kOther},
    {kImplementerArm, kPartNeoverseN1, "ARM Neoverse-N1", Family::kOther},
    {kImplementerCavium, kPartThunderX, "Cavium ThunderX CN88xx",
     Family::kThunderX},
    {kImplementerCavium, kPartThunderX81xx, "Cavium ThunderX CN81xx",
     Family::kThunderX},
    {kImplementerCavium, kPartThunderX83xx, "Cavium ThunderX CN83xx",
     Family::kThunderX},
    {kImplementerCavium, kPartThunderX2, "Cavium ThunderX2 CN99xx",
     Family::kThunderX2},
    {kImplementerBroadcom, kPartVulcan, "Broadcom Vulcan (ThunderX2)",
     Family::kThunderX2},
};

const CoreName* FindCore(const Midr& m) {
  for (const CoreName& c : kCores) {
    if (c.implementer == m.implementer && c.part == m.part) return &c;
  }
  return nullptr;
}

Family FamilyOf(uint64_t midr) {
  const CoreName* c = FindCore(DecodeMidr(midr));
  return c ? c->family : Family::kOther;
}

// variant:revision as one comparable number, for Linux's MIDR_RANGE.
constexpr uint32_t VarRev(uint32_t variant, uint32_t revision) {
  return (variant << 4) | revision;
}

bool InRange(const Midr& m, uint32_t part, uint32_t from, uint32_t to) {
  const uint32_t vr = VarRev(m.variant, m.revision);
  return m.implementer == kImplementerCavium && m.part == part &&
         vr >= from && vr <= to;
}

// Cavium errata by MIDR (cpu_errata.c ranges; "pass X.Y" is variant X-1,
// revision Y).
std::vector<Workaround> ThunderXErrata(uint64_t midr) {
  std::vector<Workaround> w;
  const Midr m = DecodeMidr(midr);
  if (FamilyOf(midr) == Family::kThunderX) {
    // CAVIUM_ERRATUM_23154: all ThunderX parts in today's GICv3 driver.
    w.push_back({"Cavium erratum 23154 (and 38545)",
                 "ICC_IAR1_EL1 reads need a synchronisation sequence; the "
                 "guest kernel applies it (informational)"});
  }
  if (InRange(m, kPartThunderX, VarRev(0, 0), VarRev(1, 1)) ||
      InRange(m, kPartThunderX81xx, VarRev(0, 0), VarRev(0, 0))) {
    w.push_back({"Cavium erratum 27456",
                 "broadcast TLBI may corrupt the i-cache; kernels invalidate "
                 "it on context switch (informational)"});
  }
  if (InRange(m, kPartThunderX, VarRev(0, 0), VarRev(1, 2)) ||
      InRange(m, kPartThunderX81xx, VarRev(0, 0), VarRev(0, 2)) ||
      InRange(m, kPartThunderX83xx, VarRev(0, 0), VarRev(0, 0))) {
    w.push_back({"Cavium erratum 30115",
                 "guest execution may disable host interrupts; host KVM "
                 "traps the guest's GICv3 system register accesses, which "
                 "makes them slower (informational)"});
  }
  // The profile's own rule, whatever the MIDR (a forced profile).
  w.push_back({"no GICv2 compatibility",
               "the ThunderX GICv3 has no GICV: KVM offers only a vGICv3, "
               "so gic_version 2 is refused"});
  return w;
}

std::vector<Workaround> ThunderX2Errata() {
  // CAVIUM_TX2_ERRATUM_219: MIDR_ALL_VERSIONS of both TX2 MIDRs.
  return {{"Cavium ThunderX2 erratum 219",
           "a load or store between a TTBR write and its ISB can take a "
           "spurious abort; host KVM traps guest TTBRx_EL1 writes when SMT "
           "is on (informational)"}};
}

std::string Hex3(uint32_t v) { return fmt::format("{:#05x}", v); }

std::string GicDescription(const HostFacts& f) {
  if (f.vgic_v3) {
    return fmt::format("vGICv3 {} v2 compatibility, {}",
                       f.vgic_v2 ? "with" : "without",
                       f.vgic_its ? "with ITS" : "no ITS");
  }
  if (f.vgic_v2) return "vGICv2 only";
  return "no vGIC";
}

std::string VheDescription(const HostFacts& f) {
  const std::optional<bool> vhe = ResolveVhe(f);
  std::string s = !vhe ? "whether KVM runs VHE is unknown"
                       : (*vhe ? "KVM is VHE" : "KVM is nVHE");
  if (f.kvm_arm_mode) s += fmt::format(" (kvm-arm.mode={})", *f.kvm_arm_mode);
  return s;
}

std::string IpaDescription(const HostFacts& f) {
  if (f.max_ipa_bits == 0) {
    return fmt::format("IPA {} bits (KVM_CAP_ARM_VM_IPA_SIZE absent)",
                       kDefaultIpaBits);
  }
  return fmt::format("IPA {} bits", f.max_ipa_bits);
}

// What a profile needs and the host lacks, as a phrase; empty if none.
std::string Missing(std::string_view name, const HostFacts& f) {
  if (name == "thunderx") {
    if (!f.vgic_v3) {
      return "a vGICv3 (KVM_CREATE_DEVICE_TEST of KVM_DEV_TYPE_ARM_VGIC_V3 "
             "failed)";
    }
  } else if (name == "thunderx2") {
    const std::optional<bool> vhe = ResolveVhe(f);
    if (!vhe) return "VHE, which could not be determined";
    if (!*vhe) {
      return f.kvm_arm_mode
                 ? fmt::format("VHE, but KVM is nVHE (kvm-arm.mode={})",
                               *f.kvm_arm_mode)
                 : "VHE, but KVM is nVHE";
    }
    if (!f.vgic_v3) {
      return "a vGICv3 (KVM_CREATE_DEVICE_TEST of KVM_DEV_TYPE_ARM_VGIC_V3 "
             "failed)";
    }
    if (!f.vgic_its) {
      return "an ITS (KVM_CREATE_DEVICE_TEST of KVM_DEV_TYPE_ARM_VGIC_ITS "
             "failed)";
    }
  }
  return "";
}

Profile Make(std::string_view name, const HostFacts& f) {
  Profile p;
  p.name = std::string(name);
  p.gic_version = f.vgic_v3 ? 3 : 2;
  p.its = f.vgic_v3 && f.vgic_its;
  p.ipa_bits = f.max_ipa_bits == 0 ? kDefaultIpaBits : f.max_ipa_bits;
  p.vhe = ResolveVhe(f).value_or(false);
  p.pmu = f.pmu_v3;
  p.nisv_to_user = f.nisv_to_user;
  if (name == "thunderx") {
    p.workarounds = ThunderXErrata(f.midr);
  } else if (name == "thunderx2" && FamilyOf(f.midr) == Family::kThunderX2) {
    p.workarounds = ThunderX2Errata();
  }
  return p;
}

}  // namespace

Midr DecodeMidr(uint64_t midr_el1) {
  Midr m;
  m.implementer = static_cast<uint32_t>((midr_el1 >> 24) & 0xff);
  m.variant = static_cast<uint32_t>((midr_el1 >> 20) & 0xf);
  m.architecture = static_cast<uint32_t>((midr_el1 >> 16) & 0xf);
  m.part = static_cast<uint32_t>((midr_el1 >> 4) & 0xfff);
  m.revision = static_cast<uint32_t>(midr_el1 & 0xf);
  return m;
}

std::string DescribeMidr(uint64_t midr_el1) {
  const Midr m = DecodeMidr(midr_el1);
  const CoreName* c = FindCore(m);
  const std::string ids = fmt::format("(implementer {:#04x} part {})",
                                      m.implementer, Hex3(m.part));
  if (c == nullptr) return "an unknown core " + ids;
  // Cavium numbers its silicon passes from 1.0; Arm says r<v>p<r>.
  const std::string rev =
      m.implementer == kImplementerCavium
          ? fmt::format("pass {}.{}", m.variant + 1, m.revision)
          : fmt::format("r{}p{}", m.variant, m.revision);
  return fmt::format("{} {} {}", c->name, rev, ids);
}

namespace {
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)); }
}  // namespace

std::optional<std::string> CmdlineValue(std::string_view cmdline,
                                        std::string_view key) {
  std::optional<std::string> found;
  size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && IsSpace(cmdline[i])) ++i;
    size_t j = i;
    while (j < cmdline.size() && !IsSpace(cmdline[j])) ++j;
    const std::string_view word = cmdline.substr(i, j - i);
    if (word == key) {
      found = "";
    } else if (word.size() > key.size() && word.substr(0, key.size()) == key &&
               word[key.size()] == '=') {
      found = std::string(word.substr(key.size() + 1));
    }
    i = j;
  }
  return found;
}

Result<uint64_t> ParseMidrText(std::string_view text) {
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (text.size() < 3 || text.size() > 18 || text[0] != '0' ||
      (text[1] != 'x' && text[1] != 'X')) {
    return MakeError(Errc::kInvalidArgument,
                     "'{}' is not a MIDR_EL1 value (0x followed by hex "
                     "digits)",
                     text);
  }
  uint64_t v = 0;
  for (char c : text.substr(2)) {
    const int d = std::isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : (c >= 'a' && c <= 'f')   ? c - 'a' + 10
                        : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                 : -1;
    if (d < 0) {
      return MakeError(Errc::kInvalidArgument,
                       "'{}' is not a MIDR_EL1 value (0x followed by hex "
                       "digits)",
                       text);
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<bool> ResolveVhe(const HostFacts& facts) {
  if (facts.vhe) return facts.vhe;
  if (facts.kvm_arm_mode &&
      (*facts.kvm_arm_mode == "nvhe" || *facts.kvm_arm_mode == "protected")) {
    return false;
  }
  if (facts.id_aa64mmfr1) return ((*facts.id_aa64mmfr1 >> 8) & 0xf) != 0;
  return std::nullopt;
}

Result<Profile> ChooseProfile(const HostFacts& facts,
                              std::optional<std::string_view> forced) {
  const std::string_view want = forced.value_or("auto");
  bool known = want == "auto";
  for (std::string_view n : kProfileNames) known = known || want == n;
  if (!known) {
    return MakeError(Errc::kInvalidArgument,
                     "arm64.profile must be auto, thunderx, thunderx2 or "
                     "generic, got '{}'",
                     want);
  }
  if (!facts.psci_0_2) {
    return MakeError(Errc::kUnsupported,
                     "the host's KVM lacks KVM_CAP_ARM_PSCI_0_2 (PSCI 0.2: "
                     "CPU_ON, SYSTEM_OFF), which every arm64 profile needs");
  }
  if (!facts.vgic_v2 && !facts.vgic_v3) {
    return MakeError(Errc::kUnsupported,
                     "the host's KVM offers no vGIC (KVM_CREATE_DEVICE_TEST "
                     "failed for KVM_DEV_TYPE_ARM_VGIC_V2 and _V3)");
  }
  const std::string host = fmt::format(
      "MIDR {:#010x} is {}", facts.midr, DescribeMidr(facts.midr));
  const std::string rest = fmt::format("{}; {}; {}", VheDescription(facts),
                                       GicDescription(facts),
                                       IpaDescription(facts));
  if (want != "auto") {
    const std::string missing = Missing(want, facts);
    if (!missing.empty()) {
      return MakeError(Errc::kUnsupported,
                       "arm64.profile={} needs {}; {}", want, missing, host);
    }
    Profile p = Make(want, facts);
    p.reason = fmt::format("forced by arm64.profile={}; {}; {}", want, host,
                           rest);
    return p;
  }
  std::string_view name = "generic";
  std::string why;
  switch (FamilyOf(facts.midr)) {
    case Family::kThunderX:
      name = "thunderx";
      break;
    case Family::kThunderX2:
      name = "thunderx2";
      break;
    case Family::kOther:
      why = FindCore(DecodeMidr(facts.midr)) != nullptr
                ? ", which has no profile of its own"
                : ", so the generic profile";
      break;
  }
  const std::string missing = Missing(name, facts);
  if (!missing.empty()) {
    why = fmt::format(", but the {} profile needs {}: generic instead", name,
                      missing);
    name = "generic";
  }
  Profile p = Make(name, facts);
  p.reason = fmt::format("{}{}; {}", host, why, rest);
  return p;
}

Status ApplyGicOverride(Profile& profile, const HostFacts& facts,
                        uint32_t gic_version) {
  if (gic_version != 2 && gic_version != 3) {
    return MakeError(Errc::kInvalidArgument,
                     "arm64.gic_version must be 2 or 3, got {}", gic_version);
  }
  if (gic_version == 2 && profile.name == "thunderx") {
    return MakeError(Errc::kUnsupported,
                     "arm64.gic_version=2 is refused with the thunderx "
                     "profile: the ThunderX GICv3 has no GICv2 compatibility "
                     "(no GICV), so KVM cannot offer a vGICv2; use 3");
  }
  if (gic_version == 2 && profile.name == "thunderx2") {
    return MakeError(Errc::kUnsupported,
                     "arm64.gic_version=2 is refused with the thunderx2 "
                     "profile, which is GICv3 with an ITS; use 3, or "
                     "arm64.profile=generic");
  }
  if (gic_version == 2 && !facts.vgic_v2) {
    return MakeError(Errc::kUnsupported,
                     "arm64.gic_version=2: vGICv2 is not supported by KVM "
                     "on this host (KVM_CREATE_DEVICE_TEST of "
                     "KVM_DEV_TYPE_ARM_VGIC_V2 failed: the host GIC lacks "
                     "v2 compatibility)");
  }
  if (gic_version == 3 && !facts.vgic_v3) {
    return MakeError(Errc::kUnsupported,
                     "arm64.gic_version=3: vGICv3 is not supported by KVM "
                     "on this host (KVM_CREATE_DEVICE_TEST of "
                     "KVM_DEV_TYPE_ARM_VGIC_V3 failed)");
  }
  profile.gic_version = gic_version;
  profile.its = gic_version == 3 && facts.vgic_its;
  profile.reason += fmt::format("; GICv{} from arm64.gic_version",
                                gic_version);
  return Ok();
}

Result<Profile> ResolveProfile(const HostFacts& facts,
                               std::string_view profile,
                               uint32_t gic_version) {
  std::optional<std::string_view> forced;
  if (profile != "auto") forced = profile;
  Profile p = STRATA_TRY(ChooseProfile(facts, forced));
  if (gic_version != 0) STRATA_TRY(ApplyGicOverride(p, facts, gic_version));
  return p;
}

}  // namespace strata::arm64
