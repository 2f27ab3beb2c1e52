// strata — the arm64 virt machine's PCIe: bus 0 behind QEMU virt's generic
// host bridge (hw/arm/virt.c create_pcie, hw/pci-host/gpex.c), placed as
// virt_layout.h says (QEMU layout), described to the guest by the
// /pcie@10000000 node (fdt.h, VirtFdtSpec::Pcie).
//
//   00:00.0        the host bridge (1b36:0008, class 06 00 00), always
//   0x3f000000     ECAM, 16 MiB (buses 0-15; only bus 0 has functions)
//   0x3eff0000     the PCI I/O space, 64 KiB, as an MMIO window
//                  (PciIoWindow: port p at 0x3eff0000 + p)
//   BARs           assigned at creation, as firmware would, bottom up and
//                  naturally aligned: memory from 0x10000000 (the 32-bit
//                  window, 64-bit BARs too), I/O from port 0x1000; decode
//                  is enabled. The guest may move them, to address 0 too
//                  (QEMU virt's pci_allow_0_address: kvm-unit-tests puts
//                  its first I/O BAR at port 0).
//   INTx           slot s pin p (1-4) on SPI 3 + (s + p - 1) % 4 (INTID
//                  35-38, level), the swizzle of the node's interrupt-map
//   MSI, MSI-X     through Vm::SignalMsi; with a GICv3 ITS the message
//                  carries the requester id (bus 0: the devfn) as its ITS
//                  device id, matching the node's msi-map <0 &its 0 0x10000>
// Instances: pci.0.<slot>.<func>.device=<model>, slot 1-31 (CheckPciInstance).
// The kvmtool layout has no PCI (its GIC lies inside this ECAM window).
#pragma once

#include <cstdint>
#include <memory>

#include "arch/arm64/platform/fdt.h"
#include "arch/arm64/platform/virt_layout.h"
#include "core/device_registry.h"
#include "core/platform.h"
#include "core/result.h"

namespace strata {
class PciBus;
}

namespace strata::platform::virt {

// The slot the host bridge has.
inline constexpr uint32_t kPciHostBridgeSlot = 0;
inline constexpr uint32_t kPciIntxPins = 4;

// The SPI number (platform::IrqPin's numbering: INTID 32 + n) of INTx pin
// `pin` (1-4: INTA#-INTD#) of device `slot` on bus 0.
constexpr uint32_t PciIntxSpi(uint32_t slot, uint32_t pin) {
  return arm64::virt::kPcieIntxSpi + (slot + pin - 1) % kPciIntxPins;
}

// Builds bus 0 and its host bridge on m.vm (ECAM and the I/O window on its
// MMIO bus, BARs on its MMIO and PIO buses) and hands the bus to the device
// host (DeviceHost::pci_bus) for the PCI instances created after. The
// result must live as long as the VM. Call it only for the QEMU layout.
Result<std::shared_ptr<PciBus>> InitVirtPci(PlatformContext& m);

// The machine's rules for a pci.B.S.F instance: bus 0, not the host
// bridge's slot. Errors name the instance's key.
Status CheckPciInstance(const DeviceInstance& instance);

// The /pcie node of the device tree for this bus; msi_to_its: the VM has
// an ITS (VirtFdtSpec::its is set).
arm64::VirtFdtSpec::Pcie PcieFdtSpec(bool msi_to_its);

}  // namespace strata::platform::virt
