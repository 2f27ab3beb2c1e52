// strata — the Hyper-V enlightenments a guest is offered, as CPUID says.
//
// Theory. A guest learns that it runs on Hyper-V, and which of its
// interfaces it may use, from the hypervisor CPUID leaves (Hyper-V TLFS,
// "Feature Discovery", "Hypervisor CPUID Leaves"): 0x4000_0000 (vendor,
// highest leaf), 0x4000_0001 (interface signature "Hv#1"), 0x4000_0002
// (version), 0x4000_0003 (features: the MSRs and hypercalls the partition
// may use), 0x4000_0004 (recommendations) and 0x4000_0005 (implementation
// limits). KVM implements the enlightenments
// themselves (the MSRs, the reference TSC page, the SynIC and its timers,
// the TLB-flush and IPI hypercalls) and says which it can offer in
// KVM_GET_SUPPORTED_HV_CPUID; the VMM chooses a set and writes the leaves.
// KVM enables Hyper-V emulation for a vCPU when 0x4000_0001.EAX is "Hv#1"
// and finds its own paravirtual leaves by their signature at any multiple
// of 0x100 (Documentation/virt/kvm/x86/cpuid.rst), so with Hyper-V at
// 0x4000_0000 the KVM leaves move to 0x4000_0100, as QEMU does.
//
// The choice is the x86.hyperv config value, after QEMU's -cpu hv-* flags:
//   off                    no Hyper-V leaves (the default)
//   passthrough            every feature below that KVM offers
//                          (QEMU's hv-passthrough)
//   relaxed,time,...       exactly these features
// and, after `passthrough` or a name, `-name` (or name=off) removes one.
// Features a feature needs (QEMU's dependencies) must be chosen too.
#pragma once

#include <bitset>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arch/amd64/cpuid.h"
#include "core/result.h"

namespace strata::amd64::hyperv {

// The leaves.
inline constexpr uint32_t kLeafVendorAndMax = 0x40000000;
inline constexpr uint32_t kLeafInterface = 0x40000001;
inline constexpr uint32_t kLeafVersion = 0x40000002;
inline constexpr uint32_t kLeafFeatures = 0x40000003;
inline constexpr uint32_t kLeafEnlightenments = 0x40000004;
inline constexpr uint32_t kLeafLimits = 0x40000005;
// "Hv#1" in 0x4000_0001.EAX: the Microsoft hypervisor interface.
inline constexpr uint32_t kInterfaceSignature = 0x31237648;
// Where KVM's own leaves go when Hyper-V's are at 0x4000_0000.
inline constexpr uint32_t kKvmLeafBase = 0x40000100;
// The vendor id QEMU gives a Hyper-V guest by default (hv-vendor-id), and
// that Linux looks for (arch/x86/kernel/cpu/mshyperv.c).
inline constexpr std::string_view kDefaultVendorId = "Microsoft Hv";
inline constexpr size_t kVendorIdMaxLength = 12;

// 0x4000_0003.EBX, partition privileges: the SynIC's message and event
// hypercalls.
inline constexpr uint32_t kPrivilegePostMessages = 1u << 4;
inline constexpr uint32_t kPrivilegeSignalEvents = 1u << 5;
// 0x4000_0003.EAX bit 5: the hypercall MSRs, needed by every
// enlightenment that uses a hypercall.
inline constexpr uint32_t kFeatureHypercallMsrs = 1u << 5;
// 0x4000_0004.EAX bit 3: use the APIC MSRs (with vapic, unless avic says
// not to).
inline constexpr uint32_t kRecommendApicMsrs = 1u << 3;
// 0x4000_0004.EBX: spinlock retries before notifying; all-ones = never.
inline constexpr uint32_t kSpinlockNeverNotify = 0xffffffffu;

enum class Feature : uint8_t {
  kRelaxed,          // relaxed timing (no watchdog on long stalls)
  kVapic,            // the APIC access MSRs and assist page
  kTime,             // TIME_REF_COUNT and the reference TSC page
  kCrash,            // the guest crash MSRs
  kReset,            // the reset MSR
  kVpIndex,          // the VP_INDEX MSR
  kRuntime,          // the VP_RUNTIME MSR
  kSynic,            // the synthetic interrupt controller
  kStimer,           // synthetic timers
  kStimerDirect,     // synthetic timers in direct (APIC vector) mode
  kFrequencies,      // the TSC/APIC frequency MSRs
  kReenlightenment,  // the reenlightenment (TSC change) MSRs
  kTlbFlush,         // the TLB-flush hypercalls
  kTlbFlushExt,      // their extended GVA ranges
  kIpi,              // the IPI hypercalls
  kAvic,             // AutoEOI deprecated (so APICv/AVIC stay usable)
  kXmmInput,         // fast hypercalls with XMM input
  kCount,
};
using FeatureSet = std::bitset<static_cast<size_t>(Feature::kCount)>;

// "relaxed", "stimer-direct", ... (QEMU's hv-* names without "hv-").
std::string_view FeatureName(Feature f);
// One line: "synthetic timers (stimer)".
std::string FeatureDescription(Feature f);
// Every feature name, in Feature order.
std::vector<std::string_view> FeatureNames();
// "relaxed,vapic,time" for a set, in Feature order ("" when empty).
std::string FormatFeatures(const FeatureSet& s);

// x86.hyperv, parsed.
struct Request {
  bool enabled = false;      // anything but "off"
  bool passthrough = false;  // start from what KVM offers
  FeatureSet add, remove;
};
// kInvalidArgument for an unknown name (the known ones are listed), "off"
// with anything else, or a list that leaves nothing.
Result<Request> ParseRequest(std::string_view text);

// kInvalidArgument for a feature of `s` without one it depends on.
Status CheckDependencies(const FeatureSet& s);

// The features whose CPUID bits are all in `host` (the table
// KVM_GET_SUPPORTED_HV_CPUID returns).
FeatureSet HostFeatures(std::span<const CpuidEntry> host);

// The features a VM gets. kUnsupported, saying "is not supported by KVM on
// this host", for a requested feature `host` lacks; kInvalidArgument for a
// feature without one it depends on.
Result<FeatureSet> Resolve(const Request& request,
                           std::span<const CpuidEntry> host);

// Leaves 0x4000_0000-0x4000_0005 for `features`, vendor id `vendor_id`
// (at most 12 characters), with the interface, version and limits KVM
// reports; spinlock retries as KVM reports with `passthrough`, else never
// notify (QEMU's defaults). kUnsupported if `host` has no "Hv#1" interface
// leaf; kInvalidArgument for a vendor id that is too long.
Result<std::vector<CpuidEntry>> BuildLeaves(std::span<const CpuidEntry> host,
                                            const FeatureSet& features,
                                            std::string_view vendor_id,
                                            bool passthrough);

}  // namespace strata::amd64::hyperv
