#include "core/result.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace strata {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return MakeError(Errc::kInvalidArgument, "{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  int h = STRATA_TRY(Half(x));
  return STRATA_TRY_CTX(Half(h), "second halving");
}

Status CheckEven(int x) {
  STRATA_TRY(Half(x));
  return Ok();
}

TEST(ResultTest, ValueAndError) {
  Result<int> ok = Half(8);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 4);
  Result<int> bad = Half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "3 is odd");
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(ResultTest, TryPropagatesAndWraps) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "second halving: 3 is odd");
  EXPECT_TRUE(CheckEven(2).has_value());
  EXPECT_FALSE(CheckEven(1).has_value());
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultTest, SysErrorCarriesErrno) {
  errno = ENOENT;
  Error e = SysError("opening {}", "/nonexistent");
  EXPECT_EQ(e.code(), Errc::kIo);
  EXPECT_EQ(e.sys_errno(), ENOENT);
  EXPECT_NE(e.message().find("/nonexistent"), std::string::npos);
  EXPECT_NE(e.message().find("No such file"), std::string::npos);
  EXPECT_STREQ(ErrcName(Errc::kOutOfRange), "out of range");
}

}  // namespace
}  // namespace strata
