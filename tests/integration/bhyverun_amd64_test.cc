// Integration tests: our guest micro-kernels (tests/guests/amd64) booted by
// bhyverun on /dev/kvm; output and exit status checked.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

const std::string kBhyverun = "strata/frontends/bhyverun/bhyverun";

std::string Guest(const std::string& name) {
  return Runfile("strata/tests/guests/amd64/" + name + ".elf");
}

ProcessResult Bhyverun(std::vector<std::string> args, int timeout = 90) {
  args.insert(args.begin(), Runfile(kBhyverun));
  return RunProcess(args, timeout);
}

std::string Describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) +
         (r.timed_out ? " (timed out)" : "") + "\n--- stdout\n" + r.out +
         "--- stderr\n" + r.err;
}

TEST(BhyverunAmd64, DemoGuestBootsWithOneVcpu) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("strata demo guest"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("vcpus: 1 of 1 checked in"), std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.err, "");
}

TEST(BhyverunAmd64, DemoGuestCountsFourVcpusAndSeesTheVendor) {
  STRATA_REQUIRE_KVM();
  auto intel = Bhyverun({"-c", "4", "-o", "x86.cpu_vendor=intel"});
  EXPECT_EQ(intel.exit_code, 0) << Describe(intel);
  EXPECT_NE(intel.out.find("vcpus: 4 of 4 checked in"), std::string::npos)
      << Describe(intel);
  EXPECT_NE(intel.out.find("cpu vendor: GenuineIntel"), std::string::npos)
      << Describe(intel);
  auto amd = Bhyverun({"-c", "cpus=2,sockets=1,cores=2", "-o",
                       "x86.cpu_vendor=amd"});
  EXPECT_EQ(amd.exit_code, 0) << Describe(amd);
  EXPECT_NE(amd.out.find("cpu vendor: AuthenticAMD"), std::string::npos)
      << Describe(amd);
  EXPECT_NE(amd.out.find("vcpus: 2 of 2 checked in"), std::string::npos)
      << Describe(amd);
}

TEST(BhyverunAmd64, HelloInLongMode) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("hello"), "-a", "one two"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);  // debug-exit V=0
  EXPECT_NE(r.out.find("hello from strata guest"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("mode: 64-bit long mode, EFER.LMA=1"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("one two"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("hello: done"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, HelloInProtectedModeWithAModule) {
  STRATA_REQUIRE_KVM();
  std::string env = ::testing::TempDir() + "/env";
  std::ofstream(env) << "NR_CPUS=1\n";
  auto r = Bhyverun({"--kernel", Guest("hello32"), "--initrd", env});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("mode: 32-bit protected mode, CR0.PE=1 CR0.PG=0"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("modules: 1"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, SmpStartsEveryVcpuThroughInitSipi) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-c", "4", "-k", Guest("smp")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("smp: 4 of 4 cpus up"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("smp: apic ids 0 1 2 3"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("smp: PASS"), std::string::npos) << Describe(r);
  // Broadcast INIT/SIPI, and a topology with non-contiguous APIC ids.
  auto b = Bhyverun({"-c", "cpus=6,sockets=2,cores=3", "-k", Guest("smp"),
                     "-a", "broadcast"});
  EXPECT_EQ(b.exit_code, 1) << Describe(b);
  EXPECT_NE(b.out.find("smp: 6 of 6 cpus up"), std::string::npos) << Describe(b);
}

TEST(BhyverunAmd64, ExceptionsAreCaughtByTheGuestIdt) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("exceptions")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 8 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << Describe(r);
}

// Long mode: #PF (not present, write, read-only with CR0.WP), #GP, #UD, #DE
// through a 64-bit IDT, on the VMM's own identity page tables.
TEST(BhyverunAmd64, LongModeExceptionsIncludingPageFaults) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("exceptions64")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 10 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("PASS: #PF: read of an unmapped address above 4 GiB"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, PortAndMmioRoundTrips) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("io"), "-c", "2", "-m", "64M"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 23 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, RunsWithoutTheInKernelIrqchip) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "x86.irqchip=false", "-k", Guest("io")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 23 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
}

TEST(BhyverunAmd64, UnclaimedAccessesAreFatalWhenConfigured) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "bus.unclaimed_fatal=true", "-k", Guest("io")});
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  EXPECT_NE(r.err.find("unclaimed"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, RamAbove4GiBIsUsable) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("hello"), "-m", "3200M"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("0x100000000"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, MissingKernelIsAClearUsageError) {
  auto r = Bhyverun({"-k", "_NO_FILE_4Uhere_"});
  EXPECT_EQ(r.exit_code, 8) << Describe(r);
  EXPECT_NE(r.err.find("could not load kernel '_NO_FILE_4Uhere_'"),
            std::string::npos)
      << Describe(r);
}

TEST(BhyverunAmd64, BadOptionsAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-c", "0"},
           {"-c", "cpus=4,sockets=1,cores=2"},
           {"-c", "2,bogus=1"},
           {"-m", "lots"},
           {"-o", "novalue"},
           {"-f", "/nonexistent.json"},
           {"--frobnicate"},
           {"-o", "x86.cpu_vendor=via"},
           {"-o", "x86.irqchip=maybe"},
           {"-c", "100000"},
       }) {
    auto r = Bhyverun(args);
    EXPECT_EQ(r.exit_code, 8) << args[0] << " " << (args.size() > 1 ? args[1] : "")
                              << "\n" << Describe(r);
    EXPECT_FALSE(r.err.empty());
  }
}

TEST(BhyverunAmd64, BadKernelImagesAreRejectedClearly) {
  std::string junk = ::testing::TempDir() + "/junk.elf";
  std::ofstream(junk) << "this is not an ELF file";
  auto r = Bhyverun({"-k", junk});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);
  EXPECT_NE(r.exit_code, 77);
  EXPECT_NE(r.err.find("ELF"), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, DumpConfigShowsTheEffectiveConfig) {
  std::string json = ::testing::TempDir() + "/vm.json";
  std::ofstream(json) << R"({"memory": {"size": "128M"}, "x86": {"cpu_vendor": "amd"}})";
  auto r = Bhyverun({"-f", json, "-c", "3", "-o", "log.level=info",
                     "--dump-config"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("\"128M\""), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("\"amd\""), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("\"cpus\": \"3\""), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("\"sockets\": \"3\""), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("\"level\": \"info\""), std::string::npos) << Describe(r);
}

TEST(BhyverunAmd64, HelpMentionsEveryOption) {
  auto r = Bhyverun({"-h"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"-c", "-m", "--kernel", "-o", "-f", "--dump-config"}) {
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace strata::testing
