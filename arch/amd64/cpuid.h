// strata — amd64 guest CPUID policy.
//
// Theory: KVM_GET_SUPPORTED_CPUID says what the host KVM can virtualize; it
// says nothing about the machine the guest should see (vendor, topology, APIC
// ids, hypervisor leaves). BuildGuestCpuid turns that table into one vCPU's
// CPUID in two steps:
//   1. a vendor-neutral pass (this file): vendor string, leaf 1 (initial APIC
//      id, logical processor count, HTT, hypervisor/x2APIC/TSC-deadline bits)
//      and the KVM hypervisor leaves 0x4000_0000/0x4000_0001;
//   2. the VendorPolicy of the chosen vendor (vmx/cpuid_vmx.cc for Intel,
//      svm/cpuid_svm.cc for AMD): the topology leaves each vendor defines, and
//      hiding whatever would contradict that vendor (the other vendor's
//      virtualization bit, its private leaves and feature bits).
// The guest vendor need not match the host vendor: an AMD guest on an Intel
// host (or the reverse) gets a self-consistent AMD view, within what KVM can
// emulate. Every leaf is rebuilt per vCPU because APIC ids differ.
//
// APIC ids follow the SDM's topology encoding (SDM Vol. 3 §10.12.8.1, AMD APM
// Vol. 2 §16.12): SMT id in the low bits, then core id, then package id, each
// field as wide as its count rounded up to a power of two. So 3 cores per
// package leave id holes; that is what real hardware does and what the
// guest's topology code expects.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace strata::amd64 {

// One CPUID leaf/subleaf, laid out like struct kvm_cpuid_entry2 minus padding.
struct CpuidEntry {
  uint32_t function = 0;
  uint32_t index = 0;
  uint32_t flags = 0;
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// The entry's `index` selects a subleaf (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
inline constexpr uint32_t kCpuidFlagSignificantIndex = 1;

// Leaves (SDM Vol. 2A "CPUID", AMD APM Vol. 3 Appendix E).
inline constexpr uint32_t kLeafVendor = 0x0;
inline constexpr uint32_t kLeafFeatures = 0x1;
inline constexpr uint32_t kLeafCacheParams = 0x4;           // Intel only
inline constexpr uint32_t kLeafStructuredFeatures = 0x7;
inline constexpr uint32_t kLeafPerfMon = 0xa;               // architectural PMU
inline constexpr uint32_t kLeafExtTopology = 0xb;
inline constexpr uint32_t kLeafXsave = 0xd;
inline constexpr uint32_t kLeafV2ExtTopology = 0x1f;        // Intel only
inline constexpr uint32_t kLeafHypervisorBase = 0x40000000;
inline constexpr uint32_t kLeafKvmFeatures = 0x40000001;
// The range hypervisors own (Linux's hypervisor detection scans it; the
// Hyper-V TLFS reserves 0x4000_0000-0x4000_FFFF).
inline constexpr uint32_t kLeafHypervisorLast = 0x4000ffff;
// With Hyper-V's leaves at 0x4000_0000, KVM's go here (KVM scans every
// multiple of 0x100 for its signature: Documentation/virt/kvm/x86/
// cpuid.rst), as QEMU puts them.
inline constexpr uint32_t kLeafKvmBaseWithHyperv = 0x40000100;
inline constexpr uint32_t kLeafExtMax = 0x80000000;
inline constexpr uint32_t kLeafExtFeatures = 0x80000001;
inline constexpr uint32_t kLeafAddressSizes = 0x80000008;
inline constexpr uint32_t kLeafAmdSvm = 0x8000000a;
inline constexpr uint32_t kLeafAmdCacheTopology = 0x8000001d;
inline constexpr uint32_t kLeafAmdExtApicId = 0x8000001e;

// CPUID.1 bits.
inline constexpr uint32_t kLeaf1EcxVmx = 1u << 5;
inline constexpr uint32_t kLeaf1EcxSmx = 1u << 6;
inline constexpr uint32_t kLeaf1EcxX2apic = 1u << 21;
inline constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
inline constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
inline constexpr uint32_t kLeaf1EdxHtt = 1u << 28;
inline constexpr uint32_t kLeaf1EbxApicIdShift = 24;        // EBX[31:24]
inline constexpr uint32_t kLeaf1EbxLogicalCountShift = 16;  // EBX[23:16]

// CPUID.8000_0001 bits (AMD APM Vol. 3 Appendix E, Fn8000_0001).
inline constexpr uint32_t kExtEcxCmpLegacy = 1u << 1;
inline constexpr uint32_t kExtEcxSvm = 1u << 2;
inline constexpr uint32_t kExtEcxExtApicSpace = 1u << 3;
inline constexpr uint32_t kExtEcxSkinit = 1u << 12;
inline constexpr uint32_t kExtEcxTopoExt = 1u << 22;
inline constexpr uint32_t kExtEcxPerfCtrCore = 1u << 23;
inline constexpr uint32_t kExtEcxPerfCtrNb = 1u << 24;
// EDX bits that AMD mirrors from CPUID.1:EDX and Intel leaves zero: FPU..APIC
// (0-9), MTRR..PSE36 (12-17), MMX, FXSR (23, 24). AMD APM Vol. 3 Appendix E,
// Fn8000_0001_EDX.
inline constexpr uint32_t kExtEdxAmdAliases = 0x0183f3ff;

// Extended topology level types, CPUID.0B/1F:ECX[15:8] (SDM Vol. 2A CPUID).
inline constexpr uint32_t kTopologyLevelInvalid = 0;
inline constexpr uint32_t kTopologyLevelSmt = 1;
inline constexpr uint32_t kTopologyLevelCore = 2;

// The signature KVM puts in CPUID.4000_0000 (Documentation/virt/kvm/x86/
// cpuid.rst): "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
inline constexpr uint32_t kKvmSignatureEbx = 0x4b4d564b;  // "KVMK"
inline constexpr uint32_t kKvmSignatureEcx = 0x564b4d56;  // "VMKV"
inline constexpr uint32_t kKvmSignatureEdx = 0x0000004d;  // "M\0\0\0"

enum class CpuVendor { kIntel, kAmd };

std::string_view VendorName(CpuVendor v);  // "intel" / "amd"

// Accepts "intel", "amd" (any case) and the CPUID vendor strings
// "GenuineIntel", "AuthenticAMD".
Result<CpuVendor> ParseVendor(std::string_view s);

// The vendor named by leaf 0 of `leaves` (e.g. the host's supported table);
// Intel when leaf 0 is missing or names neither vendor.
CpuVendor VendorFromCpuid(std::span<const CpuidEntry> leaves);

// Counts per level; the VM's vCPU count is normally the product, but more
// vCPUs may be created (they go into further packages).
struct CpuTopology {
  uint32_t sockets = 1, cores = 1, threads = 1;
};

// Bits of the APIC id taken by the SMT and core fields: each count rounded up
// to a power of two (SDM Vol. 3 §10.12.8.1).
uint32_t SmtIdBits(const CpuTopology& t);
uint32_t CoreIdBits(const CpuTopology& t);
// x2APIC id (and, when it fits, xAPIC id) of vCPU `vcpu_index`, numbering
// vCPUs thread-first, then core, then package. Counts of 0 are treated as 1
// (BuildGuestCpuid rejects them).
uint32_t ApicIdFor(const CpuTopology& t, uint32_t vcpu_index);

struct CpuModel;  // cpu_models.h

// A named CPUID feature bit forced on or off (QEMU's -cpu +flag/-flag).
struct CpuFeatureOverride {
  std::string name;
  bool on = true;
};

struct CpuidOptions {
  CpuVendor vendor = CpuVendor::kIntel;
  CpuTopology topo;
  bool hypervisor_bit = true;  // CPUID.1:ECX[31] and the 0x4000_00xx leaves
  bool x2apic = true;
  bool tsc_deadline = true;    // KVM emulates it but leaves it out of
                               // KVM_GET_SUPPORTED_CPUID (KVM_CAP_TSC_DEADLINE_TIMER)
  uint32_t max_vcpus = 0;      // vCPUs the VM may have; 0 = sockets*cores*threads
  // A named model (cpu_models.h) applied to KVM's table first, or nullptr
  // for KVM's table as it is.
  const CpuModel* model = nullptr;
  // Without a model: the brand string (leaves 8000_0002-4) when not empty;
  // KVM's table usually leaves them zero, which Linux prints as a family
  // name ("AMD Hammer").
  std::string brand;
  // Applied last, in order. "+" needs the bit in KVM's supported table.
  std::vector<CpuFeatureOverride> features;
  // Hyper-V's leaves (arch/amd64/hyperv/hyperv_cpuid.h), put at 0x4000_0000
  // as given, KVM's then at kLeafKvmBaseWithHyperv; empty: KVM's at
  // 0x4000_0000. Needs hypervisor_bit.
  std::vector<CpuidEntry> hyperv_leaves;
};

// The "+name" overrides of `features` whose bit KVM's `supported` table
// lacks (what ApplyFeatureOverrides would refuse), in order.
std::vector<std::string> MissingFeatures(
    std::span<const CpuidEntry> supported,
    std::span<const CpuFeatureOverride> features);

// Speculation-control MSRs that must #GP for a guest whose CPUID does not
// enumerate them (SDM Vol. 4 Table 2-2; AMD's 0x8000_0008 EBX bits), as KVM
// itself gates them (arch/x86/kvm/cpuid.h guest_has_spec_ctrl_msr,
// guest_has_pred_cmd_msr): IA32_SPEC_CTRL (0x48) without SPEC_CTRL or AMD
// IBRS/STIBP/SSBD, IA32_PRED_CMD (0x49) without SPEC_CTRL or AMD IBPB,
// IA32_FLUSH_CMD (0x10b) without FLUSH_L1D. Not every host KVM enforces
// this (PLATFORM.md's paravirtual one does not), so the backend installs
// an MSR filter for the ones returned.
inline constexpr uint32_t kMsrSpecCtrl = 0x48;
inline constexpr uint32_t kMsrPredCmd = 0x49;
inline constexpr uint32_t kMsrFlushCmd = 0x10b;
std::vector<uint32_t> UnenumeratedSpeculationMsrs(
    std::span<const CpuidEntry> guest);

// The feature names CpuFeatureOverride knows (QEMU's spellings: pcid,
// invpcid, umip, xsave, rdtscp, vmx, svm, ...), sorted.
std::vector<std::string_view> CpuFeatureNames();
// Parses "+name,-name,name=on|off,..." (empty: none). kInvalidArgument
// naming an unknown feature and the closest known one.
Result<std::vector<CpuFeatureOverride>> ParseCpuFeatures(std::string_view text);

// One item of a comma-separated list of switches (x86.cpu_features,
// x86.hyperv, after QEMU's -cpu flags): "+name" or "name" is on, "-name"
// off, "name=on|off" (or true/false) either.
struct Switch {
  std::string_view name;
  bool on = true;
};
// The items of `text` (views into it), empty ones skipped.
// kInvalidArgument for a value other than on/off, naming `what` ("CPU
// feature") and the item.
Result<std::vector<Switch>> ParseSwitches(std::string_view text,
                                          std::string_view what);

class VendorPolicy {
 public:
  virtual ~VendorPolicy() = default;
  virtual CpuVendor vendor() const = 0;
  // The 12-byte CPUID vendor string: "GenuineIntel" / "AuthenticAMD".
  virtual std::string_view vendor_string() const = 0;
  // The native hypercall instruction: vmcall (0f 01 c1) / vmmcall (0f 01 d9).
  virtual std::span<const uint8_t> hypercall_insn() const = 0;
  // Vendor MSRs to save/restore besides the architectural ones. Candidates:
  // intersect with KVM_GET_MSR_INDEX_LIST before use.
  virtual std::span<const uint32_t> vendor_msrs() const = 0;
  // Rewrites the vendor-specific leaves of `leaves` for vCPU `vcpu_index`:
  // topology leaves, the other vendor's virtualization bit, and anything that
  // contradicts this vendor. Called by BuildGuestCpuid after the neutral pass,
  // with validated options.
  virtual void Apply(std::vector<CpuidEntry>& leaves, const CpuidOptions& opts,
                     uint32_t vcpu_index) const = 0;
};

std::unique_ptr<VendorPolicy> MakeVendorPolicy(CpuVendor v);

// Checks what BuildGuestCpuid needs of `opts` whatever the host: counts of
// at least 1 whose product fits 32 bits, and APIC ids for max_vcpus that fit
// x2APIC (or xAPIC, without x2apic). kInvalidArgument naming the topology.
// Front ends call it to reject bad input before creating a VM.
Status CheckCpuidOptions(const CpuidOptions& opts);

// The complete guest CPUID of vCPU `vcpu_index` from the host's
// KVM_GET_SUPPORTED_CPUID table.
Result<std::vector<CpuidEntry>> BuildGuestCpuid(
    std::span<const CpuidEntry> supported, const CpuidOptions& opts,
    uint32_t vcpu_index);

// --- Helpers shared by the VendorPolicy implementations ---------------------

// The entry for (function, index); `index` is ignored for entries without
// kCpuidFlagSignificantIndex. nullptr if absent. The pointer is into
// `leaves`: it dangles after anything that may append (SetLeaf,
// WriteExtendedTopology, push_back), so look the leaf up again afterwards.
CpuidEntry* FindLeaf(std::vector<CpuidEntry>& leaves, uint32_t function,
                     uint32_t index = 0);
const CpuidEntry* FindLeaf(std::span<const CpuidEntry> leaves,
                           uint32_t function, uint32_t index = 0);
// Replaces the matching entry or appends `e`.
void SetLeaf(std::vector<CpuidEntry>& leaves, const CpuidEntry& e);
// Removes every entry (all subleaves) of `function`.
void EraseLeaf(std::vector<CpuidEntry>& leaves, uint32_t function);
// Stores a 12-byte vendor string in EBX, EDX, ECX (that order, SDM Vol. 2A
// CPUID leaf 0).
void SetVendorString(CpuidEntry& e, std::string_view vendor12);
// Replaces all subleaves of `function` (0xB or 0x1F) with SMT and core levels
// for `topo` and the terminating invalid level, EDX = `x2apic_id` in each
// (SDM Vol. 2A CPUID leaf 0BH / 1FH).
void WriteExtendedTopology(std::vector<CpuidEntry>& leaves, uint32_t function,
                           const CpuTopology& topo, uint32_t x2apic_id);
// Raises the maximum leaf reported by `range_leaf` (0 or 0x8000_0000) to at
// least `leaf`.
void RaiseMaxLeaf(std::vector<CpuidEntry>& leaves, uint32_t range_leaf,
                  uint32_t leaf);

}  // namespace strata::amd64
