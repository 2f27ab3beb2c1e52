#include "devices/ioapic.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

constexpr uint64_t kBase = kIoapicMmioBase;
constexpr uint8_t kVector = 0x34;

// RTE low dwords used below.
constexpr uint32_t kEdge = kVector;
constexpr uint32_t kLevel = kVector | kIoapicRteLevel;
constexpr uint32_t kMasked = kIoapicRteMasked;

// The 82093AA's index of the low (or high) dword of pin's entry.
constexpr uint32_t RteLow(uint32_t pin) { return kIoapicIndexRedirBase + 2 * pin; }
constexpr uint32_t RteHigh(uint32_t pin) { return RteLow(pin) + 1; }

class IoapicTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(); }

  // (Re)creates the IOAPIC on a fresh bus; on_send runs inside the MsiFn.
  void Make(std::function<void(const md::MsiMessage&)> on_send = nullptr) {
    on_send_ = std::move(on_send);
    bus_ = std::make_unique<Bus>(BusKind::kMmio);
    ioapic_ = std::make_shared<Ioapic>(
        [this](const md::MsiMessage& m) {
          {
            std::lock_guard lk(mu_);
            sent_.push_back(m);
          }
          if (on_send_) on_send_(m);
        },
        [this](uint32_t pin, const std::optional<md::MsiMessage>& m) {
          std::lock_guard lk(mu_);
          routes_.push_back({pin, m});
        });
    ASSERT_TRUE(bus_->Register(kBase, kIoapicMmioSize, ioapic_));
  }

  uint32_t Reg(uint32_t index) {
    EXPECT_TRUE(bus_->Write({}, kBase + kIoapicRegSel, 4, index));
    auto r = bus_->Read({}, kBase + kIoapicWindow, 4);
    EXPECT_TRUE(r);
    return r ? static_cast<uint32_t>(*r) : 0xdeadbeef;
  }
  void SetReg(uint32_t index, uint32_t value) {
    EXPECT_TRUE(bus_->Write({}, kBase + kIoapicRegSel, 4, index));
    EXPECT_TRUE(bus_->Write({}, kBase + kIoapicWindow, 4, value));
  }
  // Programs pin with low dword `low` and physical destination `dest`.
  void Program(uint32_t pin, uint32_t low, uint8_t dest = 0) {
    SetReg(RteHigh(pin), uint32_t{dest} << 24);
    SetReg(RteLow(pin), low);
  }
  std::vector<md::MsiMessage> Sent() {
    std::lock_guard lk(mu_);
    return sent_;
  }
  size_t SentCount() {
    std::lock_guard lk(mu_);
    return sent_.size();
  }
  std::vector<std::pair<uint32_t, std::optional<md::MsiMessage>>> Routes() {
    std::lock_guard lk(mu_);
    return routes_;
  }

  std::unique_ptr<Bus> bus_;
  std::shared_ptr<Ioapic> ioapic_;
  std::function<void(const md::MsiMessage&)> on_send_;
  std::mutex mu_;
  std::vector<md::MsiMessage> sent_;
  std::vector<std::pair<uint32_t, std::optional<md::MsiMessage>>> routes_;
};

TEST_F(IoapicTest, IdentificationRegisters) {
  EXPECT_EQ(Reg(kIoapicIndexVersion), 0x00170011u);  // 24 entries, 0x11
  EXPECT_EQ(Reg(kIoapicIndexId), 0u);
  SetReg(kIoapicIndexId, 0xffffffff);  // only bits 27:24 exist
  EXPECT_EQ(Reg(kIoapicIndexId), 0x0f000000u);
  EXPECT_EQ(Reg(kIoapicIndexArb), 0x0f000000u);  // loaded from the ID
  SetReg(kIoapicIndexId, 0x02000000);
  EXPECT_EQ(Reg(kIoapicIndexArb), 0x02000000u);
  SetReg(kIoapicIndexVersion, 0);  // read only
  SetReg(kIoapicIndexArb, 0);
  EXPECT_EQ(Reg(kIoapicIndexVersion), 0x00170011u);
  EXPECT_EQ(Reg(kIoapicIndexArb), 0x02000000u);
  // IOREGSEL keeps its 8-bit index; unimplemented indices read 0.
  ASSERT_TRUE(bus_->Write({}, kBase + kIoapicRegSel, 4, 0x12345603));
  EXPECT_EQ(*bus_->Read({}, kBase + kIoapicRegSel, 4), 0x03u);
  EXPECT_EQ(*bus_->Read({}, kBase + kIoapicWindow, 4), 0u);
  EXPECT_EQ(Reg(0x40), 0u);
  SetReg(0x40, 0xffffffff);
  EXPECT_EQ(Reg(0xff), 0u);
  EXPECT_EQ(ioapic_->stats().bad_accesses, 0u);
}

TEST_F(IoapicTest, EntriesResetMaskedAndKeepOnlyTheirFields) {
  for (uint32_t pin = 0; pin < kIoapicPinCount; ++pin) {
    EXPECT_EQ(Reg(RteLow(pin)), kMasked) << pin;
    EXPECT_EQ(Reg(RteHigh(pin)), 0u) << pin;
  }
  // Every bit written: reserved ones read 0; remote IRR and delivery
  // status are read only.
  SetReg(RteLow(7), 0xffffffff);
  EXPECT_EQ(Reg(RteLow(7)), 0x1afffu);  // bits 16, 15, 13, 11:0
  SetReg(RteHigh(7), 0xffffffff);
  EXPECT_EQ(Reg(RteHigh(7)), 0xff000000u);
  EXPECT_EQ(ioapic_->entry(7), 0xff0000000001afffull);
  // The other entries are untouched.
  EXPECT_EQ(Reg(RteLow(6)), kMasked);
  EXPECT_EQ(Reg(RteLow(8)), kMasked);
  EXPECT_TRUE(Sent().empty());
}

TEST(IoapicMsi, TranslationFollowsTheSdmMsiFormat) {
  auto msi = [](uint64_t e) {
    auto m = IoapicEntryToMsi(e);
    EXPECT_TRUE(m);
    return m.value_or(md::MsiMessage{});
  };
  // Fixed, physical, edge, destination 3.
  md::MsiMessage m = msi(0x34 | (3ull << 56));
  EXPECT_EQ(m.address, 0xfee03000u);
  EXPECT_EQ(m.data, 0x34u);
  // Lowest priority, logical destination 0x0f, level: trigger + assert.
  m = msi(0x41 | (1u << 8) | kIoapicRteDestLogical | kIoapicRteLevel |
          (0x0full << 56));
  EXPECT_EQ(m.address, 0xfee0f004u);
  EXPECT_EQ(m.data, 0xc141u);
  // Polarity and the read-only/mask bits do not show in the message.
  m = msi(0x50 | kIoapicRtePolarityLow | kIoapicRteMasked |
          kIoapicRteRemoteIrr | kIoapicRteDeliveryStatus | (0xffull << 56));
  EXPECT_EQ(m.address, 0xfeeff000u);
  EXPECT_EQ(m.data, 0x50u);
  // NMI, INIT, SMI and ExtINT are edge even when programmed level.
  EXPECT_EQ(msi((4u << 8) | kIoapicRteLevel).data, 0x400u);
  EXPECT_EQ(msi((5u << 8) | kIoapicRteLevel).data, 0x500u);
  EXPECT_EQ(msi(2u << 8).data, 0x200u);
  EXPECT_EQ(msi(0x20 | (7u << 8)).data, 0x720u);
  // Reserved delivery modes send nothing.
  EXPECT_FALSE(IoapicEntryToMsi(3u << 8));
  EXPECT_FALSE(IoapicEntryToMsi(6u << 8));
}

TEST_F(IoapicTest, MaskedPinsSendNothing) {
  Program(4, kEdge | kMasked);
  Program(5, kLevel | kMasked);
  ioapic_->SetLevel(4, true);
  ioapic_->SetLevel(5, true);
  ioapic_->SetLevel(4, false);
  ioapic_->SetLevel(4, true);
  EXPECT_TRUE(Sent().empty());
  EXPECT_EQ(Reg(RteLow(5)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_EQ(ioapic_->stats().msis, 0u);
}

TEST_F(IoapicTest, EdgeSendsOncePerRisingEdge) {
  Program(4, kEdge, /*dest=*/1);
  ioapic_->SetLevel(4, true);
  ASSERT_EQ(SentCount(), 1u);
  EXPECT_EQ(Sent()[0], (md::MsiMessage{0xfee01000, kVector}));
  ioapic_->SetLevel(4, true);   // no edge
  ioapic_->SetLevel(4, false);  // falling edge
  EXPECT_EQ(SentCount(), 1u);
  ioapic_->Eoi(kVector);        // edge: nothing to complete
  EXPECT_EQ(SentCount(), 1u);
  EXPECT_EQ(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  ioapic_->SetLevel(4, true);
  EXPECT_EQ(SentCount(), 2u);
  // An edge while masked is lost; unmasking a held edge line sends nothing.
  ioapic_->SetLevel(4, false);
  Program(4, kEdge | kMasked);
  ioapic_->SetLevel(4, true);
  Program(4, kEdge);
  EXPECT_EQ(SentCount(), 2u);
}

TEST_F(IoapicTest, LevelSetsRemoteIrrUntilEoi) {
  Program(4, kLevel);
  ioapic_->SetLevel(4, true);
  ASSERT_EQ(SentCount(), 1u);
  EXPECT_EQ(Sent()[0].data, kVector | 0xc000u);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  // In service: neither a repeated assert nor a new edge sends.
  ioapic_->SetLevel(4, true);
  ioapic_->SetLevel(4, false);
  ioapic_->SetLevel(4, true);
  EXPECT_EQ(SentCount(), 1u);
  // An EOI of another vector changes nothing.
  ioapic_->Eoi(kVector + 1);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_EQ(SentCount(), 1u);
  // Still asserted at the EOI: sent again at once, remote IRR set again.
  ioapic_->Eoi(kVector);
  EXPECT_EQ(SentCount(), 2u);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  // Deasserted before the EOI: completed, nothing more.
  ioapic_->SetLevel(4, false);
  ioapic_->Eoi(kVector);
  EXPECT_EQ(SentCount(), 2u);
  EXPECT_EQ(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  ioapic_->SetLevel(4, true);
  EXPECT_EQ(SentCount(), 3u);
  Ioapic::Stats s = ioapic_->stats();
  EXPECT_EQ(s.msis, 3u);
  EXPECT_EQ(s.eois, 3u);
  EXPECT_EQ(s.remote_irr_cleared, 2u);
  EXPECT_EQ(s.eoi_redeliveries, 1u);
}

TEST_F(IoapicTest, OneEoiCompletesEveryLevelEntryWithItsVector) {
  Program(4, kLevel);
  Program(9, kLevel);
  Program(10, kLevel + 1);  // another vector
  ioapic_->SetLevel(4, true);
  ioapic_->SetLevel(9, true);
  ioapic_->SetLevel(10, true);
  ASSERT_EQ(SentCount(), 3u);
  ioapic_->SetLevel(9, false);
  ioapic_->Eoi(kVector);  // pin 4 still asserted, pin 9 not
  EXPECT_EQ(SentCount(), 4u);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_EQ(Reg(RteLow(9)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_NE(Reg(RteLow(10)) & kIoapicRteRemoteIrr, 0u);
}

TEST_F(IoapicTest, UnmaskingAnAssertedLevelLineSends) {
  Program(4, kLevel | kMasked);
  ioapic_->SetLevel(4, true);
  EXPECT_TRUE(Sent().empty());
  SetReg(RteLow(4), kLevel);
  ASSERT_EQ(SentCount(), 1u);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  // Masking keeps remote IRR; the EOI completes it, unmasking sends again.
  SetReg(RteLow(4), kLevel | kMasked);
  EXPECT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  ioapic_->Eoi(kVector);
  EXPECT_EQ(SentCount(), 1u);
  EXPECT_EQ(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  SetReg(RteLow(4), kLevel);
  EXPECT_EQ(SentCount(), 2u);
}

TEST_F(IoapicTest, SwitchingToEdgeClearsRemoteIrr) {
  Program(4, kLevel);
  ioapic_->SetLevel(4, true);
  ASSERT_NE(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  SetReg(RteLow(4), kEdge);
  EXPECT_EQ(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_EQ(SentCount(), 1u);  // a held line is no edge
  // Back to level with the line held: sends.
  SetReg(RteLow(4), kLevel);
  EXPECT_EQ(SentCount(), 2u);
}

TEST_F(IoapicTest, NmiIsEdgeEvenWhenProgrammedLevel) {
  Program(2, (4u << 8) | kIoapicRteLevel, /*dest=*/0xff);
  ioapic_->SetLevel(2, true);
  ASSERT_EQ(SentCount(), 1u);
  EXPECT_EQ(Sent()[0], (md::MsiMessage{0xfeeff000, 0x400}));
  EXPECT_EQ(Reg(RteLow(2)) & kIoapicRteRemoteIrr, 0u);
  ioapic_->Eoi(0);
  EXPECT_EQ(SentCount(), 1u);
}

TEST_F(IoapicTest, RoutesFollowTheEntries) {
  EXPECT_TRUE(Routes().empty());  // all masked: nothing to say
  SetReg(RteHigh(4), 2u << 24);   // masked still: no route
  EXPECT_TRUE(Routes().empty());
  SetReg(RteLow(4), kLevel);
  ASSERT_EQ(Routes().size(), 1u);
  EXPECT_EQ(Routes()[0].first, 4u);
  EXPECT_EQ(Routes()[0].second, (md::MsiMessage{0xfee02000, kVector | 0xc000u}));
  SetReg(RteLow(4), kLevel);  // unchanged: not repeated
  ioapic_->SetLevel(4, true);  // remote IRR is no route change
  EXPECT_EQ(Routes().size(), 1u);
  SetReg(RteHigh(4), 3u << 24);
  ASSERT_EQ(Routes().size(), 2u);
  EXPECT_EQ(Routes()[1].second->address, 0xfee03000u);
  SetReg(RteLow(4), kLevel | kMasked);
  ASSERT_EQ(Routes().size(), 3u);
  EXPECT_FALSE(Routes()[2].second);
  SetReg(RteLow(5), 3u << 8);  // unmasked but a reserved mode: no route
  EXPECT_EQ(Routes().size(), 3u);
  EXPECT_EQ(ioapic_->stats().route_updates, 3u);
}

TEST_F(IoapicTest, RouteIsPublishedBeforeTheMessageItEnables) {
  // The platform relies on this: KVM must know a level vector before the
  // guest can EOI it.
  std::vector<char> order;
  auto wrapped = std::make_shared<Ioapic>(
      [&](const md::MsiMessage&) { order.push_back('m'); },
      [&](uint32_t, const std::optional<md::MsiMessage>&) {
        order.push_back('r');
      });
  Bus bus(BusKind::kMmio);
  ASSERT_TRUE(bus.Register(kBase, kIoapicMmioSize, wrapped));
  ASSERT_TRUE(bus.Write({}, kBase + kIoapicRegSel, 4, RteLow(4)));
  ASSERT_TRUE(bus.Write({}, kBase + kIoapicWindow, 4, kLevel | kMasked));
  wrapped->SetLevel(4, true);
  ASSERT_TRUE(bus.Write({}, kBase + kIoapicWindow, 4, kLevel));
  EXPECT_EQ(order, (std::vector<char>{'r', 'm'}));
}

TEST_F(IoapicTest, BadAccessesAreIgnoredLikeUndefinedCycles) {
  Program(4, kLevel);
  ASSERT_TRUE(bus_->Write({}, kBase + kIoapicRegSel, 4, RteLow(4)));
  const uint64_t before = ioapic_->entry(4);
  struct Access {
    uint64_t offset;
    uint32_t size;
  };
  const Access bad[] = {
      {0x00, 1}, {0x00, 2}, {0x00, 8}, {0x10, 1}, {0x10, 2}, {0x10, 8},
      {0x01, 4}, {0x02, 4}, {0x11, 4}, {0x12, 4}, {0x13, 1}, {0x04, 4},
      {0x14, 4}, {0x20, 4}, {0x40, 4}, {0xffc, 4}, {0xfff, 1}, {0xff8, 8},
  };
  uint64_t n = 0;
  for (const Access& a : bad) {
    auto r = bus_->Read({}, kBase + a.offset, a.size);
    ASSERT_TRUE(r) << a.offset << "/" << a.size;
    EXPECT_EQ(*r, 0u) << a.offset << "/" << a.size;
    EXPECT_TRUE(bus_->Write({}, kBase + a.offset, a.size, ~0ull));
    n += 2;
  }
  // Nothing moved: IOREGSEL still selects pin 4's entry, which is intact.
  EXPECT_EQ(*bus_->Read({}, kBase + kIoapicRegSel, 4), RteLow(4));
  EXPECT_EQ(ioapic_->entry(4), before);
  EXPECT_EQ(ioapic_->stats().bad_accesses, n);
  EXPECT_TRUE(Sent().empty());
  // Pins past 23 do not exist.
  ioapic_->SetLevel(kIoapicPinCount, true);
  ioapic_->SetLevel(~0u, true);
  EXPECT_TRUE(Sent().empty());
}

TEST_F(IoapicTest, InputLinesDriveTheirPins) {
  Program(4, kEdge);
  Program(11, kLevel + 2);
  ioapic_->input(4)->SetLevel(true);
  ioapic_->input(11)->SetLevel(true);
  ASSERT_EQ(SentCount(), 2u);
  EXPECT_EQ(Sent()[0].data & 0xff, kVector);
  EXPECT_EQ(Sent()[1].data & 0xff, kVector + 2u);
}

TEST_F(IoapicTest, TheMsiCallbackMayCallBackIn) {
  // A LAPIC that EOIs at once (and the IOAPIC that re-sends while the line
  // is held) runs entirely inside the callback; so does a register read.
  int eois_left = 3;
  Make([&](const md::MsiMessage& m) {
    EXPECT_EQ(Reg(kIoapicIndexVersion), kIoapicVersionValue);
    if (eois_left > 0) {
      --eois_left;
      ioapic_->Eoi(static_cast<uint8_t>(m.data));
    } else {
      ioapic_->SetLevel(4, false);  // the handler cleared the source
      ioapic_->Eoi(static_cast<uint8_t>(m.data));
    }
  });
  Program(4, kLevel);
  ioapic_->SetLevel(4, true);
  EXPECT_EQ(SentCount(), 4u);  // the first, then one per EOI with the line held
  EXPECT_EQ(Reg(RteLow(4)) & kIoapicRteRemoteIrr, 0u);
  EXPECT_EQ(ioapic_->stats().eoi_redeliveries, 3u);
}

TEST_F(IoapicTest, ConcurrentLinesEoisAndReprogramming) {
  // Level pins 0..7 toggled by one thread each, EOIs and reprogramming
  // from two more. Whatever the interleaving every message sets remote IRR
  // and every EOI that finds it set clears it, so once the lines are low
  // and a last EOI round has run, messages and completions match exactly.
  constexpr uint32_t kPins = 8;
  constexpr int kRounds = 2000;
  std::atomic<uint64_t> per_pin[kPins] = {};
  auto ioapic = std::make_shared<Ioapic>([&](const md::MsiMessage& m) {
    per_pin[(m.data & 0xff) - 0x40].fetch_add(1);
  });
  Bus bus(BusKind::kMmio);
  ASSERT_TRUE(bus.Register(kBase, kIoapicMmioSize, ioapic));
  std::mutex sel;  // IOREGSEL/IOWIN pairs are a guest-side critical section
  auto set_reg = [&](uint32_t index, uint32_t v) {
    std::lock_guard lk(sel);
    ASSERT_TRUE(bus.Write({}, kBase + kIoapicRegSel, 4, index));
    ASSERT_TRUE(bus.Write({}, kBase + kIoapicWindow, 4, v));
  };
  for (uint32_t p = 0; p < kPins; ++p) {
    set_reg(RteLow(p), (0x40 + p) | kIoapicRteLevel);
  }
  std::atomic<uint64_t> eois{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (uint32_t p = 0; p < kPins; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kRounds; ++i) ioapic->SetLevel(p, (i & 1) == 0);
      ioapic->SetLevel(p, false);
    });
  }
  std::thread eoier([&] {
    while (!stop.load()) {
      for (uint32_t p = 0; p < kPins; ++p) {
        ioapic->Eoi(static_cast<uint8_t>(0x40 + p));
        eois.fetch_add(1);
      }
    }
  });
  std::thread programmer([&] {
    for (int i = 0; i < kRounds / 4; ++i) {
      uint32_t p = static_cast<uint32_t>(i) % kPins;
      set_reg(RteLow(p), (0x40 + p) | kIoapicRteLevel | kIoapicRteMasked);
      set_reg(RteLow(p), (0x40 + p) | kIoapicRteLevel);
      uint32_t v;
      {
        std::lock_guard lk(sel);
        ASSERT_TRUE(bus.Write({}, kBase + kIoapicRegSel, 4, RteLow(p)));
        v = static_cast<uint32_t>(*bus.Read({}, kBase + kIoapicWindow, 4));
      }
      EXPECT_EQ(v & 0xff, 0x40 + p);
    }
  });
  for (auto& t : threads) t.join();
  programmer.join();
  stop = true;
  eoier.join();
  for (uint32_t p = 0; p < kPins; ++p) ioapic->Eoi(static_cast<uint8_t>(0x40 + p));
  uint64_t total = 0;
  for (uint32_t p = 0; p < kPins; ++p) {
    EXPECT_EQ(ioapic->entry(p) & kIoapicRteRemoteIrr, 0u) << p;
    total += per_pin[p].load();
  }
  Ioapic::Stats s = ioapic->stats();
  EXPECT_EQ(s.msis, total);
  EXPECT_EQ(s.remote_irr_cleared, s.msis);
  EXPECT_GT(s.msis, 0u);
}

}  // namespace
}  // namespace strata
