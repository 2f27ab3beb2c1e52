// pci-testdev through the buses: identity, BARs, and the test protocol as
// kvm-unit-tests' lib/pci-testdev.c drives it on both BARs.
#include "devices/pci/pci_testdev.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/bus.h"
#include "devices/pci/pci_bus.h"

namespace strata {
namespace {

constexpr uint64_t kMem = 0xc0000000;
constexpr uint64_t kIo = 0xc000;

struct Fixture : ::testing::Test {
  Bus pio{BusKind::kPio};
  Bus mmio{BusKind::kMmio};
  std::unique_ptr<PciBus> bus;
  std::shared_ptr<PciDevice> fn = MakePciTestdev();

  void SetUp() override {
    PciBus::Options o;
    o.pio = &pio;
    o.mmio = &mmio;
    o.io_window = PciBus::Window{kIo, 0x4000};
    o.mmio_window = PciBus::Window{kMem, 0x20000000};
    bus = std::make_unique<PciBus>(o);
    ASSERT_TRUE(bus->Add(3, 0, fn));
  }
  Bus& On(bool io) { return io ? pio : mmio; }
  uint64_t Read(bool io, uint64_t off, uint32_t size) {
    return *On(io).Read(IoContext{}, (io ? kIo : kMem) + off, size);
  }
  void Write(bool io, uint64_t off, uint32_t size, uint64_t v) {
    ASSERT_TRUE(On(io).Write(IoContext{}, (io ? kIo : kMem) + off, size, v));
  }
  std::string Name(bool io) {
    std::string s;
    for (uint64_t i = 16;; ++i) {
      const char c = static_cast<char>(Read(io, i, 1));
      if (c == 0) break;
      s += c;
    }
    return s;
  }
  // kvm-unit-tests' pci_testdev_one: select, check, 16 writes, count.
  bool One(bool io, uint32_t nr, std::string* name) {
    Write(io, 0, 1, nr);
    if (Read(io, 12, 4) != 0) return false;
    const uint64_t width = Read(io, 1, 1);
    if (width != 1 && width != 2 && width != 4) return false;
    const uint64_t sig = Read(io, 8, 4);
    const uint64_t off = Read(io, 4, 4);
    for (int i = 0; i < 16; ++i) Write(io, off, static_cast<uint32_t>(width), sig);
    *name = Name(io);
    return Read(io, 12, 4) == 16;
  }
};

TEST_F(Fixture, Identity) {
  EXPECT_EQ(fn->ConfigRead(0, 4), 0x00051b36u);
  EXPECT_EQ(fn->ConfigRead(8, 4), 0xff000000u);
  EXPECT_EQ(fn->ConfigRead(0x2c, 4), 0x11001af4u);
  EXPECT_EQ(fn->ConfigRead(0x3d, 1), 0u);  // no interrupt pin
  EXPECT_EQ(fn->Bar(0)->size, kPciTestdevMemSize);
  EXPECT_EQ(fn->Bar(1)->size, kPciTestdevIoSize);
  EXPECT_FALSE(fn->Bar(2));
}

TEST_F(Fixture, KvmUnitTestsProtocolOnBothBars) {
  const char* names[2][3] = {
      {"mmio-no-eventfd", "mmio-wildcard-eventfd", "mmio-datamatch-eventfd"},
      {"portio-no-eventfd", "portio-wildcard-eventfd",
       "portio-datamatch-eventfd"}};
  for (bool io : {false, true}) {
    std::string name;
    for (uint32_t t = 0; t < 3; ++t) {
      EXPECT_TRUE(One(io, t, &name)) << io << " " << t;
      EXPECT_EQ(name, names[io][t]);
      EXPECT_EQ(Read(io, 0, 1), (io ? 3 : 0) + t);
      EXPECT_EQ(Read(io, 4, 4), (io ? 128 : 2048) + (io ? 3 : 0) + t);
    }
    EXPECT_FALSE(One(io, 3, &name));  // the end of the list
    EXPECT_EQ(Read(io, 16, 4), 0u);   // nothing selected
  }
}

TEST_F(Fixture, DatamatchCountsOnlyItsValue) {
  Write(false, 0, 1, 2);  // mmio-datamatch-eventfd at 2050, 0xfa
  EXPECT_EQ(Read(false, 8, 1), kPciTestdevDataMatch);
  Write(false, 2050, 1, 0x12);
  Write(false, 2051, 1, 0xfa);
  Write(false, 2050, 1, 0xfa);
  EXPECT_EQ(Read(false, 12, 4), 1u);
  Write(false, 0, 1, 1);  // wildcard: any value; the count restarts
  EXPECT_EQ(Read(false, 8, 1), kPciTestdevNoMatch);
  EXPECT_EQ(Read(false, 12, 4), 0u);
  Write(false, 2049, 1, 0x12);
  Write(false, 2049, 4, 0x12345678);  // split: only the first byte counts
  EXPECT_EQ(Read(false, 12, 4), 2u);
}

TEST_F(Fixture, FollowsItsBarWhenMoved) {
  Write(false, 0, 1, 0);
  fn->ConfigWrite(0x10, 4, 0xc0100000);
  EXPECT_EQ(*mmio.Read(IoContext{}, 0xc0100010, 4), 0x6f696d6du);  // "mmio"
  EXPECT_EQ(*mmio.Read(IoContext{}, kMem + 0x10, 4), 0u);  // gone
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// Snapshots: the bus's functions, their BAR placement and pci-testdev's
// counters come back on a bus built the same way.
TEST_F(Fixture, BusStateSavesAndLoads) {
  std::string name;
  Write(false, 0, 1, 0);  // select mmio-no-eventfd
  const uint64_t off = Read(false, 4, 4);
  for (int i = 0; i < 5; ++i) Write(false, off, 1, Read(false, 8, 4));
  ASSERT_EQ(Read(false, 12, 4), 5u);
  StateWriter w;
  ASSERT_TRUE(bus->SaveState(w));

  Bus pio2{BusKind::kPio};
  Bus mmio2{BusKind::kMmio};
  PciBus::Options o;
  o.pio = &pio2;
  o.mmio = &mmio2;  // no windows: BARs start unassigned, decode off
  PciBus bus2(o);
  ASSERT_TRUE(bus2.Add(3, 0, MakePciTestdev()));
  EXPECT_FALSE(mmio2.Read(IoContext{}, kMem + 12, 4).has_value() &&
               *mmio2.Read(IoContext{}, kMem + 12, 4) == 5u);
  StateReader r(w.data(), "device pci-bus");
  ASSERT_TRUE(bus2.LoadState(r));
  EXPECT_EQ(*mmio2.Read(IoContext{}, kMem + 12, 4), 5u);  // BAR0 decodes
  EXPECT_EQ(bus2.ConfigRead(0, 3, 0, 0, 4), bus->ConfigRead(0, 3, 0, 0, 4));
  EXPECT_EQ(bus2.ConfigRead(0, 3, 0, 0x10, 4), bus->ConfigRead(0, 3, 0, 0x10, 4));

  // A bus without that function refuses the state, naming it.
  PciBus empty(o);
  StateReader r2(w.data(), "device pci-bus");
  Status s = empty.LoadState(r2);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("1 PCI functions saved, this bus has 0"),
            std::string::npos)
      << s.error().message();
}

}  // namespace
}  // namespace strata
