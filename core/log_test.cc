#include "core/log.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace strata {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimit::Clock;

// Points the strata logger at a string for the test's lifetime.
class CapturedLog {
 public:
  CapturedLog() {
    saved_ = Log().sinks();
    level_ = Log().level();
    Log().sinks().clear();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("strata: %l: %v");
    Log().sinks().push_back(sink);
    Log().set_level(spdlog::level::info);
  }
  ~CapturedLog() {
    Log().sinks() = saved_;
    Log().set_level(level_);
  }
  std::vector<std::string> Lines() {
    Log().flush();
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }

 private:
  std::ostringstream out_;
  std::vector<spdlog::sink_ptr> saved_;
  spdlog::level::level_enum level_;
};

TEST(RateLimit, BurstThenOneSuppressionNotice) {
  RateLimit r("test", 10, 10s);
  const auto t0 = Clock::time_point() + 1h;
  int logged = 0, announced = 0;
  for (int i = 0; i < 10000; ++i) {
    auto d = r.Take(t0);
    logged += d.log;
    announced += d.announce;
    if (i < 10) {
      EXPECT_TRUE(d.log) << i;
    }
    EXPECT_EQ(d.suppressed, 0u);
  }
  EXPECT_EQ(logged, 10);
  EXPECT_EQ(announced, 1);
  EXPECT_EQ(r.dropped(), 9990u);
  // After a refill period one message gets through, with the count.
  auto d = r.Take(t0 + 10s);
  EXPECT_TRUE(d.log);
  EXPECT_EQ(d.suppressed, 9990u);
  // And the bucket is empty again: the next drop is announced anew.
  d = r.Take(t0 + 10s);
  EXPECT_FALSE(d.log);
  EXPECT_TRUE(d.announce);
}

TEST(RateLimit, SteadyFloodIsOneLinePerPeriod) {
  // One event per millisecond for 100 s with a 10 s refill: the burst, a
  // notice, then one line per period (each followed by a new notice).
  RateLimit r("test", 10, 10s);
  const auto t0 = Clock::time_point() + 1h;
  int lines = 0;
  for (int ms = 0; ms < 100000; ++ms) {
    auto d = r.Take(t0 + std::chrono::milliseconds(ms));
    lines += d.log || d.announce;
  }
  EXPECT_LE(lines, 10 + 1 + 2 * 10);
  EXPECT_GE(lines, 10 + 1 + 2 * 9);
}

TEST(RateLimit, QuietPeriodsRefillTheBurst) {
  RateLimit r("test", 3, 1s);
  auto t = Clock::time_point() + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(r.Take(t).log);
  EXPECT_FALSE(r.Take(t).log);
  t += 1h;  // long quiet: the bucket refills, but only to the burst
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(r.Take(t).log) << i;
  EXPECT_FALSE(r.Take(t).log);
}

TEST(RateLimit, TenThousandWarningsPrintABoundedNumberOfLines) {
  CapturedLog log;
  RateLimit r("ACPI sleep request");
  for (int i = 0; i < 10000; ++i) r.Warn("sleep type {} ignored", i % 7 + 1);
  auto lines = log.Lines();
  ASSERT_EQ(lines.size(), RateLimit::kDefaultBurst + 1u);
  EXPECT_EQ(lines[0], "strata: warning: sleep type 1 ignored");
  EXPECT_EQ(lines.back(),
            "strata: warning: suppressing further ACPI sleep request "
            "messages (at most 10 at once, then one every 10 s)");
}

TEST(RateLimit, MessagesBelowTheLevelCostNoTokens) {
  CapturedLog log;
  RateLimit r("test", 2, 1h);
  for (int i = 0; i < 100; ++i) r.Log(spdlog::level::debug, "hidden {}", i);
  EXPECT_EQ(r.dropped(), 0u);
  r.Warn("a");
  r.Warn("b");
  r.Warn("c");
  EXPECT_EQ(log.Lines().size(), 3u);  // a, b, suppressing
}

TEST(RateLimit, ConcurrentFloodIsBounded) {
  CapturedLog log;
  RateLimit r("test", 10, 1h);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < 10000; ++i) r.Warn("event {}", i);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(log.Lines().size(), 11u);
  EXPECT_EQ(r.dropped(), 4u * 10000 - 10);
}

// A VM's devices log through the VM's logger, not the strata logger.
TEST(RateLimit, LogsToTheLoggerItWasGiven) {
  CapturedLog process;
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%n: %v");
  auto vm_logger = std::make_shared<spdlog::logger>("vm1", sink);
  vm_logger->set_level(spdlog::level::warn);
  RateLimit r("test", vm_logger, 2, 1h);
  for (int i = 0; i < 5; ++i) r.Warn("event {}", i);
  vm_logger->flush();
  EXPECT_EQ(out.str(),
            "vm1: event 0\nvm1: event 1\n"
            "vm1: suppressing further test messages (at most 2 at once, then "
            "one every 3600 s)\n");
  EXPECT_TRUE(process.Lines().empty());
  // Its level, not the strata logger's, decides what is formatted.
  vm_logger->set_level(spdlog::level::err);
  RateLimit quiet("quiet", vm_logger, 2, 1h);
  quiet.Warn("hidden");
  EXPECT_EQ(quiet.dropped(), 0u);
}

}  // namespace
}  // namespace strata
