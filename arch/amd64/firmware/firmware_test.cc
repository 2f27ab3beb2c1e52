#include "arch/amd64/firmware/firmware.h"

#include <gtest/gtest.h>

#include <cstring>

#include "arch/amd64/firmware/acpi.h"
#include "arch/amd64/firmware/smbios.h"
#include "arch/amd64/platform/pc_layout.h"

namespace strata::amd64::firmware {
namespace {

MachineInfo Info(uint32_t sockets, uint32_t cores, uint32_t threads,
                 uint64_t mem = 1ull << 30) {
  MachineInfo m;
  m.topo = {sockets, cores, threads};
  m.cpus = m.max_cpus = sockets * cores * threads;
  m.memory_size = mem;
  return m;
}

uint8_t Sum(const std::vector<uint8_t>& b) {
  uint8_t s = 0;
  for (uint8_t v : b) s = static_cast<uint8_t>(s + v);
  return s;
}

TEST(FirmwareTest, LayoutInTheFirmwareArea) {
  auto img = BuildFirmwareImage(Info(1, 1, 1));
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->Find("FACS")->address, platform::pc::kFacsAddress);
  EXPECT_EQ(img->rsdp % 16, 0u);
  EXPECT_GE(img->rsdp, platform::pc::kFirmwareBase);
  EXPECT_GE(img->smbios_entry, 0xf0000u);
  EXPECT_EQ(img->smbios_entry % 16, 0u);
  for (const FirmwareTable& t : img->tables) {
    EXPECT_GE(t.address, platform::pc::kFirmwareBase) << t.name;
    EXPECT_LE(t.address + t.size,
              platform::pc::kFirmwareBase + platform::pc::kFirmwareSize)
        << t.name;
  }
  // The RSDP is the first "RSD PTR " on a 16-byte boundary.
  for (uint64_t a = img->base; a < img->rsdp; a += 16) {
    EXPECT_NE(std::memcmp(img->data.data() + (a - img->base), "RSD PTR ", 8),
              0);
  }
}

TEST(FirmwareTest, LargestMachinesFit) {
  for (const MachineInfo& m :
       {Info(1024, 1, 1, 64ull << 30), Info(1, 1024, 1), Info(2, 3, 2)}) {
    auto img = BuildFirmwareImage(m);
    ASSERT_TRUE(img) << img.error().message();
    EXPECT_LE(img->used, platform::pc::kFirmwareSize);
  }
  // A 1024-vCPU MADT: 255 8-byte and 769 16-byte processor entries.
  auto img = BuildFirmwareImage(Info(1024, 1, 1));
  ASSERT_TRUE(img);
  EXPECT_EQ(img->Find("APIC")->size,
            44u + 255 * 8 + 769 * 16 + 12 + 20 + 6 + 12);
}

TEST(FirmwareTest, TooManySocketsIsAnError) {
  auto img = BuildFirmwareImage(Info(4000, 1, 1));
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code(), Errc::kOutOfRange);
}

TEST(FirmwareTest, SmbiosEntryPoint) {
  auto img = BuildFirmwareImage(Info(2, 3, 2));
  ASSERT_TRUE(img);
  const auto ep = img->Bytes(*img->Find("SMBIOS3"));
  ASSERT_EQ(ep.size(), kSmbios3EntryPointSize);
  EXPECT_EQ(std::string(ep.begin(), ep.begin() + 5), "_SM3_");
  EXPECT_EQ(Sum(ep), 0);
  uint64_t addr;
  std::memcpy(&addr, ep.data() + 0x10, 8);
  EXPECT_EQ(addr, img->smbios_table);
  const auto dump = SmbiosDumpBin(*img);
  EXPECT_EQ(Sum(std::vector<uint8_t>(dump.begin(), dump.begin() + 24)), 0);
  std::memcpy(&addr, dump.data() + 0x10, 8);
  EXPECT_EQ(addr, 0x20u);
  EXPECT_EQ(dump.size(), 0x20u + img->smbios_table_size);
}

// Walks the structure table: (type, formatted area) of each.
std::vector<std::pair<uint8_t, std::vector<uint8_t>>> Structures(
    const std::vector<uint8_t>& t) {
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> out;
  size_t at = 0;
  while (at + 4 <= t.size()) {
    const uint8_t len = t[at + 1];
    out.push_back(
        {t[at], std::vector<uint8_t>(t.begin() + at, t.begin() + at + len)});
    size_t s = at + len;
    while (s + 1 < t.size() && !(t[s] == 0 && t[s + 1] == 0)) ++s;
    at = s + 2;
    if (out.back().first == 127) break;
  }
  EXPECT_EQ(at, t.size());
  return out;
}

TEST(FirmwareTest, SmbiosOneProcessorPerSocket) {
  const auto t = BuildSmbiosTable(Info(2, 3, 2, 20ull << 30));
  int procs = 0, dimms = 0, mapped = 0;
  for (const auto& [type, f] : Structures(t)) {
    if (type == 4) {
      ++procs;
      EXPECT_EQ(f[0x23], 3);  // cores
      EXPECT_EQ(f[0x24], 3);
      EXPECT_EQ(f[0x25], 6);  // threads
    }
    dimms += type == 17;
    mapped += type == 19;
  }
  EXPECT_EQ(procs, 2);
  EXPECT_EQ(dimms, 2);   // 16 GiB + 4 GiB
  EXPECT_EQ(mapped, 2);  // below and above 4 GiB
}

TEST(FirmwareTest, SmbiosListsTheSocketsVcpusCanOccupy) {
  MachineInfo m = Info(4, 2, 1);
  m.cpus = 3;
  m.max_cpus = 3;
  EXPECT_EQ(SmbiosSockets(m), 2u);
  m.max_cpus = 8;
  EXPECT_EQ(SmbiosSockets(m), 4u);
  int populated = 0, procs = 0;
  for (const auto& [type, f] : Structures(BuildSmbiosTable(m))) {
    if (type != 4) continue;
    ++procs;
    populated += f[0x18] == 0x41;
  }
  EXPECT_EQ(procs, 4);
  EXPECT_EQ(populated, 2);
  // 2048 sockets of which 1024 can hold a vCPU: fits.
  MachineInfo big = Info(2048, 1, 1);
  big.cpus = big.max_cpus = 1024;
  EXPECT_TRUE(BuildFirmwareImage(big));
}

TEST(FirmwareTest, SmbiosLargeCounts) {
  for (const auto& [type, f] : Structures(BuildSmbiosTable(Info(1, 300, 2)))) {
    if (type != 4) continue;
    EXPECT_EQ(f[0x23], 0xff);
    uint16_t v;
    std::memcpy(&v, f.data() + 0x2a, 2);
    EXPECT_EQ(v, 300);
    std::memcpy(&v, f.data() + 0x2e, 2);
    EXPECT_EQ(v, 600);
  }
}

}  // namespace
}  // namespace strata::amd64::firmware
