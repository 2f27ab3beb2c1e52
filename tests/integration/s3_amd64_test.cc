// ACPI S3 through bhyverun: tests/guests/amd64/s3.c suspends to RAM with the
// RTC alarm as its wake event; the machine parks every vCPU, wakes on the
// alarm and resumes vCPU 0 in real mode at the FACS waking vector, where
// the guest's stub checks PM1_STS (WAK_STS, RTC_STS) and the memory it left
// (debug-exit marker 0x2a: status 85). Without a waking vector the machine
// resets (status 2). KVM-unit-tests' s3 test does the same.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

constexpr int kResumedWithMarker = (0x2a << 1) | 1;
constexpr int kExitReset = 2;

ProcessResult Boot(std::vector<std::string> args) {
  args.insert(args.begin(), {Runfile("strata/frontends/bhyverun/bhyverun"),
                             "-k", Runfile("strata/tests/guests/amd64/s3.elf")});
  ProcessResult r = RunProcess(args, 50);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  EXPECT_EQ(r.term_signal, 0) << Describe(r);
  return r;
}

TEST(S3Amd64, SuspendsAndResumesAtTheWakingVector) {
  STRATA_REQUIRE_KVM();
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, {"-c", "3"},
        {"-c", "2", "-o", "x86.irqchip=split"}}) {
    std::vector<std::string> args = extra;
    args.push_back("-l");
    args.push_back("info");
    const ProcessResult r = Boot(args);
    EXPECT_EQ(r.exit_code, kResumedWithMarker) << Describe(r);
    EXPECT_NE(r.out.find("s3: suspending (waking vector 0x1000)"),
              std::string::npos)
        << Describe(r);
    EXPECT_NE(r.out.find("\nR\n"), std::string::npos) << Describe(r);
    EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << Describe(r);
    EXPECT_NE(r.err.find("ACPI S3: waking vCPU 0 at real-mode 0x100:0x0"),
              std::string::npos)
        << Describe(r);
  }
}

TEST(S3Amd64, NoWakingVectorResets) {
  STRATA_REQUIRE_KVM();
  const ProcessResult r = Boot({"-a", "novector"});
  EXPECT_EQ(r.exit_code, kExitReset) << Describe(r);
  EXPECT_NE(r.out.find("s3: suspending (waking vector 0x0)"), std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("\nR\n"), std::string::npos) << Describe(r);
}

}  // namespace
}  // namespace strata::testing
