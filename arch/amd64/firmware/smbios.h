// strata — the pc machine's SMBIOS 3.0 tables (DMTF DSP0134 3.0):
// the 64-bit entry point "_SM3_" (§5.2.2) and the structure table with
// types 0 (BIOS), 1 (system, with the UUID), 3 (chassis), 4 (one per
// socket, counts from the topology), 16 (memory array), 17 (one per DIMM of
// at most 16 GiB), 19 (RAM below and above 4 GiB), 32 (boot status) and 127.
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

// The sockets the tables list: the topology's, and as many more as the
// vCPUs beyond it fill (cpu.max may exceed sockets x cores x threads).
uint32_t SmbiosSockets(const MachineInfo& m);

}  // namespace strata::amd64::firmware
