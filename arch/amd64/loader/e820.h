// strata — the amd64 physical memory map (BIOS INT 15h E820 style) as the
// boot protocols hand it to the guest.
//
// RAM comes from GuestMemory's segments; the platform lays them out as one
// segment from 0 up to min(size, 3 GiB) and, for larger guests, the rest
// from 4 GiB. The legacy hole [0x9fc00, 0x100000) — EBDA, VGA window, option
// ROMs and the BIOS area where the platform puts the ACPI RSDP — is reported
// reserved even though it is backed by RAM, as PC firmware does (ACPI 6.5
// §15 "System Address Map Interfaces").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/guest_memory.h"

namespace strata::amd64 {

// E820 address range types (ACPI 6.5 §15, table "Address Range Types").
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;
inline constexpr uint32_t kE820Acpi = 3;
inline constexpr uint32_t kE820Nvs = 4;

// The reserved legacy area: from the conventional EBDA start (640 KiB minus
// 1 KiB) to the end of the BIOS ROM at 1 MiB.
inline constexpr uint64_t kLegacyHoleStart = 0x9fc00;
inline constexpr uint64_t kLegacyHoleEnd = 0x100000;

struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint32_t type = 0;

  uint64_t end() const { return addr + size; }  // exclusive
  bool operator==(const E820Entry&) const = default;
};

// The map for `mem`: sorted by address, non-overlapping, adjacent entries of
// the same type merged.
std::vector<E820Entry> BuildE820(const GuestMemory& mem);

// True if every byte of [gpa, gpa+len) is guest RAM, possibly across
// adjacent segments. An empty range is RAM.
bool IsRamRange(const GuestMemory& mem, uint64_t gpa, uint64_t len);

// "[0, 0xc0000000), [0x100000000, 0x140000000)" for error messages.
std::string DescribeRam(const GuestMemory& mem);

// A guest-physical range the platform keeps for something other than the
// kernel (the LAPIC page, the MMIO hole below 4 GiB, the firmware tables),
// named in loader errors.
struct MemoryHole {
  std::string_view name;  // "the LAPIC page", "the MMIO hole below 4 GiB"
  uint64_t start = 0;
  uint64_t size = 0;
};

// Why [gpa, gpa+len) is not all RAM the kernel may use, as a predicate for
// a message about it: "overlaps <name> [start, end)" for the first of
// `holes` (in the given order) that it touches — even a hole backed by RAM,
// like the pc firmware area —; else "" if it is all RAM; else "is outside
// guest RAM" (entirely) or "is outside guest RAM from <addr>" (partly).
std::string WhyNotRam(const GuestMemory& mem, uint64_t gpa, uint64_t len,
                      std::span<const MemoryHole> holes = {});

}  // namespace strata::amd64
