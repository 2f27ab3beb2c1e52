// strata — the pc machine's firmware area (pc_layout.h: 0xE0000-0xFFFFF),
// built from the machine description, and its tables by name for dumps.
//
// Layout, each piece aligned as its spec asks:
//   0xE0000  FACS (64 bytes, 64-byte aligned)
//   0xE0040  RSDP (16-byte aligned: OSPMs scan 0xE0000-0xFFFFF for it)
//   then     DSDT, FADT, MADT, MCFG, RSDT, XSDT, the SMBIOS structure table
//   at or above 0xF0000 the SMBIOS 3.0 entry point, 16-byte aligned (the
//            non-UEFI search range is 0xF0000-0xFFFFF, DSP0134 §5.2.2)
// Everything must fit below 1 MiB; a machine whose tables do not (about
// 2000 sockets) is refused with kOutOfRange.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/amd64/firmware/machine_info.h"
#include "core/result.h"

namespace strata::amd64::firmware {

struct FirmwareTable {
  std::string name;  // the ACPI signature ("APIC", "RSDP"), "SMBIOS3", "SMBIOS"
  uint64_t address = 0;
  uint32_t size = 0;
};

struct FirmwareImage {
  uint64_t base = 0;                  // guest-physical address of data[0]
  std::vector<uint8_t> data;          // the whole area, zero where unused
  std::vector<FirmwareTable> tables;  // ACPI tables, then the SMBIOS ones

  uint64_t rsdp = 0;
  uint64_t smbios_entry = 0;
  uint64_t smbios_table = 0;
  uint32_t smbios_table_size = 0;
  uint64_t used = 0;  // bytes of the area in use (for logs and tests)

  // The bytes of one table.
  std::vector<uint8_t> Bytes(const FirmwareTable& t) const;
  const FirmwareTable* Find(std::string_view name) const;
};

Result<FirmwareImage> BuildFirmwareImage(const MachineInfo& m);

// The entry point and structure table in `dmidecode --dump-bin`'s layout:
// the entry point at 0 with its table address rewritten to 0x20 (checksum
// fixed), the table at 0x20.
std::vector<uint8_t> SmbiosDumpBin(const FirmwareImage& image);

}  // namespace strata::amd64::firmware
