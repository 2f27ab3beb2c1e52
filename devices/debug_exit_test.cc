#include "devices/debug_exit.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

class DebugExitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dev_ = std::make_shared<DebugExit>(
        [this](uint64_t status) { statuses_.push_back(status); });
    ASSERT_TRUE(bus_.Register(kDebugExitPort, kDebugExitLength, dev_));
  }
  Bus bus_{BusKind::kPio};
  std::shared_ptr<DebugExit> dev_;
  std::vector<uint64_t> statuses_;
};

TEST_F(DebugExitTest, ByteWriteExitsWithEncodedStatus) {
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort, 1, 0));
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort, 1, 0x1));
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort, 1, 0x7f));
  EXPECT_EQ(statuses_, (std::vector<uint64_t>{1, 3, 0xff}));
}

TEST_F(DebugExitTest, WiderWritesKeepAllBits) {
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort, 2, 0x1234));
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort, 4, 0xdeadbeef));
  EXPECT_EQ(statuses_, (std::vector<uint64_t>{0x2469, 0x1bd5b7ddf}));
  EXPECT_EQ(bus_.unclaimed_count(), 0u);
}

TEST_F(DebugExitTest, AnyOffsetInRangeExits) {
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort + 3, 1, 2));
  EXPECT_EQ(statuses_, (std::vector<uint64_t>{5}));
  // One past the end is not the device.
  ASSERT_TRUE(bus_.Write({}, kDebugExitPort + 4, 1, 2));
  EXPECT_EQ(statuses_.size(), 1u);
  EXPECT_EQ(bus_.unclaimed_count(), 1u);
}

TEST_F(DebugExitTest, ReadsAreAllOnes) {
  EXPECT_EQ(*bus_.Read({}, kDebugExitPort, 1), 0xffu);
  EXPECT_EQ(*bus_.Read({}, kDebugExitPort, 2), 0xffffu);
  EXPECT_EQ(*bus_.Read({}, kDebugExitPort, 4), 0xffffffffu);
  EXPECT_TRUE(statuses_.empty());
}

TEST(DebugExitNoCallbackTest, EmptyCallbackIsIgnored) {
  Bus bus(BusKind::kPio);
  ASSERT_TRUE(bus.Register(kDebugExitPort, kDebugExitLength,
                           std::make_shared<DebugExit>(nullptr)));
  EXPECT_TRUE(bus.Write({}, kDebugExitPort, 1, 1));
}

}  // namespace
}  // namespace strata
