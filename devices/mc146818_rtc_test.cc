#include "devices/mc146818_rtc.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

constexpr uint64_t kPort = 0x70;
constexpr int64_t kNs = 1;
constexpr int64_t kUs = 1000 * kNs;
constexpr int64_t kMs = 1000 * kUs;
constexpr int64_t kSec = 1000 * kMs;
// 2023-11-14 22:13:20 UTC, a Tuesday, plus 100 ms (clear of UIP).
constexpr int64_t kStart = 1'700'000'000 * kSec + 100 * kMs;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

class RecordingIrq : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    std::lock_guard lock(mu);
    levels.push_back(asserted);
  }
  std::vector<bool> Levels() {
    std::lock_guard lock(mu);
    return levels;
  }
  bool High() {
    std::lock_guard lock(mu);
    return !levels.empty() && levels.back();
  }
  std::mutex mu;
  std::vector<bool> levels;
};

class RtcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rtc_ = std::make_shared<Mc146818Rtc>(&irq_, [this] { return now_.load(); });
    ASSERT_TRUE(bus_.Register(kPort, kRtcIoLength, rtc_));
  }
  uint8_t Cmos(uint8_t index) {
    EXPECT_TRUE(bus_.Write({}, kPort, 1, index));
    auto r = bus_.Read({}, kPort + 1, 1);
    EXPECT_TRUE(r);
    return r ? static_cast<uint8_t>(*r) : 0;
  }
  void SetCmos(uint8_t index, uint8_t v) {
    EXPECT_TRUE(bus_.Write({}, kPort, 1, index));
    EXPECT_TRUE(bus_.Write({}, kPort + 1, 1, v));
  }
  void Advance(int64_t ns) { now_ += ns; }
  // Counts the times `flag` is seen in register C while the clock runs
  // for `total` in steps of `step`, reading (and so clearing) C each step.
  int CountFlag(uint8_t flag, int64_t total, int64_t step) {
    int n = 0;
    for (int64_t t = 0; t < total; t += step) {
      Advance(step);
      if (Cmos(kRtcRegC) & flag) ++n;
    }
    return n;
  }

  Bus bus_{BusKind::kPio};
  RecordingIrq irq_;
  std::atomic<int64_t> now_{kStart};
  std::shared_ptr<Mc146818Rtc> rtc_;
};

TEST_F(RtcTest, TimeIsTheClocksInBcdByDefault) {
  EXPECT_EQ(Cmos(kRtcRegB), kRtcB24h);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  EXPECT_EQ(Cmos(kRtcMinutes), 0x13);
  EXPECT_EQ(Cmos(kRtcHours), 0x22);
  EXPECT_EQ(Cmos(kRtcDayOfWeek), 3);  // Tuesday; Sunday is 1
  EXPECT_EQ(Cmos(kRtcDayOfMonth), 0x14);
  EXPECT_EQ(Cmos(kRtcMonth), 0x11);
  EXPECT_EQ(Cmos(kRtcYear), 0x23);
  EXPECT_EQ(Cmos(kRtcCentury), 0x20);
}

TEST_F(RtcTest, BinaryModeGivesTheSameTimeInBinary) {
  SetCmos(kRtcRegB, kRtcB24h | kRtcBDm);
  EXPECT_EQ(Cmos(kRtcSeconds), 20);
  EXPECT_EQ(Cmos(kRtcMinutes), 13);
  EXPECT_EQ(Cmos(kRtcHours), 22);
  EXPECT_EQ(Cmos(kRtcDayOfMonth), 14);
  EXPECT_EQ(Cmos(kRtcMonth), 11);
  EXPECT_EQ(Cmos(kRtcYear), 23);
  EXPECT_EQ(Cmos(kRtcCentury), 20);
}

TEST_F(RtcTest, TwelveHourModeSetsThePmBit) {
  SetCmos(kRtcRegB, 0);  // BCD, 12-hour
  EXPECT_EQ(Cmos(kRtcHours), 0x80 | 0x10);  // 10 PM
  SetCmos(kRtcRegB, kRtcBDm);
  EXPECT_EQ(Cmos(kRtcHours), 0x80 | 10);
  // Midnight is 12 AM, noon 12 PM.
  Advance(2 * 3600 * kSec);  // 00:13
  EXPECT_EQ(Cmos(kRtcHours), 12);
  Advance(12 * 3600 * kSec);  // 12:13
  EXPECT_EQ(Cmos(kRtcHours), 0x80 | 12);
  // Written in 12-hour mode: 1 AM.
  SetCmos(kRtcHours, 1);
  SetCmos(kRtcRegB, kRtcBDm | kRtcB24h);
  EXPECT_EQ(Cmos(kRtcHours), 1);
}

TEST_F(RtcTest, SetTimeThenReadItBackAfterTheClockAdvances) {
  SetCmos(kRtcRegB, kRtcB24h | kRtcBSet);
  SetCmos(kRtcSeconds, 0x58);
  SetCmos(kRtcMinutes, 0x59);
  SetCmos(kRtcHours, 0x23);
  SetCmos(kRtcDayOfMonth, 0x31);
  SetCmos(kRtcMonth, 0x12);
  SetCmos(kRtcYear, 0x99);
  SetCmos(kRtcCentury, 0x19);
  SetCmos(kRtcRegB, kRtcB24h);
  Advance(3 * kSec);  // across the new year (and century)
  EXPECT_EQ(Cmos(kRtcSeconds), 0x01);
  EXPECT_EQ(Cmos(kRtcMinutes), 0x00);
  EXPECT_EQ(Cmos(kRtcHours), 0x00);
  EXPECT_EQ(Cmos(kRtcDayOfMonth), 0x01);
  EXPECT_EQ(Cmos(kRtcMonth), 0x01);
  EXPECT_EQ(Cmos(kRtcYear), 0x00);
  EXPECT_EQ(Cmos(kRtcCentury), 0x20);
  EXPECT_EQ(Cmos(kRtcDayOfWeek), 7);  // 2000-01-01 was a Saturday

  // A write while the clock runs changes that field only.
  SetCmos(kRtcMinutes, 0x30);
  Advance(kSec);
  EXPECT_EQ(Cmos(kRtcMinutes), 0x30);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x02);
  EXPECT_EQ(Cmos(kRtcHours), 0x00);
  // A long way on: 2000 is a leap year.
  Advance(59 * 86400 * kSec);
  EXPECT_EQ(Cmos(kRtcDayOfMonth), 0x29);
  EXPECT_EQ(Cmos(kRtcMonth), 0x02);
}

TEST_F(RtcTest, SetFreezesTheTimeAndStopsUpdates) {
  (void)Cmos(kRtcRegC);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBUie);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBSet | kRtcBUie);
  EXPECT_EQ(Cmos(kRtcRegB), kRtcB24h | kRtcBSet);  // SET clears UIE
  Advance(10 * kSec);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  EXPECT_EQ(Cmos(kRtcRegC) & kRtcCUf, 0);
  // UIP stays clear while SET holds the updates, even where it would show.
  Advance(kSec - 100 * kMs - 100 * kUs);
  EXPECT_EQ(Cmos(kRtcRegA) & kRtcAUip, 0);
  Advance(100 * kUs);
  SetCmos(kRtcRegB, kRtcB24h);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  Advance(kSec);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x21);
}

TEST_F(RtcTest, DividerResetHoldsTheTimeAndRestartsHalfASecondLater) {
  SetCmos(kRtcRegA, 0x70 | 6);
  Advance(5 * kSec);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  SetCmos(kRtcRegA, kRtcADivider32k | 6);
  Advance(400 * kMs);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  Advance(100 * kMs);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x21);
}

TEST_F(RtcTest, UipIsSetAroundTheUpdate) {
  EXPECT_EQ(Cmos(kRtcRegA), kRtcADivider32k | 6);  // 0x26 at power-on
  Advance(kSec - 100 * kMs - 200 * kUs);  // 200 µs before the update
  EXPECT_EQ(Cmos(kRtcRegA) & kRtcAUip, kRtcAUip);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x20);
  Advance(1 * kMs);  // 800 µs into the update cycle
  EXPECT_EQ(Cmos(kRtcRegA) & kRtcAUip, kRtcAUip);
  Advance(2 * kMs);
  EXPECT_EQ(Cmos(kRtcRegA) & kRtcAUip, 0);
  EXPECT_EQ(Cmos(kRtcSeconds), 0x21);
  // UIP is read-only.
  SetCmos(kRtcRegA, 0x80 | 0x26);
  EXPECT_EQ(Cmos(kRtcRegA), 0x26);
}

TEST_F(RtcTest, PeriodicFlagFollowsTheRate) {
  (void)Cmos(kRtcRegC);
  SetCmos(kRtcRegA, kRtcADivider32k | 6);  // 1024 Hz
  EXPECT_EQ(CountFlag(kRtcCPf, kSec, 50 * kUs), 1024);
  SetCmos(kRtcRegA, kRtcADivider32k | 3);  // 8192 Hz
  EXPECT_EQ(CountFlag(kRtcCPf, 100 * kMs, 50 * kUs), 819);
  SetCmos(kRtcRegA, kRtcADivider32k | 1);  // 256 Hz, not 16384
  EXPECT_EQ(CountFlag(kRtcCPf, kSec, 50 * kUs), 256);
  SetCmos(kRtcRegA, kRtcADivider32k | 2);  // 128 Hz
  EXPECT_EQ(CountFlag(kRtcCPf, kSec, 50 * kUs), 128);
  SetCmos(kRtcRegA, kRtcADivider32k | 15);  // 2 Hz
  EXPECT_EQ(CountFlag(kRtcCPf, 3 * kSec, kMs), 6);
  SetCmos(kRtcRegA, kRtcADivider32k);  // none
  EXPECT_EQ(CountFlag(kRtcCPf, kSec, kMs), 0);
  // PF is set whether or not PIE is: only IRQF and the line need PIE.
  EXPECT_TRUE(irq_.Levels().empty());
}

TEST_F(RtcTest, UpdateEndedOncePerSecond) {
  (void)Cmos(kRtcRegC);
  SetCmos(kRtcRegA, kRtcADivider32k);
  EXPECT_EQ(CountFlag(kRtcCUf, 3 * kSec, 10 * kMs), 3);
  // Not reading C for a while still leaves one UF.
  Advance(10 * kSec);
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCUf);
  EXPECT_EQ(Cmos(kRtcRegC), 0);
}

TEST_F(RtcTest, AlarmWithDontCareFields) {
  int alarms = 0;
  rtc_->SetAlarmCallback([&alarms] { ++alarms; });
  SetCmos(kRtcRegA, kRtcADivider32k);
  // Every minute at :30.
  SetCmos(kRtcSecondsAlarm, 0x30);
  SetCmos(kRtcMinutesAlarm, 0xc0);
  SetCmos(kRtcHoursAlarm, 0xff);
  (void)Cmos(kRtcRegC);
  EXPECT_EQ(CountFlag(kRtcCAf, 120 * kSec, 250 * kMs), 2);
  EXPECT_EQ(alarms, 0);  // AIE clear: no alarm interrupt
  // A full alarm, 22:15:00, with AIE: it fires once, with the line.
  SetCmos(kRtcSecondsAlarm, 0x00);
  SetCmos(kRtcMinutesAlarm, 0x15);
  SetCmos(kRtcHoursAlarm, 0x22);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBAie);
  (void)Cmos(kRtcRegC);
  EXPECT_EQ(Cmos(kRtcMinutes), 0x15);  // 22:15:20 by now
  EXPECT_EQ(CountFlag(kRtcCAf, 120 * kSec, 250 * kMs), 0);
  Advance(3600 * kSec - 120 * kSec - 30 * kSec);  // 23:14:50
  EXPECT_EQ(Cmos(kRtcRegC) & kRtcCAf, 0);
  Advance(23 * 3600 * kSec + 20 * kSec);  // 22:15:10 the next day
  rtc_->Poll();
  EXPECT_TRUE(irq_.High());
  EXPECT_EQ(alarms, 1);
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCIrqf | kRtcCAf | kRtcCUf);
  EXPECT_FALSE(irq_.High());
  // A gap of days still fires it (once per check).
  Advance(5 * 86400 * kSec);
  EXPECT_EQ(Cmos(kRtcRegC) & kRtcCAf, kRtcCAf);
  EXPECT_EQ(alarms, 2);
}

TEST_F(RtcTest, ReadingRegisterCClearsTheFlagsAndLowersTheLine) {
  (void)Cmos(kRtcRegC);
  SetCmos(kRtcRegA, kRtcADivider32k | 6);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBPie);
  EXPECT_TRUE(irq_.Levels().empty());
  Advance(2 * kMs);
  rtc_->Poll();
  EXPECT_EQ(irq_.Levels(), std::vector<bool>({true}));
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCIrqf | kRtcCPf);
  EXPECT_EQ(irq_.Levels(), std::vector<bool>({true, false}));
  EXPECT_EQ(Cmos(kRtcRegC), 0);
  // Each later period is a new rising edge once C was read.
  Advance(kMs);
  rtc_->Poll();
  Advance(kMs);
  rtc_->Poll();  // still high: the guest has not read C
  EXPECT_EQ(irq_.Levels(), std::vector<bool>({true, false, true}));
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCIrqf | kRtcCPf);
  EXPECT_EQ(irq_.Levels(), std::vector<bool>({true, false, true, false}));
  // Enabling PIE with PF already set raises IRQF at once.
  SetCmos(kRtcRegB, kRtcB24h);
  Advance(kMs);
  rtc_->Poll();
  EXPECT_EQ(irq_.Levels().size(), 4u);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBPie);
  EXPECT_TRUE(irq_.High());
  // Writes to C and D are ignored; D reads VRT.
  SetCmos(kRtcRegC, 0);
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCIrqf | kRtcCPf);
  SetCmos(kRtcRegD, 0);
  EXPECT_EQ(Cmos(kRtcRegD), kRtcDVrt);
}

TEST_F(RtcTest, CmosMemoryBytesFor128MiB) {
  rtc_->SetMemorySizes(128 * kMiB, 0);
  EXPECT_EQ(Cmos(kCmosBaseMemLow), 0x80);  // 640 KiB
  EXPECT_EQ(Cmos(kCmosBaseMemHigh), 0x02);
  EXPECT_EQ(Cmos(kCmosExtMemLow), 0xff);  // 127 MiB: capped at 0xffff KiB
  EXPECT_EQ(Cmos(kCmosExtMemHigh), 0xff);
  EXPECT_EQ(Cmos(kCmosExtMem2Low), 0xff);
  EXPECT_EQ(Cmos(kCmosExtMem2High), 0xff);
  EXPECT_EQ(Cmos(kCmosMem16mLow), 0x00);  // 112 MiB = 0x700 x 64 KiB
  EXPECT_EQ(Cmos(kCmosMem16mHigh), 0x07);
  EXPECT_EQ(Cmos(kCmosMem4gLow), 0);
  EXPECT_EQ(Cmos(kCmosMem4gMid), 0);
  EXPECT_EQ(Cmos(kCmosMem4gHigh), 0);
  uint32_t sum = 0;
  for (uint8_t i = 0x10; i < 0x2e; ++i) sum += Cmos(i);
  EXPECT_EQ(Cmos(kCmosChecksumHigh) << 8 | Cmos(kCmosChecksumLow), sum);

  rtc_->SetMemorySizes(8 * kMiB, 0);  // 7 MiB extended, nothing above 16
  EXPECT_EQ(Cmos(kCmosExtMemLow) | Cmos(kCmosExtMemHigh) << 8, 7 * 1024);
  EXPECT_EQ(Cmos(kCmosMem16mLow) | Cmos(kCmosMem16mHigh) << 8, 0);
}

TEST_F(RtcTest, CmosMemoryBytesFor5GiB) {
  // The pc machine's split: 3 GiB below the hole, 2 GiB from 4 GiB.
  rtc_->SetMemorySizes(3 * kGiB, 2 * kGiB);
  EXPECT_EQ(Cmos(kCmosExtMemLow) | Cmos(kCmosExtMemHigh) << 8, 0xffff);
  EXPECT_EQ(Cmos(kCmosMem16mLow) | Cmos(kCmosMem16mHigh) << 8,
            (3 * kGiB - 16 * kMiB) / (64 * 1024));  // 0xbf00
  EXPECT_EQ(Cmos(kCmosMem4gLow), 0x00);  // 2 GiB = 0x8000 x 64 KiB
  EXPECT_EQ(Cmos(kCmosMem4gMid), 0x80);
  EXPECT_EQ(Cmos(kCmosMem4gHigh), 0x00);
  rtc_->SetMemorySizes(3 * kGiB, 2048 * kGiB);  // 0x2000000 units: capped
  EXPECT_EQ(Cmos(kCmosMem4gLow), 0xff);
  EXPECT_EQ(Cmos(kCmosMem4gMid), 0xff);
  EXPECT_EQ(Cmos(kCmosMem4gHigh), 0xff);
}

TEST_F(RtcTest, IndexBit7IsTheNmiGateAndIsIgnored) {
  SetCmos(0x80 | 0x40, 0x5a);
  EXPECT_EQ(Cmos(0x40), 0x5a);
  EXPECT_EQ(Cmos(0x80 | 0x40), 0x5a);
  SetCmos(0x80 | kRtcRegB, kRtcB24h | kRtcBDm);
  EXPECT_EQ(Cmos(kRtcRegB), kRtcB24h | kRtcBDm);
  // All 114 bytes from 0x0e are plain RAM (0x32 is the century).
  for (uint32_t i = 0x0e; i < kRtcCmosSize; ++i) {
    if (i == kRtcCentury) continue;
    SetCmos(static_cast<uint8_t>(i), static_cast<uint8_t>(i ^ 0xa5));
  }
  for (uint32_t i = 0x0e; i < kRtcCmosSize; ++i) {
    if (i == kRtcCentury) continue;
    EXPECT_EQ(Cmos(static_cast<uint8_t>(i)), i ^ 0xa5) << i;
  }
}

TEST_F(RtcTest, OutOfRangeReads) {
  // The index port is write-only and floats.
  auto idx = bus_.Read({}, kPort, 1);
  ASSERT_TRUE(idx);
  EXPECT_EQ(*idx, 0xffu);
  // Indices past 127 wrap into the 128 bytes (bit 7 is not an address bit).
  SetCmos(0x7f, 0x11);
  EXPECT_EQ(Cmos(0xff), 0x11);
  // Past the two ports is not the RTC's.
  auto past = bus_.Read({}, kPort + 2, 1);
  ASSERT_TRUE(past);
  EXPECT_EQ(*past, 0xffu);
  // A 16-bit access is split over the two ports: index, then data.
  ASSERT_TRUE(bus_.Write({}, kPort, 2, 0x77'20));
  EXPECT_EQ(Cmos(0x20), 0x77);
  ASSERT_TRUE(bus_.Write({}, kPort, 1, 0x20));
  auto word = bus_.Read({}, kPort, 2);
  ASSERT_TRUE(word);
  EXPECT_EQ(*word, 0x77ffu);
}

TEST_F(RtcTest, TimerThreadRaisesTheEnabledInterrupt) {
  (void)Cmos(kRtcRegC);
  ASSERT_TRUE(rtc_->Start());
  ASSERT_TRUE(rtc_->Start());  // a no-op
  SetCmos(kRtcRegA, kRtcADivider32k | 6);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBPie);
  Advance(2 * kMs);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!irq_.High() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(irq_.High());
  EXPECT_EQ(Cmos(kRtcRegC), kRtcCIrqf | kRtcCPf);
  EXPECT_FALSE(irq_.High());
  // The update interrupt, and the alarm callback, from the thread.
  std::atomic<int> alarms{0};
  rtc_->SetAlarmCallback([&alarms] { ++alarms; });
  SetCmos(kRtcSecondsAlarm, 0xc0);
  SetCmos(kRtcMinutesAlarm, 0xc0);
  SetCmos(kRtcHoursAlarm, 0xc0);
  SetCmos(kRtcRegB, kRtcB24h | kRtcBAie);
  Advance(kSec);
  while (alarms.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(alarms.load(), 1);
  EXPECT_TRUE(irq_.High());
  rtc_->Stop();
  rtc_->Stop();  // a no-op
  EXPECT_EQ(Cmos(kRtcRegC) & kRtcCAf, kRtcCAf);
  // Restartable (the destructor stops it again).
  ASSERT_TRUE(rtc_->Start());
}

// A guest taking interrupts while the timer thread raises them: each read
// of register C must be followed by a new rising edge when the next flag
// comes, however the vCPU's lowering and the thread's raising interleave
// (an edge lost there leaves an ISA edge line high for good).
class EdgeCountingIrq : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    std::lock_guard lock(mu);
    if (asserted && !level) {
      ++edges;
      cv.notify_all();
    }
    level = asserted;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool level = false;
  uint64_t edges = 0;
};

TEST(RtcThreadTest, NoEdgeIsLostBetweenTheGuestAndTheTimerThread) {
  EdgeCountingIrq irq;
  std::atomic<int64_t> now{kStart};
  auto rtc = std::make_shared<Mc146818Rtc>(&irq, [&now] { return now.load(); });
  Bus bus(BusKind::kPio);
  ASSERT_TRUE(bus.Register(kPort, kRtcIoLength, rtc));
  auto out = [&](uint8_t index, uint8_t v) {
    ASSERT_TRUE(bus.Write({}, kPort, 1, index));
    ASSERT_TRUE(bus.Write({}, kPort + 1, 1, v));
  };
  auto in = [&](uint8_t index) {
    EXPECT_TRUE(bus.Write({}, kPort, 1, index));
    auto r = bus.Read({}, kPort + 1, 1);
    return r ? static_cast<uint8_t>(*r) : uint8_t{0};
  };
  out(kRtcRegA, kRtcADivider32k | 3);  // 8192 Hz
  out(kRtcRegB, kRtcB24h | kRtcBPie);
  ASSERT_TRUE(rtc->Start());
  std::atomic<bool> done{false};
  std::thread clock([&] {
    while (!done.load()) {
      now += 50 * kUs;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  constexpr int kInterrupts = 300;
  int handled = 0;
  for (; handled < kInterrupts; ++handled) {
    {
      std::unique_lock lock(irq.mu);
      if (!irq.cv.wait_for(lock, std::chrono::seconds(5), [&] {
            return irq.edges > static_cast<uint64_t>(handled);
          })) {
        break;
      }
    }
    (void)in(kRtcRegC);  // the handler's acknowledge
  }
  done = true;
  clock.join();
  rtc->Stop();
  EXPECT_EQ(handled, kInterrupts);
}

}  // namespace
}  // namespace strata
