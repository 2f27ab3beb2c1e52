// Integration tests: our guest micro-kernels (tests/guests/amd64) booted by
// bhyverun on /dev/kvm; output and exit status checked.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arch/amd64/loader/elf_builder_testing.h"
#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

const std::string kBhyverun = "strata/frontends/bhyverun/bhyverun";

std::string Guest(const std::string& name) {
  return Runfile("strata/tests/guests/amd64/" + name + ".elf");
}

// Runs bhyverun without checking its stderr (for the sanitizer self-test).
ProcessResult BhyverunRaw(std::vector<std::string> args, int timeout = 90,
                          const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), Runfile(kBhyverun));
  return RunProcess(args, timeout, env);
}

// Runs bhyverun. Whatever a test expects of it, a sanitizer report or a
// death by signal is a failure: under --config=asan every boot here is also
// an ASan/UBSan run of bhyverun, and an abort must not pass for an exit
// status a test merely expected to be "not 0".
ProcessResult Bhyverun(std::vector<std::string> args, int timeout = 90) {
  ProcessResult r = BhyverunRaw(std::move(args), timeout);
  const std::string report = SanitizerReport(r.err);
  EXPECT_EQ(report, "") << "sanitizer report from bhyverun\n" << Describe(r);
  EXPECT_EQ(r.term_signal, 0) << "bhyverun was killed\n" << Describe(r);
  return r;
}

bool FileContainsBytes(const std::string& path, const std::string& needle) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)),
                    std::istreambuf_iterator<char>());
  return bytes.find(needle) != std::string::npos;
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

// The statistics dump at exit (debug level): per-vCPU exit counts and the
// unclaimed-access counters. The io guest makes exactly 5 unclaimed port
// accesses (inb, inw, inl, outl, inl at 0x9f0) and 4 unclaimed MMIO ones.
TEST(BhyverunAmd64, StatisticsAreDumpedAtExitAtDebugLevel) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("io"), "-l", "debug"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("VM 'strata' statistics:"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.err.find("unclaimed accesses: pio 5, mmio 4"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.err.find("vcpu 0: entries "), std::string::npos) << Describe(r);
  // Not at the default level.
  auto quiet = Bhyverun({"-k", Guest("io")});
  EXPECT_EQ(quiet.err.find("statistics"), std::string::npos) << Describe(quiet);
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

// A named CPU model (x86.cpu_model): the guest sees its vendor, signature
// and brand string; without one, a brand string is there too (KVM's table
// has none; Linux would print a family name).
TEST(BhyverunAmd64, NamedCpuModelsAndTheBrandString) {
  STRATA_REQUIRE_KVM();
  auto g1 = Bhyverun({"-o", "x86.cpu_model=Opteron_G1"});
  EXPECT_EQ(g1.exit_code, 0) << Describe(g1);
  EXPECT_NE(g1.out.find("cpu vendor: AuthenticAMD"), std::string::npos)
      << Describe(g1);
  EXPECT_NE(g1.out.find("cpu: family 0xf model 0x6 stepping 1, \"AMD "
                        "Opteron 240 (Gen 1 Class Opteron)\""),
            std::string::npos)
      << Describe(g1);
  auto ivy = Bhyverun({"-c", "2", "-o", "x86.cpu_model=IvyBridge"});
  EXPECT_EQ(ivy.exit_code, 0) << Describe(ivy);
  EXPECT_NE(ivy.out.find("cpu vendor: GenuineIntel"), std::string::npos)
      << Describe(ivy);
  EXPECT_NE(ivy.out.find("cpu: family 0x6 model 0x3a stepping 9, \"Intel "
                         "Xeon E3-12xx v2 (Ivy Bridge)\""),
            std::string::npos)
      << Describe(ivy);
  EXPECT_NE(ivy.out.find("vcpus: 2 of 2 checked in"), std::string::npos)
      << Describe(ivy);
  auto plain = Bhyverun({});
  EXPECT_EQ(plain.exit_code, 0) << Describe(plain);
  EXPECT_EQ(plain.out.find(", \"\"\n"), std::string::npos)
      << "an empty brand string\n" << Describe(plain);
  auto bad = Bhyverun({"-o", "x86.cpu_model=Pentium4"});
  EXPECT_EQ(bad.exit_code, 8) << Describe(bad);
  EXPECT_NE(bad.err.find("not a known model"), std::string::npos)
      << Describe(bad);
}

// Every vCPU the host allows (1024 on our machines), with APIC ids past
// 255: the demo's BSP switches to x2APIC mode and broadcasts INIT/SIPI, and
// each AP records the x2APIC id CPUID gives it.
TEST(BhyverunAmd64, DemoGuestBringsUpEveryVcpuTheHostAllows) {
  STRATA_REQUIRE_KVM();
  const int n = std::min(strata::testing::KvmMaxVcpus(), 1024);
  ASSERT_GT(n, 256) << "this host's KVM allows only " << n << " vCPUs";
  auto r = Bhyverun({"-c", std::to_string(n)});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("vcpus: " + std::to_string(n) + " of " +
                       std::to_string(n) + " checked in"),
            std::string::npos)
      << Describe(r);
  EXPECT_NE(r.out.find("apic: x2APIC mode, " + std::to_string(n) +
                       " distinct ids, highest " + std::to_string(n - 1) +
                       ", 0 mismatched"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.err, "");
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
  // Past 255 vCPUs, in x2APIC mode, each with its own id. 300 vCPU threads
  // (sanitized, in the nested SVM L1 on 2 TCG CPUs) may take longer than
  // the guest's default 5 s to check in: what this checks is that each one
  // does.
  auto x = Bhyverun({"-c", "300", "-k", Guest("smp"), "-a",
                     "broadcast timeout_ms=120000"});
  EXPECT_EQ(x.exit_code, 1) << Describe(x);
  EXPECT_NE(x.out.find("smp: 300 of 300 cpus up (x2APIC mode)"),
            std::string::npos)
      << Describe(x);
  EXPECT_NE(x.out.find(" 254 255 256 "), std::string::npos) << Describe(x);
  EXPECT_NE(x.out.find("smp: PASS"), std::string::npos) << Describe(x);
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
  EXPECT_NE(r.out.find("SUMMARY: 14 tests, 0 unexpected failures"),
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
  EXPECT_NE(r.out.find("SUMMARY: 29 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << Describe(r);
}

// x86.pit=false (QEMU's -machine pit=off, which KUT's vmexit_ipi asks for):
// no i8254, the rest as usual.
TEST(BhyverunAmd64, RunsWithoutThePit) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "x86.pit=false", "-k", Guest("io")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 29 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  auto bad = Bhyverun({"-o", "x86.pit=maybe", "-k", Guest("io")});
  EXPECT_EQ(bad.exit_code, 8) << Describe(bad);
  EXPECT_NE(bad.err.find("x86.pit"), std::string::npos) << Describe(bad);
}

// x86.cpu_pm (QEMU's -overcommit cpu-pm=on, which KUT's svm_pause_filter
// asks for): KVM leaves HLT and PAUSE to the guest; the smp guest's APs
// halt while they wait, and every one still checks in.
TEST(BhyverunAmd64, CpuPmLeavesIdleInstructionsToTheGuest) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-l", "info", "-o", "x86.cpu_pm=true", "-c", "2", "-k",
                     Guest("smp")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("smp: 2 of 2 cpus up"), std::string::npos)
      << Describe(r);
  EXPECT_NE(r.err.find("x86.cpu_pm: no exits for HLT PAUSE"),
            std::string::npos)
      << Describe(r);
  auto off = Bhyverun({"-l", "info", "-k", Guest("hello")});
  EXPECT_EQ(off.err.find("x86.cpu_pm"), std::string::npos) << Describe(off);
}

// The vmport platform device (QEMU's -machine vmport=on): the backdoor's
// GETVERSION answers in EBX and ECX, which the device writes during the
// I/O exit; without the device the port is unclaimed.
TEST(BhyverunAmd64, VmportAnswersInTheCallersRegisters) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "platform.vmport.device=vmport", "-k",
                     Guest("vmport")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 4 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  auto absent = Bhyverun({"-k", Guest("vmport"), "-a", "absent"});
  EXPECT_EQ(absent.exit_code, 1) << Describe(absent);
  EXPECT_NE(absent.out.find("SUMMARY: 1 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(absent);
}

TEST(BhyverunAmd64, RunsWithoutTheInKernelIrqchip) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "x86.irqchip=false", "-k", Guest("io")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 29 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
}

TEST(BhyverunAmd64, UnclaimedAccessesAreFatalWhenConfigured) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-o", "bus.unclaimed_fatal=true", "-k", Guest("io")});
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  EXPECT_NE(r.err.find("unclaimed"), std::string::npos) << Describe(r);
}

// A guest that repeats an unsupported request must not flood stderr: 10^4
// unsupported ACPI sleep requests give the rate limit's burst (10) and one
// "suppressing" line (a slow run may let a refill or two through).
TEST(BhyverunAmd64, GuestTriggeredWarningsAreRateLimited) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("acpi_flood")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("acpi_flood: 10000 sleep requests written"),
            std::string::npos)
      << Describe(r);
  const size_t lines = std::count(r.err.begin(), r.err.end(), '\n');
  std::printf("stderr lines for 10000 ACPI sleep requests: %zu\n", lines);
  EXPECT_GE(lines, 11u) << r.err;
  EXPECT_LE(lines, 14u) << r.err;
  EXPECT_NE(r.err.find("suppressing further ACPI sleep request messages"),
            std::string::npos)
      << r.err;
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
       }) {
    auto r = Bhyverun(args);
    EXPECT_EQ(r.exit_code, 8) << args[0] << " " << (args.size() > 1 ? args[1] : "")
                              << "\n" << Describe(r);
    EXPECT_FALSE(r.err.empty());
  }
}

// More vCPUs than the host's KVM allows (KVM_CAP_MAX_VCPUS): only KVM can
// say what the limit is.
TEST(BhyverunAmd64, MoreVcpusThanKvmAllowsIsAUsageError) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-c", "100000"});
  EXPECT_EQ(r.exit_code, 8) << Describe(r);
  EXPECT_FALSE(r.err.empty());
}

// A FIFO blocks open() until a writer appears; a device never ends. Every
// file bhyverun reads (kernel, initrd, config) must be a regular file, and
// the check must not block.
TEST(BhyverunAmd64, FilesThatAreNotRegularFilesAreUsageErrors) {
  const std::string fifo = ::testing::TempDir() + "/bhyverun.fifo";
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string dir = ::testing::TempDir();
  struct Case {
    std::vector<std::string> args;
    std::string what, path, type;
  };
  const std::vector<Case> cases = {
      {{"-k", fifo}, "kernel", fifo, "a FIFO (named pipe)"},
      {{"-f", fifo}, "config file", fifo, "a FIFO (named pipe)"},
      {{"-i", fifo}, "initrd", fifo, "a FIFO (named pipe)"},
      {{"-k", "/dev/zero"}, "kernel", "/dev/zero", "a character device"},
      {{"-i", "/dev/zero"}, "initrd", "/dev/zero", "a character device"},
      {{"-k", dir}, "kernel", dir, "a directory"},
      {{"-f", dir}, "config file", dir, "a directory"},
      {{"-k", dir + "/missing.elf"}, "kernel", dir + "/missing.elf",
       "No such file"},
  };
  for (const Case& c : cases) {
    auto r = Bhyverun(c.args, /*timeout=*/20);
    EXPECT_FALSE(r.timed_out) << c.args[0] << " " << c.args[1];
    EXPECT_EQ(r.exit_code, 8) << Describe(r);
    EXPECT_NE(r.err.find("could not load " + c.what + " '" + c.path + "'"),
              std::string::npos)
        << Describe(r);
    EXPECT_NE(r.err.find(c.type), std::string::npos) << Describe(r);
  }
  unlink(fifo.c_str());
}

TEST(BhyverunAmd64, BadKernelImagesAreRejectedClearly) {
  STRATA_REQUIRE_KVM();  // the image is loaded into a VM's memory
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

// --dump-tables writes the tables of the options given and runs nothing (no
// kernel needed, no guest output); its errors are usage errors.
// tests/integration/firmware_tables_test.sh checks the tables themselves.
TEST(BhyverunAmd64, DumpTablesWritesEachTableAndRunsNoGuest) {
  const std::string dir = ::testing::TempDir() + "/tables";
  auto r = Bhyverun({"--dump-tables", dir, "-c", "cpus=4,sockets=2,cores=2",
                     "-m", "512M"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "") << Describe(r);
  for (const char* f : {"APIC.dat", "FACP.dat", "DSDT.dat", "FACS.dat",
                        "MCFG.dat", "XSDT.dat", "RSDT.dat", "RSDP.dat",
                        "smbios.bin"}) {
    struct stat st;
    EXPECT_EQ(stat((dir + "/" + f).c_str(), &st), 0) << f;
  }
  EXPECT_TRUE(FileContainsBytes(dir + "/RSDP.dat", "RSD PTR "));
  EXPECT_TRUE(FileContainsBytes(dir + "/smbios.bin", "_SM3_"));

  auto bad_dir = Bhyverun({"--dump-tables", "/nonexistent/strata/tables"});
  EXPECT_EQ(bad_dir.exit_code, 8) << Describe(bad_dir);
  EXPECT_NE(bad_dir.err.find("cannot create '/nonexistent/strata/tables'"),
            std::string::npos)
      << Describe(bad_dir);
  auto no_dir = Bhyverun({"--dump-tables"});
  EXPECT_EQ(no_dir.exit_code, 8) << Describe(no_dir);
  auto bad_key = Bhyverun({"--dump-tables", dir, "-o", "cpu.sokets=2"});
  EXPECT_EQ(bad_key.exit_code, 8) << Describe(bad_key);
}

// --- Sanitizer builds -------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsanBuild = true;
#else
constexpr bool kAsanBuild = false;
#endif

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)),
                    std::istreambuf_iterator<char>());
  return bytes.find(needle) != std::string::npos;
}

// Under --config=asan this test and bhyverun (its data dependency) are both
// built with ASan+UBSan; every boot in this file then runs the sanitized
// VMM. Make sure that is the binary being run.
TEST(BhyverunAmd64, TheBhyverunUnderTestIsBuiltLikeTheTest) {
  EXPECT_EQ(FileContains(Runfile(kBhyverun), "libasan.so"), kAsanBuild)
      << Runfile(kBhyverun);
}

// A sanitizer report must end bhyverun with 6 (VMM error), never 1, which
// kvm-unit-tests reads as a pass. STRATA_SANITIZER_SELFTEST (sanitizer
// builds only; see main.cc) commits the bug on purpose.
TEST(BhyverunAmd64, SanitizerReportsExitWithTheVmmErrorStatus) {
  struct Case {
    const char* which;
    const char* report;
  };
  for (const Case& c :
       {Case{"asan", "ERROR: AddressSanitizer: heap-use-after-free"},
        Case{"ubsan", "runtime error: signed integer overflow"},
        Case{"leak", "ERROR: LeakSanitizer: detected memory leaks"}}) {
    auto r = BhyverunRaw({"--dump-config"}, 60,
                         {std::string("STRATA_SANITIZER_SELFTEST=") + c.which});
    if (kAsanBuild) {
      EXPECT_EQ(r.exit_code, 6) << c.which << "\n" << Describe(r);
      EXPECT_NE(r.err.find(c.report), std::string::npos) << Describe(r);
      EXPECT_NE(SanitizerReport(r.err), "") << Describe(r);
    } else {
      // Not compiled in: the variable is ignored.
      EXPECT_EQ(r.exit_code, 0) << c.which << "\n" << Describe(r);
      EXPECT_EQ(r.err, "");
    }
  }
  if (kAsanBuild) {
    // What the bazel test_env (abort_on_error=1) would have made of it: a
    // signal. Bhyverun() counts that as a failure too.
    auto r = BhyverunRaw({"--dump-config"}, 60,
                         {"STRATA_SANITIZER_SELFTEST=asan",
                          "ASAN_OPTIONS=abort_on_error=1"});
    EXPECT_EQ(r.term_signal, SIGABRT) << Describe(r);
  }
}

// The demo and the SMP guest with the host's vendor and each forced one
// (under --config=asan: through the ASan bhyverun, so the CPUID policies of
// both vendors run sanitized).
TEST(BhyverunAmd64, BootsWithTheHostVendorAndEachForcedVendor) {
  STRATA_REQUIRE_KVM();
  for (const char* vendor : {"host", "intel", "amd"}) {
    const std::string opt = std::string("x86.cpu_vendor=") + vendor;
    auto demo = Bhyverun({"-c", "cpus=4,sockets=2,cores=2", "-o", opt});
    EXPECT_EQ(demo.exit_code, 0) << vendor << "\n" << Describe(demo);
    EXPECT_NE(demo.out.find("vcpus: 4 of 4 checked in"), std::string::npos)
        << vendor << "\n" << Describe(demo);
    if (std::string(vendor) != "host") {
      EXPECT_NE(demo.out.find(std::string("cpu vendor: ") +
                              (vendor[0] == 'i' ? "GenuineIntel"
                                                : "AuthenticAMD")),
                std::string::npos)
          << Describe(demo);
    }
    auto smp = Bhyverun({"-c", "cpus=3,cores=3,threads=1", "-k", Guest("smp"),
                         "-o", opt});
    EXPECT_EQ(smp.exit_code, 1) << vendor << "\n" << Describe(smp);
    EXPECT_NE(smp.out.find("smp: PASS"), std::string::npos)
        << vendor << "\n" << Describe(smp);
  }
}

// --- Bad input is a usage error (8) -----------------------------------------

TEST(BhyverunAmd64, UnknownConfigKeysAreUsageErrorsWithASuggestion) {
  auto r = Bhyverun({"-o", "memory.sise=1G"});
  EXPECT_EQ(r.exit_code, 8) << Describe(r);
  EXPECT_NE(r.err.find("unknown config key 'memory.sise' (did you mean "
                       "'memory.size'?)"),
            std::string::npos)
      << Describe(r);
  // Also from a file, for a machdep key, and before --dump-config prints.
  std::string json = ::testing::TempDir() + "/typo.json";
  std::ofstream(json) << R"({"x86": {"cpu_vender": "amd"}})";
  auto f = Bhyverun({"-f", json, "--dump-config"});
  EXPECT_EQ(f.exit_code, 8) << Describe(f);
  EXPECT_EQ(f.out, "");
  EXPECT_NE(f.err.find("unknown config key 'x86.cpu_vender' (did you mean "
                       "'x86.cpu_vendor'?)"),
            std::string::npos)
      << Describe(f);
  auto far = Bhyverun({"-o", "frobnicate=1", "--dump-config"});
  EXPECT_EQ(far.exit_code, 8) << Describe(far);
  EXPECT_NE(far.err.find("known keys: cpus, "), std::string::npos)
      << Describe(far);
}

TEST(BhyverunAmd64, ConfigBombsAreUsageErrors) {
  // 10^5-deep JSON, a 10^4-part key, a 1 MB key: a clear error naming the
  // limit, fast, and no crash (the deep file overflowed the stack before).
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  std::string json = ::testing::TempDir() + "/deep.json";
  std::ofstream(json) << deep;
  std::string parts = "a";
  for (int i = 1; i < 10000; ++i) parts += ".a";
  std::string big_key = ::testing::TempDir() + "/big_key.json";
  std::ofstream(big_key) << "{\"" << std::string(1 << 20, 'k') << "\": 1}";
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c :
       {Case{{"-f", json, "--dump-config"}, "nested deeper than 32 levels"},
        Case{{"-o", parts + "=1", "--dump-config"},
             "has 10000 components; the limit is 32"},
        // One argv string may be at most 128 KiB (MAX_ARG_STRLEN), so the
        // 1 MB key comes from a file.
        Case{{"-o", std::string(100000, 'k') + "=1"},
             "is 100000 bytes long; the limit is 256 bytes"},
        Case{{"-f", big_key, "--dump-config"},
             "is 1048576 bytes long; the limit is 256 bytes"}}) {
    auto r = Bhyverun(c.args, 30);
    EXPECT_EQ(r.exit_code, 8) << Describe(r).substr(0, 2000);
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err.substr(0, 500);
    EXPECT_LT(r.err.size(), 1000u);
    EXPECT_EQ(r.out, "");
  }
}

TEST(BhyverunAmd64, NumbersAreRangeCheckedNotTruncated) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c : {
           // 2^32 + 1 used to be truncated to 1 and boot.
           Case{{"-o", "cpu.sockets=4294967297"},
                "config key 'cpu.sockets' is 4294967297, outside the range "
                "1..4294967295"},
           Case{{"-o", "cpus=4294967297"},
                "config key 'cpus' is 4294967297, outside the range"},
           // The product used to wrap (to 0 in the message) or fail as a
           // VMM error (6) in the CPUID policy.
           Case{{"-o", "cpu.sockets=4294967296", "-o", "cpu.cores=4294967296",
                 "-o", "cpus=1"},
                "outside the range 1..4294967295"},
           Case{{"-c", "cpus=1,sockets=4294967295,cores=2"},
                "cpu.sockets=4294967295 x cpu.cores=2 x cpu.threads=1 has "
                "more than 4294967295 logical processors"},
           Case{{"-o", "cpu.sockets=65536", "-o", "cpu.cores=65536", "-o",
                 "cpu.threads=2", "-o", "cpus=1"},
                "has more than 4294967295 logical processors"},
           Case{{"-m", "3000001"}, "not a multiple of 4 KiB"},
       }) {
    auto r = Bhyverun(c.args);
    EXPECT_EQ(r.exit_code, 8) << c.args[1] << "\n" << Describe(r);
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
  }
}

TEST(BhyverunAmd64, InputTheHostRejectsLateIsStillAUsageError) {
  STRATA_REQUIRE_KVM();
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c : {
           // 2 MiB of RAM leaves no room for the demo guest (used to be 6).
           Case{{"-m", "2M"}, "PT_LOAD segment 0 [0x200000, "},
           Case{{"-o", "cpu.max=100000"}, "more than this host's limit"},
           Case{{"-o", "x86.x2apic=false", "-c", "300"}, "needs x2APIC"},
           Case{{"-o", "com1.backend=file"}, "com1.backend must be"},
       }) {
    auto r = Bhyverun(c.args);
    EXPECT_EQ(r.exit_code, 8) << c.args[1] << "\n" << Describe(r);
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
  }
}

// Synthetic kernels (tests only need their headers to be judged).
std::string WriteElf(const std::string& name, const amd64::testing::TestElf& t) {
  const std::vector<uint8_t> bytes = amd64::testing::BuildElf(t);
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// 32-bit code at 2 MiB: xor eax, eax; out 0xf4, eax; hlt; jmp $-1. The
// debug exit with V = 0 ends bhyverun with status 1.
const std::vector<uint8_t> kExitCode = {0x31, 0xc0, 0xe7, 0xf4, 0xf4, 0xeb,
                                        0xfd};

amd64::testing::TestElf ExitKernel() {
  amd64::testing::TestElf t;
  t.entry = 0x200000;
  t.segments = {{0x200000, std::nullopt, kExitCode, 0x1000}};
  return t;
}

TEST(BhyverunAmd64, KernelSegmentsOutsideRamAreNamedPrecisely) {
  STRATA_REQUIRE_KVM();
  // The exit kernel itself boots: the harness is sound.
  auto ok = Bhyverun({"-k", WriteElf("exit.elf", ExitKernel())});
  EXPECT_EQ(ok.exit_code, 1) << Describe(ok);

  struct Case {
    uint64_t paddr, memsz;
    std::string needle;
  };
  for (const Case& c : {
           Case{0xfee00000, 0x1000,
                "PT_LOAD segment 1 [0xfee00000, 0xfee01000) overlaps the "
                "LAPIC page [0xfee00000, 0xfee01000)"},
           Case{0xfebff000, 0x2000,
                "PT_LOAD segment 1 [0xfebff000, 0xfec01000) overlaps the "
                "IOAPIC page [0xfec00000, 0xfec01000)"},
           Case{0xbffff000, 0x2000,
                "PT_LOAD segment 1 [0xbffff000, 0xc0001000) overlaps the "
                "MMIO hole below 4 GiB [0xc0000000, 0x100000000)"},
           Case{0xf0000, 0x1000,
                "PT_LOAD segment 1 [0xf0000, 0xf1000) overlaps the firmware "
                "area (ACPI and SMBIOS tables) [0xe0000, 0x100000)"},
           Case{0x40000000, 0x1000,
                "PT_LOAD segment 1 [0x40000000, 0x40001000) is outside guest "
                "RAM (RAM is [0x0, 0x10000000))"},
           Case{0xfff000, 0x10000000,
                "PT_LOAD segment 1 [0xfff000, 0x10fff000) is outside guest RAM "
                "from 0x10000000"},
       }) {
    amd64::testing::TestElf t = ExitKernel();
    t.segments.push_back({c.paddr, std::nullopt, {0x90}, c.memsz});
    auto r = Bhyverun({"-k", WriteElf("bad.elf", t), "-m", "256M"});
    EXPECT_EQ(r.exit_code, 8) << Describe(r);
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
    EXPECT_EQ(r.err.find("boot data"), std::string::npos) << Describe(r);
  }
}

// 65534 PT_LOADs (the most e_phnum allows): loaded in well under a second
// (the quadratic overlap check took 13-27 s). The first segment holds the
// exit code; the rest are 16-byte crumbs above 4 MiB, in reverse order.
TEST(BhyverunAmd64, KernelWith65534SegmentsBootsQuickly) {
  STRATA_REQUIRE_KVM();
  amd64::testing::TestElf t = ExitKernel();
  for (uint64_t i = 0; i < 65533; ++i) {
    t.segments.push_back(
        {0x400000 + (65532 - i) * 16, std::nullopt, {0x90}, 16});
  }
  const std::string path = WriteElf("many.elf", t);
  const auto start = std::chrono::steady_clock::now();
  auto r = Bhyverun({"-k", path});
  const double secs = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  std::printf("bhyverun with a 65534-segment kernel: %.3f s\n", secs);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_LT(secs, 10.0);
}

TEST(BhyverunAmd64, HelpListsTheDevicesAndTheirKeys) {
  auto r = Bhyverun({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* needle :
       {"Devices of the pc machine", "com1.backend", "uart_16550",
        "isa-debug-exit", "pc-testdev", "fw_cfg", "acpi_pm", "mc146818",
        "i8042",
        "platform.<name>.device=<model>",
        "pci.<bus>.<slot>.<func>.device=<model>", "[required]"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n"
                                                     << r.out;
  }
}

// --- Device instances from the config ---------------------------------------

TEST(BhyverunAmd64, DeclaredPlatformDevicesAreCreated) {
  STRATA_REQUIRE_KVM();
  // A second UART at COM2's address: created, and out of the io guest's way.
  auto r = Bhyverun({"-k", Guest("io"), "-o", "platform.com2.device=uart_16550",
                     "-o", "platform.com2.port=0x2f8", "-o",
                     "platform.com2.irq=3"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("SUMMARY: 29 tests, 0 unexpected failures"),
            std::string::npos)
      << Describe(r);
  // Its range is taken: a device declared on top of it fails to be created.
  auto clash = Bhyverun({"-o", "platform.dbg.device=isa-debug-exit", "-o",
                         "platform.dbg.port=0x3f8"});
  EXPECT_EQ(clash.exit_code, 8) << Describe(clash);  // the config's doing
  EXPECT_NE(clash.err.find("creating platform.dbg (isa-debug-exit): "),
            std::string::npos)
      << Describe(clash);
  EXPECT_NE(clash.err.find("com1"), std::string::npos) << Describe(clash);
}

TEST(BhyverunAmd64, BadDeviceInstancesAreUsageErrorsNamingTheKey) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c : {
           Case{{"-o", "pci.0.3.0.device=uart_16550"},
                "config key 'pci.0.3.0.device': uart_16550 is a platform "
                "device, not a PCI device"},
           Case{{"-o", "pci.0.32.0.device=uart_16550"},
                "config key 'pci.0.32.0.device': PCI slot '32' must be a "
                "decimal number 0-31"},
           Case{{"-o", "pci.256.0.0.device=x"}, "PCI bus '256'"},
           Case{{"-o", "pci.0.0.8.device=x"}, "PCI function '8'"},
           Case{{"-o", "platform.com2.device=uart16550"},
                "unknown device model 'uart16550' (did you mean "
                "'uart_16550'?)"},
           Case{{"-o", "platform.com2.device=uart_16550", "-o",
                 "platform.com2.port=0x2f8", "-o", "platform.com2.irq=3",
                 "-o", "platform.com2.backnd=none"},
                "unknown config key 'platform.com2.backnd' (did you mean "
                "'platform.com2.backend'?)"},
           Case{{"-o", "com1.backnd=none"},
                "unknown config key 'com1.backnd' (did you mean "
                "'com1.backend'?)"},
           Case{{"-o", "platform.com1.device=uart_16550"},
                "'com1' is already a device of this machine"},
           Case{{"-o", "platform.com2.device=uart_16550", "-o",
                 "platform.com2.irq=3"},
                "config key 'platform.com2.port' is not set"},
           Case{{"-o", "platform.com2.device=uart_16550", "-o",
                 "platform.com2.port=0x2f8", "-o", "platform.com2.irq=3",
                 "-o", "platform.com2.backend=stdio"},
                "platform.com2 wants stdio, which com1 already uses"},
       }) {
    std::vector<std::string> args = c.args;
    args.push_back("--dump-config");  // rejected before the dump
    auto r = Bhyverun(args);
    EXPECT_EQ(r.exit_code, 8) << c.args[1] << "\n" << Describe(r);
    EXPECT_EQ(r.out, "") << c.args[1];
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
  }
}

// --- The console ------------------------------------------------------------

// What the host types reaches the guest through COM1's receiver.
TEST(BhyverunAmd64, ConsoleInputReachesTheGuest) {
  STRATA_REQUIRE_KVM();
  int in[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  const std::string typed = "hello-strata";
  ASSERT_EQ(write(in[1], typed.data(), typed.size()),
            static_cast<ssize_t>(typed.size()));
  close(in[1]);  // and then end of input: the guest has all it asked for
  SpawnOptions o;
  o.stdin_fd = in[0];
  Process p({Runfile(kBhyverun), "-k", Guest("console"), "-a", "echo 12"}, o);
  close(in[0]);
  auto r = p.Wait(90);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("console: ready\n" + typed + "\nconsole: echoed 12 "
                       "bytes"),
            std::string::npos)
      << Describe(r);
}

// bhyverun's stdout is a pipe nobody reads while the guest floods COM1 with
// twice what the pipe and the console buffer hold: the guest still runs to
// its end (vCPUs never wait for the console), the excess is dropped and
// stderr says so, and what does reach the pipe is the start of the output.
TEST(BhyverunAmd64, AStalledStdoutNeverStopsTheGuest) {
  STRATA_REQUIRE_KVM();
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  (void)fcntl(out[1], F_SETPIPE_SZ, 4096);  // the smallest pipe
  const int pipe_size = fcntl(out[1], F_GETPIPE_SZ);
  SpawnOptions o;
  o.stdout_fd = out[1];
  const auto start = std::chrono::steady_clock::now();
  Process p({Runfile(kBhyverun), "-k", Guest("console"), "-a", "flood 128"},
            o);
  close(out[1]);
  auto r = p.Wait(90);  // reads stderr only: stdout stays stalled
  const double secs = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  std::printf("128 KiB flood into a stalled %d-byte pipe: %.1f s\n",
              pipe_size, secs);
  EXPECT_EQ(SanitizerReport(r.err), "") << r.err;
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 1) << r.err;  // the guest got to its exit
  EXPECT_NE(r.err.find("com1: output is not being read fast enough"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bytes of guest output were dropped"),
            std::string::npos)
      << r.err;
  ASSERT_EQ(fcntl(out[0], F_SETFL, O_NONBLOCK), 0);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) got.append(buf, n);
  close(out[0]);
  // However little the pipe took (a one-page pipe is full after the first
  // write, however short), it is the start of the output, in order.
  EXPECT_GE(got.size(), 1u);
  EXPECT_LE(got.size(), static_cast<size_t>(pipe_size));
  std::string expected;
  for (size_t i = 0; i < got.size(); ++i) {
    expected += i % 64 == 63 ? '\n' : static_cast<char>('a' + i % 64 % 26);
  }
  EXPECT_EQ(got, expected);
}

// bhyverun's stdin and stdout are a terminal (a pty whose controlling
// process it is, as under a shell).
class ConsoleTty : public ::testing::Test {
 protected:
  void SetUp() override {
    master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master_, 0);
    ASSERT_EQ(grantpt(master_), 0);
    ASSERT_EQ(unlockpt(master_), 0);
    slave_ = open(ptsname(master_), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(slave_, 0);
    ASSERT_EQ(tcgetattr(slave_, &cooked_), 0);
    ASSERT_TRUE(cooked_.c_lflag & ICANON);
  }
  void TearDown() override {
    close(slave_);
    close(master_);
  }
  std::unique_ptr<Process> Start(std::vector<std::string> args) {
    args.insert(args.begin(), Runfile(kBhyverun));
    SpawnOptions o;
    o.stdin_fd = o.stdout_fd = slave_;
    o.controlling_tty = true;
    return std::make_unique<Process>(args, o);
  }
  // Reads the terminal until `needle` shows up (or 60 s pass).
  bool ReadUntil(const std::string& needle) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (screen_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      struct pollfd p = {master_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[1024];
      ssize_t n = read(master_, buf, sizeof buf);
      if (n > 0) screen_.append(buf, n);
    }
    return true;
  }
  bool IsRaw() {
    struct termios t;
    return tcgetattr(slave_, &t) == 0 && !(t.c_lflag & (ICANON | ECHO));
  }
  void ExpectRestored(const std::string& what) {
    struct termios t;
    ASSERT_EQ(tcgetattr(slave_, &t), 0);
    EXPECT_EQ(t.c_lflag, cooked_.c_lflag) << what;
    EXPECT_EQ(t.c_iflag, cooked_.c_iflag) << what;
    EXPECT_EQ(t.c_oflag, cooked_.c_oflag) << what;
    EXPECT_EQ(t.c_cflag, cooked_.c_cflag) << what;
    EXPECT_EQ(0, memcmp(t.c_cc, cooked_.c_cc, sizeof t.c_cc)) << what;
  }

  int master_ = -1, slave_ = -1;
  struct termios cooked_;
  std::string screen_;
};

// Raw while the guest runs (keys arrive one by one, unechoed, no newline
// needed), restored when the guest exits.
TEST_F(ConsoleTty, RawWhileRunningAndRestoredAtGuestExit) {
  STRATA_REQUIRE_KVM();
  auto p = Start({"-k", Guest("console"), "-a", "echo 3"});
  ASSERT_TRUE(ReadUntil("console: ready")) << screen_;
  EXPECT_TRUE(IsRaw());
  ASSERT_EQ(write(master_, "xy\r", 3), 3);  // CR stays CR in raw mode
  ASSERT_TRUE(ReadUntil("console: echoed 3 bytes")) << screen_;
  auto r = p->Wait(60);
  EXPECT_EQ(r.exit_code, 1) << Describe(r) << screen_;
  EXPECT_EQ(SanitizerReport(r.err), "") << r.err;
  // Output processing stayed on: the guest's "\n" is "\r\n" on screen.
  EXPECT_NE(screen_.find("console: ready\r\nxy\r"), std::string::npos)
      << screen_;
  ExpectRestored("after the guest exited");
}

TEST_F(ConsoleTty, RestoredWhenStoppedBySigterm) {
  STRATA_REQUIRE_KVM();
  auto p = Start({"-k", Guest("console"), "-a", "echo 100"});
  ASSERT_TRUE(ReadUntil("console: ready")) << screen_;
  EXPECT_TRUE(IsRaw());
  p->Signal(SIGTERM);
  auto r = p->Wait(60);
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  EXPECT_NE(r.err.find("stopped by signal 15"), std::string::npos) << r.err;
  ExpectRestored("after SIGTERM");
}

// ^C on the terminal is SIGINT for bhyverun (ISIG stays on): a clean stop.
TEST_F(ConsoleTty, RestoredWhenInterruptedFromTheKeyboard) {
  STRATA_REQUIRE_KVM();
  auto p = Start({"-k", Guest("console"), "-a", "echo 100"});
  ASSERT_TRUE(ReadUntil("console: ready")) << screen_;
  ASSERT_EQ(write(master_, "\x03", 1), 1);
  auto r = p->Wait(60);
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  EXPECT_NE(r.err.find("stopped by signal 2"), std::string::npos) << r.err;
  ExpectRestored("after ^C");
}

TEST_F(ConsoleTty, RestoredWhenAVmmErrorStopsTheGuest) {
  STRATA_REQUIRE_KVM();
  auto p = Start({"-o", "bus.unclaimed_fatal=true", "-k", Guest("io")});
  auto r = p->Wait(60);
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  EXPECT_NE(r.err.find("unclaimed"), std::string::npos) << r.err;
  ExpectRestored("after a VMM error");
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
