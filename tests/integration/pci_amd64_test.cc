// Integration tests: the pc machine's PCI bus 0 through bhyverun on
// /dev/kvm — the pci guest (tests/guests/amd64/pci.c) with and without
// QEMU's pci-testdev, the reset control register, and PCI instances the
// machine refuses.
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

// Runs bhyverun; a sanitizer report or a death by signal always fails.
ProcessResult Bhyverun(std::vector<std::string> args, int timeout = 50) {
  args.insert(args.begin(), Runfile(kBhyverun));
  ProcessResult r = RunProcess(args, timeout);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  EXPECT_EQ(r.term_signal, 0) << Describe(r);
  return r;
}

bool Has(const ProcessResult& r, const std::string& s) {
  return r.out.find(s) != std::string::npos;
}

TEST(PciAmd64, TheGuestScansSizesMovesAndDrivesPciTestdev) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("pci"), "-o", "pci.0.3.0.device=pci-testdev"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);  // guest 0: (0 << 1) | 1
  EXPECT_TRUE(Has(r, "pci: 00:00.0 8086:29c0 class 060000\n")) << Describe(r);
  EXPECT_TRUE(Has(r, "pci: 00:03.0 1b36:0005 class ff0000\n")) << Describe(r);
  EXPECT_TRUE(Has(r, "pci: 2 functions\n")) << Describe(r);
  // Where the VMM's allocator put the BARs (bottom of each window).
  EXPECT_TRUE(Has(r, "pci-testdev: BAR0 at 0xc0000000, BAR1 at 0xc000\n"))
      << Describe(r);
  for (const char* name :
       {"pci-testdev mem: mmio-no-eventfd\n",
        "pci-testdev mem: mmio-wildcard-eventfd\n",
        "pci-testdev mem: mmio-datamatch-eventfd\n",
        "pci-testdev io: portio-no-eventfd\n",
        "pci-testdev io: portio-wildcard-eventfd\n",
        "pci-testdev io: portio-datamatch-eventfd\n"}) {
    EXPECT_TRUE(Has(r, name)) << name << "\n" << Describe(r);
  }
  EXPECT_TRUE(Has(r, "SUMMARY: 15 tests, 0 unexpected failures\n"))
      << Describe(r);
  EXPECT_FALSE(Has(r, "FAIL:")) << Describe(r);
}

TEST(PciAmd64, WithoutPciDevicesTheHostBridgeIsStillThere) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("pci")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(Has(r, "pci: 00:00.0 8086:29c0 class 060000\n")) << Describe(r);
  EXPECT_TRUE(Has(r, "pci: 1 functions\n")) << Describe(r);
  EXPECT_TRUE(Has(r, "pci: no pci-testdev\n")) << Describe(r);
  EXPECT_TRUE(Has(r, "SUMMARY: 3 tests, 0 unexpected failures\n"))
      << Describe(r);
}

TEST(PciAmd64, RstCpuAt0xcf9ResetsTheMachine) {
  STRATA_REQUIRE_KVM();
  auto r = Bhyverun({"-k", Guest("pci"), "-a", "reset"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);  // ExitStatus::kExitReset
  EXPECT_TRUE(Has(r, "pci: resetting through 0xcf9\n")) << Describe(r);
  EXPECT_FALSE(Has(r, "still running")) << Describe(r);
  EXPECT_NE(r.err.find("guest requested a reset"), std::string::npos)
      << Describe(r);
}

TEST(PciAmd64, BadPciInstancesAreUsageErrorsNamingTheKey) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  for (const Case& c : {
           Case{{"-o", "pci.1.3.0.device=pci-testdev"},
                "config key 'pci.1.3.0.device': the pc machine has one PCI "
                "bus, 0; there is no bus 1"},
           Case{{"-o", "pci.0.32.0.device=pci-testdev"},
                "config key 'pci.0.32.0.device': PCI slot '32' must be a "
                "decimal number 0-31"},
           Case{{"-o", "pci.0.0.0.device=pci-testdev"},
                "config key 'pci.0.0.0.device': PCI slot 0 is taken by the "
                "host bridge (00:00.0)"},
           Case{{"-o", "pci.0.3.0.device=pci-testdev", "-o",
                 "pci.0.03.0.device=pci-testdev"},
                "name the same PCI function 0:3.0"},
           Case{{"-o", "pci.0.3.0.device=pci-testdevv"},
                "config key 'pci.0.3.0.device': unknown device model "
                "'pci-testdevv' (did you mean 'pci-testdev'?)"},
           Case{{"-o", "platform.t.device=pci-testdev"},
                "pci-testdev is a PCI device, not a platform device"},
       }) {
    std::vector<std::string> args = c.args;
    args.push_back("--dump-config");  // rejected before the dump
    auto r = Bhyverun(args);
    EXPECT_EQ(r.exit_code, 8) << c.args[1] << "\n" << Describe(r);
    EXPECT_EQ(r.out, "") << c.args[1];
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << Describe(r);
  }
}

}  // namespace
}  // namespace strata::testing
