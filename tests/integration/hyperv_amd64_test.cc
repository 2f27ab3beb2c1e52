// Integration tests of the Hyper-V enlightenments (x86.hyperv): the hyperv
// guest (tests/guests/amd64/hyperv.c) under bhyverun on /dev/kvm — with
// passthrough and hyperv-testdev, with a feature list, without them — and
// the configurations bhyverun refuses before it touches the host. A host
// whose KVM offers no Hyper-V is told apart from a failure: bhyverun says
// what it lacks ("is not supported by KVM on this host") and the boots
// are skipped.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

const std::string kBhyverun = "strata/frontends/bhyverun/bhyverun";
constexpr const char* kNoHostSupport = "is not supported by KVM on this host";

ProcessResult Bhyverun(std::vector<std::string> args, int timeout = 120) {
  args.insert(args.begin(), Runfile(kBhyverun));
  ProcessResult r = RunProcess(args, timeout);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  EXPECT_EQ(r.term_signal, 0) << "bhyverun was killed\n" << Describe(r);
  return r;
}

std::string Guest() {
  return Runfile("strata/tests/guests/amd64/hyperv.elf");
}

// Skips the calling test when the host's KVM has no Hyper-V emulation.
#define SKIP_WITHOUT_HOST_HYPERV(r)                                  \
  do {                                                               \
    if ((r).exit_code != 1 &&                                        \
        (r).err.find(kNoHostSupport) != std::string::npos) {         \
      GTEST_SKIP() << "this host's KVM lacks Hyper-V: " << (r).err;  \
    }                                                                \
  } while (0)

TEST(HypervAmd64, PassthroughWithTheTestDevice) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest(), "-c", "2", "-m", "64M", "-o",
                     "x86.hyperv=passthrough", "-o",
                     "platform.hvtest.device=hyperv-testdev"});
  SKIP_WITHOUT_HOST_HYPERV(r);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 26 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << Describe(r);
  // The SIMP/SIEFP the guest puts past RAM are reported, not written.
  EXPECT_NE(r.err.find("which is not guest RAM"), std::string::npos)
      << Describe(r);
}

TEST(HypervAmd64, AListWithoutTheSynic) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest(), "-c", "2", "-a", "nosynic", "-o",
                     "x86.hyperv=relaxed,vpindex,time", "-o",
                     "x86.hyperv_vendor_id=Microsoft Hv"});
  SKIP_WITHOUT_HOST_HYPERV(r);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 10 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
}

TEST(HypervAmd64, OffByDefault) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest(), "-a", "off"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 3 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
}

// The message connection needs the in-kernel IOAPIC; the rest of the
// enlightenments work with the split irqchip.
TEST(HypervAmd64, SplitIrqchipWithoutTheTestDevice) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest(), "-c", "2", "-a", "nosynic", "-o",
                     "x86.irqchip=split", "-o",
                     "x86.hyperv=relaxed,vpindex,time"});
  SKIP_WITHOUT_HOST_HYPERV(r);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 10 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
}

// Checked before any host access (no /dev/kvm needed): exit status 8 and a
// message naming the problem.
TEST(HypervAmd64, BadConfigurationsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c : {
           Case{{"-o", "x86.hyperv=evmcs"},
                "unknown Hyper-V feature 'evmcs' (known: passthrough, "
                "relaxed,"},
           Case{{"-o", "x86.hyperv="}, "x86.hyperv is empty"},
           Case{{"-o", "x86.hyperv=off,time"}, "'off' cannot be combined"},
           Case{{"-o", "x86.hyperv=synic"},
                "the Hyper-V synthetic interrupt controller (synic) needs the "
                "VP_INDEX MSR (vpindex)"},
           Case{{"-o", "x86.hyperv=vpindex,synic,stimer"},
                "synthetic timers (stimer) needs the reference time counter "
                "and TSC page (time)"},
           Case{{"-o", "x86.hyperv=passthrough", "-o",
                 "x86.hypervisor_bit=false"},
                "needs the hypervisor CPUID bit"},
           Case{{"-o", "x86.hyperv=passthrough", "-o",
                 "x86.hyperv_vendor_id=a vendor id too long"},
                "longer than 12 characters"},
           Case{{"-o", "platform.hv.device=hyperv-testdev"},
                "platform.hv (hyperv-testdev) needs the Hyper-V SynIC"},
           Case{{"-o", "x86.hyperv=relaxed", "-o",
                 "platform.hv.device=hyperv-testdev"},
                "needs the Hyper-V SynIC"},
           Case{{"-o", "x86.hyperv=passthrough", "-o", "x86.irqchip=split",
                 "-o", "platform.hv.device=hyperv-testdev"},
                "needs x86.irqchip=kernel"},
           Case{{"-o", "x86.hyperv=passthrough", "-o",
                 "platform.hv.device=hyperv-testdev", "-o",
                 "platform.hv.port=0x10000"},
                "platform.hv.port"},
       }) {
    std::vector<std::string> args = c.args;
    args.push_back("--dump-config");  // refused before the dump
    auto r = Bhyverun(args);
    EXPECT_EQ(r.exit_code, 8) << c.args[1] << "\n" << Describe(r);
    EXPECT_EQ(r.out, "") << c.args[1];
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
  }
}

TEST(HypervAmd64, TheDumpedConfigAndHelpShowTheKeys) {
  auto r = Bhyverun({"--dump-config", "-o", "x86.hyperv=passthrough,-crash",
                     "-o", "platform.hv.device=hyperv-testdev"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("\"hyperv\": \"passthrough,-crash\""),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"hyperv_vendor_id\": \"Microsoft Hv\""),
            std::string::npos)
      << r.out;
  auto h = Bhyverun({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* needle : {"x86.hyperv ", "x86.hyperv_vendor_id",
                             "hyperv-testdev", "passthrough"}) {
    EXPECT_NE(h.out.find(needle), std::string::npos) << needle;
  }
}

}  // namespace
}  // namespace strata::testing
