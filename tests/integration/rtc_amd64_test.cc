// Integration tests: the pc machine's MC146818 RTC and i8042 reset, seen
// by tests/guests/amd64/rtc.c under bhyverun on /dev/kvm — the time it
// reads against the host's clock, the CMOS memory bytes for the -m size,
// periodic and update interrupts through IOAPIC pin 8 with either irqchip,
// and the reset (0xfe to port 0x64) as bhyverun's reset status.
#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

constexpr int kExitReset = 2;  // ExitStatus::kExitReset

// Runs bhyverun with the rtc guest; a sanitizer report or a death by
// signal is a failure whatever else is expected.
ProcessResult RunRtcGuest(std::vector<std::string> args) {
  args.insert(args.begin(),
              {Runfile("strata/frontends/bhyverun/bhyverun"), "-k",
               Runfile("strata/tests/guests/amd64/rtc.elf")});
  ProcessResult r = RunProcess(args, 60);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  EXPECT_EQ(r.term_signal, 0) << Describe(r);
  return r;
}

// The guest's Unix time from "rtc: time ... UTC, epoch N", or -1.
int64_t GuestEpoch(const std::string& out) {
  const std::string key = "UTC, epoch ";
  const size_t at = out.find(key);
  if (at == std::string::npos) return -1;
  return std::strtoll(out.c_str() + at + key.size(), nullptr, 10);
}

void ExpectPassedAndReset(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, kExitReset) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 10 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("rtc: resetting through the keyboard controller"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.err.find("bhyverun: guest requested a reset"), std::string::npos)
      << Describe(r);
}

TEST(RtcAmd64, GuestReadsTheHostTimeTakesInterruptsAndResets) {
  STRATA_REQUIRE_KVM();
  const int64_t before = ::time(nullptr);
  auto r = RunRtcGuest({});
  const int64_t after = ::time(nullptr);
  ExpectPassedAndReset(r);
  // The RTC starts at the host's UTC time: what the guest read lies within
  // the run, give or take a few seconds.
  const int64_t epoch = GuestEpoch(r.out);
  EXPECT_GE(epoch, before - 3) << Describe(r);
  EXPECT_LE(epoch, after + 3) << Describe(r);
  EXPECT_NE(r.out.find("PASS: 50 periodic interrupts at 1024 Hz"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("PASS: an update-ended interrupt within 1.2 s"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("rtc: cmos above 4 GiB: 0 x 64 KiB"), std::string::npos)
      << Describe(r);
}

// Our IOAPIC instead of KVM's: the same pin, the same edges.
TEST(RtcAmd64, InterruptsReachTheSplitIrqchipsIoapic) {
  STRATA_REQUIRE_KVM();
  auto r = RunRtcGuest({"-o", "x86.irqchip=split"});
  ExpectPassedAndReset(r);
}

// 5 GiB: 3 GiB below the hole, 2 GiB from 4 GiB (0x8000 x 64 KiB in CMOS
// 0x5b-0x5d). The guest does not touch the memory, so this is cheap.
TEST(RtcAmd64, CmosCountsMemoryAbove4GiB) {
  STRATA_REQUIRE_KVM();
  auto r = RunRtcGuest({"-m", "5G"});
  ExpectPassedAndReset(r);
  EXPECT_NE(r.out.find("rtc: RAM 5120 MiB (from fw_cfg): 3072 MiB below 4 "
                       "GiB, 2048 MiB above"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("rtc: cmos above 4 GiB: 32768 x 64 KiB"),
            std::string::npos)
      << Describe(r);
  // 128 MiB: 112 MiB above 16 MiB; 0x17/0x18 cap at 0xffff KiB.
  auto small = RunRtcGuest({"-m", "128M"});
  ExpectPassedAndReset(small);
  EXPECT_NE(small.out.find("PASS: CMOS 0x34/0x35: 1792 x 64 KiB above 16 MiB"),
            std::string::npos)
      << Describe(small);
}

}  // namespace
}  // namespace strata::testing
