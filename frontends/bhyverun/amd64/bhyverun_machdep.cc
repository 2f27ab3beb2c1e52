// strata — bhyverun hooks for amd64: a PC-like platform.
//
// Memory: RAM from 0 to min(size, 3 GiB), the rest from 4 GiB up; the hole
// below 4 GiB holds the LAPIC (0xfee00000), IOAPIC (0xfec00000), the
// pc-testdev MMIO buffer (0xff000000) and KVM's VMX helper pages.
// Devices (port I/O): COM1 16550 (0x3f8, IRQ 4), isa-debug-exit (0xf4),
// fw_cfg (0x510), ACPI PM block (0x600: PM1a_EVT, PM1a_CNT, PM_TMR),
// pc-testdev (0xe0 latch, 0xe4 flush, 0x2000+n IRQ lines, MMIO 0xff000000).
// Interrupts: KVM's in-kernel PIC/IOAPIC/LAPIC and PIT (x86.irqchip=true).
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "arch/amd64/cpuid.h"
#include "arch/amd64/loader/multiboot.h"
#include "core/log.h"
#include "devices/acpi_pm.h"
#include "devices/char_backend.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/pc_testdev.h"
#include "devices/uart_16550.h"
#include "frontends/bhyverun/bhyverun.h"
#include "tests/guests/amd64/demo_blob.h"

namespace strata::bhyverun {

namespace {

constexpr uint64_t kLowMemLimit = 3ull << 30;   // RAM below the PCI hole
constexpr uint64_t kHighMemBase = 4ull << 30;
constexpr uint64_t kCom1Port = 0x3f8;
constexpr uint64_t kCom1Length = 8;
constexpr uint32_t kCom1Gsi = 4;
constexpr uint64_t kAcpiPmPort = 0x600;
// SLP_TYP that means S5 (soft off): the value the \_S5 package of the DSDT
// advertises; 0 as in QEMU's q35/piix4 tables (ACPI 6.4 §7.4.2).
constexpr uint32_t kSlpTypS5 = 0;

// The non-RAM ranges of the platform, named in kernel-loading errors.
constexpr uint64_t kIoapicBase = 0xfec00000;
constexpr uint64_t kApicPageSize = 0x1000;

std::vector<amd64::MemoryHole> PlatformHoles() {
  return {
      {"the LAPIC page", amd64::kApicBaseDefault, kApicPageSize},
      {"the IOAPIC page", kIoapicBase, kApicPageSize},
      {"the pc-testdev MMIO window", kPcTestdevMmioBase, kPcTestdevMmioSize},
      {"the MMIO hole below 4 GiB", kLowMemLimit, kHighMemBase - kLowMemLimit},
  };
}

}  // namespace

Status bhyve_init_config(Config& c) {
  STRATA_TRY(c.SetDefault("memory.size", "256M"));
  STRATA_TRY(c.SetDefault("com1.backend", "stdio"));
  STRATA_TRY(c.SetDefault("x86.cpu_vendor", "host"));
  STRATA_TRY(c.SetDefault("x86.irqchip", "true"));
  STRATA_TRY(c.SetDefault("x86.x2apic", "true"));
  STRATA_TRY(c.SetDefault("x86.tsc_deadline", "true"));
  STRATA_TRY(c.SetDefault("x86.hypervisor_bit", "true"));
  return Ok();
}

std::span<const std::string_view> bhyve_config_keys_machdep() {
  static constexpr std::string_view kKeys[] = {
      "x86.cpu_vendor", "x86.irqchip", "x86.x2apic", "x86.tsc_deadline",
      "x86.hypervisor_bit",
  };
  return kKeys;
}

const char* bhyve_usage_machdep() {
  return "amd64 keys: x86.cpu_vendor (host|intel|amd), x86.irqchip, "
         "x86.x2apic,\n  x86.tsc_deadline, x86.hypervisor_bit (booleans)\n";
}

const MachdepOption* bhyve_options_machdep() {
  static const MachdepOption kOptions[] = {
      {"cpu-vendor", "x86.cpu_vendor", "guest CPU vendor: host, intel, amd"},
      {nullptr, nullptr, nullptr},
  };
  return kOptions;
}

Result<md::MachineOptions> bhyve_machine_options(const Config& c) {
  md::MachineOptions m;
  m.cpu_vendor = STRATA_TRY(c.GetString("x86.cpu_vendor", "host"));
  if (m.cpu_vendor != "host" && m.cpu_vendor != "intel" &&
      m.cpu_vendor != "amd") {
    return MakeError(Errc::kInvalidArgument,
                     "x86.cpu_vendor must be host, intel or amd, got '{}'",
                     m.cpu_vendor);
  }
  m.irqchip = STRATA_TRY(c.GetBool("x86.irqchip", true));
  m.x2apic = STRATA_TRY(c.GetBool("x86.x2apic", true));
  m.tsc_deadline = STRATA_TRY(c.GetBool("x86.tsc_deadline", true));
  m.hypervisor_bit = STRATA_TRY(c.GetBool("x86.hypervisor_bit", true));
  const uint32_t cpus = STRATA_TRY(c.GetUint32("cpus", 1));
  if (!m.irqchip && cpus > 1) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.irqchip=false supports only one vCPU (application "
                     "processors are started through the in-kernel LAPIC)");
  }
  // What the CPUID policy will demand of the topology (APIC ids in range),
  // checked now so that it is reported as bad input, not a VM failure.
  amd64::CpuidOptions cpuid;
  cpuid.topo = {STRATA_TRY(c.GetUint32("cpu.sockets", 1)),
                STRATA_TRY(c.GetUint32("cpu.cores", 1)),
                STRATA_TRY(c.GetUint32("cpu.threads", 1))};
  cpuid.x2apic = m.x2apic;
  cpuid.max_vcpus = STRATA_TRY(c.GetUint32("cpu.max", cpus));
  STRATA_TRY(amd64::CheckCpuidOptions(cpuid));
  const std::string backend = STRATA_TRY(c.GetString("com1.backend", "stdio"));
  if (backend != "stdio" && backend != "none") {
    return MakeError(Errc::kInvalidArgument,
                     "com1.backend must be stdio or none, got '{}'", backend);
  }
  return m;
}

Status bhyve_init_platform(Context& ctx) {
  Vm& vm = *ctx.vm;
  uint64_t low = std::min(ctx.memsize, kLowMemLimit);
  STRATA_TRY(vm.AddMemory("lowmem", 0, low));
  if (ctx.memsize > low) {
    STRATA_TRY(vm.AddMemory("highmem", kHighMemBase, ctx.memsize - low));
  }

  // COM1.
  std::string backend = STRATA_TRY(ctx.config.GetString("com1.backend"));
  CharBackend* out = nullptr;
  if (backend == "stdio") {
    StdioBackend::Options o;
    o.in_fd = -1;
    o.name = "com1";
    auto* console = ctx.Own(std::make_shared<StdioBackend>(o));
    STRATA_TRY(console->Start());
    out = console;
  } else if (backend != "none") {
    return MakeError(Errc::kInvalidArgument,
                     "com1.backend must be stdio or none, got '{}'", backend);
  }
  auto* irq4 = ctx.Own(std::make_shared<PinLine>(vm, md::IrqPin{kCom1Gsi}));
  auto uart = std::make_shared<Uart16550>(out, irq4, "com1");
  ctx.owned.push_back(uart);
  STRATA_TRY(vm.pio_bus().Register(kCom1Port, kCom1Length, uart));

  // isa-debug-exit.
  auto dbg = std::make_shared<DebugExit>(
      [&vm](uint64_t status) { vm.RequestStop(ExitStatus::GuestExit(status >> 1)); });
  ctx.owned.push_back(dbg);
  STRATA_TRY(vm.pio_bus().Register(kDebugExitPort, kDebugExitLength, dbg));

  // fw_cfg with the items kvm-unit-tests and our guests read.
  auto fw = std::make_shared<FwCfg>();
  ctx.owned.push_back(fw);
  fw->SetU64(kFwCfgRamSize, ctx.memsize);
  fw->SetU16(kFwCfgNbCpus, static_cast<uint16_t>(ctx.cpus));
  fw->SetU16(kFwCfgMaxCpus, static_cast<uint16_t>(vm.max_vcpus()));
  fw->SetU64(kFwCfgKernelData, 0);
  STRATA_TRY(vm.pio_bus().Register(kFwCfgIoPort, kFwCfgIoLength, fw));

  // ACPI PM block: S5 through PM1a_CNT powers the VM off. Other sleep
  // types are the guest's to repeat at will: rate-limit the warning.
  auto* sleep_log =
      ctx.Own(std::make_shared<RateLimit>("ACPI sleep request"));
  auto pm = std::make_shared<AcpiPm>([&vm, sleep_log](uint32_t slp_typ) {
    if (slp_typ == kSlpTypS5) {
      vm.RequestStop(ExitStatus::PowerOff());
    } else {
      sleep_log->Warn("ACPI sleep type {} requested; only S5 (power off) is "
                      "implemented, ignoring",
                      slp_typ);
    }
  });
  ctx.owned.push_back(pm);
  STRATA_TRY(vm.pio_bus().Register(kAcpiPmPort, kAcpiPmLength, pm));

  // pc-testdev (kvm-unit-tests' I/O and interrupt test device).
  auto latch = std::make_shared<PcTestdevLatch>();
  auto flush = std::make_shared<PcTestdevFlush>();
  auto lines = std::make_shared<PcTestdevIrq>([&vm](uint32_t gsi, bool level) {
    (void)vm.SetIrq(md::IrqPin{gsi}, level);
  });
  auto iomem = std::make_shared<PcTestdevMmio>();
  ctx.owned.insert(ctx.owned.end(), {latch, flush, lines, iomem});
  STRATA_TRY(vm.pio_bus().Register(kPcTestdevLatchPort, kPcTestdevLatchLength,
                                   latch));
  STRATA_TRY(vm.pio_bus().Register(kPcTestdevFlushPort, kPcTestdevFlushLength,
                                   flush));
  STRATA_TRY(vm.pio_bus().Register(kPcTestdevIrqPort, kPcTestdevIrqCount, lines));
  STRATA_TRY(vm.mmio_bus().Register(kPcTestdevMmioBase, kPcTestdevMmioSize,
                                    iomem));
  return Ok();
}

Status bhyve_init_vcpu(Context&, Vcpu&) { return Ok(); }

Status bhyve_init_platform_late(Context& ctx) {
  Vm& vm = *ctx.vm;
  Config& c = ctx.config;
  std::vector<uint8_t> image;
  amd64::BootParams params;
  const bool builtin = !ctx.kernel;
  if (!builtin) {
    image = std::move(*ctx.kernel);
    ctx.kernel.reset();
    params.cmdline = STRATA_TRY(c.GetString("kernel.path"));
  } else {
    image.assign(embedded::demo_guest_elf,
                 embedded::demo_guest_elf + embedded::demo_guest_elf_size);
    params.cmdline = "demo";
  }
  params.holes = PlatformHoles();
  // Multiboot convention (and kvm-unit-tests'): "<program> <args>".
  std::string args = STRATA_TRY(c.GetString("kernel.cmdline", ""));
  if (!args.empty()) params.cmdline += " " + args;
  if (ctx.initrd) {
    params.module = std::move(*ctx.initrd);
    ctx.initrd.reset();
    params.module_cmdline = STRATA_TRY(c.GetString("kernel.initrd"));
  }
  auto boot = std::make_shared<amd64::BootInfo>(STRATA_TRY_CTX(
      amd64::LoadKernel(image, params, vm.memory()),
      builtin ? "loading the demo guest" : "loading the kernel"));
  ctx.machdep = boot;
  return Ok();
}

Status bhyve_start_vcpu(Context& ctx, Vcpu& vcpu) {
  // Application processors stay in wait-for-SIPI (KVM's in-kernel LAPIC
  // starts them when the guest sends INIT/SIPI).
  if (vcpu.id() != 0) return Ok();
  auto* boot = static_cast<amd64::BootInfo*>(ctx.machdep.get());
  STRATA_TRY(vcpu.SetState(boot->sregs));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRip, boot->entry));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRax, boot->rax));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRbx, boot->rbx));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kRsp, boot->rsp));
  return vcpu.SetRegister(md::Reg::kRflags, boot->rflags);
}

}  // namespace strata::bhyverun
