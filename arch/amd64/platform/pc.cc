// strata — the amd64 "pc" machine (core/platform.h).
//
// Reads like bhyve's amd64 bhyverun_machdep.c: Init is the list of inits of
// bhyve_init_platform.
//
// Memory: RAM from 0 to min(size, 3 GiB), the rest from 4 GiB up. The hole
// below 4 GiB holds the LAPIC (0xfee00000), the IOAPIC (0xfec00000), the
// pc-testdev MMIO window (0xff000000) and KVM's VMX helper pages; the
// loader must keep the kernel out of all of them.
// Interrupts: KVM's in-kernel PIC/IOAPIC/LAPIC and PIT (x86.irqchip=kernel),
// or KVM's LAPICs with our IOAPIC (split) — chosen in PcIrqchip/InitIrqchip
// alone.
// Devices, all created through the device registry: COM1 16550 (0x3f8,
// GSI 4), isa-debug-exit (0xf4), fw_cfg (0x510), the ACPI PM block (0x600:
// PM1a_EVT, PM1a_CNT for S5, PM_TMR at 0x608), pc-testdev (0xe0 latch,
// 0xe4 flush, 0x2000+n interrupt lines, MMIO 0xff000000). Device instances
// number interrupts as GSIs 0-23.
// PCI (pc_pci.h): bus 0 behind a q35-like host bridge at 00:00.0,
// configuration mechanism #1 at 0xcf8 (with the 0xcf9 reset control
// register), ECAM at 0xe0000000; pci.0.<slot>.<func>.device=<model>
// instances in slots 1-31, their BARs assigned from the 32-bit window
// (0xc0000000) and I/O from 0xc000, INTx on GSIs 16-19, MSI/MSI-X through
// KVM.
// Firmware: fw_cfg items (RAM size, vCPU counts).
// Guest: an ELF32/ELF64/Multiboot kernel or a Linux bzImage (64-bit boot
// protocol) through arch/amd64/loader (or the built-in demo guest); vCPU 0
// gets its entry state, the others wait in wait-for-SIPI for the guest to
// start them.
#include "core/platform.h"

#include <algorithm>
#include <vector>

#include "arch/amd64/cpuid.h"
#include "arch/amd64/loader/bzimage.h"
#include "arch/amd64/loader/multiboot.h"
#include "arch/amd64/platform/demo_guest.h"
#include "arch/amd64/platform/pc_layout.h"
#include "arch/amd64/platform/pc_pci.h"
#include "core/log.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/ioapic.h"
#include "devices/pc_testdev.h"
#include "devices/pci/models.h"
#include "devices/pci/pci_bus.h"
#include "devices/registry.h"
#include "devices/uart_16550.h"

namespace strata::platform {

namespace {

using pc::kLowMemLimit;  // RAM below the PCI hole (pc_layout.h)
using pc::kHighMemBase;
constexpr uint64_t kApicPageSize = 0x1000;

constexpr uint64_t kCom1Port = 0x3f8;
// SLP_TYP that means S5 (soft off): the value the \_S5 package of the DSDT
// advertises; 0 as in QEMU's q35/piix4 tables (ACPI 6.4 §7.4.2).
constexpr uint32_t kSlpTypS5 = 0;

// What the steps below keep between them.
struct PcState {
  std::shared_ptr<FwCfg> fw_cfg;
  std::shared_ptr<Ioapic> ioapic;  // x86.irqchip=split only
  std::shared_ptr<PciBus> pci;     // bus 0 (pc_pci.h)
  std::optional<amd64::BootInfo> boot;
};

PcState& State(PlatformContext& m) {
  if (!m.md) m.md = std::make_shared<PcState>();
  return *static_cast<PcState*>(m.md.get());
}

// The non-RAM ranges of the platform, named in kernel-loading errors.
std::vector<amd64::MemoryHole> PlatformHoles() {
  return {
      {"the LAPIC page", amd64::kApicBaseDefault, kApicPageSize},
      {"the IOAPIC page", kIoapicMmioBase, kApicPageSize},
      {"the pc-testdev MMIO window", kPcTestdevMmioBase, kPcTestdevMmioSize},
      {"the MMIO hole below 4 GiB", kLowMemLimit, kHighMemBase - kLowMemLimit},
  };
}

// --- The pc machine's own device models ---

// fw_cfg at its legacy I/O port; InitFirmware fills in the items.
DeviceModel FwCfgModel() {
  DeviceModel m;
  m.name = "fw_cfg";
  m.help = "QEMU's firmware configuration device (I/O ports)";
  m.keys = {{"port", "I/O port base (2 ports)", true}};
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(
        ctx.Resource("port", 0, kPioMaxPort + 1 - kFwCfgIoLength));
    auto fw = std::make_shared<FwCfg>();
    STRATA_TRY(ctx.vm().pio_bus().Register(port, kFwCfgIoLength, fw));
    return std::shared_ptr<void>(fw);
  };
  return m;
}

// The ACPI PM block: S5 through PM1a_CNT powers the VM off. The other
// sleep types are the guest's to repeat at will: the warning is
// rate-limited, through the VM's logger.
DeviceModel AcpiPmModel() {
  DeviceModel m;
  m.name = "acpi_pm";
  m.help = "ACPI PM1a event/control, PM timer (S5: power off)";
  m.keys = {{"port", "I/O port base (12 ports)", true}};
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(
        ctx.Resource("port", 0, kPioMaxPort + 1 - kAcpiPmLength));
    Vm& vm = ctx.vm();
    auto sleep_log =
        std::make_shared<RateLimit>("ACPI sleep request", ctx.logger());
    auto pm = std::make_shared<AcpiPm>([&vm, sleep_log](uint32_t slp_typ) {
      if (slp_typ == kSlpTypS5) {
        vm.RequestStop(ExitStatus::PowerOff());
      } else {
        sleep_log->Warn("ACPI sleep type {} requested; only S5 (power off) "
                        "is implemented, ignoring",
                        slp_typ);
      }
    });
    STRATA_TRY(vm.pio_bus().Register(port, kAcpiPmLength, pm));
    return std::shared_ptr<void>(pm);
  };
  return m;
}

DeviceInstance Fixed(std::string name, std::string model,
                     DeviceResources resources, std::string description) {
  DeviceInstance d;
  d.kind = DeviceInstance::Kind::kFixed;
  d.name = name;
  d.prefix = std::move(name);
  d.model = std::move(model);
  d.resources = std::move(resources);
  d.description = std::move(description);
  return d;
}

// --- The inits ---

// RAM below 3 GiB, the rest from 4 GiB.
Status InitMemory(PlatformContext& m) {
  const uint64_t low = std::min(m.memory_size, kLowMemLimit);
  STRATA_TRY(m.vm.AddMemory("lowmem", 0, low));
  if (m.memory_size > low) {
    STRATA_TRY(m.vm.AddMemory("highmem", kHighMemBase, m.memory_size - low));
  }
  return Ok();
}

// The interrupt controllers (md::MachineOptions::irqchip), chosen here
// alone: x86.irqchip=kernel (or true, the default) is KVM's PIC pair,
// IOAPIC and LAPICs and its PIT, created with the VM; split (or false) is
// KVM's LAPICs with our IOAPIC (devices/ioapic) at 0xfec00000. In split
// mode the IOAPIC owns the pins (Vm::SetIrqController), so every device line
// (Vm::SetIrq) reaches it; it sends its messages with KVM_SIGNAL_MSI,
// mirrors each pin's message into KVM's GSI routes (so KVM knows which
// vectors are level-triggered and reports their EOIs), and completes level
// interrupts on those EOI exits.
Result<md::IrqchipMode> PcIrqchip(const Config& c) {
  const std::string text = STRATA_TRY(c.GetString("x86.irqchip", "kernel"));
  auto mode = md::ParseIrqchipMode(text);
  if (!mode) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.irqchip must be kernel (or true) or split (or "
                     "false), got '{}'",
                     text);
  }
  return *mode;
}

// Vm::SetIrq → the IOAPIC's input.
class IoapicPins final : public IrqController {
 public:
  explicit IoapicPins(std::shared_ptr<Ioapic> ioapic)
      : ioapic_(std::move(ioapic)) {}
  Status SetPin(const md::IrqPin& pin, bool level) override {
    if (pin.gsi >= md::kIrqPinCount) {
      return MakeError(Errc::kOutOfRange, "{} is not an IOAPIC input (0..{})",
                       md::IrqPinName(pin), md::kIrqPinCount - 1);
    }
    ioapic_->SetLevel(pin.gsi, level);
    return Ok();
  }

 private:
  std::shared_ptr<Ioapic> ioapic_;
};

Status InitIrqchip(PlatformContext& m) {
  Vm& vm = m.vm;
  if (vm.options().machine.irqchip != md::IrqchipMode::kSplit) {
    return Ok();  // KVM's: nothing to build in user space
  }
  auto ioapic = std::make_shared<Ioapic>(
      [&vm](const md::MsiMessage& msg) {
        if (Status s = vm.SignalMsi(msg); !s) {
          vm.RequestStop(ExitStatus::VmmError(
              fmt::format("IOAPIC message {:#x}/{:#x}: {}", msg.address,
                          msg.data, s.error().message())));
        }
      },
      [&vm](uint32_t pin, const std::optional<md::MsiMessage>& msg) {
        if (Status s = vm.SetPinMsiRoute(md::IrqPin{pin}, msg); !s) {
          vm.RequestStop(ExitStatus::VmmError(fmt::format(
              "IOAPIC pin {} route: {}", pin, s.error().message())));
        }
      });
  State(m).ioapic = ioapic;
  STRATA_TRY(vm.mmio_bus().Register(kIoapicMmioBase, kIoapicMmioSize, ioapic));
  STRATA_TRY(vm.SetArchExitHandler(
      md::ArchExitReason::kIoapicEoi, [ioapic](Vcpu&, md::ArchExit& a) {
        ioapic->Eoi(a.eoi_vector);
        return true;
      }));
  STRATA_TRY(vm.SetIrqController(std::make_shared<IoapicPins>(ioapic)));
  vm.log().debug("x86.irqchip=split: user-space IOAPIC at {:#x}, LAPICs in KVM",
                 kIoapicMmioBase);
  return Ok();
}

// The fixed devices, through the registry.
Status InitDevices(PlatformContext& m) {
  for (const DeviceInstance& d : FixedDevices()) {
    STRATA_TRY(m.devices.Create(d));
  }
  State(m).fw_cfg = std::static_pointer_cast<FwCfg>(
      m.devices.Find("fw_cfg")->object);
  return Ok();
}

// PCI bus 0 and its host bridge (pc_pci.h), before the declared PCI
// instances are created.
Status InitPciBus(PlatformContext& m) {
  State(m).pci = STRATA_TRY(pc::InitPci(m));
  return Ok();
}

// fw_cfg items kvm-unit-tests and our guests read.
Status InitFirmware(PlatformContext& m) {
  FwCfg& fw = *State(m).fw_cfg;
  fw.SetU64(kFwCfgRamSize, m.memory_size);
  fw.SetU16(kFwCfgNbCpus, static_cast<uint16_t>(m.cpus));
  fw.SetU16(kFwCfgMaxCpus, static_cast<uint16_t>(m.vm.max_vcpus()));
  fw.SetU64(kFwCfgKernelData, 0);
  return Ok();
}

}  // namespace

std::string_view Name() { return "pc"; }

Status InitConfig(Config& c) {
  STRATA_TRY(c.SetDefault("com1.backend", "stdio"));
  STRATA_TRY(c.SetDefault("x86.cpu_vendor", "host"));
  STRATA_TRY(c.SetDefault("x86.irqchip", "kernel"));
  STRATA_TRY(c.SetDefault("x86.x2apic", "true"));
  STRATA_TRY(c.SetDefault("x86.tsc_deadline", "true"));
  STRATA_TRY(c.SetDefault("x86.hypervisor_bit", "true"));
  return Ok();
}

std::span<const ConfigKeyHelp> ConfigKeys() {
  static constexpr ConfigKeyHelp kKeys[] = {
      {"x86.cpu_vendor", "guest CPU vendor: host (default), intel, amd"},
      {"x86.irqchip",
       "kernel (default; or true): KVM's PIC, IOAPIC, LAPICs and PIT; "
       "split (or false): KVM's LAPICs with strata's IOAPIC"},
      {"x86.x2apic", "advertise x2APIC (default true)"},
      {"x86.tsc_deadline", "advertise the TSC-deadline timer (default true)"},
      {"x86.hypervisor_bit",
       "CPUID hypervisor bit, leaves 0x4000000x (default true)"},
  };
  return kKeys;
}

std::span<const CommandLineOption> CommandLineOptions() {
  static constexpr CommandLineOption kOptions[] = {
      {"cpu-vendor", "x86.cpu_vendor", "guest CPU vendor: host, intel, amd"},
  };
  return kOptions;
}

Status RegisterDeviceModels(DeviceRegistry& registry) {
  STRATA_TRY(RegisterStandardDeviceModels(registry));
  STRATA_TRY(registry.Register(FwCfgModel()));
  STRATA_TRY(registry.Register(AcpiPmModel()));
  STRATA_TRY(RegisterPciDeviceModels(registry));
  return Ok();
}

std::vector<DeviceInstance> FixedDevices() {
  return {
      Fixed("com1", "uart_16550", {{"port", kCom1Port}, {"irq", pc::kGsiCom1}},
            "COM1 (port 0x3f8, IRQ 4)"),
      Fixed("isa-debug-exit", "isa-debug-exit", {{"port", kDebugExitPort}},
            "port 0xf4"),
      Fixed("fw_cfg", "fw_cfg", {{"port", kFwCfgIoPort}}, "port 0x510"),
      Fixed("acpi_pm", "acpi_pm", {{"port", kAcpiPmPort}},
            "ports 0x600-0x60b"),
      Fixed("pc-testdev", "pc-testdev", {}, "ports 0xe0-0xe7, 0x2000-0x2017"),
  };
}

Result<md::IrqPin> IrqPin(uint64_t number) {
  if (number >= md::kIrqPinCount) {
    return MakeError(Errc::kOutOfRange,
                     "interrupt {} is not a GSI of the pc machine (0-{})",
                     number, md::kIrqPinCount - 1);
  }
  return md::IrqPin{static_cast<uint32_t>(number)};
}

Status CheckPciInstance(const DeviceInstance& instance) {
  return pc::CheckPciInstance(instance);
}

Result<md::MachineOptions> MachineOptions(const Config& c) {
  md::MachineOptions m;
  m.cpu_vendor = STRATA_TRY(c.GetString("x86.cpu_vendor", "host"));
  if (m.cpu_vendor != "host" && m.cpu_vendor != "intel" &&
      m.cpu_vendor != "amd") {
    return MakeError(Errc::kInvalidArgument,
                     "x86.cpu_vendor must be host, intel or amd, got '{}'",
                     m.cpu_vendor);
  }
  m.irqchip = STRATA_TRY(PcIrqchip(c));
  m.x2apic = STRATA_TRY(c.GetBool("x86.x2apic", true));
  m.tsc_deadline = STRATA_TRY(c.GetBool("x86.tsc_deadline", true));
  m.hypervisor_bit = STRATA_TRY(c.GetBool("x86.hypervisor_bit", true));
  // What the CPUID policy will demand of the topology (APIC ids in range),
  // checked now so that it is reported as bad input, not a VM failure.
  amd64::CpuidOptions cpuid;
  const uint32_t cpus = STRATA_TRY(c.GetUint32("cpus", 1));
  cpuid.topo = {STRATA_TRY(c.GetUint32("cpu.sockets", 1)),
                STRATA_TRY(c.GetUint32("cpu.cores", 1)),
                STRATA_TRY(c.GetUint32("cpu.threads", 1))};
  cpuid.x2apic = m.x2apic;
  cpuid.max_vcpus = STRATA_TRY(c.GetUint32("cpu.max", cpus));
  STRATA_TRY(amd64::CheckCpuidOptions(cpuid));
  return m;
}

Status Init(PlatformContext& m) {
  STRATA_TRY(InitMemory(m));
  STRATA_TRY(InitIrqchip(m));
  STRATA_TRY(InitDevices(m));
  STRATA_TRY(InitPciBus(m));
  STRATA_TRY(InitFirmware(m));
  return Ok();
}

Status InitVcpu(PlatformContext&, Vcpu&) { return Ok(); }

Status LoadGuest(PlatformContext& m) {
  std::vector<uint8_t> image;
  amd64::BootParams params;
  const bool builtin = !m.kernel;
  if (!builtin) {
    image = std::move(*m.kernel);
    m.kernel.reset();
    params.cmdline = STRATA_TRY(m.config.GetString("kernel.path"));
  } else {
    const std::span<const uint8_t> demo = amd64::DemoGuestElf();
    image.assign(demo.begin(), demo.end());
    params.cmdline = "demo";
  }
  params.holes = PlatformHoles();
  if (!builtin && amd64::IsBzImage(image)) {
    // Linux: the command line is the kernel's own, with no program name.
    amd64::BzImageParams linux;
    linux.cmdline = STRATA_TRY(m.config.GetString("kernel.cmdline", ""));
    linux.holes = params.holes;
    if (m.initrd) {
      linux.initrd = std::move(*m.initrd);
      m.initrd.reset();
    }
    amd64::BzImageLayout lay;
    State(m).boot = STRATA_TRY_CTX(
        amd64::LoadBzImage(image, linux, m.vm.memory(), &lay),
        "loading the Linux kernel");
    m.vm.log().info(
        "Linux boot protocol {}.{:02}: kernel at {:#x} ({} bytes, init_size "
        "{:#x}), initrd at {:#x} ({} bytes), {} E820 entries",
        lay.version >> 8, lay.version & 0xff, lay.kernel_addr, lay.kernel_size,
        lay.init_size, lay.initrd_addr, lay.initrd_size, lay.e820_entries);
    return Ok();
  }
  // Multiboot convention (and kvm-unit-tests'): "<program> <args>".
  const std::string args =
      STRATA_TRY(m.config.GetString("kernel.cmdline", ""));
  if (!args.empty()) params.cmdline += " " + args;
  if (m.initrd) {
    params.module = std::move(*m.initrd);
    m.initrd.reset();
    params.module_cmdline = STRATA_TRY(m.config.GetString("kernel.initrd"));
  }
  State(m).boot = STRATA_TRY_CTX(
      amd64::LoadKernel(image, params, m.vm.memory()),
      builtin ? "loading the demo guest" : "loading the kernel");
  return Ok();
}

Status StartVcpu(PlatformContext& m, Vcpu& vcpu) {
  // Application processors stay in wait-for-SIPI (KVM's in-kernel LAPIC
  // starts them when the guest sends INIT/SIPI).
  if (vcpu.id() != 0) return Ok();
  const amd64::BootInfo& boot = *State(m).boot;
  STRATA_TRY(vcpu.SetState(boot.sregs));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRip, boot.entry));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRax, boot.rax));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRbx, boot.rbx));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRsp, boot.rsp));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRsi, boot.rsi));
  return vcpu.SetRegister(md::Reg::kRflags, boot.rflags);
}

}  // namespace strata::platform
