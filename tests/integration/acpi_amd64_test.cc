// The ACPI tables as a guest finds them: tests/guests/amd64/acpi.c scans
// the BIOS area for the RSDP, follows the XSDT and RSDT to the MADT and
// counts its processors against fw_cfg's vCPU count, on /dev/kvm through
// bhyverun. 300 vCPUs put ids past 254 in x2APIC entries.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

ProcessResult Boot(const std::string& cpus) {
  ProcessResult r =
      RunProcess({Runfile("strata/frontends/bhyverun/bhyverun"), "-c", cpus,
                  "-k", Runfile("strata/tests/guests/amd64/acpi.elf")},
                 50);
  EXPECT_EQ(SanitizerReport(r.err), "") << Describe(r);
  return r;
}

TEST(AcpiAmd64, GuestFindsOneMadtEntryPerVcpu) {
  STRATA_REQUIRE_KVM();
  struct Case {
    std::string cpus;
    std::string line;
  };
  for (const Case& c : {
           Case{"1",
                "acpi: 1 processors in the MADT (1 local APIC, 0 x2APIC), "
                "fw_cfg says 1"},
           Case{"4",
                "acpi: 4 processors in the MADT (4 local APIC, 0 x2APIC), "
                "fw_cfg says 4"},
           Case{"300",
                "acpi: 300 processors in the MADT (255 local APIC, 45 "
                "x2APIC), fw_cfg says 300"},
       }) {
    SCOPED_TRACE("-c " + c.cpus);
    const ProcessResult r = Boot(c.cpus);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);  // debug-exit V=0
    EXPECT_NE(r.out.find(c.line), std::string::npos) << Describe(r);
    EXPECT_NE(r.out.find("SUMMARY: 9 tests, 0 unexpected failures"),
              std::string::npos)
        << Describe(r);
  }
}

}  // namespace
}  // namespace strata::testing
