#include "arch/amd64/platform/pc_firmware.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "arch/amd64/platform/pc_layout.h"
#include "core/guest_memory_testing.h"

namespace strata::platform::pc {
namespace {

Config Prepared(const std::string& name = "strata") {
  // What Machine::PrepareConfig leaves for a "-c 4 -m 512M" command line.
  Config c;
  EXPECT_TRUE(c.Set("cpus", "4"));
  EXPECT_TRUE(c.Set("cpu.sockets", "2"));
  EXPECT_TRUE(c.Set("cpu.cores", "2"));
  EXPECT_TRUE(c.Set("cpu.threads", "1"));
  EXPECT_TRUE(c.Set("cpu.max", "4"));
  EXPECT_TRUE(c.Set("memory.size", "512M"));
  EXPECT_TRUE(c.Set("name", name));
  return c;
}

TEST(PcFirmwareTest, MachineInfoFromTheConfig) {
  auto m = FirmwareMachineInfo(Prepared());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->cpus, 4u);
  EXPECT_EQ(m->max_cpus, 4u);
  EXPECT_EQ(m->topo.sockets, 2u);
  EXPECT_EQ(m->topo.cores, 2u);
  EXPECT_EQ(m->memory_size, 512ull << 20);
  // The UUID names the config: stable for a name, different across names.
  auto again = FirmwareMachineInfo(Prepared());
  auto other = FirmwareMachineInfo(Prepared("other"));
  ASSERT_TRUE(again && other);
  EXPECT_EQ(m->uuid, again->uuid);
  EXPECT_NE(m->uuid, other->uuid);
  EXPECT_EQ(m->uuid[8] & 0xc0, 0x80);  // RFC 4122 variant
}

TEST(PcFirmwareTest, FilesAreTheTablesByName) {
  auto files = FirmwareFiles(Prepared());
  ASSERT_TRUE(files) << files.error().message();
  std::set<std::string> names;
  for (const FirmwareFile& f : *files) {
    names.insert(f.name);
    if (f.name.ends_with(".dat") && f.name != "RSDP.dat") {
      ASSERT_GE(f.data.size(), 8u);
      EXPECT_EQ(std::string(f.data.begin(), f.data.begin() + 4),
                f.name.substr(0, 4));
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"APIC.dat", "DSDT.dat", "FACP.dat",
                                          "FACS.dat", "MCFG.dat", "RSDP.dat",
                                          "RSDT.dat", "XSDT.dat",
                                          "smbios.bin"}));
}

TEST(PcFirmwareTest, WritesTheFirmwareAreaIntoGuestMemory) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "low", 0, 512ull << 20));
  auto img = WriteFirmwareTables(Prepared(), mem);
  ASSERT_TRUE(img) << img.error().message();
  char sig[8];
  ASSERT_TRUE(mem.Read(img->rsdp, sig, sizeof(sig)));
  EXPECT_EQ(std::memcmp(sig, "RSD PTR ", 8), 0);
  ASSERT_TRUE(mem.Read(kFacsAddress, sig, 4));
  EXPECT_EQ(std::memcmp(sig, "FACS", 4), 0);
  ASSERT_TRUE(mem.Read(img->smbios_entry, sig, 5));
  EXPECT_EQ(std::memcmp(sig, "_SM3_", 5), 0);
}

TEST(PcFirmwareTest, MemoryWithoutTheFirmwareAreaIsAnError) {
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "high", 4ull << 30,
                                              1ull << 20));
  EXPECT_FALSE(WriteFirmwareTables(Prepared(), mem));
}

}  // namespace
}  // namespace strata::platform::pc
