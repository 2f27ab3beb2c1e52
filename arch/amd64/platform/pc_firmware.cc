#include "arch/amd64/platform/pc_firmware.h"

#include <string>

#include "arch/amd64/loader/e820.h"
#include "arch/amd64/platform/pc_layout.h"

namespace strata::platform::pc {

namespace fw = amd64::firmware;

// The loaders' E820 and Multiboot maps report the legacy hole reserved; the
// firmware area must lie inside it, so no guest counts it as RAM.
static_assert(kFirmwareBase >= amd64::kLegacyHoleStart &&
              kFirmwareBase + kFirmwareSize <= amd64::kLegacyHoleEnd);

namespace {

// FNV-1a, for a UUID that names the config rather than the run.
uint64_t Fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::array<uint8_t, 16> NameUuid(std::string_view name) {
  const uint64_t a = Fnv1a(name, 0xcbf29ce484222325ull);
  const uint64_t b = Fnv1a(name, a ^ 0x9e3779b97f4a7c15ull);
  std::array<uint8_t, 16> u{};
  for (size_t i = 0; i < 8; ++i) {
    u[i] = static_cast<uint8_t>(a >> (8 * i));
    u[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  // RFC 4122 §4.1: version 8 (custom) in time_hi (stored little-endian by
  // SMBIOS, so byte 7), variant 10xx in byte 8.
  u[7] = static_cast<uint8_t>((u[7] & 0x0f) | 0x80);
  u[8] = static_cast<uint8_t>((u[8] & 0x3f) | 0x80);
  return u;
}

}  // namespace

Result<fw::MachineInfo> FirmwareMachineInfo(const Config& c) {
  fw::MachineInfo m;
  m.cpus = STRATA_TRY(c.GetUint32("cpus", 1));
  m.topo = {STRATA_TRY(c.GetUint32("cpu.sockets", m.cpus)),
            STRATA_TRY(c.GetUint32("cpu.cores", 1)),
            STRATA_TRY(c.GetUint32("cpu.threads", 1))};
  m.max_cpus = STRATA_TRY(c.GetUint32("cpu.max", m.cpus));
  m.memory_size = STRATA_TRY(c.GetSize("memory.size"));
  m.uuid = NameUuid(STRATA_TRY(c.GetString("name", "strata")));
  return m;
}

Result<fw::FirmwareImage> WriteFirmwareTables(const Config& c,
                                              GuestMemory& mem) {
  fw::FirmwareImage img =
      STRATA_TRY(fw::BuildFirmwareImage(STRATA_TRY(FirmwareMachineInfo(c))));
  STRATA_TRY_CTX(mem.Write(img.base, img.data.data(), img.data.size()),
                 "writing the ACPI and SMBIOS tables");
  return img;
}

Result<std::vector<FirmwareFile>> FirmwareFiles(const Config& c) {
  const fw::FirmwareImage img =
      STRATA_TRY(fw::BuildFirmwareImage(STRATA_TRY(FirmwareMachineInfo(c))));
  std::vector<FirmwareFile> files;
  for (const fw::FirmwareTable& t : img.tables) {
    if (t.name.starts_with("SMBIOS")) continue;
    files.push_back({t.name + ".dat", img.Bytes(t)});
  }
  files.push_back({"smbios.bin", fw::SmbiosDumpBin(img)});
  return files;
}

}  // namespace strata::platform::pc
