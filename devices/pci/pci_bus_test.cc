// PciBus through the port and MMIO buses: configuration mechanism #1 (its
// byte lanes, the enable bit, the reset control register inside it), ECAM,
// absent functions, the host bridge, the multi-function bit, BAR
// assignment and shared INTx lines; the arm64 virt machine's shape (gpex
// host bridge, the I/O space as an MMIO window, BARs at address 0, MSIs
// with their requester id).
#include "devices/pci/pci_bus.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "core/bus.h"
#include "devices/pci/pci_testdev.h"

namespace strata {
namespace {

using namespace pcicfg;  // NOLINT

constexpr uint64_t kCf8 = 0xcf8;
constexpr uint64_t kEcam = 0xe0000000;

class Line final : public IrqLine {
 public:
  void SetLevel(bool asserted) override { level = asserted; }
  bool level = false;
};

struct Fixture : ::testing::Test {
  Bus pio{BusKind::kPio};
  Bus mmio{BusKind::kMmio};
  std::map<uint32_t, std::shared_ptr<Line>> lines;
  int resets = 0;
  std::unique_ptr<PciBus> bus;

  // With the pc machine's windows: BARs are assigned.
  virtual bool windows() const { return false; }
  void SetUp() override { Build(windows()); }
  void Build(bool windows) {
    PciBus::Options o;
    o.pio = &pio;
    o.mmio = &mmio;
    o.intx_route = [](uint32_t slot, uint32_t pin) {
      return 16 + (slot + pin - 1) % 8;
    };
    o.irq_line = [this](uint32_t irq) -> std::shared_ptr<IrqLine> {
      auto& l = lines[irq];
      if (!l) l = std::make_shared<Line>();
      return l;
    };
    if (windows) {
      o.io_window = PciBus::Window{0xc000, 0x4000};
      o.mmio_window = PciBus::Window{0xc0000000, 0x20000000};
    }
    bus = std::make_unique<PciBus>(o);
    ASSERT_TRUE(bus->Add(0, 0, MakePciHostBridge()));
    ASSERT_TRUE(pio.Register(kCf8, kPciConfigIoLength,
                             std::make_shared<PciConfigIo>(
                                 bus.get(), [this] { ++resets; })));
    ASSERT_TRUE(mmio.Register(kEcam, 256ull << 20,
                              std::make_shared<PciEcam>(bus.get())));
  }
  void Out(uint64_t port, uint32_t size, uint64_t v) {
    ASSERT_TRUE(pio.Write(IoContext{}, port, size, v));
  }
  uint64_t In(uint64_t port, uint32_t size) {
    return *pio.Read(IoContext{}, port, size);
  }
  static uint32_t Address(uint32_t b, uint32_t d, uint32_t f, uint32_t r) {
    return 0x80000000u | b << 16 | d << 11 | f << 8 | (r & 0xfc);
  }
  uint32_t Cfg(uint32_t d, uint32_t f, uint32_t r, uint32_t size = 4) {
    Out(kCf8, 4, Address(0, d, f, r));
    return static_cast<uint32_t>(In(0xcfc + (r & 3), size));
  }
  uint64_t Ecam(uint32_t b, uint32_t d, uint32_t f, uint32_t r,
                uint32_t size = 4) {
    return *mmio.Read(IoContext{}, kEcam + (b << 20 | d << 15 | f << 12 | r),
                      size);
  }
};

TEST_F(Fixture, HostBridgeAtZero) {
  EXPECT_EQ(Cfg(0, 0, 0), 0x29c08086u);
  EXPECT_EQ(Cfg(0, 0, 8) >> 8, 0x060000u);  // class 06 00 00
  EXPECT_EQ(Cfg(0, 0, 0x0e, 1), 0u);        // type 0, single function
  EXPECT_EQ(Ecam(0, 0, 0, 0), 0x29c08086u);
}

TEST_F(Fixture, ConfigAddressIsADwordRegister) {
  Out(kCf8, 4, 0xffffffff);
  EXPECT_EQ(In(kCf8, 4), 0x80fffffcu);  // reserved bits read as zero
  Out(kCf8, 4, Address(0, 0, 0, 0));
  EXPECT_EQ(In(kCf8, 4), 0x80000000u);
  // Narrow accesses to 0xcf8 do not address it.
  Out(kCf8, 2, 0x1234);
  EXPECT_EQ(In(kCf8, 4), 0x80000000u);
  EXPECT_EQ(In(kCf8, 2), 0xffffu);
  EXPECT_EQ(In(0xcfa, 1), 0xffu);
}

TEST_F(Fixture, ConfigDataByteLanes) {
  Out(kCf8, 4, Address(0, 0, 0, 0));
  EXPECT_EQ(In(0xcfc, 1), 0x86u);
  EXPECT_EQ(In(0xcfd, 1), 0x80u);
  EXPECT_EQ(In(0xcfe, 1), 0xc0u);
  EXPECT_EQ(In(0xcff, 1), 0x29u);
  EXPECT_EQ(In(0xcfc, 2), 0x8086u);
  EXPECT_EQ(In(0xcfe, 2), 0x29c0u);
  EXPECT_EQ(In(0xcfd, 2), 0xc080u);
  // Writes at a lane reach that byte: the interrupt line (0x3c) of a
  // function through lane 0, cache line size (0x0c) through lane 0.
  Out(kCf8, 4, Address(0, 0, 0, 0x3c));
  Out(0xcfc, 1, 0x0b);
  EXPECT_EQ(Cfg(0, 0, 0x3c, 1), 0x0bu);
  Out(kCf8, 4, Address(0, 0, 0, 0x04));
  Out(0xcfe, 2, 0xffff);  // status: W1C bits, none set
  Out(0xcfc, 2, kCommandMemory);
  EXPECT_EQ(Cfg(0, 0, 4), kCommandMemory);
  // Disabled: all-ones, writes dropped.
  Out(kCf8, 4, 0x3c);
  EXPECT_EQ(In(0xcfc, 4), 0xffffffffu);
  Out(0xcfc, 1, 0x55);
  EXPECT_EQ(Cfg(0, 0, 0x3c, 1), 0x0bu);
}

TEST_F(Fixture, AbsentFunctionsReadAllOnes) {
  EXPECT_EQ(Cfg(1, 0, 0), 0xffffffffu);
  EXPECT_EQ(Cfg(0, 1, 0, 2), 0xffffu);
  EXPECT_EQ(Cfg(31, 7, 0xfc), 0xffffffffu);
  Out(kCf8, 4, Address(1, 0, 0, 0));  // bus 1 does not exist
  EXPECT_EQ(In(0xcfc, 4), 0xffffffffu);
  EXPECT_EQ(Ecam(0, 5, 0, 0), 0xffffffffu);
  EXPECT_EQ(Ecam(3, 0, 0, 0), 0xffffffffu);
  EXPECT_EQ(Ecam(0, 5, 0, 0, 1), 0xffu);
  EXPECT_TRUE(mmio.Write(IoContext{}, kEcam + (5 << 15) + 4, 4, 7));
}

TEST_F(Fixture, EcamReachesExtendedSpaceAndAllSizes) {
  ASSERT_TRUE(bus->Add(3, 0, MakePciTestdev()));
  EXPECT_EQ(Ecam(0, 3, 0, 0), 0x00051b36u);
  EXPECT_EQ(Ecam(0, 3, 0, 2, 2), 0x0005u);
  EXPECT_EQ(Ecam(0, 3, 0, 0, 8), 0x00051b36u |
                                     uint64_t{Cfg(3, 0, 4)} << 32);
  EXPECT_EQ(Ecam(0, 3, 0, 0x100), 0u);  // extended space: nothing there
  ASSERT_TRUE(mmio.Write(IoContext{}, kEcam + (3 << 15) + 0x3c, 1, 0x0a));
  EXPECT_EQ(Cfg(3, 0, 0x3c, 1), 0x0au);
}

TEST_F(Fixture, ResetControlAt0xcf9) {
  Out(kCf8, 4, Address(0, 0, 0, 0));
  Out(0xcf9, 1, kResetControlSysRst);
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(In(0xcf9, 1), kResetControlSysRst);
  EXPECT_EQ(In(kCf8, 4), 0x80000000u);  // CONFIG_ADDRESS untouched
  Out(0xcf9, 1, kResetControlSysRst | kResetControlRstCpu);
  EXPECT_EQ(resets, 1);
  // A dword write at 0xcf8 is CONFIG_ADDRESS, even with bit 10 set.
  Out(kCf8, 4, 0x80000400);
  EXPECT_EQ(resets, 1);
}

TEST_F(Fixture, TakenFunctionsAreRefusedByName) {
  Status s = bus->Add(0, 0, MakePciTestdev());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kAlreadyExists);
  EXPECT_NE(s.error().message().find("pci-host-bridge"), std::string::npos);
  EXPECT_FALSE(bus->Add(32, 0, MakePciTestdev()));
  EXPECT_FALSE(bus->Add(0, 8, MakePciTestdev()));
}

TEST_F(Fixture, MultiFunctionBitOnFunctionZero) {
  ASSERT_TRUE(bus->Add(4, 0, MakePciTestdev("a")));
  EXPECT_EQ(Cfg(4, 0, 0x0e, 1), 0u);
  ASSERT_TRUE(bus->Add(4, 2, MakePciTestdev("b")));
  EXPECT_EQ(Cfg(4, 0, 0x0e, 1), kHeaderMultiFunction);
  EXPECT_EQ(Cfg(4, 0, 0x0c) >> 16, kHeaderMultiFunction);
  EXPECT_EQ(Cfg(4, 2, 0x0e, 1), 0u);
}

struct WithWindows : Fixture {
  bool windows() const override { return true; }
};

TEST_F(WithWindows, FirmwareLikeBarAssignment) {
  ASSERT_TRUE(bus->Add(3, 0, MakePciTestdev("a")));
  ASSERT_TRUE(bus->Add(5, 0, MakePciTestdev("b")));
  EXPECT_EQ(Cfg(3, 0, 0x10), 0xc0000000u);
  EXPECT_EQ(Cfg(3, 0, 0x14), 0xc001u);
  EXPECT_EQ(Cfg(5, 0, 0x10), 0xc0001000u);
  EXPECT_EQ(Cfg(5, 0, 0x14), 0xc101u);
  EXPECT_EQ(Cfg(3, 0, 4) & 3, uint32_t{kCommandIo | kCommandMemory});
  // Usable at once: the test header's name.
  EXPECT_EQ(*pio.Read(IoContext{}, 0xc100, 1), 0u);  // no test selected
  ASSERT_TRUE(pio.Write(IoContext{}, 0xc100, 1, 0));
  EXPECT_EQ(*pio.Read(IoContext{}, 0xc110, 4), 0x74726f70u);  // "port"
  // One selection per function, seen through both its BARs (as QEMU's);
  // the other function has none.
  EXPECT_EQ(*mmio.Read(IoContext{}, 0xc0001010, 4), 0x74726f70u);
  EXPECT_EQ(*mmio.Read(IoContext{}, 0xc0000010, 4), 0u);
}

TEST(PciBus, WindowsRunOut) {
  Bus pio(BusKind::kPio);
  Bus mmio(BusKind::kMmio);
  PciBus::Options o;
  o.pio = &pio;
  o.mmio = &mmio;
  o.io_window = PciBus::Window{0xff00, 0x100};
  o.mmio_window = PciBus::Window{0xc0000000, 0x2000};
  PciBus small(o);
  ASSERT_TRUE(small.Add(1, 0, MakePciTestdev("a")));
  Status s = small.Add(2, 0, MakePciTestdev("b"));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("does not fit"), std::string::npos)
      << s.error().message();
  EXPECT_EQ(small.Find(2, 0), nullptr);
}

// A function with an INTx pin of its own (pci-testdev has none).
std::shared_ptr<PciDevice> WithPin(uint8_t pin) {
  PciId id;
  id.vendor = 0x1234;
  id.device = 0x1;
  id.interrupt_pin = pin;
  return std::make_shared<PciDevice>(id, "intx");
}

TEST_F(Fixture, IntxIsRoutedSwizzledAndShared) {
  auto a = WithPin(1);  // 00:01.0 INTA -> 16 + (1 + 0) % 8 = 17
  auto b = WithPin(2);  // 00:00.1 INTB -> 16 + (0 + 1) % 8 = 17
  auto c = WithPin(1);  // 00:02.0 INTA -> 18
  ASSERT_TRUE(bus->Add(1, 0, a));
  ASSERT_TRUE(bus->Add(0, 1, b));
  ASSERT_TRUE(bus->Add(2, 0, c));
  EXPECT_EQ(Cfg(1, 0, 0x3c, 1), 17u);  // the line register, as firmware
  EXPECT_EQ(Cfg(2, 0, 0x3c, 1), 18u);
  a->SetIntx(true);
  EXPECT_TRUE(lines[17]->level);
  b->SetIntx(true);
  a->SetIntx(false);
  EXPECT_TRUE(lines[17]->level);  // b still asserts it
  b->SetIntx(false);
  EXPECT_FALSE(lines[17]->level);
  c->SetIntx(true);
  EXPECT_TRUE(lines[18]->level);
  EXPECT_FALSE(lines[17]->level);
}


// --- The arm64 virt machine's bus (arch/arm64/platform/virt_pci.cc) --------

// QEMU virt's windows (hw/arm/virt.c base_memmap).
constexpr uint64_t kVirtEcam = 0x3f000000;
constexpr uint64_t kVirtPio = 0x3eff0000;
constexpr uint64_t kVirtMmio = 0x10000000;

// A PIO register bank: records the accesses it gets.
class Ports final : public IoDevice {
 public:
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t size) override {
    reads.emplace_back(offset, size);
    return 0x11223344u >> (8 * (4 - std::min<uint32_t>(size, 4)));
  }
  void Write(const IoContext&, uint64_t offset, uint32_t size,
             uint64_t value) override {
    writes.push_back({offset, size, value});
  }
  std::string_view name() const override { return "ports"; }
  struct W {
    uint64_t offset;
    uint32_t size;
    uint64_t value;
  };
  std::vector<std::pair<uint64_t, uint32_t>> reads;
  std::vector<W> writes;
};

struct Virt : ::testing::Test {
  Bus pio{BusKind::kPio};
  Bus mmio{BusKind::kMmio};
  std::vector<std::pair<uint16_t, md::MsiMessage>> msis;
  std::unique_ptr<PciBus> bus;

  void SetUp() override {
    PciBus::Options o;
    o.pio = &pio;
    o.mmio = &mmio;
    o.msi_with_requester = [this](uint16_t rid, const md::MsiMessage& m) {
      msis.emplace_back(rid, m);
    };
    o.io_window = PciBus::Window{0x1000, kPciIoWindowMaxSize - 0x1000};
    o.mmio_window = PciBus::Window{kVirtMmio, 0x2eff0000};
    o.allow_zero_bar_address = true;
    bus = std::make_unique<PciBus>(o);
    ASSERT_TRUE(bus->Add(0, 0, MakePciHostBridge(kPciVendorRedHat,
                                                 kPciDeviceRedHatGpex)));
    ASSERT_TRUE(mmio.Register(kVirtEcam, 16ull << 20,
                              std::make_shared<PciEcam>(bus.get())));
    ASSERT_TRUE(mmio.Register(kVirtPio, kPciIoWindowMaxSize,
                              std::make_shared<PciIoWindow>(&pio, nullptr)));
  }
  uint64_t Ecam(uint32_t d, uint32_t f, uint32_t r, uint32_t size = 4) {
    return *mmio.Read(IoContext{}, kVirtEcam + (d << 15 | f << 12 | r), size);
  }
  void EcamWrite(uint32_t d, uint32_t f, uint32_t r, uint64_t v,
                 uint32_t size = 4) {
    ASSERT_TRUE(mmio.Write(IoContext{}, kVirtEcam + (d << 15 | f << 12 | r),
                           size, v));
  }
  uint64_t Io(uint64_t port, uint32_t size) {
    return *mmio.Read(IoContext{}, kVirtPio + port, size);
  }
  void IoWrite(uint64_t port, uint32_t size, uint64_t v) {
    ASSERT_TRUE(mmio.Write(IoContext{}, kVirtPio + port, size, v));
  }
};

TEST_F(Virt, GpexHostBridge) {
  EXPECT_EQ(Ecam(0, 0, kVendorId), 0x00081b36u);
  EXPECT_EQ(Ecam(0, 0, kRevision) >> 8, 0x060000u);
  EXPECT_EQ(Ecam(1, 0, kVendorId), 0xffffffffu);
  // Buses 1-15 of the ECAM region: nothing there.
  EXPECT_EQ(*mmio.Read(IoContext{}, kVirtEcam + (15u << 20), 4), 0xffffffffu);
}

TEST_F(Virt, IoWindowForwardsToPorts) {
  auto ports = std::make_shared<Ports>();
  ASSERT_TRUE(pio.Register(0x2000, 0x10, ports));
  IoWrite(0x2004, 2, 0xbeef);
  ASSERT_EQ(ports->writes.size(), 1u);
  EXPECT_EQ(ports->writes[0].offset, 4u);
  EXPECT_EQ(ports->writes[0].size, 2u);
  EXPECT_EQ(ports->writes[0].value, 0xbeefu);
  EXPECT_EQ(Io(0x2000, 1), 0x11u);
  // 8 bytes: two dword cycles.
  IoWrite(0x2008, 8, 0x0102030405060708ull);
  ASSERT_EQ(ports->writes.size(), 3u);
  EXPECT_EQ(ports->writes[1].offset, 8u);
  EXPECT_EQ(ports->writes[1].value, 0x05060708u);
  EXPECT_EQ(ports->writes[2].offset, 12u);
  EXPECT_EQ(ports->writes[2].value, 0x01020304u);
  EXPECT_EQ(Io(0x2008, 8), 0x1122334411223344ull);
  // Unclaimed ports float high, as PIO; the pio bus counts them.
  EXPECT_EQ(Io(0x3000, 2), 0xffffu);
  EXPECT_EQ(pio.unclaimed_count(), 1u);
  EXPECT_EQ(mmio.unclaimed_count(), 0u);
  // The last port of the window is port 0xffff.
  EXPECT_EQ(Io(0xffff, 1), 0xffu);
}

TEST_F(Virt, IoWindowUnderFatalUnclaimed) {
  pio.set_unclaimed_fatal(true);
  EXPECT_EQ(Io(0x3000, 4), 0xffffffffu);  // logged, completes
  IoWrite(0x3000, 4, 1);
  EXPECT_EQ(pio.unclaimed_count(), 2u);
}

TEST_F(Virt, BarsFromTheVirtWindows) {
  ASSERT_TRUE(bus->Add(1, 0, MakePciTestdev()));
  EXPECT_EQ(Ecam(1, 0, kBar0), kVirtMmio);
  EXPECT_EQ(Ecam(1, 0, kBar0 + 4), 0x1001u);  // I/O from 0x1000
  // Usable through the windows at once.
  IoWrite(0x1000, 1, 0);
  EXPECT_EQ(Io(0x1010, 4), 0x74726f70u);  // "port"
  EXPECT_EQ(*mmio.Read(IoContext{}, kVirtMmio + 0x10, 4), 0x74726f70u);
}

// kvm-unit-tests' allocator (lib/pci-host-generic.c) starts each space at
// its "ranges" PCI address: the I/O BAR lands on port 0, which decodes on
// this bus (QEMU virt's pci_allow_0_address) and not on the pc machine's.
TEST_F(Virt, IoBarAtPortZeroDecodes) {
  ASSERT_TRUE(bus->Add(1, 0, MakePciTestdev()));
  EcamWrite(1, 0, kBar0 + 4, 0);
  EXPECT_EQ(Ecam(1, 0, kBar0 + 4), 0x1u);
  IoWrite(0, 1, 1);  // select test 1
  EXPECT_EQ(Io(0x10, 4), 0x74726f70u);
  EXPECT_EQ(pio.unclaimed_count(), 0u);
}

TEST_F(WithWindows, BarAtZeroDoesNotDecodeOnPc) {
  ASSERT_TRUE(bus->Add(1, 0, MakePciTestdev()));
  Out(kCf8, 4, Address(0, 1, 0, kBar0 + 4));
  Out(0xcfc, 4, 0);
  ASSERT_TRUE(pio.Write(IoContext{}, 0, 1, 1));
  EXPECT_EQ(*pio.Read(IoContext{}, 0x10, 4), 0xffffffffu);
}

TEST_F(Virt, MsiCarriesTheRequesterId) {
  PciId id;
  id.vendor = 0x1234;
  id.device = 0x2;
  auto fn = std::make_shared<PciDevice>(id, "msi");
  const uint32_t cap = *fn->AddMsi(false);
  ASSERT_TRUE(bus->Add(3, 2, fn));
  EcamWrite(3, 2, cap + 4, 0x08090040);  // the ITS's GITS_TRANSLATER
  EcamWrite(3, 2, cap + 8, 0);
  EcamWrite(3, 2, cap + 0xc, 7, 2);
  EcamWrite(3, 2, cap + 2, 1, 2);
  EcamWrite(3, 2, kCommand, kCommandMaster, 2);
  fn->Notify(0);
  ASSERT_EQ(msis.size(), 1u);
  EXPECT_EQ(msis[0].first, 0x1au);  // 00:03.2
  EXPECT_EQ(msis[0].second.address, 0x08090040u);
  EXPECT_EQ(msis[0].second.data, 7u);
}

}  // namespace
}  // namespace strata
