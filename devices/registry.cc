#include "devices/registry.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/char_backend.h"
#include "devices/debug_exit.h"
#include "devices/exit_line.h"
#include "devices/pc_testdev.h"
#include "devices/pl011.h"
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

// --- console backends (uart_16550, pl011) ---

Result<bool> ReadStdioBackend(DeviceContext& ctx) {
  const std::string backend = STRATA_TRY(ctx.GetString("backend", "none"));
  if (backend != "stdio" && backend != "none") {
    return MakeError(Errc::kInvalidArgument,
                     "{} must be stdio or none, got '{}'", ctx.Key("backend"),
                     backend);
  }
  const bool stdio = backend == "stdio";
  if (stdio) STRATA_TRY(ctx.host().Claim("stdio", ctx.instance().prefix));
  return stdio;
}

// The process's console for a device, or null.
std::shared_ptr<StdioBackend> MakeConsole(DeviceContext& ctx, bool stdio) {
  if (!stdio) return nullptr;
  StdioBackend::Options o;
  o.name = ctx.instance().name;
  o.logger = ctx.logger();
  return std::make_shared<StdioBackend>(o);
}

// Starts and stops the console with the VM; its input goes to `input`.
void HookConsole(DeviceContext& ctx, StdioBackend* console,
                 CharInput* input) {
  if (console == nullptr) return;
  console->SetInput(input);
  ctx.host().OnStart([console] { return console->Start(); });
  ctx.host().OnStop([console] { console->Stop(); });
}

// With `on`, a tap between the UART and its console that stops the VM when
// the guest prints kvm-unit-tests' "EXIT: STATUS=<n>" line — as
// isa-debug-exit, n = (code << 1) | 1 — else `out` itself.
CharBackend* TapExitLine(DeviceContext& ctx, bool on, CharBackend* out,
                         std::shared_ptr<ExitLineBackend>* holder) {
  if (!on) return out;
  Vm& vm = ctx.vm();
  *holder = std::make_shared<ExitLineBackend>(out, [&vm](uint64_t status) {
    vm.RequestStop(ExitStatus::GuestExit(status >> 1));
  });
  return holder->get();
}

DeviceKey ExitLineKey() {
  return {"exit_line",
          "a transmitted line 'EXIT: STATUS=<n>' (kvm-unit-tests) stops the "
          "VM with exit status n, as isa-debug-exit (pl011: default true; "
          "uart_16550: default false)"};
}

// True if the instance has `rel`: from the machine or from the config.
bool HasResource(DeviceContext& ctx, std::string_view rel) {
  return ctx.instance().resources.count(rel) != 0 ||
         ctx.config().Has(ctx.Key(rel));
}

// A UART's snapshot parts: the UART, and the exit line's partial line.
// The console keeps nothing the guest could see again (output is gone;
// input not yet queued in the UART belongs to whoever feeds the new VMM).
void AddSnapshots(DeviceContext& ctx, std::shared_ptr<Snapshottable> uart,
                  std::shared_ptr<ExitLineBackend> exit_line) {
  ctx.host().AddSnapshot(ctx.instance().name, std::move(uart));
  if (exit_line) {
    ctx.host().AddSnapshot(ctx.instance().name + "/exit_line",
                           std::move(exit_line));
  }
}

// --- uart_16550 ---

struct UartSettings {
  bool stdio = false;
  bool exit_line = false;
  bool mmio = false;  // at `base` on the MMIO bus, else at `port`
  uint64_t address = 0;
  md::IrqPin irq{};
};

Result<UartSettings> ReadUartSettings(DeviceContext& ctx) {
  UartSettings s;
  s.stdio = STRATA_TRY(ReadStdioBackend(ctx));
  const bool has_port = HasResource(ctx, "port");
  const bool has_base = HasResource(ctx, "base");
  const auto& given = ctx.instance().resources;
  if (has_port && has_base && (given.count("port") || given.count("base"))) {
    const bool port_given = given.count("port") != 0;
    return MakeError(Errc::kInvalidArgument,
                     "{}: '{}' is set, but the machine gives {} its {}; a "
                     "uart_16550 device takes exactly one of port and base",
                     ctx.instance().prefix,
                     ctx.Key(port_given ? "base" : "port"),
                     ctx.instance().name,
                     port_given ? "I/O port" : "MMIO base");
  }
  if (has_port && has_base) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: '{}' and '{}' are both set; a uart_16550 device "
                     "takes exactly one (port: I/O ports, base: MMIO)",
                     ctx.instance().prefix, ctx.Key("port"), ctx.Key("base"));
  }
  if (has_base) {
    s.mmio = true;
    s.address = STRATA_TRY(
        ctx.Resource("base", 0, UINT64_MAX - (kUart16550RegisterCount - 1)));
  } else if (has_port) {
    s.address = STRATA_TRY(
        ctx.Resource("port", 0, PioTop(kUart16550RegisterCount)));
  } else {
    return MakeError(Errc::kInvalidArgument,
                     "{}: config key '{}' is not set (nor '{}'); a uart_16550 "
                     "device needs one of them: port (I/O) or base (MMIO)",
                     ctx.instance().prefix, ctx.Key("port"), ctx.Key("base"));
  }
  s.irq = STRATA_TRY(ctx.Irq("irq"));
  s.exit_line = STRATA_TRY(ctx.GetBool("exit_line", false));
  return s;
}

// A UART chip on the console: its interrupt line, the stdio backend (or
// none), the exit-line tap in front of it, the chip at [address, address +
// size) on `bus`, stdin hooked to its receiver and its state in snapshots.
// The 16550 and the PL011 differ only in the chip and where it sits.
template <typename Chip>
struct ConsoleUart {
  std::shared_ptr<VmPinLine> line;
  std::shared_ptr<StdioBackend> console;
  std::shared_ptr<ExitLineBackend> exit_line;
  std::shared_ptr<Chip> uart;
};

template <typename Chip>
Result<std::shared_ptr<void>> CreateConsoleUart(DeviceContext& ctx, bool stdio,
                                                bool exit_line, md::IrqPin irq,
                                                Bus& bus, uint64_t address,
                                                uint64_t size) {
  auto dev = std::make_shared<ConsoleUart<Chip>>();
  dev->line = std::make_shared<VmPinLine>(ctx.vm(), irq);
  dev->console = MakeConsole(ctx, stdio);
  CharBackend* out =
      TapExitLine(ctx, exit_line, dev->console.get(), &dev->exit_line);
  dev->uart = std::make_shared<Chip>(out, dev->line.get(), ctx.instance().name);
  STRATA_TRY(bus.Register(address, size, dev->uart));
  HookConsole(ctx, dev->console.get(), dev->uart.get());
  AddSnapshots(ctx, dev->uart, dev->exit_line);
  return std::shared_ptr<void>(dev);
}

Result<std::shared_ptr<void>> CreateUart(DeviceContext& ctx) {
  const UartSettings s = STRATA_TRY(ReadUartSettings(ctx));
  Bus& bus = s.mmio ? ctx.vm().mmio_bus() : ctx.vm().pio_bus();
  return CreateConsoleUart<Uart16550>(ctx, s.stdio, s.exit_line, s.irq, bus,
                                      s.address, kUart16550RegisterCount);
}

DeviceModel UartModel() {
  DeviceModel m;
  m.name = "uart_16550";
  m.help = "NS16550A UART";
  m.keys = {
      {"backend", "stdio (stdin/stdout; one device) or none (default)"},
      {"port", "I/O port base (8 ports); exactly one of port and base", true},
      {"base",
       "MMIO base (8 bytes, register stride 1: kvmtool's arm64 "
       "0x1000000); exactly one of port and base",
       true},
      {"irq", "interrupt line", true},
      ExitLineKey(),
  };
  m.check = [](DeviceContext& ctx) -> Status {
    STRATA_TRY(ReadUartSettings(ctx));
    return Ok();
  };
  m.create = CreateUart;
  return m;
}

// --- pl011 ---

struct Pl011Settings {
  bool stdio = false;
  uint64_t base = 0;
  md::IrqPin irq{};
  bool exit_line = true;
};

Result<Pl011Settings> ReadPl011Settings(DeviceContext& ctx) {
  Pl011Settings s;
  s.stdio = STRATA_TRY(ReadStdioBackend(ctx));
  s.base = STRATA_TRY(ctx.Resource("base", 0, UINT64_MAX - (kPl011Size - 1)));
  if (s.base % kPl011Size != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "{} is {:#x}; a pl011's 4 KiB register page must be "
                     "4 KiB-aligned",
                     ctx.Key("base"), s.base);
  }
  s.irq = STRATA_TRY(ctx.Irq("irq"));
  s.exit_line = STRATA_TRY(ctx.GetBool("exit_line", true));
  return s;
}

Result<std::shared_ptr<void>> CreatePl011(DeviceContext& ctx) {
  const Pl011Settings s = STRATA_TRY(ReadPl011Settings(ctx));
  return CreateConsoleUart<Pl011>(ctx, s.stdio, s.exit_line, s.irq,
                                  ctx.vm().mmio_bus(), s.base, kPl011Size);
}

DeviceModel Pl011Model() {
  DeviceModel m;
  m.name = "pl011";
  m.help = "ARM PrimeCell PL011 UART (r1p5)";
  m.keys = {
      {"backend", "stdio (stdin/stdout; one device) or none (default)"},
      {"base", "MMIO base of its 4 KiB register page (4 KiB-aligned)", true},
      {"irq", "interrupt line", true},
      ExitLineKey(),
  };
  m.check = [](DeviceContext& ctx) -> Status {
    STRATA_TRY(ReadPl011Settings(ctx));
    return Ok();
  };
  m.create = CreatePl011;
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
    ctx.host().AddSnapshot(ctx.instance().name, nullptr);  // no state
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
  STRATA_TRY(registry.Register(Pl011Model()));
  return Ok();
}

}  // namespace strata
