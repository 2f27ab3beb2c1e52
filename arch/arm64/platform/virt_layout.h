// strata — the memory map and interrupt numbers of the arm64 "virt" machine.
//
// QEMU's virt machine (hw/arm/virt.c, base_memmap and a15irqmap), so that a
// guest built for `qemu-system-aarch64 -M virt` — kvm-unit-tests' default
// target, Linux with its generated DTB — finds every device where it looks:
//
//   0x08000000  GIC distributor (64 KiB)
//   0x08010000  GICv2 CPU interface (8 KiB; GICv2 only)
//   0x08080000  GICv3 ITS (128 KiB)
//   0x080a0000  GICv3 redistributors, 128 KiB per vCPU, up to 0x09000000
//               (123 vCPUs)
//   0x09000000  PL011 UART (4 KiB), SPI 1 (INTID 33)
//   0x0a000000  32 virtio-mmio slots of 512 bytes, SPIs 16-47
//   0x40000000  RAM
//
// With arm64.layout=kvmtool the machine is laid out as kvmtool's arm64 VM
// (arm/include/arm-common/kvm-arch.h, hw/serial.c), for kvm-unit-tests
// built with --target=kvmtool: RAM from 0x80000000, an ns16550a UART at
// 0x01000000 (SPI 0), the GIC distributor just below 0x40000000 with the
// GICv2 CPU interface or the GICv3 redistributors (128 KiB a vCPU) and the
// ITS below it.
#pragma once

#include <cstdint>
#include <string_view>

namespace strata::arm64::virt {

inline constexpr uint64_t kGicDistBase = 0x08000000;
inline constexpr uint64_t kGicCpuBase = 0x08010000;
inline constexpr uint64_t kGicItsBase = 0x08080000;
inline constexpr uint64_t kGicRedistBase = 0x080a0000;
inline constexpr uint64_t kGicRedistSize = 0x09000000 - kGicRedistBase;
inline constexpr uint64_t kUartBase = 0x09000000;
inline constexpr uint64_t kUartSize = 0x1000;
inline constexpr uint32_t kUartSpi = 1;  // SPI numbers count from INTID 32
inline constexpr uint64_t kVirtioMmioBase = 0x0a000000;
inline constexpr uint64_t kRamBase = 0x40000000;

// PCIe (base_memmap VIRT_PCIE_MMIO, VIRT_PCIE_PIO, VIRT_PCIE_ECAM; a15irqmap
// VIRT_PCIE), QEMU layout only: the 32-bit memory window (PCI address =
// CPU address), the PCI I/O space as an MMIO window (port p at
// kPciePioBase + p), ECAM for buses 0-15, INTx on SPIs 3-6. BARs the
// machine assigns start at port kPcieIoBarBase and at kPcieMmioBase.
inline constexpr uint64_t kPcieMmioBase = 0x10000000;
inline constexpr uint64_t kPcieMmioSize = 0x2eff0000;
inline constexpr uint64_t kPciePioBase = 0x3eff0000;
inline constexpr uint64_t kPciePioSize = 0x00010000;
inline constexpr uint64_t kPcieEcamBase = 0x3f000000;
inline constexpr uint64_t kPcieEcamSize = 0x01000000;
inline constexpr uint32_t kPcieBusLast = 15;  // kPcieEcamSize / 1 MiB - 1
inline constexpr uint32_t kPcieIntxSpi = 3;   // INTA# of slot 0; 4 SPIs
inline constexpr uint64_t kPcieIoBarBase = 0x1000;
// RAM may reach the end of the 40-bit IPA space KVM gives by default.
inline constexpr uint64_t kRamLimit = (uint64_t{1} << 40) - kRamBase;

inline constexpr uint32_t kGicSpis = 256;  // as QEMU's virt (NUM_IRQS)
inline constexpr uint32_t kPmuPpi = 23;    // INTIDs of the PPIs
inline constexpr uint32_t kTimerSecurePpi = 29;
inline constexpr uint32_t kTimerPhysPpi = 30;
inline constexpr uint32_t kTimerVirtPpi = 27;
inline constexpr uint32_t kTimerHypPpi = 26;

// kvmtool's layout (see the top).
inline constexpr uint64_t kKvmtoolRamBase = 0x80000000;
inline constexpr uint64_t kKvmtoolUartBase = 0x01000000;
inline constexpr uint64_t kKvmtoolUartSize = 0x1000;
inline constexpr uint32_t kKvmtoolUartSpi = 0;
inline constexpr uint64_t kKvmtoolAxiBase = 0x40000000;
inline constexpr uint64_t kKvmtoolGicDistBase = kKvmtoolAxiBase - 0x10000;
inline constexpr uint64_t kKvmtoolGicCpuBase = kKvmtoolGicDistBase - 0x20000;

// Where a machine of `layout` ("qemu" or "kvmtool") and `max_vcpus` puts
// things.
struct Layout {
  std::string_view name;
  uint64_t ram_base, ram_limit;  // RAM is [ram_base, ram_base + size)
  uint64_t gic_dist, gic_cpu, gic_its, gic_redist, gic_redist_size;
  bool uart_is_pl011;
  uint64_t uart_base, uart_size;
  uint32_t uart_spi;
};

constexpr Layout QemuLayout() {
  return {"qemu",         kRamBase,       kRamLimit,  kGicDistBase,
          kGicCpuBase,    kGicItsBase,    kGicRedistBase, kGicRedistSize,
          true,           kUartBase,      kUartSize,  kUartSpi};
}

constexpr Layout KvmtoolLayout(uint32_t max_vcpus) {
  const uint64_t redist_size = uint64_t{max_vcpus} * 0x20000;
  const uint64_t redist = kKvmtoolGicDistBase - redist_size;
  return {"kvmtool",
          kKvmtoolRamBase,
          (uint64_t{1} << 40) - kKvmtoolRamBase,
          kKvmtoolGicDistBase,
          kKvmtoolGicCpuBase,
          redist - 0x20000,
          redist,
          redist_size,
          false,
          kKvmtoolUartBase,
          kKvmtoolUartSize,
          kKvmtoolUartSpi};
}

// The MPIDR_EL1 KVM gives vCPU `index` (arch/arm64/kvm/sys_regs.c,
// reset_mpidr: Aff0 = index bits 3:0, Aff1 = bits 11:4, Aff2 = bits 19:12;
// bit 31 is RES1).
constexpr uint64_t KvmMpidr(uint32_t index) {
  return (uint64_t{1} << 31) | (index & 0xf) | (((index >> 4) & 0xff) << 8) |
         ((uint64_t{(index >> 12) & 0xff}) << 16);
}

}  // namespace strata::arm64::virt
