// strata — the pc machine's PCI: bus 0 behind a q35-like host bridge
// (devices/pci/pci_bus.h), placed as pc_layout.h says.
//
//   00:00.0        the host bridge (8086:29c0, class 06 00 00), always
//   0xcf8-0xcff    configuration mechanism #1; 0xcf9 (one byte) the reset
//                  control register: RST_CPU resets the machine
//                  (ExitStatus::Reset)
//   0xe0000000     ECAM, 256 MiB (buses 0-255; only bus 0 has functions)
//   BARs           assigned at creation, as firmware would, bottom up and
//                  naturally aligned: memory from 0xc0000000 (the 512 MiB
//                  32-bit window, 64-bit BARs too), I/O from 0xc000; decode
//                  is enabled. The guest may move them.
//   INTx           PciIntxGsi below; MSI and MSI-X through Vm::SignalMsi.
// Instances: pci.0.<slot>.<func>.device=<model>, slot 1-31 (CheckPciInstance).
#pragma once

#include <cstdint>
#include <memory>

#include "arch/amd64/platform/pc_layout.h"
#include "core/device_registry.h"
#include "core/platform.h"
#include "core/result.h"

namespace strata {
class PciBus;
}

namespace strata::platform::pc {

// The slot the host bridge has.
inline constexpr uint32_t kPciHostBridgeSlot = 0;

// Builds bus 0 and its host bridge on m.vm and hands the bus to the
// device host (DeviceHost::pci_bus) for the PCI instances created after.
// The result must live as long as the VM.
Result<std::shared_ptr<PciBus>> InitPci(PlatformContext& m);

// The pc machine's rules for a pci.B.S.F instance: bus 0, not the host
// bridge's slot. Errors name the instance's key.
Status CheckPciInstance(const DeviceInstance& instance);

}  // namespace strata::platform::pc
