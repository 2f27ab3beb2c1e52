// PciDevice through the bus: BAR sizing, relocation and decode, overlap
// refusal, MSI and MSI-X delivery and masking, INTx and INTx disable.
#include "devices/pci/pci_device.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/bus.h"
#include "devices/pci/pci_bus.h"

namespace strata {
namespace {

using namespace pcicfg;  // NOLINT

// A register file that remembers the last write.
class Regs final : public IoDevice {
 public:
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t) override {
    return 0x1000 + offset;
  }
  void Write(const IoContext&, uint64_t offset, uint32_t,
             uint64_t value) override {
    last_offset = offset;
    last_value = value;
  }
  std::string_view name() const override { return "regs"; }
  uint64_t last_offset = 0, last_value = 0;
};

class Line final : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    level = asserted;
    ++changes;
  }
  bool level = false;
  int changes = 0;
};

struct Fixture : ::testing::Test {
  Bus pio{BusKind::kPio};
  Bus mmio{BusKind::kMmio};
  std::shared_ptr<Regs> regs = std::make_shared<Regs>();
  std::shared_ptr<Line> line = std::make_shared<Line>();
  std::vector<md::MsiMessage> msgs;

  std::shared_ptr<PciDevice> Make(uint8_t pin = 0) {
    PciId id;
    id.vendor = 0x1234;
    id.device = 0x5678;
    id.interrupt_pin = pin;
    return std::make_shared<PciDevice>(id, "fn");
  }
  void Attach(PciDevice& fn) {
    PciAttachment a;
    a.pio = &pio;
    a.mmio = &mmio;
    a.intx = line;
    a.msi = [this](const md::MsiMessage& m) { msgs.push_back(m); };
    fn.Attach(std::move(a));
  }
  uint64_t MmioRead(uint64_t addr, uint32_t size = 4) {
    return *mmio.Read(IoContext{}, addr, size);
  }
  void MmioWrite(uint64_t addr, uint64_t v, uint32_t size = 4) {
    ASSERT_TRUE(mmio.Write(IoContext{}, addr, size, v));
  }
};

TEST_F(Fixture, IdentityAndReadOnlyHeader) {
  auto fn = Make(2);
  EXPECT_EQ(fn->ConfigRead(kVendorId, 4), 0x56781234u);
  fn->ConfigWrite(kVendorId, 4, 0);
  EXPECT_EQ(fn->ConfigRead(kVendorId, 4), 0x56781234u);
  EXPECT_EQ(fn->ConfigRead(kInterruptPin, 1), 2u);
  fn->ConfigWrite(kInterruptPin, 1, 4);
  EXPECT_EQ(fn->ConfigRead(kInterruptPin, 1), 2u);
  fn->ConfigWrite(kInterruptLine, 1, 0x17);
  EXPECT_EQ(fn->ConfigRead(kInterruptLine, 1), 0x17u);
  // Command: only the implemented bits stick.
  fn->ConfigWrite(kCommand, 2, 0xffff);
  EXPECT_EQ(fn->ConfigRead(kCommand, 2), 0x0547u);
  EXPECT_EQ(fn->ConfigRead(0x1000, 4), 0u);  // beyond 4 KiB
}

TEST_F(Fixture, StatusErrorBitsAreWriteOneToClear) {
  auto fn = Make();
  fn->SetConfig(kStatus, 2, 0x8000 | 0x0100);
  fn->ConfigWrite(kStatus, 2, 0x0100);
  EXPECT_EQ(fn->ConfigRead(kStatus, 2), 0x8000u);
  fn->ConfigWrite(kStatus, 2, 0x8000);
  EXPECT_EQ(fn->ConfigRead(kStatus, 2), 0u);
}

TEST_F(Fixture, BarsAreSizedByWritingAllOnes) {
  auto fn = Make();
  ASSERT_TRUE(fn->AddBar(0, {PciBarKind::kMem32, 0x1000, false, regs}));
  ASSERT_TRUE(fn->AddBar(1, {PciBarKind::kIo, 0x100, false, regs}));
  ASSERT_TRUE(fn->AddBar(2, {PciBarKind::kMem64, 0x4000, true, regs}));
  EXPECT_EQ(fn->ConfigRead(kBar0, 4), 0u);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 4, 4), kBarIo);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 8, 4), kBarMem64 | kBarPrefetch);
  for (uint32_t i = 0; i < 6; ++i) fn->ConfigWrite(kBar0 + 4 * i, 4, ~0u);
  EXPECT_EQ(fn->ConfigRead(kBar0, 4), 0xfffff000u);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 4, 4), 0xffffff01u);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 8, 4), 0xffffc00cu);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 12, 4), 0xffffffffu);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 16, 4), 0u);  // no BAR 4, 5
  EXPECT_EQ(fn->ConfigRead(kBar0 + 20, 4), 0u);
  // A taken index, a 64-bit BAR without room, a bad size.
  EXPECT_FALSE(fn->AddBar(3, {PciBarKind::kMem32, 0x1000, false, regs}));
  EXPECT_FALSE(fn->AddBar(5, {PciBarKind::kMem64, 0x1000, false, regs}));
  EXPECT_FALSE(fn->AddBar(4, {PciBarKind::kMem32, 0x1800, false, regs}));
  EXPECT_FALSE(fn->AddBar(4, {PciBarKind::kIo, 0x200, false, regs}));
}

TEST_F(Fixture, BarsAreDecodedOnlyWithTheirCommandBit) {
  auto fn = Make();
  ASSERT_TRUE(fn->AddBar(0, {PciBarKind::kMem32, 0x1000, false, regs}));
  ASSERT_TRUE(fn->AddBar(1, {PciBarKind::kIo, 0x100, false, regs}));
  ASSERT_TRUE(fn->AddBar(2, {PciBarKind::kMem64, 0x2000, false, regs}));
  Attach(*fn);
  fn->ConfigWrite(kBar0, 4, 0xc0000000);
  fn->ConfigWrite(kBar0 + 4, 4, 0xc000);
  fn->ConfigWrite(kBar0 + 8, 4, 0x0);
  fn->ConfigWrite(kBar0 + 12, 4, 0x1);  // 0x1_0000_0000
  EXPECT_TRUE(mmio.Ranges().empty());
  EXPECT_TRUE(pio.Ranges().empty());
  fn->ConfigWrite(kCommand, 2, kCommandMemory);
  EXPECT_EQ(MmioRead(0xc0000010), 0x1010u);
  EXPECT_EQ(MmioRead(0x100000020), 0x1020u);
  EXPECT_TRUE(pio.Ranges().empty());
  fn->ConfigWrite(kCommand, 2, kCommandIo);
  EXPECT_TRUE(mmio.Ranges().empty());
  EXPECT_EQ(*pio.Read(IoContext{}, 0xc004, 1), (0x1004u & 0xff));
  fn->ConfigWrite(kCommand, 2, 0);
  EXPECT_TRUE(pio.Ranges().empty());
  EXPECT_FALSE(fn->Bar(0)->mapped);
}

TEST_F(Fixture, BarsMoveWhenReprogrammedAndSizingUnmapsThem) {
  auto fn = Make();
  ASSERT_TRUE(fn->AddBar(0, {PciBarKind::kMem32, 0x1000, false, regs}));
  Attach(*fn);
  fn->ConfigWrite(kBar0, 4, 0xc0000000);
  fn->ConfigWrite(kCommand, 2, kCommandMemory);
  ASSERT_EQ(fn->Bar(0)->mapped, 0xc0000000u);
  fn->ConfigWrite(kBar0, 4, 0xc0100000);
  EXPECT_EQ(fn->Bar(0)->mapped, 0xc0100000u);
  EXPECT_EQ(MmioRead(0xc0100004), 0x1004u);
  EXPECT_EQ(MmioRead(0xc0000004), 0u);  // unclaimed: nothing there now
  MmioWrite(0xc0100008, 0x55);
  EXPECT_EQ(regs->last_offset, 8u);
  EXPECT_EQ(regs->last_value, 0x55u);
  // Sizing with decode on: all-ones is not an address.
  fn->ConfigWrite(kBar0, 4, ~0u);
  EXPECT_FALSE(fn->Bar(0)->mapped);
  EXPECT_TRUE(mmio.Ranges().empty());
  fn->ConfigWrite(kBar0, 4, 0xc0200000);
  EXPECT_EQ(fn->Bar(0)->mapped, 0xc0200000u);
  // Address 0 is "unassigned".
  fn->ConfigWrite(kBar0, 4, 0);
  EXPECT_FALSE(fn->Bar(0)->mapped);
}

TEST_F(Fixture, AConflictingPlacementIsLeftUnmapped) {
  auto other = std::make_shared<Regs>();
  ASSERT_TRUE(mmio.Register(0xc0001000, 0x1000, other));
  auto fn = Make();
  ASSERT_TRUE(fn->AddBar(0, {PciBarKind::kMem32, 0x1000, false, regs}));
  Attach(*fn);
  fn->ConfigWrite(kBar0, 4, 0xc0001000);
  fn->ConfigWrite(kCommand, 2, kCommandMemory);
  EXPECT_FALSE(fn->Bar(0)->mapped);
  EXPECT_EQ(mmio.Ranges().size(), 1u);
  // Moving it somewhere free maps it; moving it back onto the other
  // device unmaps it, and the other device is untouched.
  fn->ConfigWrite(kBar0, 4, 0xc0000000);
  EXPECT_EQ(fn->Bar(0)->mapped, 0xc0000000u);
  fn->ConfigWrite(kBar0, 4, 0xc0001000);
  EXPECT_FALSE(fn->Bar(0)->mapped);
  EXPECT_EQ(MmioRead(0xc0001000), 0x1000u);
  ASSERT_EQ(mmio.Ranges().size(), 1u);
  EXPECT_EQ(std::get<2>(mmio.Ranges()[0]), "regs");
}

TEST_F(Fixture, CapabilityListIsLinked) {
  auto fn = Make();
  EXPECT_EQ(fn->ConfigRead(kStatus, 2) & kStatusCapList, 0u);
  const uint32_t a = *fn->AddCapability(0x09, 6);
  const uint32_t b = *fn->AddCapability(0x0a, 8);
  EXPECT_EQ(a, 0x40u);
  EXPECT_EQ(b, 0x48u);  // 4-byte aligned
  EXPECT_EQ(fn->ConfigRead(kStatus, 2) & kStatusCapList, kStatusCapList);
  EXPECT_EQ(fn->ConfigRead(kCapPtr, 1), 0x40u);
  EXPECT_EQ(fn->ConfigRead(0x40, 2), 0x4809u);
  EXPECT_EQ(fn->ConfigRead(0x48, 2), 0x000au);
  EXPECT_FALSE(fn->AddCapability(0x0b, 0xc0));  // past 0x100
}

TEST_F(Fixture, MsiIsDeliveredAndMasked) {
  auto fn = Make();
  const uint32_t cap = *fn->AddMsi(true);
  Attach(*fn);
  EXPECT_EQ(fn->ConfigRead(cap, 1), kCapIdMsi);
  EXPECT_EQ(fn->ConfigRead(cap + 2, 2), 0x0180u);  // 64-bit, maskable, 1 msg
  fn->Notify(0);
  EXPECT_TRUE(msgs.empty());  // not enabled
  fn->ConfigWrite(cap + 4, 4, 0xfee00000);
  fn->ConfigWrite(cap + 8, 4, 0x1);
  fn->ConfigWrite(cap + 0xc, 2, 0x4041);
  fn->ConfigWrite(cap + 2, 2, 0x0071);  // enable; MME stays 0
  EXPECT_EQ(fn->ConfigRead(cap + 2, 2), 0x0181u);
  EXPECT_TRUE(fn->msi_enabled());
  fn->Notify(0);
  EXPECT_TRUE(msgs.empty());  // no bus master
  fn->ConfigWrite(kCommand, 2, kCommandMaster);
  fn->Notify(0);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].address, 0x1fee00000u);
  EXPECT_EQ(msgs[0].data, 0x4041u);
  // Masked: pending, sent on unmask.
  fn->ConfigWrite(cap + 0x10, 4, 1);
  fn->Notify(0);
  EXPECT_EQ(msgs.size(), 1u);
  EXPECT_EQ(fn->ConfigRead(cap + 0x14, 4), 1u);
  fn->ConfigWrite(cap + 0x10, 4, 0);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(fn->ConfigRead(cap + 0x14, 4), 0u);
  fn->Notify(1);  // one message only
  EXPECT_EQ(msgs.size(), 2u);
}

TEST_F(Fixture, MsixTableVectorAndFunctionMasks) {
  auto fn = Make();
  const uint32_t cap = *fn->AddMsix(2, 3);
  Attach(*fn);
  EXPECT_EQ(fn->ConfigRead(cap, 1), kCapIdMsix);
  EXPECT_EQ(fn->ConfigRead(cap + 2, 2), 2u);  // table size - 1
  EXPECT_EQ(fn->ConfigRead(cap + 4, 4), 2u);  // BIR 2, offset 0
  EXPECT_EQ(fn->ConfigRead(cap + 8, 4), 48u | 2u);  // PBA after the table
  fn->ConfigWrite(kBar0 + 8, 4, ~0u);
  EXPECT_EQ(fn->ConfigRead(kBar0 + 8, 4), 0xfffff000u);  // 4 KiB
  fn->ConfigWrite(kBar0 + 8, 4, 0xc0000000);
  fn->ConfigWrite(kCommand, 2, kCommandMemory | kCommandMaster);
  const uint64_t t = 0xc0000000;
  EXPECT_EQ(MmioRead(t + 12), 1u);  // vectors start masked
  for (uint32_t v = 0; v < 3; ++v) {
    MmioWrite(t + 16 * v, 0xfee00000 + v, 4);
    MmioWrite(t + 16 * v + 4, 0, 4);
    MmioWrite(t + 16 * v + 8, 0x30 + v, 4);
  }
  EXPECT_EQ(MmioRead(t + 16, 8), 0xfee00001u);
  fn->ConfigWrite(cap + 2, 2, 0x8000);  // enable
  EXPECT_TRUE(fn->msix_enabled());
  fn->Notify(1);
  EXPECT_TRUE(msgs.empty());
  EXPECT_EQ(MmioRead(t + 48, 8), 0x2u);  // pending bit 1
  MmioWrite(t + 16 + 12, 0);  // unmask vector 1: the pending one goes out
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].address, 0xfee00001u);
  EXPECT_EQ(msgs[0].data, 0x31u);
  EXPECT_EQ(MmioRead(t + 48, 8), 0u);
  fn->Notify(1);
  EXPECT_EQ(msgs.size(), 2u);
  // Function mask holds every vector.
  fn->ConfigWrite(cap + 2, 2, 0xc000);
  fn->Notify(1);
  EXPECT_EQ(msgs.size(), 2u);
  fn->ConfigWrite(cap + 2, 2, 0x8000);
  ASSERT_EQ(msgs.size(), 3u);
  fn->Notify(7);  // no such vector
  EXPECT_EQ(msgs.size(), 3u);
  // The PBA is read-only; only the mask bit of vector control sticks.
  MmioWrite(t + 48, ~0u);
  EXPECT_EQ(MmioRead(t + 48, 8), 0u);
  MmioWrite(t + 12, 0xffffffff);
  EXPECT_EQ(MmioRead(t + 12), 1u);
}

TEST_F(Fixture, IntxFollowsTheLevelUnlessDisabled) {
  auto fn = Make(1);
  Attach(*fn);
  fn->SetIntx(true);
  EXPECT_TRUE(line->level);
  EXPECT_EQ(fn->ConfigRead(kStatus, 2) & kStatusIntx, kStatusIntx);
  fn->ConfigWrite(kCommand, 2, kCommandIntxDisable);
  EXPECT_FALSE(line->level);
  // Status still shows the function's interrupt.
  EXPECT_EQ(fn->ConfigRead(kStatus, 2) & kStatusIntx, kStatusIntx);
  fn->ConfigWrite(kCommand, 2, 0);
  EXPECT_TRUE(line->level);
  fn->SetIntx(false);
  EXPECT_FALSE(line->level);
  EXPECT_EQ(fn->ConfigRead(kStatus, 2) & kStatusIntx, 0u);
  EXPECT_EQ(line->changes, 4);
}

TEST_F(Fixture, MsiEnableSilencesIntx) {
  auto fn = Make(1);
  const uint32_t cap = *fn->AddMsi(false);
  Attach(*fn);
  fn->SetIntx(true);
  EXPECT_TRUE(line->level);
  fn->ConfigWrite(cap + 2, 2, 1);
  EXPECT_FALSE(line->level);
}

// Vectors raised from device threads while a vCPU masks, unmasks and
// moves the table: every message sent is one the table held (ThreadSanitizer
// checks the locking).
TEST_F(Fixture, MsixUnderConcurrentMaskingAndRelocation) {
  auto fn = Make();
  const uint32_t cap = *fn->AddMsix(0, 4);
  std::atomic<int> sent{0};
  PciAttachment a;
  a.pio = &pio;
  a.mmio = &mmio;
  a.msi = [&sent](const md::MsiMessage& m) {
    EXPECT_EQ(m.address, 0xfee00000u);
    sent.fetch_add(1);
  };
  fn->Attach(std::move(a));
  fn->ConfigWrite(kBar0, 4, 0xc0000000);
  fn->ConfigWrite(kCommand, 2, kCommandMemory | kCommandMaster);
  for (uint64_t v = 0; v < 4; ++v) {
    MmioWrite(0xc0000000 + 16 * v, 0xfee00000);
    MmioWrite(0xc0000000 + 16 * v + 8, 0x40 + v);
  }
  fn->ConfigWrite(cap + 2, 2, 0x8000);
  std::atomic<bool> stop{false};
  std::vector<std::thread> raisers;
  for (uint32_t t = 0; t < 2; ++t) {
    raisers.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) fn->Notify((t + i) % 4);
    });
  }
  std::thread vcpu([&] {
    for (int i = 0; !stop.load(); ++i) {
      const uint64_t base = (i % 2) ? 0xc0100000 : 0xc0000000;
      fn->ConfigWrite(kBar0, 4, static_cast<uint32_t>(base));
      (void)mmio.Write(IoContext{}, base + 16 * (i % 4) + 12, 4, i % 3 == 0);
      fn->ConfigWrite(cap + 2, 2, (i % 5 == 0) ? 0xc000 : 0x8000);
    }
  });
  for (auto& t : raisers) t.join();
  stop = true;
  vcpu.join();
  // Unmask everything: whatever was pending goes out; nothing is lost
  // beyond what pending bits coalesce.
  fn->ConfigWrite(cap + 2, 2, 0x8000);
  const uint32_t bar = fn->ConfigRead(kBar0, 4) & ~0xfu;
  for (uint64_t v = 0; v < 4; ++v) MmioWrite(bar + 16 * v + 12, 0);
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(MmioRead(bar + 64, 8), 0u);  // no pending bits left
}

}  // namespace
}  // namespace strata
