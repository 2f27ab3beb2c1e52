#include "arch/arm64/platform/fdt.h"

#include <libfdt.h>

#include <algorithm>
#include <set>
#include <string_view>

namespace strata::arm64 {

namespace {

constexpr uint32_t kFirstPpi = 16;
constexpr uint32_t kFirstSpi = 32;
constexpr uint32_t kMaxIntids = 1020;  // GICv3 spec §2.2.1: 1020-1023 special
constexpr uint32_t kApbClockHz = 24000000;   // QEMU virt's "clk24mhz"
constexpr uint32_t kNs16550ClockHz = 1843200;  // kvmtool's 8250 UART
constexpr uint64_t kAff3Mask = 0xff00000000ull;
constexpr uint64_t kEcamBusSize = 1ull << 20;  // PCIe Base 4.0 §7.2.2
constexpr uint32_t kPciMaxBus = 255;
constexpr uint32_t kPciIntxPins = 4;
// The interrupt-map covers slots 0-3: the mask keeps device bits 12:11 of
// phys.hi and the pin (QEMU's create_pcie_irq_map).
constexpr uint32_t kPciIntxMapSlots = 4;
constexpr uint32_t kPciIntxMapDevMask = 0x1800;
constexpr uint32_t kPciIntxMapPinMask = 7;
constexpr uint32_t kPciDevShift = 11;  // phys.hi bits 15:11: device
constexpr uint32_t kPciRequesterIds = 0x10000;

using Region = VirtFdtSpec::Region;

bool Wraps(const Region& r) { return r.base + r.size < r.base; }

bool Overlap(const Region& a, const Region& b) {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

struct Named {
  std::string name;
  Region r;
};

Error Invalid(std::string msg) {
  return Error(Errc::kInvalidArgument, "virt device tree: " + msg);
}

Status CheckSpi(std::string_view field, uint32_t intid, uint32_t nr_irqs) {
  if (intid < kFirstSpi || intid >= nr_irqs) {
    return Invalid(fmt::format(
        "{} = {} is not an SPI INTID of this GIC (SPIs are {}-{} with "
        "gic_nr_irqs = {})",
        field, intid, kFirstSpi, nr_irqs - 1, nr_irqs));
  }
  return Ok();
}

Status CheckPpi(std::string_view field, uint32_t intid) {
  if (intid < kFirstPpi || intid >= kFirstSpi) {
    return Invalid(fmt::format("{} = {} is not a PPI INTID (16-31)", field,
                               intid));
  }
  return Ok();
}

Status Validate(const VirtFdtSpec& s) {
  if (s.ram_size == 0) return Invalid("ram_size is 0");
  if (s.mpidrs.empty()) return Invalid("mpidrs is empty: no vCPUs");
  if (s.cpu_compatible.empty()) return Invalid("cpu_compatible is empty");
  {
    std::set<uint64_t> seen;
    for (size_t i = 0; i < s.mpidrs.size(); ++i) {
      if (!seen.insert(s.mpidrs[i] & kMpidrHwidMask).second) {
        return Invalid(fmt::format(
            "mpidrs[{}] = {:#x} has the same affinity as an earlier vCPU", i,
            s.mpidrs[i]));
      }
    }
  }
  if (s.gic_nr_irqs <= kFirstSpi || s.gic_nr_irqs > kMaxIntids ||
      s.gic_nr_irqs % 32 != 0) {
    return Invalid(fmt::format(
        "gic_nr_irqs = {} must be a multiple of 32 in 64-{}", s.gic_nr_irqs,
        kMaxIntids - kMaxIntids % 32));
  }

  std::vector<Named> regions = {{"ram", {s.ram_base, s.ram_size}},
                                {"gicd", s.gicd}};
  if (s.gic_version == 3) {
    if (s.gicc) {
      return Invalid("gicc is set with gic_version 3 (a GICv2 CPU interface; "
                     "strata's GICv3 has none)");
    }
    if (s.gicr_regions.empty()) {
      return Invalid("gicr_regions is empty: GICv3 needs a redistributor "
                     "region");
    }
    uint64_t room = 0;
    for (size_t i = 0; i < s.gicr_regions.size(); ++i) {
      const Region& r = s.gicr_regions[i];
      if (r.size % kGicv3RedistSize != 0) {
        return Invalid(fmt::format(
            "gicr_regions[{}].size = {:#x} is not a multiple of {:#x} (one "
            "redistributor)",
            i, r.size, kGicv3RedistSize));
      }
      room += r.size / kGicv3RedistSize;
      regions.push_back({fmt::format("gicr_regions[{}]", i), r});
    }
    if (room < s.mpidrs.size()) {
      return Invalid(fmt::format(
          "gicr_regions hold {} redistributors ({:#x} bytes each) for {} "
          "vCPUs",
          room, kGicv3RedistSize, s.mpidrs.size()));
    }
    if (s.its) regions.push_back({"its", *s.its});
  } else if (s.gic_version == 2) {
    if (s.mpidrs.size() > kGicv2MaxCpus) {
      return Invalid(fmt::format(
          "{} vCPUs (mpidrs) with gic_version 2, which serves at most {}",
          s.mpidrs.size(), kGicv2MaxCpus));
    }
    if (!s.gicc) return Invalid("gicc is unset: GICv2 needs a CPU interface");
    if (!s.gicr_regions.empty()) {
      return Invalid("gicr_regions is set with gic_version 2");
    }
    if (s.its) return Invalid("its is set with gic_version 2 (a GICv3 ITS)");
    regions.push_back({"gicc", *s.gicc});
  } else {
    return Invalid(fmt::format("gic_version = {}: must be 2 or 3",
                               s.gic_version));
  }

  regions.push_back({"uart.mmio", s.uart.mmio});
  for (size_t i = 0; i < s.virtio_mmio.size(); ++i) {
    regions.push_back(
        {fmt::format("virtio_mmio[{}].mmio", i), s.virtio_mmio[i].mmio});
  }
  if (s.pcie) {
    const VirtFdtSpec::Pcie& p = *s.pcie;
    if (p.bus_first > p.bus_last || p.bus_last > kPciMaxBus) {
      return Invalid(fmt::format(
          "pcie bus range {}-{} is not an interval of buses 0-{}",
          p.bus_first, p.bus_last, kPciMaxBus));
    }
    const uint64_t buses = uint64_t{p.bus_last} - p.bus_first + 1;
    if (p.ecam.size != buses * kEcamBusSize) {
      return Invalid(fmt::format(
          "pcie.ecam.size = {:#x} must be {:#x} (1 MiB for each of buses "
          "{}-{})",
          p.ecam.size, buses * kEcamBusSize, p.bus_first, p.bus_last));
    }
    if (p.mmio.base + p.mmio.size > (uint64_t{1} << 32)) {
      return Invalid(fmt::format(
          "pcie.mmio [{:#x}, +{:#x}) is a 32-bit window and must end below "
          "4 GiB",
          p.mmio.base, p.mmio.size));
    }
    if (p.pio.size > (uint64_t{1} << 32)) {
      return Invalid(fmt::format("pcie.pio.size = {:#x} exceeds the 32-bit "
                                 "PCI I/O space",
                                 p.pio.size));
    }
    if (p.msi_to_its && !s.its) {
      return Invalid("pcie.msi_to_its is set but there is no its");
    }
    regions.push_back({"pcie.ecam", p.ecam});
    regions.push_back({"pcie.pio", p.pio});
    regions.push_back({"pcie.mmio", p.mmio});
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    const Named& a = regions[i];
    if (a.r.size == 0) return Invalid(a.name + " has size 0");
    if (Wraps(a.r)) {
      return Invalid(fmt::format("{} [{:#x}, +{:#x}) wraps around", a.name,
                                 a.r.base, a.r.size));
    }
    for (size_t j = 0; j < i; ++j) {
      const Named& b = regions[j];
      if (Overlap(a.r, b.r)) {
        return Invalid(fmt::format(
            "{} [{:#x}, {:#x}) overlaps {} [{:#x}, {:#x})", a.name, a.r.base,
            a.r.base + a.r.size, b.name, b.r.base, b.r.base + b.r.size));
      }
    }
  }

  for (size_t i = 0; i < s.timer_intids.size(); ++i) {
    STRATA_TRY(CheckPpi(fmt::format("timer_intids[{}]", i), s.timer_intids[i]));
  }
  if (s.pmu_intid) STRATA_TRY(CheckPpi("pmu_intid", *s.pmu_intid));

  std::vector<std::pair<std::string, uint32_t>> spis = {
      {"uart.spi_intid", s.uart.spi_intid}};
  for (size_t i = 0; i < s.virtio_mmio.size(); ++i) {
    spis.push_back({fmt::format("virtio_mmio[{}].spi_intid", i),
                    s.virtio_mmio[i].spi_intid});
  }
  if (s.pcie) {
    for (size_t i = 0; i < kPciIntxPins; ++i) {
      spis.push_back({fmt::format("pcie.intx_spi_intids[{}]", i),
                      s.pcie->intx_spi_intids[i]});
    }
  }
  for (size_t i = 0; i < spis.size(); ++i) {
    STRATA_TRY(CheckSpi(spis[i].first, spis[i].second, s.gic_nr_irqs));
    for (size_t j = 0; j < i; ++j) {
      if (spis[i].second == spis[j].second) {
        return Invalid(fmt::format("{} = {} is also {}", spis[i].first,
                                   spis[i].second, spis[j].first));
      }
    }
  }

  if (s.initrd) {
    const Region& r = *s.initrd;
    if (r.size == 0) return Invalid("initrd has size 0");
    if (Wraps(r) || r.base < s.ram_base ||
        r.base + r.size > s.ram_base + s.ram_size) {
      return Invalid(fmt::format(
          "initrd [{:#x}, +{:#x}) is not inside RAM [{:#x}, {:#x})", r.base,
          r.size, s.ram_base, s.ram_base + s.ram_size));
    }
  }
  if (s.bootargs.find('\0') != std::string::npos) {
    return Invalid("bootargs contains a NUL byte");
  }
  return Ok();
}

// The sequential writer: every call's libfdt error is kept (the first one)
// and reported once at the end, so the node code reads like the tree.
class Writer {
 public:
  explicit Writer(size_t capacity) : buf_(capacity, 0) {
    Check(fdt_create(buf_.data(), static_cast<int>(buf_.size())), "create");
    Check(fdt_finish_reservemap(buf_.data()), "reservemap");
  }

  void Begin(const std::string& name) {
    Check(fdt_begin_node(buf_.data(), name.c_str()), name);
  }
  void End() { Check(fdt_end_node(buf_.data()), "end node"); }
  void Empty(const char* name) {
    Check(fdt_property(buf_.data(), name, nullptr, 0), name);
  }
  void String(const char* name, const std::string& v) {
    Check(fdt_property_string(buf_.data(), name, v.c_str()), name);
  }
  // A string list ("a\0b\0"), e.g. compatible.
  void Strings(const char* name, std::initializer_list<std::string_view> v) {
    std::string all;
    for (std::string_view s : v) {
      all.append(s);
      all.push_back('\0');
    }
    Check(fdt_property(buf_.data(), name, all.data(),
                       static_cast<int>(all.size())),
          name);
  }
  void Cell(const char* name, uint32_t v) {
    Check(fdt_property_u32(buf_.data(), name, v), name);
  }
  void U64(const char* name, uint64_t v) {
    Check(fdt_property_u64(buf_.data(), name, v), name);
  }
  void Cells(const char* name, const std::vector<uint32_t>& v) {
    std::vector<fdt32_t> be(v.size());
    std::transform(v.begin(), v.end(), be.begin(),
                   [](uint32_t c) { return cpu_to_fdt32(c); });
    Check(fdt_property(buf_.data(), name, be.data(),
                       static_cast<int>(be.size() * sizeof(fdt32_t))),
          name);
  }
  // reg with #address-cells = #size-cells = 2.
  void Reg(const std::vector<Region>& regions) {
    std::vector<uint32_t> c;
    for (const Region& r : regions) {
      c.push_back(static_cast<uint32_t>(r.base >> 32));
      c.push_back(static_cast<uint32_t>(r.base));
      c.push_back(static_cast<uint32_t>(r.size >> 32));
      c.push_back(static_cast<uint32_t>(r.size));
    }
    Cells("reg", c);
  }

  Result<std::vector<uint8_t>> Finish() {
    Check(fdt_finish(buf_.data()), "finish");
    // The read-write layout, then packed: the blob carries no free space.
    if (err_ == 0) {
      Check(fdt_open_into(buf_.data(), buf_.data(),
                          static_cast<int>(buf_.size())),
            "open_into");
    }
    if (err_ == 0) Check(fdt_pack(buf_.data()), "pack");
    if (err_ == -FDT_ERR_NOSPACE) {
      return MakeError(Errc::kOutOfRange,
                       "virt device tree: the tree exceeds the {}-byte DTB "
                       "limit (booting.rst)",
                       buf_.size());
    }
    if (err_ != 0) {
      return MakeError(Errc::kInternal,
                       "virt device tree: libfdt failed at {}: {}", err_at_,
                       fdt_strerror(err_));
    }
    buf_.resize(fdt_totalsize(buf_.data()));
    return std::move(buf_);
  }

 private:
  void Check(int rc, std::string_view what) {
    if (rc < 0 && err_ == 0) {
      err_ = rc;
      err_at_ = std::string(what);
    }
  }

  std::vector<uint8_t> buf_;
  int err_ = 0;
  std::string err_at_;
};

std::string UnitName(std::string_view name, uint64_t base) {
  return fmt::format("{}@{:x}", name, base);
}

// The flags cell of a PPI: on GICv2 bits [15:8] say which CPUs it reaches
// (bindings/interrupt-controller/arm,gic.yaml); GICv3 has no such field.
uint32_t PpiFlags(const VirtFdtSpec& s, uint32_t trigger) {
  if (s.gic_version != 2) return trigger;
  const uint32_t mask = (1u << s.mpidrs.size()) - 1;
  return trigger | (mask << kIrqPpiCpuShift);
}

void WritePsci(Writer& w) {
  w.Begin("psci");
  w.Strings("compatible", {"arm,psci-1.0", "arm,psci-0.2", "arm,psci"});
  w.String("method", "hvc");
  w.Cell("cpu_suspend", kPsciCpuSuspend64);
  w.Cell("cpu_off", kPsciCpuOff);
  w.Cell("cpu_on", kPsciCpuOn64);
  w.Cell("migrate", kPsciMigrate64);
  w.End();
}

void WriteCpus(Writer& w, const VirtFdtSpec& s) {
  // bindings/arm/cpus.yaml: #address-cells 2 for MPIDR_EL1[39:32] (Aff3);
  // 1 suffices while every Aff3 is zero (QEMU's fdt_add_cpu_nodes).
  const bool aff3 = std::any_of(s.mpidrs.begin(), s.mpidrs.end(),
                                [](uint64_t m) { return m & kAff3Mask; });
  w.Begin("cpus");
  w.Cell("#address-cells", aff3 ? 2 : 1);
  w.Cell("#size-cells", 0);
  for (size_t i = 0; i < s.mpidrs.size(); ++i) {
    const uint64_t reg = s.mpidrs[i] & kMpidrHwidMask;
    w.Begin(fmt::format("cpu@{}", i));
    w.String("device_type", "cpu");
    w.String("compatible", s.cpu_compatible);
    if (aff3) {
      w.U64("reg", reg);
    } else {
      w.Cell("reg", static_cast<uint32_t>(reg));
    }
    w.String("enable-method", "psci");
    w.End();
  }
  w.End();
}

void WriteGic(Writer& w, const VirtFdtSpec& s) {
  w.Begin(UnitName("intc", s.gicd.base));
  w.Cell("phandle", kGicPhandle);
  w.Cell("#interrupt-cells", 3);
  w.Empty("interrupt-controller");
  // The ITS child's reg is in the parent's address space (QEMU writes
  // these on GICv2 as well).
  w.Cell("#address-cells", 2);
  w.Cell("#size-cells", 2);
  w.Empty("ranges");
  if (s.gic_version == 3) {
    w.String("compatible", "arm,gic-v3");
    w.Cell("#redistributor-regions",
           static_cast<uint32_t>(s.gicr_regions.size()));
    std::vector<Region> reg = {s.gicd};
    reg.insert(reg.end(), s.gicr_regions.begin(), s.gicr_regions.end());
    w.Reg(reg);
    if (s.its) {
      w.Begin(UnitName("its", s.its->base));
      w.String("compatible", "arm,gic-v3-its");
      w.Empty("msi-controller");
      w.Cell("#msi-cells", 1);
      w.Cell("phandle", kItsPhandle);
      w.Reg({*s.its});
      w.End();
    }
  } else {
    // "arm,cortex-a15-gic" is how QEMU and kvmtool name a GICv2.
    w.String("compatible", "arm,cortex-a15-gic");
    w.Reg({s.gicd, *s.gicc});
  }
  w.End();
}

void WriteTimerAndPmu(Writer& w, const VirtFdtSpec& s) {
  // Level-high, as QEMU's virt since 2.9 ("On real hardware these
  // interrupts are level-triggered", fdt_add_timer_nodes); KVM's arch timer
  // is level-triggered since Linux 4.4.
  const uint32_t flags = PpiFlags(s, kIrqLevelHigh);
  w.Begin("timer");
  w.Strings("compatible", {"arm,armv8-timer", "arm,armv7-timer"});
  w.Empty("always-on");
  std::vector<uint32_t> irqs;
  for (uint32_t intid : s.timer_intids) {
    irqs.insert(irqs.end(), {kIrqTypePpi, intid - kFirstPpi, flags});
  }
  w.Cells("interrupts", irqs);
  w.End();
  if (s.pmu_intid) {
    w.Begin("pmu");
    w.String("compatible", "arm,armv8-pmuv3");
    w.Cells("interrupts", {kIrqTypePpi, *s.pmu_intid - kFirstPpi, flags});
    w.End();
  }
}

void WriteUart(Writer& w, const VirtFdtSpec& s) {
  const auto& u = s.uart;
  const std::vector<uint32_t> irq = {kIrqTypeSpi, u.spi_intid - kFirstSpi,
                                     kIrqLevelHigh};
  if (u.kind == VirtFdtSpec::Uart::Kind::kPl011) {
    // The PL011 binding wants its clocks: QEMU's fixed 24 MHz clock for
    // both (bindings/serial/arm,pl011.yaml).
    w.Begin("apb-pclk");
    w.String("compatible", "fixed-clock");
    w.Cell("#clock-cells", 0);
    w.Cell("clock-frequency", kApbClockHz);
    w.String("clock-output-names", "clk24mhz");
    w.Cell("phandle", kApbClockPhandle);
    w.End();
    w.Begin(UnitName("pl011", u.mmio.base));
    w.Strings("compatible", {"arm,pl011", "arm,primecell"});
    w.Reg({u.mmio});
    w.Cells("interrupts", irq);
    w.Cells("clocks", {kApbClockPhandle, kApbClockPhandle});
    w.Strings("clock-names", {"uartclk", "apb_pclk"});
    w.End();
  } else {
    w.Begin(UnitName("uart", u.mmio.base));
    w.String("compatible", "ns16550a");
    w.Reg({u.mmio});
    w.Cells("interrupts", irq);
    w.Cell("clock-frequency", kNs16550ClockHz);
    w.Cell("reg-shift", 0);
    w.End();
  }
}

void WriteVirtio(Writer& w, const VirtFdtSpec& s) {
  for (const auto& v : s.virtio_mmio) {
    w.Begin(UnitName("virtio_mmio", v.mmio.base));
    w.String("compatible", "virtio,mmio");
    w.Reg({v.mmio});
    // Edge-rising, as QEMU's create_virtio_devices.
    w.Cells("interrupts",
            {kIrqTypeSpi, v.spi_intid - kFirstSpi, kIrqEdgeRising});
    w.Empty("dma-coherent");
    w.End();
  }
}

// Cells of a 64-bit value.
void Push64(std::vector<uint32_t>& c, uint64_t v) {
  c.push_back(static_cast<uint32_t>(v >> 32));
  c.push_back(static_cast<uint32_t>(v));
}

// In the order of QEMU's create_pcie, so the trees diff cleanly.
void WritePcie(Writer& w, const VirtFdtSpec& s) {
  const VirtFdtSpec::Pcie& p = *s.pcie;
  w.Begin(UnitName("pcie", p.mmio.base));
  w.String("compatible", "pci-host-ecam-generic");
  w.String("device_type", "pci");
  w.Cell("#address-cells", 3);
  w.Cell("#size-cells", 2);
  w.Cell("linux,pci-domain", 0);
  w.Cells("bus-range", {p.bus_first, p.bus_last});
  w.Empty("dma-coherent");
  if (p.msi_to_its) {
    // Requester id r maps to ITS device id r, for every r.
    w.Cells("msi-map", {0, kItsPhandle, 0, kPciRequesterIds});
  }
  w.Reg({p.ecam});
  // <phys.hi phys.mid phys.lo  cpu (2 cells)  size (2 cells)>
  std::vector<uint32_t> ranges = {kFdtPciRangeIo, 0, 0};
  Push64(ranges, p.pio.base);
  Push64(ranges, p.pio.size);
  ranges.push_back(kFdtPciRangeMmio32);
  Push64(ranges, p.mmio.base);
  Push64(ranges, p.mmio.base);
  Push64(ranges, p.mmio.size);
  w.Cells("ranges", ranges);
  w.Cell("#interrupt-cells", 1);
  // <phys.hi 0 0 pin  &gic  0 0 (the GIC's #address-cells)  SPI n flags>
  std::vector<uint32_t> map;
  for (uint32_t slot = 0; slot < kPciIntxMapSlots; ++slot) {
    for (uint32_t pin = 0; pin < kPciIntxPins; ++pin) {
      const uint32_t intid = p.intx_spi_intids[(slot + pin) % kPciIntxPins];
      map.insert(map.end(), {slot << kPciDevShift, 0, 0, pin + 1, kGicPhandle,
                             0, 0, kIrqTypeSpi, intid - kFirstSpi,
                             kIrqLevelHigh});
    }
  }
  w.Cells("interrupt-map", map);
  w.Cells("interrupt-map-mask", {kPciIntxMapDevMask, 0, 0, kPciIntxMapPinMask});
  w.End();
}

void WriteChosen(Writer& w, const VirtFdtSpec& s) {
  w.Begin("aliases");
  w.String("serial0", UartNodePath(s));
  w.End();
  w.Begin("chosen");
  w.String("stdout-path", UartNodePath(s));
  if (!s.bootargs.empty()) w.String("bootargs", s.bootargs);
  if (s.initrd) {
    // Sized by the root's #address-cells (2), as QEMU's load_dtb.
    w.U64("linux,initrd-start", s.initrd->base);
    w.U64("linux,initrd-end", s.initrd->base + s.initrd->size);
  }
  w.End();
}

}  // namespace

uint64_t DtbSizeLimit() { return kDtbMaxSize; }

std::string GicNodePath(const VirtFdtSpec& spec) {
  return "/" + UnitName("intc", spec.gicd.base);
}

std::string UartNodePath(const VirtFdtSpec& spec) {
  const bool pl011 = spec.uart.kind == VirtFdtSpec::Uart::Kind::kPl011;
  return "/" + UnitName(pl011 ? "pl011" : "uart", spec.uart.mmio.base);
}

std::string PcieNodePath(const VirtFdtSpec& spec) {
  return "/" + UnitName("pcie", spec.pcie->mmio.base);
}

Result<std::vector<uint8_t>> BuildVirtFdt(const VirtFdtSpec& spec) {
  STRATA_TRY(Validate(spec));
  Writer w(DtbSizeLimit());
  w.Begin("");
  w.String("compatible", "linux,dummy-virt");
  w.String("model", "linux,dummy-virt");
  w.Cell("#address-cells", 2);
  w.Cell("#size-cells", 2);
  w.Cell("interrupt-parent", kGicPhandle);
  WritePsci(w);
  WriteCpus(w, spec);
  w.Begin(UnitName("memory", spec.ram_base));
  w.String("device_type", "memory");
  w.Reg({{spec.ram_base, spec.ram_size}});
  w.End();
  WriteGic(w, spec);
  WriteTimerAndPmu(w, spec);
  WriteUart(w, spec);
  WriteVirtio(w, spec);
  if (spec.pcie) WritePcie(w, spec);
  WriteChosen(w, spec);
  w.End();
  return w.Finish();
}

}  // namespace strata::arm64
