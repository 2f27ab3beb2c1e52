#include "devices/acpi_pm.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

constexpr uint64_t kSts = kAcpiPmPort + kAcpiPm1StsOffset;
constexpr uint64_t kEn = kAcpiPmPort + kAcpiPm1EnOffset;
constexpr uint64_t kCnt = kAcpiPmPort + kAcpiPm1CntOffset;
constexpr uint64_t kTmr = kAcpiPmPort + kAcpiPmTmrOffset;

class RecordingIrq : public IrqLine {
 public:
  void SetLevel(bool asserted) override { levels.push_back(asserted); }
  std::vector<bool> levels;
};

class AcpiPmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pm_ = std::make_shared<AcpiPm>(
        [this](uint32_t slp_typ) { sleeps_.push_back(slp_typ); }, &sci_,
        [this] { return now_ns_.load(); });
    ASSERT_TRUE(bus_.Register(kAcpiPmPort, kAcpiPmLength, pm_));
  }
  uint64_t In(uint64_t port, uint32_t size) {
    auto r = bus_.Read({}, port, size);
    EXPECT_TRUE(r);
    return r ? *r : 0;
  }
  void Out(uint64_t port, uint32_t size, uint64_t v) {
    EXPECT_TRUE(bus_.Write({}, port, size, v));
  }

  Bus bus_{BusKind::kPio};
  RecordingIrq sci_;
  std::atomic<uint64_t> now_ns_{1'000'000'000'000};  // arbitrary start
  std::vector<uint32_t> sleeps_;
  std::shared_ptr<AcpiPm> pm_;
};

TEST_F(AcpiPmTest, ResetValues) {
  EXPECT_EQ(In(kSts, 2), 0u);
  EXPECT_EQ(In(kEn, 2), 0u);
  EXPECT_EQ(In(kCnt, 2), kAcpiPm1CntSciEn);
  EXPECT_EQ(In(kAcpiPmPort + 6, 2), 0u);  // reserved
  EXPECT_EQ(In(kTmr, 4), 0u);
}

TEST_F(AcpiPmTest, EnableBitsReadBackAndReservedBitsStayZero) {
  Out(kEn, 2, 0xffff);
  EXPECT_EQ(In(kEn, 2), 0x4721u);  // TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP
  Out(kEn, 1, 0x00);               // byte write clears only the low byte
  EXPECT_EQ(In(kEn, 2), 0x4700u);
  Out(kEn, 2, kAcpiPm1EnPwrBtn);
  EXPECT_EQ(In(kEn, 2), kAcpiPm1EnPwrBtn);
}

TEST_F(AcpiPmTest, PowerButtonStatusIsWriteOneToClear) {
  pm_->PressPowerButton();
  EXPECT_EQ(In(kSts, 2), kAcpiPm1StsPwrBtn);
  Out(kSts, 2, 0);  // writing 0 leaves it
  EXPECT_EQ(In(kSts, 2), kAcpiPm1StsPwrBtn);
  Out(kSts, 2, kAcpiPm1StsTmr);  // another bit: no effect on this one
  EXPECT_EQ(In(kSts, 2), kAcpiPm1StsPwrBtn);
  Out(kSts, 2, kAcpiPm1StsPwrBtn);
  EXPECT_EQ(In(kSts, 2), 0u);
}

TEST_F(AcpiPmTest, SciFollowsEnabledStatus) {
  pm_->PressPowerButton();
  EXPECT_TRUE(sci_.levels.empty());  // not enabled yet
  Out(kEn, 2, kAcpiPm1EnPwrBtn);
  EXPECT_EQ(sci_.levels, std::vector<bool>({true}));
  Out(kSts, 2, kAcpiPm1StsPwrBtn);  // the guest acknowledges
  EXPECT_EQ(sci_.levels, std::vector<bool>({true, false}));
  pm_->PressPowerButton();
  EXPECT_EQ(sci_.levels, std::vector<bool>({true, false, true}));
  Out(kEn, 2, 0);
  EXPECT_EQ(sci_.levels, std::vector<bool>({true, false, true, false}));
}

TEST_F(AcpiPmTest, WakeSourcesAndWakeStatus) {
  EXPECT_FALSE(pm_->WakeEnabled(kAcpiPm1StsRtc));
  Out(kEn, 2, kAcpiPm1EnRtc);  // what KUT's s3 test writes at PM1a_EVT + 2
  EXPECT_TRUE(pm_->WakeEnabled(kAcpiPm1StsRtc));
  EXPECT_FALSE(pm_->WakeEnabled(kAcpiPm1StsPwrBtn));
  pm_->SetWakeStatus(kAcpiPm1StsRtc | kAcpiPm1StsWak);
  EXPECT_EQ(In(kSts, 2), kAcpiPm1StsRtc | kAcpiPm1StsWak);
  EXPECT_EQ(sci_.levels, std::vector<bool>({true}));  // RTC_STS & RTC_EN
  Out(kSts, 2, kAcpiPm1StsRtc | kAcpiPm1StsWak);  // write-1-to-clear
  EXPECT_EQ(In(kSts, 2), 0u);
  EXPECT_EQ(sci_.levels, std::vector<bool>({true, false}));
}

TEST_F(AcpiPmTest, FourByteEventBlockWrite) {
  pm_->PressPowerButton();
  // Clear PWRBTN_STS and enable RTC in one 32-bit access.
  Out(kSts, 4, (uint64_t{kAcpiPm1EnRtc} << 16) | kAcpiPm1StsPwrBtn);
  EXPECT_EQ(In(kSts, 4), uint64_t{kAcpiPm1EnRtc} << 16);
}

TEST_F(AcpiPmTest, ControlRegister) {
  // SLP_TYP and BM_RLD read back; SCI_EN is hardware-owned.
  Out(kCnt, 2, (5u << kAcpiPm1CntSlpTypShift) | kAcpiPm1CntBmRld);
  EXPECT_EQ(In(kCnt, 2),
            (5u << kAcpiPm1CntSlpTypShift) | kAcpiPm1CntBmRld |
                kAcpiPm1CntSciEn);
  EXPECT_TRUE(sleeps_.empty());
  // GBL_RLS is write-only.
  Out(kCnt, 2, kAcpiPm1CntGblRls);
  EXPECT_EQ(In(kCnt, 2), kAcpiPm1CntSciEn);
}

TEST_F(AcpiPmTest, SlpEnCallsSleepWithType) {
  Out(kCnt, 2, (5u << kAcpiPm1CntSlpTypShift) | kAcpiPm1CntSlpEn |
                   kAcpiPm1CntSciEn);
  EXPECT_EQ(sleeps_, std::vector<uint32_t>({5}));
  // SLP_EN reads as 0; SLP_TYP keeps the value.
  EXPECT_EQ(In(kCnt, 2), (5u << kAcpiPm1CntSlpTypShift) | kAcpiPm1CntSciEn);
  // A byte write to the high byte (as some OSes do) works too.
  Out(kCnt + 1, 1, ((7u << kAcpiPm1CntSlpTypShift) | kAcpiPm1CntSlpEn) >> 8);
  EXPECT_EQ(sleeps_, std::vector<uint32_t>({5, 7}));
  // SLP_TYP 0 is a valid type too.
  Out(kCnt, 2, kAcpiPm1CntSlpEn);
  EXPECT_EQ(sleeps_, std::vector<uint32_t>({5, 7, 0}));
  // A low-byte write never sleeps.
  Out(kCnt, 1, 0xff);
  EXPECT_EQ(sleeps_.size(), 3u);
}

TEST_F(AcpiPmTest, TimerCountsAt3579545HzAndWraps) {
  EXPECT_EQ(In(kTmr, 4), 0u);
  now_ns_ += 1'000'000'000;  // 1 s
  EXPECT_EQ(In(kTmr, 4), kAcpiPmTimerHz);
  now_ns_ += 500'000'000;  // 1.5 s
  EXPECT_EQ(In(kTmr, 4), kAcpiPmTimerHz * 3 / 2);
  now_ns_ += 3'500'000'000;  // 5 s: past 2^24 ticks, wraps at 24 bits
  EXPECT_EQ(In(kTmr, 4), (5 * kAcpiPmTimerHz) & kAcpiPmTimerMask);
  EXPECT_LE(In(kTmr, 4), kAcpiPmTimerMask);
  // Hours in: no overflow in the conversion.
  now_ns_ += 10'000ull * 3600 * 1'000'000'000;
  const uint64_t ticks = (10'000ull * 3600 + 5) * kAcpiPmTimerHz;
  EXPECT_EQ(In(kTmr, 4), ticks & kAcpiPmTimerMask);
}

TEST_F(AcpiPmTest, TimerByteAndWordReads) {
  now_ns_ += 1'000'000'000;  // 3579545 = 0x369e99
  EXPECT_EQ(In(kTmr, 1), 0x99u);
  EXPECT_EQ(In(kTmr + 1, 1), 0x9eu);
  EXPECT_EQ(In(kTmr + 2, 1), 0x36u);
  EXPECT_EQ(In(kTmr + 3, 1), 0x00u);
  EXPECT_EQ(In(kTmr, 2), 0x9e99u);
  EXPECT_EQ(In(kTmr + 2, 2), 0x0036u);
  // Writes are ignored.
  Out(kTmr, 4, 0);
  EXPECT_EQ(In(kTmr, 4), 0x369e99u);
}

TEST_F(AcpiPmTest, WholeBlockRead) {
  now_ns_ += 1'000'000'000;
  Out(kEn, 2, kAcpiPm1EnPwrBtn);
  EXPECT_EQ(In(kAcpiPmPort, 8),
            (uint64_t{kAcpiPm1CntSciEn} << 32) |
                (uint64_t{kAcpiPm1EnPwrBtn} << 16));
  EXPECT_EQ(In(kAcpiPmPort + 4, 8),
            (uint64_t{0x369e99} << 32) | kAcpiPm1CntSciEn);
}

TEST(AcpiPmRealClockTest, TimerAdvancesOnMonotonicClock) {
  Bus bus(BusKind::kPio);
  ASSERT_TRUE(bus.Register(kAcpiPmPort, kAcpiPmLength,
                           std::make_shared<AcpiPm>(nullptr)));
  const uint64_t t0 = *bus.Read({}, kTmr, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t t1 = *bus.Read({}, kTmr, 4);
  // 20 ms is ~71600 ticks; allow for a wrap and a slow machine.
  const uint64_t delta = (t1 - t0) & kAcpiPmTimerMask;
  EXPECT_GE(delta, 60000u);
  EXPECT_LT(delta, 0x800000u);
  // No callback, no SCI: SLP_EN is harmless.
  EXPECT_TRUE(bus.Write({}, kCnt, 2, kAcpiPm1CntSlpEn));
}

}  // namespace
}  // namespace strata
