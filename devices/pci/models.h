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

#include "core/device_registry.h"
#include "core/result.h"

namespace strata {

Status RegisterPciDeviceModels(DeviceRegistry& registry);

}  // namespace strata
