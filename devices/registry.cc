#include "devices/registry.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/char_backend.h"
#include "devices/debug_exit.h"
#include "devices/pc_testdev.h"
#include "devices/uart_16550.h"

namespace strata {

void VmPinLine::SetLevel(bool asserted) {
  Status s = vm_.SetIrq(pin_, asserted);
  if (!s) {
    vm_.RequestStop(ExitStatus::VmmError(fmt::format(
        "driving {}: {}", md::IrqPinName(pin_), s.error().message())));
  }
}

namespace {

// The highest base a PIO range of `length` bytes may have.
constexpr uint64_t PioTop(uint64_t length) { return kPioMaxPort + 1 - length; }

// --- uart_16550 ---

struct UartSettings {
  bool stdio = false;
  uint64_t port = 0;
  md::IrqPin irq{};
};

Result<UartSettings> ReadUartSettings(DeviceContext& ctx) {
  UartSettings s;
  const std::string backend = STRATA_TRY(ctx.GetString("backend", "none"));
  if (backend != "stdio" && backend != "none") {
    return MakeError(Errc::kInvalidArgument,
                     "{} must be stdio or none, got '{}'", ctx.Key("backend"),
                     backend);
  }
  s.stdio = backend == "stdio";
  s.port = STRATA_TRY(
      ctx.Resource("port", 0, PioTop(kUart16550RegisterCount)));
  s.irq = STRATA_TRY(ctx.Irq("irq"));
  if (s.stdio) STRATA_TRY(ctx.host().Claim("stdio", ctx.instance().prefix));
  return s;
}

struct UartDevice {
  std::shared_ptr<VmPinLine> line;
  std::shared_ptr<StdioBackend> console;
  std::shared_ptr<Uart16550> uart;
};

Result<std::shared_ptr<void>> CreateUart(DeviceContext& ctx) {
  const UartSettings s = STRATA_TRY(ReadUartSettings(ctx));
  auto dev = std::make_shared<UartDevice>();
  dev->line = std::make_shared<VmPinLine>(ctx.vm(), s.irq);
  if (s.stdio) {
    StdioBackend::Options o;
    o.name = ctx.instance().name;
    o.logger = ctx.logger();
    dev->console = std::make_shared<StdioBackend>(o);
  }
  dev->uart = std::make_shared<Uart16550>(dev->console.get(), dev->line.get(),
                                          ctx.instance().name);
  STRATA_TRY(ctx.vm().pio_bus().Register(s.port, kUart16550RegisterCount,
                                         dev->uart));
  if (dev->console) {
    StdioBackend* console = dev->console.get();
    console->SetInput(dev->uart.get());
    ctx.host().OnStart([console] { return console->Start(); });
    ctx.host().OnStop([console] { console->Stop(); });
  }
  return std::shared_ptr<void>(dev);
}

DeviceModel UartModel() {
  DeviceModel m;
  m.name = "uart_16550";
  m.help = "NS16550A UART";
  m.keys = {
      {"backend", "stdio (stdin/stdout; one device) or none (default)"},
      {"port", "I/O port base (8 ports)", true},
      {"irq", "interrupt line", true},
  };
  m.check = [](DeviceContext& ctx) -> Status {
    STRATA_TRY(ReadUartSettings(ctx));
    return Ok();
  };
  m.create = CreateUart;
  return m;
}

// --- isa-debug-exit ---

DeviceModel DebugExitModel() {
  DeviceModel m;
  m.name = "isa-debug-exit";
  m.help = "QEMU's debug exit: writing V exits with (V<<1)|1";
  m.keys = {{"port", "I/O port", true}};
  m.check = [](DeviceContext& ctx) -> Status {
    STRATA_TRY(ctx.Resource("port", 0, PioTop(kDebugExitLength)));
    return Ok();
  };
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port =
        STRATA_TRY(ctx.Resource("port", 0, PioTop(kDebugExitLength)));
    Vm& vm = ctx.vm();
    auto dbg = std::make_shared<DebugExit>([&vm](uint64_t status) {
      vm.RequestStop(ExitStatus::GuestExit(status >> 1));
    });
    STRATA_TRY(vm.pio_bus().Register(port, kDebugExitLength, dbg));
    return std::shared_ptr<void>(dbg);
  };
  return m;
}

// --- pc-testdev ---

struct PcTestdevDevice {
  std::shared_ptr<PcTestdevLatch> latch;
  std::shared_ptr<PcTestdevFlush> flush;
  std::shared_ptr<PcTestdevIrq> lines;
  std::shared_ptr<PcTestdevMmio> iomem;
};

DeviceModel PcTestdevModel() {
  DeviceModel m;
  m.name = "pc-testdev";
  m.help = "kvm-unit-tests' test device (fixed ports and MMIO)";
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    Vm& vm = ctx.vm();
    // The interrupt lines it drives, resolved now: GSI n for port 0x2000+n.
    std::vector<std::optional<md::IrqPin>> pins(kPcTestdevIrqCount);
    for (uint32_t n = 0; n < kPcTestdevIrqCount; ++n) {
      auto pin = ctx.host().IrqPin(n);
      if (pin) pins[n] = *pin;
    }
    auto dev = std::make_shared<PcTestdevDevice>();
    dev->latch = std::make_shared<PcTestdevLatch>();
    dev->flush = std::make_shared<PcTestdevFlush>();
    dev->lines = std::make_shared<PcTestdevIrq>(
        [&vm, pins](uint32_t n, bool level) {
          if (n < pins.size() && pins[n]) (void)vm.SetIrq(*pins[n], level);
        });
    dev->iomem = std::make_shared<PcTestdevMmio>();
    STRATA_TRY(vm.pio_bus().Register(kPcTestdevLatchPort,
                                     kPcTestdevLatchLength, dev->latch));
    STRATA_TRY(vm.pio_bus().Register(kPcTestdevFlushPort,
                                     kPcTestdevFlushLength, dev->flush));
    STRATA_TRY(vm.pio_bus().Register(kPcTestdevIrqPort, kPcTestdevIrqCount,
                                     dev->lines));
    STRATA_TRY(vm.mmio_bus().Register(kPcTestdevMmioBase, kPcTestdevMmioSize,
                                      dev->iomem));
    return std::shared_ptr<void>(dev);
  };
  return m;
}

}  // namespace

Status RegisterStandardDeviceModels(DeviceRegistry& registry) {
  STRATA_TRY(registry.Register(UartModel()));
  STRATA_TRY(registry.Register(DebugExitModel()));
  STRATA_TRY(registry.Register(PcTestdevModel()));
  return Ok();
}

}  // namespace strata
