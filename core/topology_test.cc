#include "core/topology.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(TopologyTest, ProductAndValidation) {
  CpuTopology t{2, 1, 3, 2};
  EXPECT_EQ(t.Product(), 12u);
  EXPECT_TRUE(t.Validate(12).has_value());
  auto over = t.Validate(11);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), Errc::kOutOfRange);
  EXPECT_NE(over.error().message().find("12 vCPUs"), std::string::npos)
      << over.error().message();
  CpuTopology zero{1, 1, 0, 1};
  EXPECT_EQ(zero.Validate(100).error().code(), Errc::kInvalidArgument);
}

TEST(TopologyTest, HugeProductSaturatesInsteadOfWrapping) {
  // 2^32-1 in every level wraps a 64-bit product to a small number if
  // computed naively; it must compare above any limit.
  CpuTopology t{UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
  EXPECT_EQ(t.Product(), UINT64_MAX);
  auto r = t.Validate(4096);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("over 2^64"), std::string::npos)
      << r.error().message();
  CpuTopology wraps{65536, 1, 65536, 65536};  // 2^48: fits
  EXPECT_EQ(wraps.Product(), uint64_t{1} << 48);
}

TEST(TopologyTest, ToStringNamesClustersOnlyWhenPresent) {
  EXPECT_EQ((CpuTopology{2, 1, 3, 2}).ToString(),
            "2 sockets x 3 cores x 2 threads");
  EXPECT_EQ((CpuTopology{1, 4, 2, 1}).ToString(),
            "1 socket x 4 clusters x 2 cores x 1 thread");
}

}  // namespace
}  // namespace strata
