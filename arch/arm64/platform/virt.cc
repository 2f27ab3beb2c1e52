// strata — the arm64 "virt" machine (core/platform.h).
//
// Reads like bhyve's arm64 bhyverun_machdep.c: a memory map (virt_layout.h,
// QEMU's virt machine), KVM's vGIC placed on it by the backend, one UART
// (a PL011 at 0x09000000, SPI 1), and a device tree built from the
// configured machine (fdt.h) — the guest learns everything from it.
//
// Boot (Documentation/arch/arm64/booting.rst): the kernel — a Linux arm64
// Image (gzip-compressed or not) or a raw binary such as a kvm-unit-tests
// .flat — and the initrd go into RAM as arch/arm64/loader plans them, the
// DTB after them; vCPU 0 enters at EL1h with the MMU off, DAIF masked and
// x0 = the DTB's address (x1-x3 = 0). The others stay powered off until
// the guest starts them with PSCI CPU_ON (KVM's in-kernel PSCI 0.2).
// Device instances number interrupts as SPIs: number n is INTID 32 + n.
#include "core/platform.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>

#include <fmt/format.h>

#include "arch/arm64/kvm/host_probe.h"
#include "arch/arm64/loader/image.h"
#include "arch/arm64/platform/fdt.h"
#include "arch/arm64/platform/virt_layout.h"
#include "arch/arm64/platform/virt_pci.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "devices/pci/models.h"
#include "devices/pci/pci_bus.h"
#include "devices/registry.h"
#include "guests/arm64/demo_guest.h"

namespace strata::platform {

namespace {

using namespace arm64::virt;  // the memory map

struct VirtState {
  Layout layout = QemuLayout();
  arm64::BootLayout boot;
  std::shared_ptr<PciBus> pci;  // bus 0 (virt_pci.h); QEMU layout only
};

VirtState& State(PlatformContext& m) {
  if (!m.md) m.md = std::make_shared<VirtState>();
  return *static_cast<VirtState*>(m.md.get());
}


Result<Layout> MachineLayout(const Config& c) {
  const std::string name = STRATA_TRY(c.GetString("arm64.layout", "qemu"));
  const uint32_t max = STRATA_TRY(c.GetUint32("cpu.max", 1));
  if (name == "qemu") return QemuLayout();
  if (name == "kvmtool") return KvmtoolLayout(max);
  return MakeError(Errc::kInvalidArgument,
                   "arm64.layout must be qemu or kvmtool, got '{}'", name);
}

Result<uint32_t> GicVersion(const Config& c) {
  const std::string v = STRATA_TRY(c.GetString("arm64.gic_version", "auto"));
  if (v == "auto") return 0u;
  if (v == "2") return 2u;
  if (v == "3") return 3u;
  return MakeError(Errc::kInvalidArgument,
                   "arm64.gic_version must be auto, 2 or 3, got '{}'", v);
}

Result<std::optional<bool>> Its(const Config& c) {
  const std::string v = STRATA_TRY(c.GetString("arm64.its", "auto"));
  if (v == "auto") return std::optional<bool>();
  if (v == "true") return std::optional<bool>(true);
  if (v == "false") return std::optional<bool>(false);
  return MakeError(Errc::kInvalidArgument,
                   "arm64.its must be auto, true or false, got '{}'", v);
}

// The device tree of a machine with these options and vCPUs.
Result<std::vector<uint8_t>> BuildTree(const Layout& layout,
                                       const md::MachineOptions& opts,
                                       std::vector<uint64_t> mpidrs,
                                       uint32_t max_vcpus,
                                       uint64_t memory_size,
                                       const std::string& bootargs,
                                       std::optional<arm64::VirtFdtSpec::Region>
                                           initrd) {
  arm64::VirtFdtSpec s;
  s.ram_base = layout.ram_base;
  s.ram_size = memory_size;
  s.mpidrs = std::move(mpidrs);
  s.gic_version = opts.gic_version;
  s.gicd = {opts.gic_dist_base, md::kGicDistSize};
  if (opts.gic_version == 3) {
    // One redistributor per possible vCPU (KVM sets GICR_TYPER.Last on
    // the last one that exists).
    s.gicr_regions = {{opts.gic_redist_base,
                       uint64_t{max_vcpus} * md::kGicRedistStride}};
    if (opts.its.value_or(false)) {
      s.its = arm64::VirtFdtSpec::Region{opts.gic_its_base, md::kGicItsSize};
    }
  } else {
    s.gicc = arm64::VirtFdtSpec::Region{opts.gic_cpu_base, md::kGicCpuSize};
  }
  s.gic_nr_irqs = opts.gic_spis + md::kGicFirstSpi;
  s.timer_intids = {kTimerSecurePpi, kTimerPhysPpi, kTimerVirtPpi,
                    kTimerHypPpi};
  if (opts.pmu) {
    s.pmu_intid = opts.pmu_ppi;
  } else {
    s.pmu_intid.reset();
  }
  s.uart.kind = layout.uart_is_pl011
                    ? arm64::VirtFdtSpec::Uart::Kind::kPl011
                    : arm64::VirtFdtSpec::Uart::Kind::kNs16550a;
  s.uart.mmio = {layout.uart_base, layout.uart_size};
  s.uart.spi_intid = md::kGicFirstSpi + layout.uart_spi;
  s.bootargs = bootargs;
  s.initrd = initrd;
  if (layout.name == "qemu") {
    s.pcie = virt::PcieFdtSpec(s.its.has_value());
  }
  return arm64::BuildVirtFdt(s);
}

}  // namespace

std::string_view Name() { return "virt"; }

Status InitConfig(Config& c) {
  STRATA_TRY(c.SetDefault("uart0.backend", "stdio"));
  // kvm-unit-tests' exit status, whichever UART the layout has.
  STRATA_TRY(c.SetDefault("uart0.exit_line", "true"));
  STRATA_TRY(c.SetDefault("arm64.layout", "qemu"));
  STRATA_TRY(c.SetDefault("arm64.profile", "auto"));
  STRATA_TRY(c.SetDefault("arm64.gic_version", "auto"));
  STRATA_TRY(c.SetDefault("arm64.its", "auto"));
  STRATA_TRY(c.SetDefault("arm64.pmu", "true"));
  STRATA_TRY(c.SetDefault("arm64.mte", "false"));
  STRATA_TRY(c.SetDefault("arm64.ipa_bits", "0"));
  return Ok();
}

std::span<const ConfigKeyHelp> ConfigKeys() {
  static constexpr ConfigKeyHelp kKeys[] = {
      {"arm64.layout",
       "memory map: qemu (default; QEMU's virt machine, PL011) or kvmtool "
       "(kvmtool's arm64 VM, ns16550a at 0x01000000)"},
      {"arm64.profile",
       "host profile: auto (default: from MIDR_EL1 and KVM's capabilities), "
       "thunderx, thunderx2, generic"},
      {"arm64.gic_version", "auto (default: the profile's), 2 or 3"},
      {"arm64.its", "GICv3 ITS for MSIs: auto (default: if the host has one), "
                    "true, false"},
      {"arm64.pmu", "PMUv3 for the guest if the host has one (default true)"},
      {"arm64.mte",
       "the Memory Tagging Extension for the guest (default false; the "
       "host's KVM must offer KVM_CAP_ARM_MTE)"},
      {"arm64.ipa_bits",
       "guest physical address bits (default 0: KVM's 40)"},
  };
  return kKeys;
}

std::span<const CommandLineOption> CommandLineOptions() { return {}; }

Status RegisterDeviceModels(DeviceRegistry& registry) {
  STRATA_TRY(RegisterStandardDeviceModels(registry));
  return RegisterPciDeviceModels(registry);
}

std::vector<DeviceInstance> FixedDevices() {
  return {
      FixedDevice("uart0", "pl011", {{"base", kUartBase}, {"irq", kUartSpi}},
            "PL011 UART (0x09000000, SPI 1)"),
  };
}

Result<md::IrqPin> IrqPin(uint64_t number) {
  if (number >= kGicSpis) {
    return MakeError(Errc::kOutOfRange,
                     "interrupt {} is not an SPI of the virt machine (0-{})",
                     number, kGicSpis - 1);
  }
  md::IrqPin p;
  p.type = md::IrqPin::Type::kSpi;
  p.intid = md::kGicFirstSpi + static_cast<uint32_t>(number);
  return p;
}

Status CheckPciInstance(const DeviceInstance& instance) {
  return virt::CheckPciInstance(instance);
}

Result<md::MachineOptions> MachineOptions(const Config& c) {
  md::MachineOptions m;
  m.profile = STRATA_TRY(c.GetString("arm64.profile", "auto"));
  if (m.profile != "auto" && m.profile != "thunderx" &&
      m.profile != "thunderx2" && m.profile != "generic") {
    return MakeError(Errc::kInvalidArgument,
                     "arm64.profile must be auto, thunderx, thunderx2 or "
                     "generic, got '{}'",
                     m.profile);
  }
  m.gic_version = STRATA_TRY(GicVersion(c));
  m.its = STRATA_TRY(Its(c));
  m.pmu = STRATA_TRY(c.GetBool("arm64.pmu", true));
  m.mte = STRATA_TRY(c.GetBool("arm64.mte", false));
  m.ipa_bits = STRATA_TRY(c.GetUint32("arm64.ipa_bits", 0));
  if (m.ipa_bits != 0 && (m.ipa_bits < 32 || m.ipa_bits > 52)) {
    return MakeError(Errc::kOutOfRange,
                     "arm64.ipa_bits must be 0 (KVM's default) or 32..52, "
                     "got {}",
                     m.ipa_bits);
  }
  const Layout layout = STRATA_TRY(MachineLayout(c));
  m.gic_spis = kGicSpis;
  m.gic_dist_base = layout.gic_dist;
  m.gic_redist_base = layout.gic_redist;
  m.gic_redist_size = layout.gic_redist_size;
  m.gic_cpu_base = layout.gic_cpu;
  m.gic_its_base = layout.gic_its;
  m.pmu_ppi = kPmuPpi;
  const uint32_t max = STRATA_TRY(c.GetUint32("cpu.max", 1));
  if (uint64_t{max} * md::kGicRedistStride > layout.gic_redist_size) {
    return MakeError(Errc::kOutOfRange,
                     "cpu.max={}: the virt machine's GICv3 redistributor "
                     "space holds {} vCPUs",
                     max, layout.gic_redist_size / md::kGicRedistStride);
  }
  if (m.gic_version == 2 && max > arm64::kGicv2MaxCpus) {
    return MakeError(Errc::kOutOfRange,
                     "cpu.max={}: GICv2 serves at most {} vCPUs "
                     "(arm64.gic_version=3)",
                     max, arm64::kGicv2MaxCpus);
  }
  const uint64_t mem = STRATA_TRY(c.GetSize("memory.size"));
  if (mem > layout.ram_limit) {
    return MakeError(Errc::kOutOfRange,
                     "memory.size {:#x}: the virt machine's RAM (from {:#x}) "
                     "must end within the 40-bit IPA space (at most {:#x})",
                     mem, layout.ram_base, layout.ram_limit);
  }
  return m;
}

// Resolves "auto" in the GIC settings as a VM created here would: by the
// host profile, when this host has an arm64 KVM (the same probe and
// choice as the backend's, arch/arm64/profile.h); elsewhere — an amd64
// workstation preparing a guest, qemu-user — as a GICv3 with an ITS.
Status ResolveGicForDump(md::MachineOptions& opts) {
  if (opts.gic_version != 0 && opts.its) return Ok();
  UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  std::optional<arm64::Profile> p;
  if (kvm) {
    Result<arm64::HostFacts> facts = arm64::ProbeHostFacts(kvm.get());
    kvm.reset();
    if (facts) {
      p = STRATA_TRY(
          arm64::ResolveProfile(*facts, opts.profile, opts.gic_version));
      Log().info("virt: the tree follows host profile {}: {}", p->name,
                 p->reason);
    } else {
      Log().info("virt: /dev/kvm is not an arm64 KVM here ({}): the tree "
                 "assumes a GICv3 with an ITS",
                 facts.error().message());
    }
  }
  if (opts.gic_version == 0) opts.gic_version = p ? p->gic_version : 3;
  if (!opts.its) opts.its = p ? p->its : opts.gic_version == 3;
  return Ok();
}

Result<std::vector<FirmwareFile>> FirmwareTables(const Config& c) {
  // The tree a VM of this config gets here.
  md::MachineOptions opts = STRATA_TRY(MachineOptions(c));
  STRATA_TRY(ResolveGicForDump(opts));
  const uint32_t cpus = STRATA_TRY(c.GetUint32("cpus", 1));
  std::vector<uint64_t> mpidrs;
  for (uint32_t i = 0; i < cpus; ++i) mpidrs.push_back(KvmMpidr(i));
  const uint64_t mem = STRATA_TRY(c.GetSize("memory.size"));
  const std::string bootargs = STRATA_TRY(c.GetString("kernel.cmdline", ""));
  const Layout layout = STRATA_TRY(MachineLayout(c));
  std::vector<uint8_t> dtb = STRATA_TRY(
      BuildTree(layout, opts, std::move(mpidrs),
                STRATA_TRY(c.GetUint32("cpu.max", cpus)), mem, bootargs, {}));
  return std::vector<FirmwareFile>{{"virt.dtb", std::move(dtb)}};
}

Status Init(PlatformContext& m) {
  const Layout layout = STRATA_TRY(MachineLayout(m.config));
  State(m).layout = layout;
  STRATA_TRY(m.vm.AddMemory("ram", layout.ram_base, m.memory_size));
  // PCIe (virt_pci.h) before the declared PCI devices; the kvmtool
  // layout has none (its GIC lies in the ECAM window).
  if (layout.name == "qemu") State(m).pci = STRATA_TRY(virt::InitVirtPci(m));
  for (DeviceInstance d : FixedDevices()) {
    if (d.name == "uart0" && !layout.uart_is_pl011) {
      // kvmtool's UART: the same instance (uart0.* keys), an ns16550a.
      d.model = "uart_16550";
      d.resources = {{"base", layout.uart_base}, {"irq", layout.uart_spi}};
    }
    STRATA_TRY(m.devices.Create(d));
  }
  const md::MachineOptions& opts = m.vm.machine_options();
  m.vm.log().info("virt ({} layout): GICv{}{}, {} SPIs, {} vCPUs, {} MiB RAM "
                  "at {:#x}",
                  layout.name, opts.gic_version,
                  opts.its.value_or(false) ? " with ITS" : "", opts.gic_spis,
                  m.cpus, m.memory_size >> 20, layout.ram_base);
  return Ok();
}

Status InitVcpu(PlatformContext&, Vcpu&) { return Ok(); }

Status LoadGuest(PlatformContext& m) {
  std::vector<uint8_t> image;
  const bool builtin = !m.kernel;
  if (!builtin) {
    image = STRATA_TRY(std::move(*m.kernel).TakeAll());
    m.kernel.reset();
  } else {
    const std::span<const uint8_t> demo = arm64::DemoGuestFlat();
    image.assign(demo.begin(), demo.end());
  }
  std::vector<uint8_t> initrd;
  if (m.initrd) {
    initrd = STRATA_TRY(std::move(*m.initrd).TakeAll());
    m.initrd.reset();
  }
  // Every vCPU exists now: the tree lists each with the MPIDR KVM gave it.
  std::vector<uint64_t> mpidrs;
  for (uint32_t i = 0; i < m.cpus; ++i) {
    Vcpu* v = m.vm.vcpu(i);
    if (v == nullptr) {
      return MakeError(Errc::kInternal, "virt: vCPU {} does not exist", i);
    }
    mpidrs.push_back(STRATA_TRY(v->GetSysReg(md::kSysRegMpidrEl1)));
  }
  const std::string bootargs =
      STRATA_TRY(m.config.GetString("kernel.cmdline", ""));
  const Layout& layout = State(m).layout;
  // The tree's size does not depend on where the initrd goes (the
  // properties are fixed-size cells), so size it with a placeholder.
  std::optional<arm64::VirtFdtSpec::Region> initrd_region;
  if (!initrd.empty()) {
    initrd_region = arm64::VirtFdtSpec::Region{layout.ram_base, initrd.size()};
  }
  const std::vector<uint8_t> sizing = STRATA_TRY(BuildTree(
      layout, m.vm.machine_options(), mpidrs, m.vm.max_vcpus(), m.memory_size,
      bootargs, initrd_region));
  const std::vector<uint8_t> kernel = STRATA_TRY_CTX(
      arm64::UnpackArmKernel(image),
      builtin ? "the demo guest" : "loading the kernel");
  image.clear();
  const arm64::BootLayout lay = STRATA_TRY_CTX(
      arm64::PlanArmBoot(kernel, initrd.size(), sizing.size(),
                         layout.ram_base, m.memory_size),
      "placing the kernel, initrd and device tree in RAM");
  if (!initrd.empty()) {
    initrd_region = arm64::VirtFdtSpec::Region{lay.initrd_addr, initrd.size()};
  }
  const std::vector<uint8_t> dtb = STRATA_TRY(BuildTree(
      layout, m.vm.machine_options(), std::move(mpidrs), m.vm.max_vcpus(),
      m.memory_size, bootargs, initrd_region));
  if (dtb.size() > sizing.size()) {
    return MakeError(Errc::kInternal, "virt: the device tree grew from {} to "
                     "{} bytes after placement", sizing.size(), dtb.size());
  }
  GuestMemory& mem = m.vm.memory();
  STRATA_TRY(mem.Write(lay.kernel_addr, kernel.data(), kernel.size()));
  if (!initrd.empty()) {
    STRATA_TRY(mem.Write(lay.initrd_addr, initrd.data(), initrd.size()));
  }
  STRATA_TRY(mem.Write(lay.dtb_addr, dtb.data(), dtb.size()));
  m.vm.log().info("virt: {} at {:#x} ({} bytes, entry {:#x}), initrd at {:#x} "
                  "({} bytes), DTB at {:#x} ({} bytes)",
                  lay.kind == arm64::BootLayout::Kind::kLinuxImage
                      ? "Linux Image"
                      : "raw image",
                  lay.kernel_addr, kernel.size(), lay.entry, lay.initrd_addr,
                  initrd.size(), lay.dtb_addr, dtb.size());
  State(m).boot = lay;
  return Ok();
}

Status StartVcpu(PlatformContext& m, Vcpu& vcpu) {
  // Secondaries stay powered off (KVM_ARM_VCPU_POWER_OFF) until CPU_ON.
  if (vcpu.id() != 0) return Ok();
  const arm64::BootLayout& boot = State(m).boot;
  // booting.rst "CPU mode": EL1h with DAIF masked is KVM's reset state;
  // set it anyway so a reset vCPU is in a known state.
  STRATA_TRY(vcpu.SetRegister(md::Reg::kPstate,
                              md::kPstateModeEl1h | md::kPstateDaifMask));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kPc, boot.entry));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kX0, boot.dtb_addr));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kX1, 0));
  STRATA_TRY(vcpu.SetRegister(md::Reg::kX2, 0));
  return vcpu.SetRegister(md::Reg::kX3, 0);
}

}  // namespace strata::platform
