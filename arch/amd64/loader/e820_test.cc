#include "core/guest_memory_testing.h"
#include "arch/amd64/loader/e820.h"

#include <gtest/gtest.h>

namespace strata::amd64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

TEST(E820, LowRamOnly) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "low", 0, 64 * kMiB).has_value());
  const std::vector<E820Entry> want = {
      {0, 0x9fc00, kE820Ram},
      {0x9fc00, 0x100000 - 0x9fc00, kE820Reserved},
      {0x100000, 63 * kMiB, kE820Ram},
  };
  EXPECT_EQ(BuildE820(mem), want);
}

TEST(E820, RamAbove4GiB) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "high", 4 * kGiB, 64 * kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "low", 0, 32 * kMiB).has_value());
  auto m = BuildE820(mem);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2], (E820Entry{0x100000, 31 * kMiB, kE820Ram}));
  EXPECT_EQ(m[3], (E820Entry{4 * kGiB, 64 * kMiB, kE820Ram}));
  for (size_t i = 1; i < m.size(); ++i) EXPECT_LE(m[i - 1].end(), m[i].addr);
}

TEST(E820, AdjacentSegmentsMerge) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "a", 0, 2 * kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "b", 2 * kMiB, 2 * kMiB).has_value());
  auto m = BuildE820(mem);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[2], (E820Entry{kMiB, 3 * kMiB, kE820Ram}));
}

TEST(E820, SegmentsAwayFromTheHole) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "hi", 2 * kMiB, kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "lo", 0, 0x80000).has_value());
  const std::vector<E820Entry> want = {
      {0, 0x80000, kE820Ram},
      {2 * kMiB, kMiB, kE820Ram},
  };
  EXPECT_EQ(BuildE820(mem), want);
}

TEST(E820, SegmentInsideTheHole) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "bios", 0xe0000, 0x20000).has_value());
  const std::vector<E820Entry> want = {{0xe0000, 0x20000, kE820Reserved}};
  EXPECT_EQ(BuildE820(mem), want);
}

TEST(E820, IsRamRangeAndDescribe) {
  GuestMemory mem;
  EXPECT_EQ(DescribeRam(mem), "no RAM");
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "a", 0, 2 * kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "b", 2 * kMiB, 2 * kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "c", 8 * kMiB, kMiB).has_value());
  EXPECT_TRUE(IsRamRange(mem, kMiB, 2 * kMiB));  // spans a and b
  EXPECT_TRUE(IsRamRange(mem, 0, 4 * kMiB));
  EXPECT_FALSE(IsRamRange(mem, 3 * kMiB, 2 * kMiB));
  EXPECT_FALSE(IsRamRange(mem, 7 * kMiB, 2 * kMiB));
  EXPECT_TRUE(IsRamRange(mem, 8 * kMiB, kMiB));
  EXPECT_FALSE(IsRamRange(mem, 8 * kMiB, kMiB + 1));
  EXPECT_TRUE(IsRamRange(mem, 100 * kMiB, 0));
  EXPECT_FALSE(IsRamRange(mem, ~0ull - 4, 16));
  EXPECT_EQ(DescribeRam(mem),
            "[0x0, 0x200000), [0x200000, 0x400000), [0x800000, 0x900000)");
}


TEST(E820, WhyNotRam) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "low", 0, 4 * kMiB).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "high", 16 * kMiB, kMiB).has_value());
  const MemoryHole holes[] = {
      {"the LAPIC page", 8 * kMiB, 0x1000},
      {"the hole", 4 * kMiB, 12 * kMiB},
  };
  EXPECT_EQ(WhyNotRam(mem, kMiB, kMiB, holes), "");
  EXPECT_EQ(WhyNotRam(mem, 0, 0, holes), "");
  // Holes in priority order: the LAPIC page inside the wider hole wins.
  EXPECT_EQ(WhyNotRam(mem, 7 * kMiB, 2 * kMiB, holes),
            "overlaps the LAPIC page [0x800000, 0x801000)");
  EXPECT_EQ(WhyNotRam(mem, 3 * kMiB, 2 * kMiB, holes),
            "overlaps the hole [0x400000, 0x1000000)");
  EXPECT_EQ(WhyNotRam(mem, 3 * kMiB, 2 * kMiB),
            "is outside guest RAM from 0x400000");
  EXPECT_EQ(WhyNotRam(mem, 16 * kMiB + 1, kMiB, holes),
            "is outside guest RAM from 0x1100000");
  EXPECT_EQ(WhyNotRam(mem, 32 * kMiB, 1, holes), "is outside guest RAM");
  EXPECT_EQ(WhyNotRam(mem, ~0ull - 4, 16, holes), "is outside guest RAM");
  // A hole backed by RAM (the pc firmware area) is still refused.
  const MemoryHole firmware[] = {{"the firmware area", 0xe0000, 0x20000}};
  EXPECT_EQ(WhyNotRam(mem, 0xf0000, 0x1000, firmware),
            "overlaps the firmware area [0xe0000, 0x100000)");
  EXPECT_EQ(WhyNotRam(mem, 0x100000, 0x1000, firmware), "");
  EXPECT_EQ(WhyNotRam(mem, 0xf0000, 0, firmware), "");
}

}  // namespace
}  // namespace strata::amd64
