// strata — the PCI device models, for a DeviceRegistry
// (core/device_registry.h).
//
// RegisterPciDeviceModels adds, by name:
//   pci-testdev   QEMU's PCI test device (pci_testdev.h), for
//                 pci.0.<slot>.<func>.device=pci-testdev.
// A PCI model's factory adds its function to the machine's PCI bus
// (DeviceHost::pci_bus()); on a machine without one it fails, naming the
// instance.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/device_registry.h"
#include "core/result.h"

namespace strata {

Status RegisterPciDeviceModels(DeviceRegistry& registry);

// The platform check of a PCI instance on a machine with one bus, 0, whose
// slot `host_bridge_slot` holds the host bridge: any other bus or that
// slot is refused, naming the config key and `machine` ("the pc machine").
Status CheckBusZeroPciInstance(const DeviceInstance& instance,
                               uint32_t host_bridge_slot,
                               std::string_view machine);

}  // namespace strata
