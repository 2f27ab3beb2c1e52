#include "arch/amd64/platform/pc_pci.h"

#include <memory>

#include "core/log.h"
#include "core/vm.h"
#include "devices/pci/models.h"
#include "devices/pci/pci_bus.h"
#include "devices/registry.h"

namespace strata::platform::pc {

// The swizzle the firmware tables' _PRT describes (arch/amd64/firmware).
static_assert(PciIntxGsi(0, 1) == 16 && PciIntxGsi(1, 1) == 17 &&
              PciIntxGsi(3, 2) == 16 && PciIntxGsi(31, 4) == 18);

Result<std::shared_ptr<PciBus>> InitPci(PlatformContext& m) {
  Vm& vm = m.vm;
  std::shared_ptr<spdlog::logger> logger =
      vm.options().logger ? vm.options().logger : DefaultLogger();
  auto msi_log = std::make_shared<RateLimit>("PCI MSI", logger);
  PciBus::Options o;
  o.pio = &vm.pio_bus();
  o.mmio = &vm.mmio_bus();
  o.msi = [&vm, msi_log](const md::MsiMessage& msg) {
    if (Status s = vm.SignalMsi(msg); !s) {
      msi_log->Warn("PCI message {:#x}/{:#x} not delivered: {}", msg.address,
                    msg.data, s.error().message());
    }
  };
  o.intx_route = PciIntxGsi;
  o.irq_line = [&vm](uint32_t gsi) -> std::shared_ptr<IrqLine> {
    return std::make_shared<VmPinLine>(vm, md::IrqPin{gsi});
  };
  o.io_window = PciBus::Window{kPciIoBase, kPioMaxPort + 1 - kPciIoBase};
  o.mmio_window = PciBus::Window{kPciMmio32Base, kPciMmio32Size};
  o.logger = logger;
  auto bus = std::make_shared<PciBus>(std::move(o));
  STRATA_TRY(bus->Add(kPciHostBridgeSlot, 0, MakePciHostBridge()));
  STRATA_TRY(vm.pio_bus().Register(
      kPciConfigAddressPort, kPciConfigIoLength,
      std::make_shared<PciConfigIo>(bus.get(), [&vm] {
        vm.RequestStop(ExitStatus::Reset());
      })));
  STRATA_TRY(vm.mmio_bus().Register(kPciEcamBase, kPciEcamSize,
                                    std::make_shared<PciEcam>(bus.get())));
  m.devices.host().SetPciBus(bus.get());
  return bus;
}

Status CheckPciInstance(const DeviceInstance& instance) {
  return CheckBusZeroPciInstance(instance, kPciHostBridgeSlot,
                                 "the pc machine");
}

}  // namespace strata::platform::pc
