#include "arch/amd64/firmware/firmware.h"

#include <algorithm>
#include <cstring>

#include "arch/amd64/firmware/acpi.h"
#include "arch/amd64/firmware/smbios.h"
#include "arch/amd64/platform/pc_layout.h"

namespace strata::amd64::firmware {

namespace pc = platform::pc;

namespace {

constexpr uint64_t kSmbiosSearchBase = 0xf0000;
constexpr uint64_t kAlign16 = 16;
constexpr uint64_t kTableAlign = 16;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

uint64_t LowRamSize(const MachineInfo& m) {
  return std::min(m.memory_size, pc::kLowMemLimit);
}

uint64_t HighRamSize(const MachineInfo& m) {
  return m.memory_size - LowRamSize(m);
}

uint64_t PciMmio64Base(const MachineInfo& m) {
  return AlignUp(pc::kHighMemBase + HighRamSize(m), pc::kPciMmio64Align);
}

std::vector<uint8_t> FirmwareImage::Bytes(const FirmwareTable& t) const {
  const auto* p = data.data() + (t.address - base);
  return std::vector<uint8_t>(p, p + t.size);
}

const FirmwareTable* FirmwareImage::Find(std::string_view name) const {
  for (const FirmwareTable& t : tables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<FirmwareImage> BuildFirmwareImage(const MachineInfo& m) {
  FirmwareImage img;
  img.base = pc::kFirmwareBase;
  img.data.assign(pc::kFirmwareSize, 0);
  const uint64_t end = pc::kFirmwareBase + pc::kFirmwareSize;
  uint64_t cursor = pc::kFirmwareBase;
  Status overflow = Ok();
  // Places `bytes` at the next `align`ed address (at least `at_least`).
  auto place = [&](std::string name, const std::vector<uint8_t>& bytes,
                   uint64_t align, uint64_t at_least = 0) -> uint64_t {
    const uint64_t at = AlignUp(std::max(cursor, at_least), align);
    if (at + bytes.size() > end) {
      if (overflow) {
        overflow = MakeError(
            Errc::kOutOfRange,
            "the firmware tables for {} vCPUs in {} sockets do not fit the "
            "{} KiB firmware area at {:#x} ({} ends at {:#x}): use fewer "
            "sockets (more cores or threads per socket)",
            std::max(m.cpus, m.max_cpus), SmbiosSockets(m),
            pc::kFirmwareSize / 1024, pc::kFirmwareBase, name,
            at + bytes.size());
      }
      return at;
    }
    std::memcpy(img.data.data() + (at - img.base), bytes.data(), bytes.size());
    img.tables.push_back(
        {std::move(name), at, static_cast<uint32_t>(bytes.size())});
    cursor = at + bytes.size();
    return at;
  };

  // FACS first, where pc_layout.h says; the RSDP right after it.
  const uint64_t facs = place("FACS", BuildFacs(), 64, pc::kFacsAddress);
  const uint64_t rsdp_at = AlignUp(cursor, kAlign16);
  cursor = rsdp_at + kRsdpSize;
  const uint64_t dsdt = place("DSDT", BuildDsdt(m), kTableAlign);
  const uint64_t fadt = place("FACP", BuildFadt(m, facs, dsdt), kTableAlign);
  const uint64_t madt = place("APIC", BuildMadt(m), kTableAlign);
  const uint64_t mcfg = place("MCFG", BuildMcfg(), kTableAlign);
  const uint64_t pointers[] = {fadt, madt, mcfg};
  const uint64_t rsdt = place("RSDT", BuildRsdt(pointers), kTableAlign);
  const uint64_t xsdt = place("XSDT", BuildXsdt(pointers), kTableAlign);
  {
    const uint64_t saved = cursor;
    cursor = rsdp_at;
    img.rsdp = place("RSDP", BuildRsdp(rsdt, xsdt), kAlign16);
    cursor = saved;
  }
  const std::vector<uint8_t> smbios = BuildSmbiosTable(m);
  img.smbios_table = place("SMBIOS", smbios, kTableAlign);
  img.smbios_table_size = static_cast<uint32_t>(smbios.size());
  img.smbios_entry = place(
      "SMBIOS3", BuildSmbiosEntryPoint(img.smbios_table, img.smbios_table_size),
      kAlign16, kSmbiosSearchBase);
  STRATA_TRY(overflow);
  img.used = cursor - img.base;
  return img;
}

std::vector<uint8_t> SmbiosDumpBin(const FirmwareImage& image) {
  constexpr uint64_t kDumpTableOffset = 0x20;
  std::vector<uint8_t> out(kDumpTableOffset, 0);
  std::vector<uint8_t> ep =
      BuildSmbiosEntryPoint(kDumpTableOffset, image.smbios_table_size);
  std::copy(ep.begin(), ep.end(), out.begin());
  const std::vector<uint8_t> table = image.Bytes(*image.Find("SMBIOS"));
  out.insert(out.end(), table.begin(), table.end());
  return out;
}

}  // namespace strata::amd64::firmware
