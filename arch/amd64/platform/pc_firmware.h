// strata — the pc machine's ACPI and SMBIOS tables
// (arch/amd64/firmware/), from the prepared config: into guest memory for
// InitFirmware, and as named files for bhyverun --dump-tables. Both read
// the same keys (cpus, cpu.sockets/cores/threads, cpu.max, memory.size,
// name), so a dump shows exactly what a guest of that config finds.
#pragma once

#include <vector>

#include "arch/amd64/firmware/firmware.h"
#include "core/config.h"
#include "core/guest_memory.h"
#include "core/platform.h"
#include "core/result.h"

namespace strata::platform::pc {

// The machine the tables describe. The SMBIOS UUID is derived from `name`
// (stable across runs of the same config).
Result<amd64::firmware::MachineInfo> FirmwareMachineInfo(const Config& c);

// Builds the tables and writes the firmware area into `mem` (which must
// back it: low RAM covers 0xE0000-0xFFFFF).
Result<amd64::firmware::FirmwareImage> WriteFirmwareTables(const Config& c,
                                                           GuestMemory& mem);

// Each ACPI table as <SIGNATURE>.dat and the SMBIOS tables as smbios.bin
// (dmidecode --dump-bin's layout).
Result<std::vector<FirmwareFile>> FirmwareFiles(const Config& c);

}  // namespace strata::platform::pc
