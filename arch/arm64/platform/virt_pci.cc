#include "arch/arm64/platform/virt_pci.h"

#include <memory>
#include <utility>

#include "core/log.h"
#include "core/vm.h"
#include "devices/pci/models.h"
#include "devices/pci/pci_bus.h"
#include "devices/registry.h"

namespace strata::platform::virt {

using namespace arm64::virt;  // the memory map

// The swizzle of the device tree's interrupt-map (fdt.cc WritePcie, QEMU's
// create_pcie_irq_map): slot s INTA# is SPI 3 + s % 4.
static_assert(PciIntxSpi(0, 1) == 3 && PciIntxSpi(1, 1) == 4 &&
              PciIntxSpi(3, 2) == 3 && PciIntxSpi(31, 4) == 5);
static_assert(kPcieEcamSize == (uint64_t{kPcieBusLast} + 1) << 20);
static_assert(kPciePioSize <= kPciIoWindowMaxSize);

Result<std::shared_ptr<PciBus>> InitVirtPci(PlatformContext& m) {
  Vm& vm = m.vm;
  std::shared_ptr<spdlog::logger> logger =
      vm.options().logger ? vm.options().logger : DefaultLogger();
  auto msi_log = std::make_shared<RateLimit>("PCI MSI", logger);
  PciBus::Options o;
  o.pio = &vm.pio_bus();
  o.mmio = &vm.mmio_bus();
  const bool its = vm.machine_options().its.value_or(false);
  // GICv3 spec §5.2: the ITS finds a device's translation table by the
  // device id the write carries; the tree's msi-map makes it the
  // requester id (KVM_MSI_VALID_DEVID).
  o.msi_with_requester = [&vm, msi_log, its](uint16_t rid,
                                             const md::MsiMessage& msg) {
    md::MsiMessage out = msg;
    if (its) {
      out.has_devid = true;
      out.devid = rid;
    }
    if (Status s = vm.SignalMsi(out); !s) {
      msi_log->Warn("PCI message {:#x}/{:#x} from {:02x}:{:02x}.{} not "
                    "delivered: {}",
                    out.address, out.data, rid >> 8, (rid >> 3) & 0x1f,
                    rid & 7, s.error().message());
    }
  };
  o.intx_route = PciIntxSpi;
  // As platform::IrqPin: SPI number n is INTID 32 + n, level-sensitive.
  o.irq_line = [&vm](uint32_t spi) -> std::shared_ptr<IrqLine> {
    md::IrqPin pin;
    pin.type = md::IrqPin::Type::kSpi;
    pin.intid = md::kGicFirstSpi + spi;
    return std::make_shared<VmPinLine>(vm, pin);
  };
  o.io_window = PciBus::Window{kPcieIoBarBase, kPciePioSize - kPcieIoBarBase};
  o.mmio_window = PciBus::Window{kPcieMmioBase, kPcieMmioSize};
  o.allow_zero_bar_address = true;
  o.logger = logger;
  auto bus = std::make_shared<PciBus>(std::move(o));
  STRATA_TRY(bus->Add(kPciHostBridgeSlot, 0,
                      MakePciHostBridge(kPciVendorRedHat,
                                        kPciDeviceRedHatGpex)));
  STRATA_TRY(vm.mmio_bus().Register(kPcieEcamBase, kPcieEcamSize,
                                    std::make_shared<PciEcam>(bus.get())));
  STRATA_TRY(vm.mmio_bus().Register(
      kPciePioBase, kPciePioSize,
      std::make_shared<PciIoWindow>(&vm.pio_bus(), logger)));
  m.devices.host().SetPciBus(bus.get());
  // Its functions' configuration spaces (the host bridge's and every
  // declared function's); ECAM and the I/O window keep no state.
  m.devices.host().AddSnapshot("pci-bus", bus);
  return bus;
}

Status CheckPciInstance(const DeviceInstance& instance) {
  return CheckBusZeroPciInstance(instance, kPciHostBridgeSlot,
                                 "the virt machine");
}

arm64::VirtFdtSpec::Pcie PcieFdtSpec(bool msi_to_its) {
  arm64::VirtFdtSpec::Pcie p;
  p.ecam = {kPcieEcamBase, kPcieEcamSize};
  p.bus_first = 0;
  p.bus_last = kPcieBusLast;
  p.pio = {kPciePioBase, kPciePioSize};
  p.mmio = {kPcieMmioBase, kPcieMmioSize};
  for (uint32_t i = 0; i < kPciIntxPins; ++i) {
    p.intx_spi_intids[i] = md::kGicFirstSpi + kPcieIntxSpi + i;
  }
  p.msi_to_its = msi_to_its;
  return p;
}

}  // namespace strata::platform::virt
