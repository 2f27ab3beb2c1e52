#include "devices/pc_testdev.h"

#include <memory>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

class PcTestdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    latch_ = std::make_shared<PcTestdevLatch>();
    ASSERT_TRUE(pio_.Register(kPcTestdevLatchPort, kPcTestdevLatchLength,
                              latch_));
    ASSERT_TRUE(pio_.Register(kPcTestdevLatchBytePort, kPcTestdevLatchLength,
                              latch_));
    ASSERT_TRUE(pio_.Register(kPcTestdevFlushPort, kPcTestdevFlushLength,
                              std::make_shared<PcTestdevFlush>()));
    ASSERT_TRUE(pio_.Register(
        kPcTestdevIrqPort, kPcTestdevIrqCount,
        std::make_shared<PcTestdevIrq>([this](uint32_t gsi, bool level) {
          irqs_.emplace_back(gsi, level);
        })));
    ASSERT_TRUE(mmio_.Register(kPcTestdevMmioBase, kPcTestdevMmioSize,
                               std::make_shared<PcTestdevMmio>()));
  }
  uint64_t In(uint64_t port, uint32_t size) {
    auto r = pio_.Read({}, port, size);
    EXPECT_TRUE(r);
    return r ? *r : 0;
  }

  Bus pio_{BusKind::kPio};
  Bus mmio_{BusKind::kMmio};
  std::shared_ptr<PcTestdevLatch> latch_;
  std::vector<std::pair<uint32_t, bool>> irqs_;
};

TEST_F(PcTestdevTest, LatchIsInitiallyZero) {
  EXPECT_EQ(In(kPcTestdevLatchPort, 4), 0u);
}

TEST_F(PcTestdevTest, LatchWholeAndByteLanes) {
  ASSERT_TRUE(pio_.Write({}, 0xe0, 4, 0x11223344));
  EXPECT_EQ(In(0xe0, 4), 0x11223344u);
  EXPECT_EQ(In(0xe0, 1), 0x44u);
  EXPECT_EQ(In(0xe1, 1), 0x33u);
  EXPECT_EQ(In(0xe3, 1), 0x11u);
  EXPECT_EQ(In(0xe2, 2), 0x1122u);
  // A byte write at 0xe2 updates only byte 2.
  ASSERT_TRUE(pio_.Write({}, 0xe2, 1, 0xaa));
  EXPECT_EQ(In(0xe0, 4), 0x11aa3344u);
  ASSERT_TRUE(pio_.Write({}, 0xe0, 2, 0xbeef));
  EXPECT_EQ(In(0xe0, 4), 0x11aabeefu);
  ASSERT_TRUE(pio_.Write({}, 0xe1, 2, 0x5566));
  EXPECT_EQ(In(0xe0, 4), 0x115566efu);
}

TEST_F(PcTestdevTest, ByteAliasSharesTheLatch) {
  ASSERT_TRUE(pio_.Write({}, 0xe8, 1, 0x12));
  ASSERT_TRUE(pio_.Write({}, 0xe9, 1, 0x34));
  ASSERT_TRUE(pio_.Write({}, 0xea, 2, 0x7856));
  EXPECT_EQ(In(0xe0, 4), 0x78563412u);
  EXPECT_EQ(In(0xe8, 4), 0x78563412u);
}

TEST_F(PcTestdevTest, AccessPastTheLatchIsUnclaimed) {
  EXPECT_EQ(In(0xe2, 4), 0xffffffffu);  // runs into the flush port
  EXPECT_EQ(pio_.unclaimed_count(), 1u);
}

TEST_F(PcTestdevTest, FlushPageAcceptsWrites) {
  ASSERT_TRUE(pio_.Write({}, kPcTestdevFlushPort, 4, 0x12345000));
  EXPECT_EQ(In(kPcTestdevFlushPort, 4), 0u);
  EXPECT_EQ(In(0xe0, 4), 0u);  // the latch is untouched
  EXPECT_EQ(pio_.unclaimed_count(), 0u);
}

TEST_F(PcTestdevTest, IrqPortsSetGsiLevels) {
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 10, 1, 1));
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 10, 1, 0));
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 0, 1, 0x80));
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 23, 1, 1));
  EXPECT_EQ(irqs_, (std::vector<std::pair<uint32_t, bool>>{
                       {10, true}, {10, false}, {0, true}, {23, true}}));
  // Port 0x2000 + 24 is outside the device.
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 24, 1, 1));
  EXPECT_EQ(irqs_.size(), 4u);
  EXPECT_EQ(pio_.unclaimed_count(), 1u);
  EXPECT_EQ(In(kPcTestdevIrqPort + 3, 1), 0u);
}

TEST_F(PcTestdevTest, WideIrqWriteDrivesConsecutiveGsis) {
  ASSERT_TRUE(pio_.Write({}, kPcTestdevIrqPort + 4, 2, 0x0001));
  EXPECT_EQ(irqs_, (std::vector<std::pair<uint32_t, bool>>{{4, true},
                                                           {5, false}}));
}

TEST_F(PcTestdevTest, MmioBehavesLikeRam) {
  const uint64_t base = kPcTestdevMmioBase;
  EXPECT_EQ(*mmio_.Read({}, base, 8), 0u);
  EXPECT_EQ(*mmio_.Read({}, base + kPcTestdevMmioSize - 8, 8), 0u);
  ASSERT_TRUE(mmio_.Write({}, base + 0x10, 8, 0x0123456789abcdef));
  EXPECT_EQ(*mmio_.Read({}, base + 0x10, 8), 0x0123456789abcdefu);
  EXPECT_EQ(*mmio_.Read({}, base + 0x10, 4), 0x89abcdefu);
  EXPECT_EQ(*mmio_.Read({}, base + 0x14, 4), 0x01234567u);
  EXPECT_EQ(*mmio_.Read({}, base + 0x11, 2), 0xabcdu);
  EXPECT_EQ(*mmio_.Read({}, base + 0x17, 1), 0x01u);
  ASSERT_TRUE(mmio_.Write({}, base + 0x12, 1, 0xff));
  EXPECT_EQ(*mmio_.Read({}, base + 0x10, 8), 0x0123456789ffcdefu);
  ASSERT_TRUE(mmio_.Write({}, base + 0x13, 2, 0x1122));
  EXPECT_EQ(*mmio_.Read({}, base + 0x10, 8), 0x0123451122ffcdefu);
  // Last bytes of the window.
  ASSERT_TRUE(mmio_.Write({}, base + kPcTestdevMmioSize - 1, 1, 0x5a));
  EXPECT_EQ(*mmio_.Read({}, base + kPcTestdevMmioSize - 8, 8),
            0x5a00000000000000u);
  // One past the end is unclaimed MMIO (reads zero, write dropped).
  ASSERT_TRUE(mmio_.Write({}, base + kPcTestdevMmioSize, 1, 0x77));
  EXPECT_EQ(*mmio_.Read({}, base + kPcTestdevMmioSize, 1), 0u);
  EXPECT_EQ(mmio_.unclaimed_count(), 2u);
}

}  // namespace
}  // namespace strata
