// strata — what the pc machine's firmware tables describe, resolved from the
// config: the same topology, vCPU counts and memory size the machine and
// the CPUID policy use, so the tables and CPUID agree on every APIC id.
#pragma once

#include <array>
#include <cstdint>

#include "arch/amd64/cpuid.h"

namespace strata::amd64::firmware {

struct MachineInfo {
  CpuTopology topo;
  uint32_t cpus = 1;      // present at boot: vCPU indices 0..cpus-1
  uint32_t max_cpus = 1;  // cpu.max: cpus..max_cpus-1 are hot-pluggable
  uint64_t memory_size = 0;
  std::array<uint8_t, 16> uuid{};  // SMBIOS type 1, in wire order
};

// RAM below 4 GiB and from 4 GiB, as the pc machine lays it out
// (pc_layout.h: low RAM up to 3 GiB, the rest from 4 GiB).
uint64_t LowRamSize(const MachineInfo& m);
uint64_t HighRamSize(const MachineInfo& m);
// The 64-bit PCI MMIO window: above RAM (never below 4 GiB), 1 GiB aligned.
uint64_t PciMmio64Base(const MachineInfo& m);

}  // namespace strata::amd64::firmware
