// strata — named x86 CPU models for the guest CPUID (QEMU's -cpu names).
//
// Theory: by default a guest sees what KVM supports on this host, filtered
// by the vendor policy (cpuid.h). A named model instead describes a fixed
// processor — its vendor, family/model/stepping, brand string, the highest
// basic and extended leaves, and the feature bits of each feature word —
// so a guest (or a test such as kvm-unit-tests' syscall, which asks for
// `-cpu Opteron_G1`) sees the same CPU on any host. The guest gets the
// model's bits that KVM also supports: a bit the model has and the host's
// KVM lacks is dropped and reported (ApplyCpuModel's return), as QEMU warns
// "host doesn't support requested feature". Every feature word the model
// leaves empty is cleared, leaves above the model's levels are removed
// (the vendor policy raises the basic level again for its topology leaf
// 0xB, as QEMU does for x2APIC topologies), the PMU leaf 0xA goes (named
// models have no vPMU, as QEMU's default `pmu=off` for them), and the XSAVE
// leaf keeps only the state components the model's features imply.
// strata's own knobs stay on top: the hypervisor bit and leaves, x2APIC
// and the TSC deadline timer (x86.x2apic, x86.tsc_deadline, both on by
// default as KVM's LAPIC provides them) and x86.cpu_features overrides.
//
// The feature words follow QEMU's definitions in target/i386/cpu.c (the
// v1 of each model); the bits are the SDM's (Vol. 2A, CPUID) and AMD's
// (APM Vol. 3, Appendix E).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arch/amd64/cpuid.h"

namespace strata::amd64 {

struct CpuModel {
  std::string_view name;      // QEMU's spelling, e.g. "Opteron_G1"
  CpuVendor vendor;
  uint32_t family, model, stepping;
  uint32_t level;             // highest basic leaf
  uint32_t xlevel;            // highest extended leaf
  // Feature words: the bits the model has.
  uint32_t leaf1_edx, leaf1_ecx;
  uint32_t leaf6_eax;         // thermal/power: ARAT
  uint32_t leaf7_ebx, leaf7_ecx, leaf7_edx;
  uint32_t xsave_eax;         // CPUID.(EAX=0DH,ECX=1):EAX
  uint32_t ext_edx, ext_ecx;  // CPUID.8000_0001
  std::string_view model_id;  // the brand string (leaves 8000_0002-4)
};

// The model of that name (exact, as QEMU matches), or nullptr.
const CpuModel* FindCpuModel(std::string_view name);
// Every model's name, in table order.
std::vector<std::string_view> CpuModelNames();

// Turns `leaves` (a copy of KVM's supported table) into the model's view,
// as the theory above says. Returns the model's feature bits the table
// lacked, each as "CPUID.1:ECX[28] (avx)" — dropped, for the caller to
// report.
std::vector<std::string> ApplyCpuModel(std::vector<CpuidEntry>& leaves,
                                       const CpuModel& model);

// Leaf 1's EAX signature: stepping, model and family with the extended
// model and family fields (SDM Vol. 2A, Figure 3-6).
uint32_t CpuSignature(uint32_t family, uint32_t model, uint32_t stepping);

// Writes `brand` (at most 47 characters, NUL-padded to 48 bytes) into
// leaves 8000_0002..8000_0004, raising the extended level to 8000_0004 if
// it is lower.
void SetBrandString(std::vector<CpuidEntry>& leaves, std::string_view brand);

// The brand string in `leaves` (8000_0002-4, NUL-trimmed), "" if absent
// or empty.
std::string BrandString(std::span<const CpuidEntry> leaves);

}  // namespace strata::amd64
