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
// GSI 4), the MC146818 RTC/CMOS (0x70 index, 0x71 data, GSI 8; its timer
// thread runs while the VM does), the i8042 keyboard controller with no
// keyboard (0x60 data, 0x64 status/command, GSI 1; a reset through it —
// 0xfe to 0x64, or output-port bit 0 — stops the VM with the reset status),
// isa-debug-exit (0xf4), fw_cfg (0x510), the ACPI PM block (0x600:
// PM1a_EVT, PM1a_CNT for S5 and S3 (PcSleep), PM_TMR at 0x608), pc-testdev (0xe0 latch,
// 0xe4 flush, 0x2000+n interrupt lines, MMIO 0xff000000). Device instances
// number interrupts as GSIs 0-23.
// PCI (pc_pci.h): bus 0 behind a q35-like host bridge at 00:00.0,
// configuration mechanism #1 at 0xcf8 (with the 0xcf9 reset control
// register), ECAM at 0xe0000000; pci.0.<slot>.<func>.device=<model>
// instances in slots 1-31, their BARs assigned from the 32-bit window
// (0xc0000000) and I/O from 0xc000, INTx on GSIs 16-19, MSI/MSI-X through
// KVM.
// Firmware: fw_cfg items (RAM size, vCPU counts, etc/e820), over the I/O
// and DMA interfaces; the CMOS memory-size bytes SeaBIOS-style firmware
// reads (below and above 4 GiB); the ACPI and SMBIOS tables in the firmware
// area 0xE0000-0xFFFFF (pc_firmware.h).
// Guest: an ELF32/ELF64/Multiboot kernel or a Linux bzImage (64-bit boot
// protocol) through arch/amd64/loader (or the built-in demo guest); vCPU 0
// gets its entry state, the others wait in wait-for-SIPI for the guest to
// start them.
#include "core/platform.h"

#include <algorithm>
#include <vector>

#include "arch/amd64/cpu_models.h"
#include "arch/amd64/cpuid.h"
#include "arch/amd64/loader/bzimage.h"
#include "arch/amd64/loader/multiboot.h"
#include "arch/amd64/platform/demo_guest.h"
#include "arch/amd64/platform/pc_firmware.h"
#include "arch/amd64/platform/pc_hyperv.h"
#include "arch/amd64/platform/pc_layout.h"
#include "arch/amd64/platform/pc_pci.h"
#include "arch/amd64/platform/pc_vmport.h"
#include "core/log.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/ioapic.h"
#include "devices/mc146818_rtc.h"
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
using pc::kSlpTypS3;
using pc::kSlpTypS5;

// What the steps below keep between them.
struct PcState {
  std::shared_ptr<FwCfg> fw_cfg;
  std::shared_ptr<Mc146818Rtc> rtc;
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
      {"the firmware area (ACPI and SMBIOS tables)", pc::kFirmwareBase,
       pc::kFirmwareSize},
      {"the MMIO hole below 4 GiB", kLowMemLimit, kHighMemBase - kLowMemLimit},
  };
}

// --- The pc machine's own device models ---

// fw_cfg at its legacy I/O ports: selector and data at port, the DMA
// address register at port + 4; InitFirmware fills in the items.
DeviceModel FwCfgModel() {
  constexpr uint64_t kDmaOffset = kFwCfgDmaIoPort - kFwCfgIoPort;
  DeviceModel m;
  m.name = "fw_cfg";
  m.help = "QEMU's firmware configuration device (I/O ports, DMA)";
  m.keys = {{"port", "I/O port base (selector, data; DMA at +4)", true}};
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(ctx.Resource(
        "port", 0, kPioMaxPort + 1 - kDmaOffset - kFwCfgDmaIoLength));
    auto fw = std::make_shared<FwCfg>();
    auto dma = std::make_shared<FwCfgDma>(fw, ctx.vm().memory());
    STRATA_TRY(ctx.vm().pio_bus().Register(port, kFwCfgIoLength, fw));
    STRATA_TRY(ctx.vm().pio_bus().Register(port + kDmaOffset,
                                           kFwCfgDmaIoLength, dma));
    return std::shared_ptr<void>(fw);
  };
  return m;
}

// ACPI S3, suspend to RAM (ACPI 6.5 §7.4.2, §16.3): the guest's write of
// SLP_TYP 1 with SLP_EN parks every vCPU (reset, waiting for INIT/SIPI, no
// guest code runs) with memory kept; a wake event — the RTC alarm while
// the guest has PM1_EN.RTC_EN set — sets RTC_STS and WAK_STS and starts
// vCPU 0 as the firmware would on resume: in real mode at the FACS's
// 32-bit firmware waking vector (CS = vector >> 4, IP = vector & 0xf); the
// guest restarts its other CPUs itself. A zero vector means the OS left no
// way back: the machine resets (VM status: reset). A 64-bit X waking
// vector is not offered (the FACS flags say so) and stops the VM.
// Device state other than the vCPUs' (LAPIC timers, the PIT) stays as it
// was, as on a machine whose firmware does not reinitialise it.
class PcSleep {
 public:
  PcSleep(Vm& vm, std::shared_ptr<AcpiPm> pm) : vm_(vm), pm_(std::move(pm)) {}

  // On the vCPU thread that wrote SLP_EN.
  void Suspend() {
    {
      std::lock_guard lock(mu_);
      if (asleep_) return;
      asleep_ = true;
    }
    vm_.log().info("ACPI S3: suspending {} vCPUs", vm_.vcpu_count());
    for (uint32_t i = 0; i < vm_.vcpu_count(); ++i) {
      Vcpu* v = vm_.vcpu(i);
      if (v == nullptr) continue;
      v->Post([this](Vcpu& v) { Check(v, Park(v)); });
    }
  }

  // From the RTC's alarm (its timer thread or a vCPU).
  void RtcAlarm() {
    if (!pm_->WakeEnabled(kAcpiPm1StsRtc)) return;
    {
      std::lock_guard lock(mu_);
      if (!asleep_) return;
      asleep_ = false;
    }
    pm_->SetWakeStatus(kAcpiPm1StsRtc | kAcpiPm1StsWak);
    uint32_t vector = 0;
    uint64_t x_vector = 0;
    if (!vm_.ReadMemory(pc::kFacsAddress + pc::kFacsWakingVectorOffset,
                        &vector, sizeof(vector)) ||
        !vm_.ReadMemory(pc::kFacsAddress + pc::kFacsXWakingVectorOffset,
                        &x_vector, sizeof(x_vector))) {
      vm_.RequestStop(ExitStatus::VmmError("ACPI S3: the FACS is not in RAM"));
      return;
    }
    if (x_vector != 0) {
      vm_.RequestStop(ExitStatus::VmmError(fmt::format(
          "ACPI S3 resume: the guest set the 64-bit X_Firmware_Waking_Vector "
          "({:#x}), which this machine does not offer",
          x_vector)));
      return;
    }
    if (vector == 0) {
      vm_.log().info("ACPI S3 wake with no waking vector: resetting");
      vm_.RequestStop(ExitStatus::Reset());
      return;
    }
    vm_.log().info("ACPI S3: waking vCPU 0 at real-mode {:#x}:{:#x}",
                   vector >> 4, vector & 0xf);
    Vcpu* bsp = vm_.vcpu(0);
    if (bsp == nullptr) return;
    bsp->Post([this, vector](Vcpu& v) { Check(v, Resume(v, vector)); });
  }

 private:
  static Status Park(Vcpu& v) {
    STRATA_TRY(v.Reset());
    return v.SetRunnable(false);
  }

  static Status Resume(Vcpu& v, uint32_t vector) {
    STRATA_TRY(v.Reset());
    md::VcpuState st = STRATA_TRY(v.GetState());
    st.cs.selector = static_cast<uint16_t>(vector >> 4);
    st.cs.base = uint64_t{vector >> 4} << 4;
    STRATA_TRY(v.SetState(st));
    STRATA_TRY(v.SetRegister(md::Reg::kRip, vector & 0xf));
    return v.SetRunnable(true);
  }

  void Check(Vcpu& v, const Status& s) {
    if (!s) {
      vm_.RequestStop(ExitStatus::VmmError(fmt::format(
          "ACPI S3: vCPU {}: {}", v.id(), s.error().message())));
    }
  }

  Vm& vm_;
  const std::shared_ptr<AcpiPm> pm_;
  std::mutex mu_;
  bool asleep_ = false;  // guarded by mu_
};

// The ACPI PM block: S5 through PM1a_CNT powers the VM off, S3 suspends
// (PcSleep, connected in InitDevices). Other sleep types are the guest's
// to repeat at will: the warning is rate-limited, through the VM's logger.
struct AcpiPmDevice {
  std::shared_ptr<AcpiPm> pm;
  std::shared_ptr<PcSleep> sleep;  // set before the guest runs
};

DeviceModel AcpiPmModel() {
  DeviceModel m;
  m.name = "acpi_pm";
  m.help = "ACPI PM1a event/control, PM timer (S3: suspend, S5: power off)";
  m.keys = {{"port", "I/O port base (12 ports)", true}};
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(
        ctx.Resource("port", 0, kPioMaxPort + 1 - kAcpiPmLength));
    Vm& vm = ctx.vm();
    auto sleep_log =
        std::make_shared<RateLimit>("ACPI sleep request", ctx.logger());
    auto dev = std::make_shared<AcpiPmDevice>();
    AcpiPmDevice* d = dev.get();  // the device outlives its callback
    dev->pm = std::make_shared<AcpiPm>([&vm, d, sleep_log](uint32_t slp_typ) {
      if (slp_typ == kSlpTypS5) {
        vm.RequestStop(ExitStatus::PowerOff());
      } else if (slp_typ == kSlpTypS3 && d->sleep) {
        d->sleep->Suspend();
      } else {
        sleep_log->Warn("ACPI sleep type {} requested; only S3 (suspend) and "
                        "S5 (power off) are implemented, ignoring",
                        slp_typ);
      }
    });
    STRATA_TRY(vm.pio_bus().Register(port, kAcpiPmLength, dev->pm));
    return std::shared_ptr<void>(dev);
  };
  return m;
}

// The RTC and its CMOS RAM; InitFirmware fills in the memory sizes. Its
// timer thread (the periodic, update and alarm interrupts) runs while the
// VM does.
struct RtcDevice {
  std::shared_ptr<VmPinLine> line;  // outlives rtc
  std::shared_ptr<Mc146818Rtc> rtc;
};

DeviceModel RtcModel() {
  DeviceModel m;
  m.name = "mc146818";
  m.help = "MC146818 real-time clock and CMOS RAM (index, data ports)";
  m.keys = {
      {"port", "I/O port base (2 ports: index, data)", true},
      {"irq", "interrupt line", true},
  };
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port =
        STRATA_TRY(ctx.Resource("port", 0, kPioMaxPort + 1 - kRtcIoLength));
    const md::IrqPin irq = STRATA_TRY(ctx.Irq("irq"));
    auto dev = std::make_shared<RtcDevice>();
    dev->line = std::make_shared<VmPinLine>(ctx.vm(), irq);
    dev->rtc = std::make_shared<Mc146818Rtc>(dev->line.get());
    STRATA_TRY(ctx.vm().pio_bus().Register(port, kRtcIoLength, dev->rtc));
    Mc146818Rtc* rtc = dev->rtc.get();
    ctx.host().OnStart([rtc] { return rtc->Start(); });
    ctx.host().OnStop([rtc] { rtc->Stop(); });
    return std::shared_ptr<void>(dev);
  };
  return m;
}

// The keyboard controller: data at `port`, status/command at port + 4 (as
// 0x60/0x64 on every PC). Its reset line resets the machine, which strata
// reports as the VM stopping with the reset status (bhyverun exits 2).
constexpr uint64_t kI8042CommandOffset = kI8042CommandPort - kI8042DataPort;
static_assert(pc::kKbdCommandPort - pc::kKbdDataPort == kI8042CommandOffset);

struct I8042Device {
  std::shared_ptr<VmPinLine> line;      // outlive kbc
  std::shared_ptr<VmPinLine> aux_line;
  std::shared_ptr<I8042> kbc;
};

DeviceModel I8042Model() {
  DeviceModel m;
  m.name = "i8042";
  m.help = "i8042 keyboard controller, no keyboard (reset through 0x64)";
  m.keys = {
      {"port", "data port (status/command at port + 4)", true},
      {"irq", "keyboard interrupt line", true},
      {"aux_irq", "auxiliary (PS/2 mouse) port interrupt line", true},
  };
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(
        ctx.Resource("port", 0, kPioMaxPort - kI8042CommandOffset));
    const md::IrqPin irq = STRATA_TRY(ctx.Irq("irq"));
    const md::IrqPin aux_irq = STRATA_TRY(ctx.Irq("aux_irq"));
    Vm& vm = ctx.vm();
    auto dev = std::make_shared<I8042Device>();
    dev->line = std::make_shared<VmPinLine>(vm, irq);
    dev->aux_line = std::make_shared<VmPinLine>(vm, aux_irq);
    dev->kbc = std::make_shared<I8042>(
        [&vm] { vm.RequestStop(ExitStatus::Reset()); }, dev->line.get(),
        dev->aux_line.get());
    STRATA_TRY(vm.pio_bus().Register(port, 1, dev->kbc->DataPort()));
    STRATA_TRY(vm.pio_bus().Register(port + kI8042CommandOffset, 1,
                                     dev->kbc->CommandPort()));
    return std::shared_ptr<void>(dev);
  };
  return m;
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
  State(m).rtc =
      std::static_pointer_cast<RtcDevice>(m.devices.Find("rtc")->object)->rtc;
  // S3: the PM block's sleep request and the RTC alarm as its wake event.
  auto pm = std::static_pointer_cast<AcpiPmDevice>(
      m.devices.Find("acpi_pm")->object);
  pm->sleep = std::make_shared<PcSleep>(m.vm, pm->pm);
  State(m).rtc->SetAlarmCallback(
      [sleep = pm->sleep.get()] { sleep->RtcAlarm(); });
  return Ok();
}

// PCI bus 0 and its host bridge (pc_pci.h), before the declared PCI
// instances are created.
Status InitPciBus(PlatformContext& m) {
  State(m).pci = STRATA_TRY(pc::InitPci(m));
  return Ok();
}

// fw_cfg items kvm-unit-tests and our guests read, the RTC's CMOS
// memory-size bytes, and the ACPI and SMBIOS tables in the firmware area
// (pc_firmware.h).
Status InitFirmware(PlatformContext& m) {
  const auto tables =
      STRATA_TRY(pc::WriteFirmwareTables(m.config, m.vm.memory()));
  m.vm.log().debug("ACPI RSDP at {:#x}, SMBIOS 3.0 entry point at {:#x}; "
                   "{} bytes of the firmware area used",
                   tables.rsdp, tables.smbios_entry, tables.used);
  FwCfg& fw = *State(m).fw_cfg;
  fw.SetU64(kFwCfgRamSize, m.memory_size);
  fw.SetU16(kFwCfgNbCpus, static_cast<uint16_t>(m.cpus));
  fw.SetU16(kFwCfgMaxCpus, static_cast<uint16_t>(m.vm.max_vcpus()));
  fw.SetU64(kFwCfgKernelData, 0);
  fw.SetU16(kFwCfgNoGraphic, 1);
  fw.SetItem(kFwCfgUuid, std::vector<uint8_t>(16, 0));
  // etc/e820: QEMU's RAM map for firmware (le64 address, le64 length,
  // le32 type 1 = RAM per entry).
  std::vector<uint8_t> e820;
  auto put = [&e820](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) e820.push_back(uint8_t(v >> (8 * i)));
  };
  for (const auto& seg : m.vm.memory().segments()) {
    put(seg->gpa, 8);
    put(seg->size, 8);
    put(1, 4);
  }
  STRATA_TRY(fw.AddFile("etc/e820", std::move(e820)));
  // The same split as InitMemory.
  const uint64_t low = std::min(m.memory_size, kLowMemLimit);
  State(m).rtc->SetMemorySizes(low, m.memory_size - low);
  return Ok();
}

}  // namespace

std::string_view Name() { return "pc"; }

Status InitConfig(Config& c) {
  STRATA_TRY(c.SetDefault("com1.backend", "stdio"));
  STRATA_TRY(c.SetDefault("x86.cpu_vendor", "host"));
  STRATA_TRY(c.SetDefault("x86.cpu_model", "host"));
  STRATA_TRY(c.SetDefault("x86.irqchip", "kernel"));
  STRATA_TRY(c.SetDefault("x86.x2apic", "true"));
  STRATA_TRY(c.SetDefault("x86.tsc_deadline", "true"));
  STRATA_TRY(c.SetDefault("x86.hypervisor_bit", "true"));
  STRATA_TRY(c.SetDefault("x86.cpu_features", ""));
  STRATA_TRY(c.SetDefault("x86.pit", "true"));
  STRATA_TRY(c.SetDefault("x86.cpu_pm", "false"));
  STRATA_TRY(c.SetDefault("x86.cpu_features_missing", "error"));
  STRATA_TRY(pc::InitHypervConfig(c));
  return Ok();
}

std::span<const ConfigKeyHelp> ConfigKeys() {
  static constexpr ConfigKeyHelp kKeys[] = {
      {"x86.cpu_vendor", "guest CPU vendor: host (default), intel, amd"},
      {"x86.cpu_model",
       "guest CPU model: host (default: what KVM supports) or a named model "
       "(Opteron_G1, Opteron_G2, SandyBridge, IvyBridge; its vendor unless "
       "x86.cpu_vendor names one)"},
      {"x86.irqchip",
       "kernel (default; or true): KVM's PIC, IOAPIC, LAPICs and PIT; "
       "split (or false): KVM's LAPICs with strata's IOAPIC"},
      {"x86.x2apic", "advertise x2APIC (default true)"},
      {"x86.tsc_deadline", "advertise the TSC-deadline timer (default true)"},
      {"x86.hypervisor_bit",
       "CPUID hypervisor bit, leaves 0x4000000x (default true)"},
      {"x86.cpu_features_missing",
       "a +feature KVM lacks: error (default) or drop (with a warning, as "
       "QEMU does)"},
      {"x86.pit",
       "KVM's i8254 PIT on GSI 0 with x86.irqchip=kernel (default true; "
       "QEMU's -machine pit=off is false)"},
      {"x86.cpu_pm",
       "the guest's HLT, PAUSE, MWAIT and C-states without exits, for vCPUs "
       "on host CPUs of their own (default false; QEMU's -overcommit "
       "cpu-pm=on)"},
      {"x86.cpu_features",
       "CPUID feature bits forced on (+name, if KVM supports it) or off "
       "(-name), e.g. +invpcid,-pcid,-xsave (default none)"},
      {"x86.hyperv",
       "Hyper-V enlightenments: off (default), passthrough (every one KVM "
       "offers, as QEMU's hv-passthrough) or a list of relaxed, vapic, time, "
       "crash, reset, vpindex, runtime, synic, stimer, stimer-direct, "
       "frequencies, reenlightenment, tlbflush, tlbflush-ext, ipi, avic, "
       "xmm-input; -name drops one"},
      {"x86.hyperv_vendor_id",
       "the Hyper-V vendor id in CPUID 0x40000000 (default 'Microsoft Hv'; "
       "at most 12 characters)"},
  };
  return kKeys;
}

std::span<const CommandLineOption> CommandLineOptions() {
  static constexpr CommandLineOption kOptions[] = {
      {"cpu-vendor", "x86.cpu_vendor", "guest CPU vendor: host, intel, amd"},
      {"cpu-model", "x86.cpu_model",
       "guest CPU model: host or a named model (x86.cpu_model)"},
      {"cpu-features", "x86.cpu_features",
       "CPUID features on/off: +name,-name (x86.cpu_features)"},
  };
  return kOptions;
}

Status RegisterDeviceModels(DeviceRegistry& registry) {
  STRATA_TRY(RegisterStandardDeviceModels(registry));
  STRATA_TRY(registry.Register(FwCfgModel()));
  STRATA_TRY(registry.Register(AcpiPmModel()));
  STRATA_TRY(registry.Register(RtcModel()));
  STRATA_TRY(registry.Register(I8042Model()));
  STRATA_TRY(registry.Register(pc::HypervTestdevModel()));
  STRATA_TRY(registry.Register(pc::VmportModel()));
  STRATA_TRY(RegisterPciDeviceModels(registry));
  return Ok();
}

std::vector<DeviceInstance> FixedDevices() {
  return {
      FixedDevice("com1", "uart_16550",
                  {{"port", kCom1Port}, {"irq", pc::kGsiCom1}},
                  "COM1 (port 0x3f8, IRQ 4)"),
      FixedDevice("rtc", "mc146818",
                  {{"port", pc::kRtcPort}, {"irq", pc::kGsiRtc}},
                  "RTC/CMOS (ports 0x70-0x71, IRQ 8)"),
      FixedDevice(
          "i8042", "i8042",
          {{"port", pc::kKbdDataPort},
           {"irq", pc::kGsiKbd},
           {"aux_irq", pc::kGsiMouse}},
          "keyboard controller (ports 0x60, 0x64; IRQ 1 and 12; reset)"),
      FixedDevice("isa-debug-exit", "isa-debug-exit",
                  {{"port", kDebugExitPort}}, "port 0xf4"),
      FixedDevice("fw_cfg", "fw_cfg", {{"port", kFwCfgIoPort}},
                  "ports 0x510-0x511, DMA 0x514-0x51b"),
      FixedDevice("acpi_pm", "acpi_pm", {{"port", kAcpiPmPort}},
                  "ports 0x600-0x60b"),
      FixedDevice("pc-testdev", "pc-testdev", {},
                  "ports 0xe0-0xe7, 0x2000-0x2017"),
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
  m.cpu_model = STRATA_TRY(c.GetString("x86.cpu_model", "host"));
  if (m.cpu_model != "host" && amd64::FindCpuModel(m.cpu_model) == nullptr) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.cpu_model '{}' is not a known model: host, {}",
                     m.cpu_model, fmt::join(amd64::CpuModelNames(), ", "));
  }
  m.irqchip = STRATA_TRY(PcIrqchip(c));
  m.x2apic = STRATA_TRY(c.GetBool("x86.x2apic", true));
  m.tsc_deadline = STRATA_TRY(c.GetBool("x86.tsc_deadline", true));
  m.hypervisor_bit = STRATA_TRY(c.GetBool("x86.hypervisor_bit", true));
  m.cpu_features = STRATA_TRY(c.GetString("x86.cpu_features", ""));
  m.pit = STRATA_TRY(c.GetBool("x86.pit", true));
  m.cpu_pm = STRATA_TRY(c.GetBool("x86.cpu_pm", false));
  const std::string missing =
      STRATA_TRY(c.GetString("x86.cpu_features_missing", "error"));
  if (missing != "error" && missing != "drop") {
    return MakeError(Errc::kInvalidArgument,
                     "x86.cpu_features_missing must be error or drop, got "
                     "'{}'",
                     missing);
  }
  m.drop_missing_features = missing == "drop";
  STRATA_TRY(pc::CheckHypervConfig(c, m.hypervisor_bit));
  m.hyperv = STRATA_TRY(c.GetString("x86.hyperv", "off"));
  m.hyperv_vendor_id = STRATA_TRY(c.GetString("x86.hyperv_vendor_id"));
  // Checked now (names, syntax) so that it is reported as bad input; what
  // KVM supports is checked when the VM is created.
  STRATA_TRY_CTX(amd64::ParseCpuFeatures(m.cpu_features), "x86.cpu_features");
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

Result<std::vector<FirmwareFile>> FirmwareTables(const Config& c) {
  return pc::FirmwareFiles(c);
}

Status Init(PlatformContext& m) {
  STRATA_TRY(InitMemory(m));
  STRATA_TRY(InitIrqchip(m));
  STRATA_TRY(pc::InitHyperv(m));
  STRATA_TRY(InitDevices(m));
  STRATA_TRY(InitPciBus(m));
  STRATA_TRY(InitFirmware(m));
  return Ok();
}

Status InitVcpu(PlatformContext&, Vcpu&) { return Ok(); }

// True if the kernel file carries a Linux setup header (its first bytes
// read; the rest stays in the file for the loader).
Result<bool> KernelIsBzImage(const ByteSource& kernel) {
  std::vector<uint8_t> head(
      std::min<uint64_t>(kernel.size(), amd64::kBzHeaderMagic + 4));
  STRATA_TRY(kernel.ReadAt(0, head));
  return amd64::IsBzImage(head);
}

Status LoadGuest(PlatformContext& m) {
  amd64::BootParams params;
  const bool builtin = !m.kernel;
  params.holes = PlatformHoles();
  if (!builtin && STRATA_TRY(KernelIsBzImage(*m.kernel))) {
    // Linux: the command line is the kernel's own, with no program name.
    // The kernel (and initrd) go from their files to guest RAM unbuffered.
    amd64::BzImageParams linux;
    linux.cmdline = STRATA_TRY(m.config.GetString("kernel.cmdline", ""));
    linux.holes = params.holes;
    linux.initrd = std::move(m.initrd);
    m.initrd.reset();
    const ByteSource image = std::move(*m.kernel);
    m.kernel.reset();
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
  // ELF and Multiboot kernels are small (kvm-unit-tests' are < 1 MiB) and
  // parsed throughout: read whole.
  std::vector<uint8_t> image;
  if (!builtin) {
    image = STRATA_TRY(std::move(*m.kernel).TakeAll());
    m.kernel.reset();
    params.cmdline = STRATA_TRY(m.config.GetString("kernel.path"));
  } else {
    const std::span<const uint8_t> demo = amd64::DemoGuestElf();
    image.assign(demo.begin(), demo.end());
    params.cmdline = "demo";
  }
  // Multiboot convention (and kvm-unit-tests'): "<program> <args>".
  const std::string args =
      STRATA_TRY(m.config.GetString("kernel.cmdline", ""));
  if (!args.empty()) params.cmdline += " " + args;
  if (m.initrd) {
    params.module = STRATA_TRY(std::move(*m.initrd).TakeAll());
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
