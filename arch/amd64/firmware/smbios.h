// strata — the pc machine's SMBIOS 3.0 tables (DMTF DSP0134 3.0):
// the 64-bit entry point "_SM3_" (§5.2.2) and the structure table with
// types 0 (BIOS), 1 (system, with the UUID), 3 (chassis), 4 (one per
// socket, counts from the topology), 16 (memory array), 17 (one per DIMM of
// at most 16 GiB), 19 (RAM below and above 4 GiB), 32 (boot status) and 127.
// Sockets with no present vCPU (room for cpu.max) are listed unpopulated.
#pragma once

#include <cstdint>
#include <vector>

#include "arch/amd64/firmware/machine_info.h"

namespace strata::amd64::firmware {

inline constexpr size_t kSmbios3EntryPointSize = 24;
inline constexpr uint64_t kSmbiosDimmSize = 16ull << 30;

// The structure table.
std::vector<uint8_t> BuildSmbiosTable(const MachineInfo& m);
// The entry point for a table of `table_size` bytes at `table_address`.
std::vector<uint8_t> BuildSmbiosEntryPoint(uint64_t table_address,
                                           uint32_t table_size);

// The sockets the tables list: those that hold at least one possible vCPU
// (index below max(cpus, cpu.max)), in vCPU order. That is the topology's
// sockets whenever it is filled; sockets no vCPU can ever occupy are left
// out (they would cost 64 bytes each of the firmware area for nothing).
uint32_t SmbiosSockets(const MachineInfo& m);

}  // namespace strata::amd64::firmware
