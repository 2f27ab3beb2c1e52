#include "arch/arm64/platform/fdt.h"

#include <gtest/gtest.h>
#include <libfdt.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace strata::arm64 {
namespace {

using Spec = VirtFdtSpec;

// KVM's default MPIDR_EL1 for vCPU i (arch/arm64/kvm/sys_regs.c
// reset_mpidr: Aff0 = i[3:0], Aff1 = i[11:4], Aff2 = i[19:12]) plus RES1
// bit 31.
uint64_t KvmMpidr(uint64_t i) {
  return (1ull << 31) | (i & 0xf) | (((i >> 4) & 0xff) << 8) |
         (((i >> 12) & 0xff) << 16);
}

// QEMU virt's memory map (hw/arm/virt.c base_memmap, a15irqmap).
Spec QemuLikeSpec(size_t cpus, uint32_t gic_version = 3, bool its = true) {
  Spec s;
  s.ram_size = 512ull << 20;
  for (size_t i = 0; i < cpus; ++i) s.mpidrs.push_back(KvmMpidr(i));
  s.gic_version = gic_version;
  if (gic_version == 3) {
    s.gicr_regions = {{0x080a0000, 0x00f60000}};  // 123 redistributors
    if (its) s.its = Spec::Region{0x08080000, 0x20000};
  } else {
    s.gicc = Spec::Region{0x08010000, 0x10000};
  }
  for (uint64_t i = 0; i < 4; ++i) {
    s.virtio_mmio.push_back({{0x0a000000 + i * 0x200, 0x200},
                             static_cast<uint32_t>(48 + i)});
  }
  return s;
}

// QEMU virt's PCIe (create_pcie): ECAM buses 0-15, SPIs 3-6.
Spec WithPcie(Spec s) {
  s.pcie = Spec::Pcie{};
  s.pcie->msi_to_its = s.its.has_value();
  return s;
}

class Dtb {
 public:
  explicit Dtb(std::vector<uint8_t> b) : b_(std::move(b)) {}
  const void* fdt() const { return b_.data(); }
  const std::vector<uint8_t>& bytes() const { return b_; }

  int Node(const std::string& path) const {
    return fdt_path_offset(fdt(), path.c_str());
  }
  bool HasNode(const std::string& path) const { return Node(path) >= 0; }
  bool Has(const std::string& path, const char* name) const {
    int len = 0;
    return Node(path) >= 0 &&
           fdt_getprop(fdt(), Node(path), name, &len) != nullptr;
  }
  std::vector<uint8_t> Bytes(const std::string& path, const char* name) const {
    int len = 0;
    const int node = Node(path);
    EXPECT_GE(node, 0) << path;
    if (node < 0) return {};
    auto* p = static_cast<const uint8_t*>(fdt_getprop(fdt(), node, name, &len));
    EXPECT_NE(p, nullptr) << path << " " << name;
    if (p == nullptr) return {};
    return std::vector<uint8_t>(p, p + len);
  }
  std::vector<uint32_t> Cells(const std::string& path, const char* name) const {
    std::vector<uint8_t> b = Bytes(path, name);
    EXPECT_EQ(b.size() % 4, 0u) << path << " " << name;
    std::vector<uint32_t> c(b.size() / 4);
    for (size_t i = 0; i < c.size(); ++i) {
      c[i] = (uint32_t{b[4 * i]} << 24) | (uint32_t{b[4 * i + 1]} << 16) |
             (uint32_t{b[4 * i + 2]} << 8) | b[4 * i + 3];
    }
    return c;
  }
  uint32_t Cell(const std::string& path, const char* name) const {
    auto c = Cells(path, name);
    EXPECT_EQ(c.size(), 1u) << path << " " << name;
    return c.empty() ? 0 : c[0];
  }
  uint64_t U64(const std::string& path, const char* name) const {
    auto c = Cells(path, name);
    EXPECT_EQ(c.size(), 2u) << path << " " << name;
    return c.size() < 2 ? 0 : (uint64_t{c[0]} << 32) | c[1];
  }
  // A string-list property, e.g. compatible.
  std::vector<std::string> Strings(const std::string& path,
                                   const char* name) const {
    std::vector<uint8_t> b = Bytes(path, name);
    std::vector<std::string> out;
    EXPECT_TRUE(!b.empty() && b.back() == 0) << path << " " << name;
    std::string cur;
    for (uint8_t c : b) {
      if (c == 0) {
        out.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(static_cast<char>(c));
      }
    }
    return out;
  }
  std::string String(const std::string& path, const char* name) const {
    auto s = Strings(path, name);
    EXPECT_EQ(s.size(), 1u) << path << " " << name;
    return s.empty() ? "" : s[0];
  }
  int CountChildren(const std::string& path, const std::string& prefix) const {
    int n = 0, child;
    fdt_for_each_subnode(child, fdt(), Node(path)) {
      std::string name = fdt_get_name(fdt(), child, nullptr);
      if (name.rfind(prefix, 0) == 0) ++n;
    }
    return n;
  }

 private:
  std::vector<uint8_t> b_;
};

Dtb Build(const Spec& s) {
  auto r = BuildVirtFdt(s);
  EXPECT_TRUE(r) << r.error().message();
  if (!r) return Dtb({});
  EXPECT_EQ(fdt_check_header(r->data()), 0);
  EXPECT_EQ(fdt_totalsize(r->data()), r->size());
  EXPECT_LE(r->size(), DtbSizeLimit());
  return Dtb(std::move(*r));
}

using V = std::vector<uint32_t>;
using S = std::vector<std::string>;

TEST(VirtFdtTest, SizeLimitIsBootingRstsTwoMiB) {
  EXPECT_EQ(DtbSizeLimit(), 2u * 1024 * 1024);
}

TEST(VirtFdtTest, RootPsciAndMemory) {
  Dtb d = Build(QemuLikeSpec(1));
  EXPECT_EQ(d.String("/", "compatible"), "linux,dummy-virt");
  EXPECT_EQ(d.String("/", "model"), "linux,dummy-virt");
  EXPECT_EQ(d.Cell("/", "#address-cells"), 2u);
  EXPECT_EQ(d.Cell("/", "#size-cells"), 2u);
  EXPECT_EQ(d.Cell("/", "interrupt-parent"), kGicPhandle);

  EXPECT_EQ(d.Strings("/psci", "compatible"),
            (S{"arm,psci-1.0", "arm,psci-0.2", "arm,psci"}));
  EXPECT_EQ(d.String("/psci", "method"), "hvc");
  EXPECT_EQ(d.Cell("/psci", "cpu_suspend"), 0xc4000001u);
  EXPECT_EQ(d.Cell("/psci", "cpu_off"), 0x84000002u);
  EXPECT_EQ(d.Cell("/psci", "cpu_on"), 0xc4000003u);
  EXPECT_EQ(d.Cell("/psci", "migrate"), 0xc4000005u);

  EXPECT_EQ(d.String("/memory@40000000", "device_type"), "memory");
  EXPECT_EQ(d.Cells("/memory@40000000", "reg"), (V{0, 0x40000000, 0, 0x20000000}));
}

class VirtFdtCpusTest : public ::testing::TestWithParam<size_t> {};

TEST_P(VirtFdtCpusTest, OneNodePerVcpuWithItsAffinity) {
  const size_t n = GetParam();
  Spec s = QemuLikeSpec(n);
  s.cpu_compatible = "arm,cortex-a57";
  Dtb d = Build(s);
  EXPECT_EQ(d.Cell("/cpus", "#address-cells"), 1u);
  EXPECT_EQ(d.Cell("/cpus", "#size-cells"), 0u);
  EXPECT_EQ(d.CountChildren("/cpus", "cpu@"), static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) {
    const std::string cpu = "/cpus/cpu@" + std::to_string(i);
    ASSERT_TRUE(d.HasNode(cpu)) << cpu;
    EXPECT_EQ(d.String(cpu, "device_type"), "cpu");
    EXPECT_EQ(d.String(cpu, "compatible"), "arm,cortex-a57");
    EXPECT_EQ(d.String(cpu, "enable-method"), "psci");
    // Bit 31 (RES1) is not part of the affinity.
    EXPECT_EQ(d.Cell(cpu, "reg"), KvmMpidr(i) & 0xffffff) << cpu;
  }
  // 123 vCPUs fill QEMU's 123-redistributor region exactly.
  EXPECT_EQ(d.Cells(GicNodePath(s), "reg"),
            (V{0, 0x08000000, 0, 0x10000, 0, 0x080a0000, 0, 0xf60000}));
}

INSTANTIATE_TEST_SUITE_P(Counts, VirtFdtCpusTest, ::testing::Values(1, 8, 123));

TEST(VirtFdtTest, Aff3MakesCpuRegsTwoCells) {
  Spec s = QemuLikeSpec(2);
  s.mpidrs = {0x0, 0x100000000ull | (1ull << 31)};
  Dtb d = Build(s);
  EXPECT_EQ(d.Cell("/cpus", "#address-cells"), 2u);
  EXPECT_EQ(d.U64("/cpus/cpu@0", "reg"), 0u);
  EXPECT_EQ(d.U64("/cpus/cpu@1", "reg"), 0x100000000ull);
}

TEST(VirtFdtTest, Gicv3WithIts) {
  Spec s = QemuLikeSpec(4);
  Dtb d = Build(s);
  const std::string gic = "/intc@8000000";
  ASSERT_EQ(GicNodePath(s), gic);
  EXPECT_EQ(d.String(gic, "compatible"), "arm,gic-v3");
  EXPECT_EQ(d.Cell(gic, "#interrupt-cells"), 3u);
  EXPECT_TRUE(d.Has(gic, "interrupt-controller"));
  EXPECT_EQ(d.Cell(gic, "#redistributor-regions"), 1u);
  EXPECT_EQ(d.Cell(gic, "phandle"), kGicPhandle);
  EXPECT_EQ(d.Cell(gic, "#address-cells"), 2u);
  EXPECT_EQ(d.Cell(gic, "#size-cells"), 2u);
  EXPECT_TRUE(d.Bytes(gic, "ranges").empty());
  const std::string its = gic + "/its@8080000";
  EXPECT_EQ(d.String(its, "compatible"), "arm,gic-v3-its");
  EXPECT_TRUE(d.Has(its, "msi-controller"));
  EXPECT_EQ(d.Cell(its, "#msi-cells"), 1u);
  EXPECT_EQ(d.Cell(its, "phandle"), kItsPhandle);
  EXPECT_EQ(d.Cells(its, "reg"), (V{0, 0x08080000, 0, 0x20000}));
  // GICv3 PPIs carry no CPU mask.
  EXPECT_EQ(d.Cells("/timer", "interrupts"),
            (V{1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4}));
  EXPECT_EQ(d.Cells("/pmu", "interrupts"), (V{1, 7, 4}));
}

TEST(VirtFdtTest, Gicv3WithoutItsAndTwoRedistributorRegions) {
  Spec s = QemuLikeSpec(3, 3, /*its=*/false);
  s.gicr_regions = {{0x080a0000, 0x40000}, {0x4000000000ull, 0x20000}};
  Dtb d = Build(s);
  EXPECT_EQ(d.Cell("/intc@8000000", "#redistributor-regions"), 2u);
  EXPECT_EQ(d.Cells("/intc@8000000", "reg"),
            (V{0, 0x08000000, 0, 0x10000, 0, 0x080a0000, 0, 0x40000, 0x40, 0,
               0, 0x20000}));
  EXPECT_EQ(d.CountChildren("/intc@8000000", ""), 0);
}

TEST(VirtFdtTest, Gicv2) {
  Spec s = QemuLikeSpec(4, 2);
  Dtb d = Build(s);
  const std::string gic = "/intc@8000000";
  EXPECT_EQ(d.String(gic, "compatible"), "arm,cortex-a15-gic");
  EXPECT_EQ(d.Cells(gic, "reg"),
            (V{0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000}));
  EXPECT_FALSE(d.Has(gic, "#redistributor-regions"));
  EXPECT_EQ(d.CountChildren(gic, ""), 0);
  // GICv2 PPIs: CPU mask 0xf (4 vCPUs) in bits [15:8], level-high.
  EXPECT_EQ(d.Cells("/timer", "interrupts"),
            (V{1, 13, 0xf04, 1, 14, 0xf04, 1, 11, 0xf04, 1, 10, 0xf04}));
  EXPECT_EQ(d.Cells("/pmu", "interrupts"), (V{1, 7, 0xf04}));
  // Eight vCPUs, GICv2's limit: mask 0xff.
  Dtb d8 = Build(QemuLikeSpec(8, 2));
  EXPECT_EQ(d8.Cells("/pmu", "interrupts"), (V{1, 7, 0xff04}));
}

TEST(VirtFdtTest, TimerAndOptionalPmu) {
  Spec s = QemuLikeSpec(1);
  s.pmu_intid.reset();
  Dtb d = Build(s);
  EXPECT_EQ(d.Strings("/timer", "compatible"),
            (S{"arm,armv8-timer", "arm,armv7-timer"}));
  EXPECT_TRUE(d.Has("/timer", "always-on"));
  EXPECT_FALSE(d.HasNode("/pmu"));
  s.pmu_intid = 23;
  EXPECT_EQ(Build(s).String("/pmu", "compatible"), "arm,armv8-pmuv3");
}

TEST(VirtFdtTest, Pl011WithItsClock) {
  Spec s = QemuLikeSpec(1);
  Dtb d = Build(s);
  const std::string uart = "/pl011@9000000";
  ASSERT_EQ(UartNodePath(s), uart);
  EXPECT_EQ(d.Strings(uart, "compatible"), (S{"arm,pl011", "arm,primecell"}));
  EXPECT_EQ(d.Cells(uart, "reg"), (V{0, 0x09000000, 0, 0x1000}));
  EXPECT_EQ(d.Cells(uart, "interrupts"), (V{0, 1, 4}));
  EXPECT_EQ(d.Cells(uart, "clocks"), (V{kApbClockPhandle, kApbClockPhandle}));
  EXPECT_EQ(d.Strings(uart, "clock-names"), (S{"uartclk", "apb_pclk"}));
  EXPECT_EQ(d.String("/apb-pclk", "compatible"), "fixed-clock");
  EXPECT_EQ(d.Cell("/apb-pclk", "#clock-cells"), 0u);
  EXPECT_EQ(d.Cell("/apb-pclk", "clock-frequency"), 24000000u);
  EXPECT_EQ(d.Cell("/apb-pclk", "phandle"), kApbClockPhandle);
  EXPECT_EQ(d.String("/chosen", "stdout-path"), uart);
  EXPECT_EQ(d.String("/aliases", "serial0"), uart);
  EXPECT_FALSE(d.HasNode("/uart@9000000"));
}

TEST(VirtFdtTest, Ns16550a) {
  Spec s = QemuLikeSpec(1);
  s.uart.kind = Spec::Uart::Kind::kNs16550a;
  s.uart.mmio = {0x01000000, 0x1000};
  s.uart.spi_intid = 32;
  Dtb d = Build(s);
  const std::string uart = "/uart@1000000";
  ASSERT_EQ(UartNodePath(s), uart);
  EXPECT_EQ(d.String(uart, "compatible"), "ns16550a");
  EXPECT_EQ(d.Cells(uart, "reg"), (V{0, 0x01000000, 0, 0x1000}));
  EXPECT_EQ(d.Cells(uart, "interrupts"), (V{0, 0, 4}));
  EXPECT_EQ(d.Cell(uart, "clock-frequency"), 1843200u);
  EXPECT_EQ(d.Cell(uart, "reg-shift"), 0u);
  EXPECT_EQ(d.String("/chosen", "stdout-path"), uart);
  EXPECT_FALSE(d.HasNode("/pl011@9000000"));
  EXPECT_FALSE(d.HasNode("/apb-pclk"));
}

TEST(VirtFdtTest, VirtioMmioTransports) {
  Dtb d = Build(QemuLikeSpec(1));
  EXPECT_EQ(d.CountChildren("/", "virtio_mmio@"), 4);
  const std::string v = "/virtio_mmio@a000600";
  EXPECT_EQ(d.String(v, "compatible"), "virtio,mmio");
  EXPECT_EQ(d.Cells(v, "reg"), (V{0, 0x0a000600, 0, 0x200}));
  EXPECT_EQ(d.Cells(v, "interrupts"), (V{0, 51 - 32, 1}));
  EXPECT_TRUE(d.Has(v, "dma-coherent"));
}

TEST(VirtFdtTest, ChosenWithoutBootargsOrInitrd) {
  Dtb d = Build(QemuLikeSpec(1));
  EXPECT_TRUE(d.HasNode("/chosen"));
  EXPECT_FALSE(d.Has("/chosen", "bootargs"));
  EXPECT_FALSE(d.Has("/chosen", "linux,initrd-start"));
  EXPECT_FALSE(d.Has("/chosen", "linux,initrd-end"));
}

TEST(VirtFdtTest, ChosenWithBootargsAndInitrd) {
  Spec s = QemuLikeSpec(1);
  s.bootargs = "console=ttyAMA0 earlycon panic=-1";
  s.initrd = Spec::Region{0x48000000, 0x123456};
  Dtb d = Build(s);
  EXPECT_EQ(d.String("/chosen", "bootargs"), s.bootargs);
  EXPECT_EQ(d.U64("/chosen", "linux,initrd-start"), 0x48000000u);
  EXPECT_EQ(d.U64("/chosen", "linux,initrd-end"), 0x48123456u);
}

// --- Specs the guest could not use ---

void ExpectInvalid(const Spec& s, const std::string& field) {
  auto r = BuildVirtFdt(s);
  ASSERT_FALSE(r) << "expected an error naming " << field;
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error().message();
  EXPECT_NE(r.error().message().find(field), std::string::npos)
      << r.error().message();
}

TEST(VirtFdtTest, NoPcieUnlessAsked) {
  Dtb d = Build(QemuLikeSpec(1));
  EXPECT_EQ(d.CountChildren("/", "pcie"), 0);
}

TEST(VirtFdtTest, PcieAsQemuVirt) {
  const Spec s = WithPcie(QemuLikeSpec(2));
  EXPECT_EQ(PcieNodePath(s), "/pcie@10000000");
  Dtb d = Build(s);
  const std::string n = "/pcie@10000000";
  EXPECT_EQ(d.String(n, "compatible"), "pci-host-ecam-generic");
  EXPECT_EQ(d.String(n, "device_type"), "pci");
  EXPECT_EQ(d.Cell(n, "#address-cells"), 3u);
  EXPECT_EQ(d.Cell(n, "#size-cells"), 2u);
  EXPECT_EQ(d.Cell(n, "#interrupt-cells"), 1u);
  EXPECT_EQ(d.Cell(n, "linux,pci-domain"), 0u);
  EXPECT_EQ(d.Cells(n, "bus-range"), (V{0, 15}));
  EXPECT_TRUE(d.Has(n, "dma-coherent"));
  EXPECT_EQ(d.Cells(n, "reg"), (V{0, 0x3f000000, 0, 0x01000000}));
  EXPECT_EQ(d.Cells(n, "ranges"),
            (V{0x01000000, 0, 0, 0, 0x3eff0000, 0, 0x10000,  //
               0x02000000, 0, 0x10000000, 0, 0x10000000, 0, 0x2eff0000}));
  EXPECT_EQ(d.Cells(n, "msi-map"), (V{0, kItsPhandle, 0, 0x10000}));
  EXPECT_EQ(d.Cells(n, "interrupt-map-mask"), (V{0x1800, 0, 0, 7}));
  const V map = d.Cells(n, "interrupt-map");
  ASSERT_EQ(map.size(), 4u * 4u * 10u);
  // Entry (slot, pin 1-4): the swizzle onto SPIs 3-6, level-high.
  auto entry = [&](uint32_t slot, uint32_t pin) {
    const size_t at = (slot * 4 + (pin - 1)) * 10;
    return V(map.begin() + at, map.begin() + at + 10);
  };
  EXPECT_EQ(entry(0, 1), (V{0, 0, 0, 1, kGicPhandle, 0, 0, 0, 3, 4}));
  EXPECT_EQ(entry(1, 1), (V{0x800, 0, 0, 1, kGicPhandle, 0, 0, 0, 4, 4}));
  EXPECT_EQ(entry(2, 3), (V{0x1000, 0, 0, 3, kGicPhandle, 0, 0, 0, 3, 4}));
  EXPECT_EQ(entry(3, 4), (V{0x1800, 0, 0, 4, kGicPhandle, 0, 0, 0, 5, 4}));
}

TEST(VirtFdtTest, PcieWithoutItsHasNoMsiMap) {
  Dtb d = Build(WithPcie(QemuLikeSpec(1, 3, false)));
  EXPECT_TRUE(d.HasNode("/pcie@10000000"));
  EXPECT_FALSE(d.Has("/pcie@10000000", "msi-map"));
  Dtb v2 = Build(WithPcie(QemuLikeSpec(1, 2)));
  EXPECT_FALSE(v2.Has("/pcie@10000000", "msi-map"));
}

TEST(VirtFdtTest, PcieOfOtherShapes) {
  Spec s = WithPcie(QemuLikeSpec(1));
  s.pcie->bus_first = 2;
  s.pcie->bus_last = 3;
  s.pcie->ecam = {0x3f000000, 0x200000};
  s.pcie->intx_spi_intids = {100, 101, 102, 103};
  Dtb d = Build(s);
  EXPECT_EQ(d.Cells("/pcie@10000000", "bus-range"), (V{2, 3}));
  const V map = d.Cells("/pcie@10000000", "interrupt-map");
  ASSERT_EQ(map.size(), 160u);
  EXPECT_EQ(map[8], 100u - 32u);       // slot 0 INTA
  EXPECT_EQ(map[18], 101u - 32u);      // slot 0 INTB
}

TEST(VirtFdtTest, RefusesBadSpecs) {
  Spec s = QemuLikeSpec(1);
  s.mpidrs.clear();
  ExpectInvalid(s, "mpidrs");

  s = QemuLikeSpec(2);
  s.mpidrs[1] = s.mpidrs[0] | (1ull << 30);  // bit 30 (U) is not affinity
  ExpectInvalid(s, "mpidrs[1]");

  s = QemuLikeSpec(1);
  s.ram_size = 0;
  ExpectInvalid(s, "ram_size");

  s = QemuLikeSpec(1);
  s.gic_version = 4;
  ExpectInvalid(s, "gic_version");

  ExpectInvalid(QemuLikeSpec(9, 2), "gic_version 2");

  s = QemuLikeSpec(1, 2);
  s.gicc.reset();
  ExpectInvalid(s, "gicc");

  s = QemuLikeSpec(1, 2);
  s.its = Spec::Region{0x08080000, 0x20000};
  ExpectInvalid(s, "its");

  s = QemuLikeSpec(1);
  s.gicc = Spec::Region{0x08010000, 0x10000};
  ExpectInvalid(s, "gicc");

  s = QemuLikeSpec(1);
  s.gicr_regions.clear();
  ExpectInvalid(s, "gicr_regions");

  ExpectInvalid(QemuLikeSpec(124), "gicr_regions hold 123 redistributors");

  s = QemuLikeSpec(1);
  s.gicr_regions[0].size = 0x30000;
  ExpectInvalid(s, "gicr_regions[0].size");

  s = QemuLikeSpec(1);
  s.its = Spec::Region{0x080b0000, 0x20000};  // inside the redistributors
  ExpectInvalid(s, "its [0x80b0000, 0x80d0000) overlaps gicr_regions[0]");

  s = QemuLikeSpec(1);
  s.uart.mmio = {0x40001000, 0x1000};  // in RAM
  ExpectInvalid(s, "uart.mmio");

  s = QemuLikeSpec(1);
  s.virtio_mmio[2].mmio.base = 0x0a000100;
  ExpectInvalid(s, "virtio_mmio[2].mmio");

  s = QemuLikeSpec(1);
  s.virtio_mmio[0].mmio.size = 0;
  ExpectInvalid(s, "virtio_mmio[0].mmio has size 0");

  s = QemuLikeSpec(1);
  s.ram_base = 0xffffffffffff0000ull;
  ExpectInvalid(s, "ram");

  s = QemuLikeSpec(1);
  s.uart.spi_intid = 31;  // a PPI
  ExpectInvalid(s, "uart.spi_intid");

  s = QemuLikeSpec(1);
  s.virtio_mmio[3].spi_intid = 288;  // past gic_nr_irqs
  ExpectInvalid(s, "virtio_mmio[3].spi_intid");

  s = QemuLikeSpec(1);
  s.virtio_mmio[1].spi_intid = 33;
  ExpectInvalid(s, "virtio_mmio[1].spi_intid = 33 is also uart.spi_intid");

  s = QemuLikeSpec(1);
  s.gic_nr_irqs = 1024;
  ExpectInvalid(s, "gic_nr_irqs");

  s = QemuLikeSpec(1);
  s.timer_intids[2] = 32;
  ExpectInvalid(s, "timer_intids[2]");

  s = QemuLikeSpec(1);
  s.pmu_intid = 7;  // a PPI number, not an INTID
  ExpectInvalid(s, "pmu_intid");

  s = QemuLikeSpec(1);
  s.initrd = Spec::Region{0x5fff0000, 0x20000};  // runs past RAM's end
  ExpectInvalid(s, "initrd");

  s = QemuLikeSpec(1);
  s.cpu_compatible.clear();
  ExpectInvalid(s, "cpu_compatible");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->bus_last = 16;
  ExpectInvalid(s, "pcie.ecam.size = 0x1000000 must be 0x1100000");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->bus_first = 3;
  s.pcie->bus_last = 2;
  ExpectInvalid(s, "pcie bus range 3-2");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->bus_last = 256;
  ExpectInvalid(s, "pcie bus range 0-256");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->mmio = {0xf0000000, 0x20000000};
  ExpectInvalid(s, "pcie.mmio");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->pio = {0x3f800000, 0x10000};  // inside the ECAM region
  ExpectInvalid(s, "pcie.pio [0x3f800000, 0x3f810000) overlaps pcie.ecam");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->mmio = {0x08000000, 0x1000000};  // over the GIC
  ExpectInvalid(s, "pcie.mmio [0x8000000, 0x9000000) overlaps gicd");

  s = WithPcie(QemuLikeSpec(1, 3, false));
  s.pcie->msi_to_its = true;
  ExpectInvalid(s, "pcie.msi_to_its");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->intx_spi_intids[2] = 33;
  ExpectInvalid(s, "pcie.intx_spi_intids[2] = 33 is also uart.spi_intid");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->intx_spi_intids[3] = 35;
  ExpectInvalid(s,
                "pcie.intx_spi_intids[3] = 35 is also pcie.intx_spi_intids[0]");

  s = WithPcie(QemuLikeSpec(1));
  s.pcie->intx_spi_intids[0] = 3;  // an SPI number, not an INTID
  ExpectInvalid(s, "pcie.intx_spi_intids[0]");
}

TEST(VirtFdtTest, RefusesATreeOverTheSizeLimit) {
  Spec s = QemuLikeSpec(1);
  s.bootargs.assign(DtbSizeLimit(), 'x');
  auto r = BuildVirtFdt(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("DTB limit"), std::string::npos)
      << r.error().message();
}

// --- Peer tools: Debian's device-tree-compiler ---

struct ShellResult {
  int status = -1;
  std::string out, err;
};

ShellResult Shell(const std::string& cmd) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string err_path = std::string(tmp ? tmp : "/tmp") + "/stderr.txt";
  ShellResult r;
  FILE* p = popen((cmd + " 2>" + err_path).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  r.err = ss.str();
  return r;
}

class VirtFdtPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"dtc", "fdtget"}) {
      if (Shell(std::string("command -v ") + tool).status != 0) {
        FAIL() << "\n*** " << tool << " is not installed: the device tree "
               << "peer check needs Debian's device-tree-compiler "
               << "(scripts/setup.sh installs it) ***\n";
      }
    }
  }
  std::string Write(const Dtb& d, const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string path = std::string(tmp ? tmp : "/tmp") + "/" + name;
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(d.bytes().data()),
            static_cast<std::streamsize>(d.bytes().size()));
    return path;
  }
  // dtc must decompile the blob with every default check passing.
  void ExpectDtcClean(const Dtb& d, const std::string& name) {
    const std::string path = Write(d, name);
    ShellResult r = Shell("dtc -I dtb -O dts " + path);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "") << name;
    EXPECT_NE(r.out.find("compatible = \"linux,dummy-virt\";"),
              std::string::npos)
        << r.out;
  }
  std::string FdtGet(const std::string& dtb, const std::string& type,
                     const std::string& node, const std::string& prop) {
    ShellResult r =
        Shell("fdtget -t " + type + " " + dtb + " " + node + " " + prop);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
};

TEST_F(VirtFdtPeerTest, DtcAcceptsEveryShapeWithoutWarnings) {
  Spec v3 = QemuLikeSpec(123);
  v3.bootargs = "console=ttyAMA0";
  v3.initrd = Spec::Region{0x48000000, 0x100000};
  ExpectDtcClean(Build(v3), "v3_its_123.dtb");
  ExpectDtcClean(Build(QemuLikeSpec(1, 3, false)), "v3_1.dtb");
  Spec v2 = QemuLikeSpec(8, 2);
  v2.uart.kind = Spec::Uart::Kind::kNs16550a;
  v2.pmu_intid.reset();
  v2.virtio_mmio.clear();
  ExpectDtcClean(Build(v2), "v2_8_ns16550a.dtb");
  Spec aff3 = QemuLikeSpec(2);
  aff3.mpidrs = {0, 0x100000000ull};
  ExpectDtcClean(Build(aff3), "aff3.dtb");
  ExpectDtcClean(Build(WithPcie(QemuLikeSpec(4))), "v3_its_pcie.dtb");
  ExpectDtcClean(Build(WithPcie(QemuLikeSpec(1, 3, false))), "v3_pcie.dtb");
  ExpectDtcClean(Build(WithPcie(QemuLikeSpec(2, 2))), "v2_pcie.dtb");
}

TEST_F(VirtFdtPeerTest, FdtgetReadsThePcieNode) {
  const std::string path = Write(Build(WithPcie(QemuLikeSpec(1))), "pcie.dtb");
  const std::string n = "/pcie@10000000";
  EXPECT_EQ(FdtGet(path, "s", n, "compatible"), "pci-host-ecam-generic");
  EXPECT_EQ(FdtGet(path, "x", n, "reg"), "0 3f000000 0 1000000");
  EXPECT_EQ(FdtGet(path, "x", n, "ranges"),
            "1000000 0 0 0 3eff0000 0 10000 "
            "2000000 0 10000000 0 10000000 0 2eff0000");
  EXPECT_EQ(FdtGet(path, "u", n, "bus-range"), "0 15");
  EXPECT_EQ(FdtGet(path, "x", n, "interrupt-map-mask"), "1800 0 0 7");
  EXPECT_EQ(FdtGet(path, "x", n, "msi-map"), "0 2 0 10000");
  // The first two of the 16 entries: 00:00 INTA -> SPI 3, INTB -> SPI 4.
  const std::string map = FdtGet(path, "x", n, "interrupt-map");
  EXPECT_EQ(map.rfind("0 0 0 1 1 0 0 0 3 4 0 0 0 2 1 0 0 0 4 4 ", 0), 0u)
      << map;
}

TEST_F(VirtFdtPeerTest, FdtgetReadsTheValues) {
  Spec s = QemuLikeSpec(8);
  s.bootargs = "console=ttyAMA0 root=/dev/vda";
  s.initrd = Spec::Region{0x48000000, 0x1000};
  const std::string path = Write(Build(s), "fdtget.dtb");
  EXPECT_EQ(FdtGet(path, "s", "/", "compatible"), "linux,dummy-virt");
  EXPECT_EQ(FdtGet(path, "s", "/chosen", "bootargs"), s.bootargs);
  EXPECT_EQ(FdtGet(path, "s", "/chosen", "stdout-path"), "/pl011@9000000");
  EXPECT_EQ(FdtGet(path, "x", "/cpus/cpu@7", "reg"), "7");
  EXPECT_EQ(FdtGet(path, "x", "/intc@8000000", "reg"),
            "0 8000000 0 10000 0 80a0000 0 f60000");
  EXPECT_EQ(FdtGet(path, "x", "/chosen", "linux,initrd-end"), "0 48001000");
  EXPECT_EQ(FdtGet(path, "s", "/intc@8000000/its@8080000", "compatible"),
            "arm,gic-v3-its");
}

}  // namespace
}  // namespace strata::arm64
