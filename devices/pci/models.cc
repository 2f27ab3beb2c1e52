#include "devices/pci/models.h"

#include <memory>

#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_testdev.h"

namespace strata {

namespace {

DeviceModel PciTestdevModel() {
  DeviceModel m;
  m.name = "pci-testdev";
  m.help = "QEMU's PCI test device (1b36:0005; BAR0 memory, BAR1 I/O)";
  m.bus = DeviceBus::kPci;
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    PciBus* bus = ctx.host().pci_bus();
    if (bus == nullptr) {
      return MakeError(Errc::kUnsupported, "{}: this machine has no PCI bus",
                       ctx.Describe());
    }
    const PciAddress& a = ctx.instance().pci;
    std::shared_ptr<PciDevice> fn = MakePciTestdev(ctx.instance().name);
    STRATA_TRY(bus->Add(a.slot, a.func, fn));
    // Saved with the bus's functions (PciBus::SaveState).
    ctx.host().AddSnapshot(ctx.instance().name, nullptr);
    return std::shared_ptr<void>(fn);
  };
  return m;
}

}  // namespace

Status RegisterPciDeviceModels(DeviceRegistry& registry) {
  STRATA_TRY(registry.Register(PciTestdevModel()));
  return Ok();
}

Status CheckBusZeroPciInstance(const DeviceInstance& instance,
                               uint32_t host_bridge_slot,
                               std::string_view machine) {
  if (instance.pci.bus != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}.device': {} has one PCI bus, 0; there "
                     "is no bus {}",
                     instance.prefix, machine, instance.pci.bus);
  }
  if (instance.pci.slot == host_bridge_slot) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}.device': PCI slot {} is taken by the "
                     "host bridge (00:{:02x}.0); use {}",
                     instance.prefix, host_bridge_slot, host_bridge_slot,
                     host_bridge_slot == 0 ? "slots 1-31" : "another slot");
  }
  return Ok();
}

}  // namespace strata
