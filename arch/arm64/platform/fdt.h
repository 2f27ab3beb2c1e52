// strata — the flattened device tree of the arm64 "virt" machine: what the
// guest (Linux, kvm-unit-tests, our own guests) learns about the machine.
//
// Theory. The tree follows QEMU's hw/arm/virt.c (create_fdt,
// fdt_add_{psci,cpu,timer,pmu,gic}_node(s), create_uart,
// create_virtio_devices) so a guest built for `qemu-system-aarch64 -M virt`
// finds the same nodes, names, compatibles and interrupt encodings:
//   /                  compatible = model = "linux,dummy-virt", 2/2 cells,
//                      interrupt-parent = <&gic>
//   /psci              "arm,psci-1.0", "arm,psci-0.2", "arm,psci"; method
//                      "hvc"; the legacy "arm,psci" function ids (SMC64)
//   /cpus/cpu@N        one per vCPU in index order; reg = MPIDR_EL1's
//                      affinity fields (Aff3..Aff0, mask 0xff00ffffff),
//                      #address-cells 2 only when some Aff3 is non-zero
//   /memory@<base>     device_type "memory"
//   /intc@<gicd>       GICv3 ("arm,gic-v3", distributor + redistributor
//                      regions, optional its@<base> "arm,gic-v3-its" child)
//                      or GICv2 ("arm,cortex-a15-gic", distributor + CPU
//                      interface); phandle kGicPhandle
//   /timer             "arm,armv8-timer", "arm,armv7-timer"; always-on;
//                      4 PPIs, level-high (QEMU virt >= 2.9), plus the
//                      CPU mask in bits [15:8] of the flags on GICv2
//   /pmu               "arm,armv8-pmuv3", one PPI, level-high
//   /apb-pclk          fixed-clock, 24 MHz, for the PL011
//   /pl011@<base>      "arm,pl011", "arm,primecell", or /uart@<base>
//                      "ns16550a" (kvmtool's UART)
//   /virtio_mmio@<b>   "virtio,mmio", dma-coherent, edge-rising SPI
//   /pcie@<mmio base>  optional: "pci-host-ecam-generic" (create_pcie),
//                      reg = ECAM, bus-range, ranges = the I/O window
//                      (PCI I/O 0 at its CPU address) and the 32-bit
//                      memory window (1:1), #interrupt-cells 1, the INTx
//                      swizzle in interrupt-map (4 slots x 4 pins, mask
//                      <0x1800 0 0 7>, level-high SPIs), msi-map to the
//                      ITS when it has one; bindings/pci/
//                      host-generic-pci.yaml and pci.txt (IEEE 1275 PCI)
//   /aliases           serial0 = the UART (as recent QEMU writes it)
//   /chosen            stdout-path, bootargs, linux,initrd-start/-end
// Interrupt specifiers are <type number flags> with type 0 = SPI (number =
// INTID - 32) and 1 = PPI (number = INTID - 16); Linux's
// Documentation/devicetree/bindings/interrupt-controller/arm,gic*.yaml.
// The DTB must be at most 2 MiB (Documentation/arch/arm64/booting.rst,
// "Setup the device tree").
//
// dtc (1.6.1) decompiles every tree this writes with none of its default
// checks warning (fdt_test). Of the opt-in checks, node_name_chars_strict
// flags "virtio_mmio@..." (QEMU's node name, kept for guests that look for
// it) and property_name_chars_strict flags /psci's cpu_on, cpu_off,
// cpu_suspend (the names the "arm,psci" binding defines). cpu@N is the vCPU
// index, as QEMU and kvmtool name it, not the reg value; dtc does not check
// that and Linux does not care.
//
// Everything is checked before anything is written: BuildVirtFdt returns
// kInvalidArgument naming the field for a spec the guest could not use.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace strata::arm64 {

// booting.rst: "must not exceed 2 megabytes in size".
inline constexpr uint64_t kDtbMaxSize = 2ull << 20;
uint64_t DtbSizeLimit();

// GICv3 redistributor frames per CPU: RD_base + SGI_base, 64 KiB each
// (GICv3 spec §12.10); a region holds size / 128 KiB redistributors.
inline constexpr uint64_t kGicv3RedistSize = 0x20000;
// GICv2 targets at most 8 CPUs (GICv2 spec §1.3.1, GICD_ITARGETSR).
inline constexpr size_t kGicv2MaxCpus = 8;

// The MPIDR_EL1 affinity fields a cpu node's reg holds (Linux
// bindings/arm/cpus.yaml: Aff3 in [39:32], Aff2..Aff0 in [23:0]).
inline constexpr uint64_t kMpidrHwidMask = 0xff00ffffffull;

// Phandles of the nodes others point at (fixed: the tree is written in one
// pass with libfdt's sequential-write API).
inline constexpr uint32_t kGicPhandle = 1;
inline constexpr uint32_t kItsPhandle = 2;
inline constexpr uint32_t kApbClockPhandle = 3;

// Flags cell of a GIC interrupt specifier (include/dt-bindings/
// interrupt-controller/irq.h; QEMU's GIC_FDT_IRQ_FLAGS_*).
inline constexpr uint32_t kIrqTypeSpi = 0;
inline constexpr uint32_t kIrqTypePpi = 1;
inline constexpr uint32_t kIrqEdgeRising = 1;
inline constexpr uint32_t kIrqLevelHigh = 4;
inline constexpr uint32_t kIrqLevelLow = 8;
inline constexpr uint32_t kIrqPpiCpuShift = 8;  // GICv2 only: CPU mask

// PSCI function ids for the legacy "arm,psci" binding (PSCI spec DEN0022,
// §5.1: SMC64 variants where the call takes an address).
inline constexpr uint32_t kPsciCpuSuspend64 = 0xc4000001;
inline constexpr uint32_t kPsciCpuOff = 0x84000002;
inline constexpr uint32_t kPsciCpuOn64 = 0xc4000003;
inline constexpr uint32_t kPsciMigrate64 = 0xc4000005;

struct VirtFdtSpec {
  struct Region {
    uint64_t base = 0, size = 0;
  };
  struct Uart {
    enum class Kind { kPl011, kNs16550a };
    Kind kind = Kind::kPl011;
    Region mmio{0x09000000, 0x1000};
    uint32_t spi_intid = 33;  // QEMU virt: UART0 is SPI 1
  };
  struct VirtioMmio {
    Region mmio;
    uint32_t spi_intid = 0;
  };
  // A PCIe host bridge with ECAM (QEMU virt's gpex; defaults: its map).
  struct Pcie {
    Region ecam{0x3f000000, 0x01000000};  // 1 MiB a bus, from bus_first
    uint32_t bus_first = 0, bus_last = 15;
    Region pio{0x3eff0000, 0x10000};      // CPU address of PCI I/O port 0
    Region mmio{0x10000000, 0x2eff0000};  // 32-bit memory, PCI = CPU address
    // The SPI INTIDs of slot 0's INTA#-INTD#; slot s pin p (0-3) gets
    // intx_spi_intids[(s + p) % 4] (the swizzle, PCI-to-PCI Bridge 1.2
    // §9.1). QEMU virt: SPIs 3-6.
    std::array<uint32_t, 4> intx_spi_intids = {35, 36, 37, 38};
    // msi-map = <0 &its 0 0x10000>: MSIs go to the ITS with the requester
    // id as device id (bindings/pci/pci-msi.txt). Needs `its`.
    bool msi_to_its = false;
  };

  uint64_t ram_base = 0x40000000;
  uint64_t ram_size = 0;
  // One per vCPU in vCPU index order (cpu@N is vCPU N).
  std::vector<uint64_t> mpidrs;
  std::string cpu_compatible = "arm,arm-v8";

  uint32_t gic_version = 3;  // 2 or 3
  Region gicd{0x08000000, 0x10000};
  // GICv3: the redistributor regions (#redistributor-regions), each a
  // multiple of kGicv3RedistSize, together room for every vCPU.
  std::vector<Region> gicr_regions;
  std::optional<Region> its;   // GICv3 ITS (msi-controller)
  std::optional<Region> gicc;  // GICv2: the CPU interface (required)
  // INTIDs the vGIC implements, SGIs and PPIs included (QEMU virt: 256 SPIs
  // + 32); every SPI below must be under it. At most 1020 (INTIDs
  // 1020-1023 are special, GICv3 spec §2.2.1).
  uint32_t gic_nr_irqs = 288;

  // INTIDs (16-31): secure physical, non-secure physical, virtual and
  // hypervisor (EL2 physical) timer, in the order of the binding
  // (bindings/timer/arm,arch_timer.yaml).
  std::array<uint32_t, 4> timer_intids = {29, 30, 27, 26};
  std::optional<uint32_t> pmu_intid = 23;  // a PPI; nullopt: no /pmu

  Uart uart;
  std::vector<VirtioMmio> virtio_mmio;  // in the order they are written
  std::optional<Pcie> pcie;             // nullopt: no PCI

  std::string bootargs;           // empty: no /chosen/bootargs
  std::optional<Region> initrd;   // linux,initrd-start = base, -end = base+size
};

// The DTB of `spec`, packed (no free space), at most DtbSizeLimit() bytes.
// Errors: kInvalidArgument (a field the guest could not use, named),
// kOutOfRange (the tree would exceed DtbSizeLimit()), kInternal (libfdt).
Result<std::vector<uint8_t>> BuildVirtFdt(const VirtFdtSpec& spec);

// The node paths BuildVirtFdt gives the GIC and the UART (the UART's is
// /chosen/stdout-path), for callers and tests.
std::string GicNodePath(const VirtFdtSpec& spec);
std::string UartNodePath(const VirtFdtSpec& spec);
// /pcie@<mmio base> (spec.pcie must be set).
std::string PcieNodePath(const VirtFdtSpec& spec);

// Address cells of a PCI "ranges"/"reg" entry (IEEE 1275 PCI binding
// §2.2.1.1, phys.hi): the space code in bits 25:24.
inline constexpr uint32_t kFdtPciRangeIo = 0x01000000;
inline constexpr uint32_t kFdtPciRangeMmio32 = 0x02000000;

}  // namespace strata::arm64
