#include "arch/amd64/firmware/acpi.h"

#include <gtest/gtest.h>

#include <cstring>

#include "arch/amd64/platform/pc_layout.h"

namespace strata::amd64::firmware {
namespace {

uint32_t Get32(const Bytes& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint16_t Get16(const Bytes& b, size_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

uint8_t Sum(std::span<const uint8_t> b) {
  uint8_t s = 0;
  for (uint8_t v : b) s = static_cast<uint8_t>(s + v);
  return s;
}

MachineInfo Cpus(uint32_t n, uint32_t max = 0) {
  MachineInfo m;
  m.topo = {n, 1, 1};
  m.cpus = n;
  m.max_cpus = max ? max : n;
  m.memory_size = 256ull << 20;
  return m;
}

struct Entry {
  uint8_t type;
  uint32_t apic_id;
  uint32_t uid;
  uint32_t flags;
};

std::vector<Entry> Processors(const Bytes& madt) {
  std::vector<Entry> out;
  for (size_t at = 44; at < madt.size(); at += madt[at + 1]) {
    if (madt[at + 1] == 0) break;
    if (madt[at] == kMadtLocalApic) {
      out.push_back(
          {madt[at], madt[at + 3], madt[at + 2], Get32(madt, at + 4)});
    } else if (madt[at] == kMadtLocalX2apic) {
      out.push_back({madt[at], Get32(madt, at + 4), Get32(madt, at + 12),
                     Get32(madt, at + 8)});
    }
  }
  return out;
}

TEST(AcpiTest, ChecksumMakesTheSumZero) {
  Bytes b = {1, 2, 3, 0, 250};
  b[3] = Checksum(b);
  EXPECT_EQ(Sum(b), 0);
  EXPECT_EQ(Checksum(Bytes{}), 0);
}

TEST(AcpiTest, EveryTableSumsToZero) {
  const MachineInfo m = Cpus(4);
  const uint64_t p[] = {0x1000, 0x2000};
  for (const Bytes& t :
       {BuildDsdt(m), BuildFadt(m, 0xe0000, 0xe0100), BuildMadt(m), BuildMcfg(),
        BuildRsdt(p), BuildXsdt(p)}) {
    EXPECT_EQ(Get32(t, 4), t.size());
    EXPECT_EQ(Sum(t), 0) << std::string(t.begin(), t.begin() + 4);
  }
}

TEST(AcpiTest, RsdpHasBothChecksums) {
  const Bytes r = BuildRsdp(0xe1000, 0xe2000);
  ASSERT_EQ(r.size(), kRsdpSize);
  EXPECT_EQ(std::string(r.begin(), r.begin() + 8), "RSD PTR ");
  EXPECT_EQ(r[15], 2);
  EXPECT_EQ(Sum(std::span(r).first(20)), 0);
  EXPECT_EQ(Sum(r), 0);
  EXPECT_EQ(Get32(r, 16), 0xe1000u);
  EXPECT_EQ(Get32(r, 24), 0xe2000u);
}

TEST(AcpiTest, FadtDescribesThePmBlock) {
  const MachineInfo m = Cpus(1);
  const Bytes f = BuildFadt(m, 0xe0000, 0xe0100);
  ASSERT_EQ(f.size(), kFadtSize);
  EXPECT_EQ(f[8], 6);
  EXPECT_EQ(Get32(f, 36), 0xe0000u);  // FIRMWARE_CTRL
  EXPECT_EQ(Get32(f, 40), 0xe0100u);  // DSDT
  EXPECT_EQ(Get16(f, 46), 9);         // SCI_INT
  EXPECT_EQ(Get32(f, 48), 0u);        // SMI_CMD
  EXPECT_EQ(Get32(f, 56), 0x600u);
  EXPECT_EQ(Get32(f, 64), 0x604u);
  EXPECT_EQ(Get32(f, 76), 0x608u);
  EXPECT_EQ(f[88], 4);
  EXPECT_EQ(f[89], 2);
  EXPECT_EQ(f[91], 4);
  EXPECT_EQ(f[108], 0x32);
  EXPECT_EQ(Get16(f, 109), 2);                // 8042
  EXPECT_NE(Get32(f, 112) & (1u << 10), 0u);  // RESET_REG_SUP
  EXPECT_EQ(f[116], 1);                       // RESET_REG in I/O space
  EXPECT_EQ(Get32(f, 120), 0xcf9u);
  EXPECT_EQ(f[128], 6);
  EXPECT_EQ(Get32(f, 132), 0xe0000u);  // X_FIRMWARE_CTRL
  EXPECT_EQ(Get32(f, 140), 0xe0100u);  // X_DSDT
  EXPECT_EQ(Get32(f, 152), 0x600u);    // X_PM1a_EVT_BLK address
  EXPECT_EQ(Get32(f, 176), 0x604u);
  EXPECT_EQ(Get32(f, 212), 0x608u);
  EXPECT_EQ(Get32(f, 112) & (1u << 18), 0u);
  EXPECT_NE(Get32(BuildFadt(Cpus(9), 0, 0), 112) & (1u << 18), 0u);
}

TEST(AcpiTest, MadtSparseTopologyCrosses254BeforeIndex255) {
  // 3 cores take 2 bits, 2 threads 1: 8 ids per socket, so socket 31's
  // ids are 248-253 and socket 32's 256-261 — x2APIC entries from index
  // 192 on.
  MachineInfo m;
  m.topo = {40, 3, 2};
  m.cpus = m.max_cpus = 240;
  const auto procs = Processors(BuildMadt(m));
  ASSERT_EQ(procs.size(), 240u);
  for (uint32_t i = 0; i < 240; ++i) {
    EXPECT_EQ(procs[i].apic_id, ApicIdFor(m.topo, i));
    EXPECT_EQ(procs[i].type, i < 192 ? kMadtLocalApic : kMadtLocalX2apic) << i;
  }
}

TEST(AcpiTest, MadtEntryTypeAtThe254Boundary) {
  EXPECT_EQ(MadtProcessorEntryType(0), kMadtLocalApic);
  EXPECT_EQ(MadtProcessorEntryType(254), kMadtLocalApic);
  EXPECT_EQ(MadtProcessorEntryType(255), kMadtLocalX2apic);
  EXPECT_EQ(MadtProcessorEntryType(256), kMadtLocalX2apic);
}

TEST(AcpiTest, Madt255CpusIsAllXapicButOne) {
  for (uint32_t n : {254u, 255u, 256u, 1024u}) {
    const Bytes madt = BuildMadt(Cpus(n));
    const auto procs = Processors(madt);
    ASSERT_EQ(procs.size(), n);
    for (uint32_t i = 0; i < n; ++i) {
      EXPECT_EQ(procs[i].apic_id, i);
      EXPECT_EQ(procs[i].uid, i);
      EXPECT_EQ(procs[i].type, i <= 254 ? kMadtLocalApic : kMadtLocalX2apic);
      EXPECT_EQ(procs[i].flags, kMadtEnabled);
    }
    bool x2nmi = false;
    for (size_t at = 44; at < madt.size(); at += madt[at + 1]) {
      x2nmi |= madt[at] == kMadtLocalX2apicNmi;
    }
    EXPECT_EQ(x2nmi, n > 255) << n;
  }
}

TEST(AcpiTest, MadtTopologyApicIds) {
  MachineInfo m;
  m.topo = {2, 3, 2};
  m.cpus = m.max_cpus = 12;
  const auto procs = Processors(BuildMadt(m));
  ASSERT_EQ(procs.size(), 12u);
  // Threads take 1 bit, cores 2 (3 rounded up to 4): socket 1 starts at 8.
  const uint32_t want[] = {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13};
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(procs[i].apic_id, want[i]);
}

TEST(AcpiTest, MadtHotPluggableAreOnlineCapable) {
  const auto procs = Processors(BuildMadt(Cpus(2, 4)));
  ASSERT_EQ(procs.size(), 4u);
  EXPECT_EQ(procs[1].flags, kMadtEnabled);
  EXPECT_EQ(procs[2].flags, kMadtOnlineCapable);
  EXPECT_EQ(procs[3].flags, kMadtOnlineCapable);
}

TEST(AcpiTest, MadtOverridesAndIoapic) {
  const Bytes madt = BuildMadt(Cpus(1));
  EXPECT_EQ(Get32(madt, 36), 0xfee00000u);
  EXPECT_EQ(Get32(madt, 40), 1u);
  int overrides = 0, ioapics = 0;
  for (size_t at = 44; at < madt.size(); at += madt[at + 1]) {
    if (madt[at] == kMadtIoApic) {
      ++ioapics;
      EXPECT_EQ(Get32(madt, at + 4), 0xfec00000u);
      EXPECT_EQ(Get32(madt, at + 8), 0u);
    } else if (madt[at] == kMadtIntSourceOverride) {
      ++overrides;
      if (madt[at + 3] == 0) {
        EXPECT_EQ(Get32(madt, at + 4), 2u);
      }
      if (madt[at + 3] == 9) {
        EXPECT_EQ(Get32(madt, at + 4), 9u);
        EXPECT_EQ(Get16(madt, at + 8), 0xd);
      }
    }
  }
  EXPECT_EQ(overrides, 2);
  EXPECT_EQ(ioapics, 1);
}

TEST(AcpiTest, PciSwizzle) {
  EXPECT_EQ(PciIntxGsi(0, 1), 16u);
  EXPECT_EQ(PciIntxGsi(1, 1), 17u);
  EXPECT_EQ(PciIntxGsi(3, 2), 16u);
  EXPECT_EQ(PciIntxGsi(31, 4), 18u);
}

TEST(AcpiTest, McfgDescribesEcam) {
  const Bytes t = BuildMcfg();
  EXPECT_EQ(Get32(t, 44), platform::pc::kPciEcamBase);
  EXPECT_EQ(t[54], 0);
  EXPECT_EQ(t[55], platform::pc::kPciBusLast);
}

}  // namespace
}  // namespace strata::amd64::firmware
