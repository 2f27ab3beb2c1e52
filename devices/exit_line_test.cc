#include "devices/exit_line.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

// Every status the matcher reports for the stream, fed in one piece.
std::vector<uint64_t> Statuses(ExitLineMatcher& m, std::string_view s) {
  std::vector<uint64_t> out;
  for (char c : s) {
    if (auto v = m.Feed(static_cast<uint8_t>(c))) out.push_back(*v);
  }
  return out;
}

std::vector<uint64_t> Statuses(std::string_view s) {
  ExitLineMatcher m;
  return Statuses(m, s);
}

using V = std::vector<uint64_t>;

TEST(ExitLineMatcher, AWholeLineMatches) {
  EXPECT_EQ(Statuses("EXIT: STATUS=1\n"), V{1});
  EXPECT_EQ(Statuses("PASS: selftest\n\nEXIT: STATUS=3\n"), V{3});
  EXPECT_EQ(Statuses("EXIT: STATUS=0\n"), V{0});
  EXPECT_EQ(Statuses("EXIT: STATUS=007\n"), V{7});
  // kvm-unit-tests' own output: a newline first.
  EXPECT_EQ(Statuses("SUMMARY: 3 tests\n\nEXIT: STATUS=1\n"), V{1});
  // Each matching line counts.
  EXPECT_EQ(Statuses("EXIT: STATUS=1\nEXIT: STATUS=5\n"), (V{1, 5}));
}

TEST(ExitLineMatcher, CrLfEndsALine) {
  EXPECT_EQ(Statuses("EXIT: STATUS=9\r\n"), V{9});
  EXPECT_EQ(Statuses("x\r\nEXIT: STATUS=9\r\n"), V{9});
  // A bare CR is not a line end, and a CR elsewhere spoils the line.
  EXPECT_EQ(Statuses("EXIT: STATUS=9\r"), V{});
  EXPECT_EQ(Statuses("junk\rEXIT: STATUS=9\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=9\r\r\n"), V{});
}

TEST(ExitLineMatcher, OnlyAtTheStartOfALine) {
  EXPECT_EQ(Statuses("FAIL EXIT: STATUS=1\n"), V{});
  EXPECT_EQ(Statuses(" EXIT: STATUS=1\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=1 \n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=1x\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=-1\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=+1\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=\n"), V{});
  EXPECT_EQ(Statuses("exit: status=1\n"), V{});
  EXPECT_EQ(Statuses("EXIT:  STATUS=1\n"), V{});
  // Without its newline the line is not complete.
  EXPECT_EQ(Statuses("EXIT: STATUS=1"), V{});
}

TEST(ExitLineMatcher, PartialLinesAcrossWrites) {
  ExitLineMatcher m;
  EXPECT_EQ(Statuses(m, "hello\nEXI"), V{});
  EXPECT_EQ(Statuses(m, "T: STA"), V{});
  EXPECT_EQ(Statuses(m, "TUS=4"), V{});
  EXPECT_EQ(Statuses(m, "2"), V{});
  EXPECT_EQ(Statuses(m, "\r"), V{});
  EXPECT_EQ(Statuses(m, "\n"), V{42});
  // A spoilt line does not spoil the next one.
  EXPECT_EQ(Statuses(m, "EXIT: STATUS=1 oops\nEXIT: STATUS=2\n"), V{2});
}

TEST(ExitLineMatcher, HugeNumbersAreIgnored) {
  EXPECT_EQ(Statuses("EXIT: STATUS=18446744073709551615\n"),
            V{UINT64_MAX});
  EXPECT_EQ(Statuses("EXIT: STATUS=18446744073709551616\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=99999999999999999999\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=999999999999999999999\n"), V{});
  EXPECT_EQ(Statuses("EXIT: STATUS=" + std::string(1000, '9') + "\n"), V{});
  // Followed by a good line, which still counts.
  EXPECT_EQ(Statuses("EXIT: STATUS=" + std::string(100, '1') +
                     "\nEXIT: STATUS=3\n"),
            V{3});
}

TEST(ExitLineMatcher, ALineWithoutEndKeepsMemoryBounded) {
  ExitLineMatcher m;
  // A megabyte without a newline, then a line that matches: the long line
  // is dropped (the matcher's size is fixed), the next one is seen.
  const std::string junk(1 << 20, 'a');
  EXPECT_EQ(Statuses(m, junk), V{});
  EXPECT_EQ(Statuses(m, "EXIT: STATUS=1\n"), V{});  // same (long) line
  EXPECT_EQ(Statuses(m, "EXIT: STATUS=1\n"), V{1});
  static_assert(sizeof(ExitLineMatcher) < 64);
  // A line that ends in the exit text after kMaxLine bytes does not match.
  EXPECT_EQ(Statuses(std::string(ExitLineMatcher::kMaxLine, ' ') +
                     "EXIT: STATUS=1\n"),
            V{});
}

class Capture : public CharBackend {
 public:
  void Write(std::span<const uint8_t> data) override {
    out.append(data.begin(), data.end());
  }
  std::string out;
};

TEST(ExitLineBackend, PassesEverythingOnAndReportsTheStatus) {
  Capture next;
  std::vector<uint64_t> seen;
  ExitLineBackend tap(&next, [&](uint64_t s) { seen.push_back(s); });
  const std::string a = "ok\nEXIT: STA";
  const std::string b = "TUS=5\n";
  tap.Write(std::span(reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  EXPECT_TRUE(seen.empty());
  tap.Write(std::span(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
  EXPECT_EQ(seen, V{5});
  EXPECT_EQ(next.out, a + b);
  // Without a console the bytes are dropped but still matched.
  ExitLineBackend alone(nullptr, [&](uint64_t s) { seen.push_back(s); });
  const std::string c = "EXIT: STATUS=7\n";
  alone.Write(std::span(reinterpret_cast<const uint8_t*>(c.data()), c.size()));
  EXPECT_EQ(seen, (V{5, 7}));
}

}  // namespace
}  // namespace strata
