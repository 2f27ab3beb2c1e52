// strata — ELF executable parsing and loading for amd64 guests.
//
// Accepts what a bare-metal x86 kernel is: a little-endian ET_EXEC for
// EM_386 (ELF32) or EM_X86_64 (ELF64). Every header field the loader relies
// on is checked against the file before anything is used, so a truncated or
// hostile file yields a clear error and never an out-of-bounds read. Segments
// are loaded at their physical addresses (p_paddr), the way GRUB and QEMU
// load Multiboot kernels. ELF spec: System V ABI "Object Files" (gABI).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "arch/amd64/loader/e820.h"
#include "core/guest_memory.h"
#include "core/result.h"

namespace strata::amd64 {

enum class ElfClass { k32, k64 };

// One PT_LOAD program header.
struct ElfSegment {
  uint32_t index = 0;   // position in the program header table
  uint64_t offset = 0;  // p_offset
  uint64_t vaddr = 0;
  uint64_t paddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
  uint32_t flags = 0;   // PF_R/PF_W/PF_X
};

struct ElfImage {
  ElfClass elf_class = ElfClass::k32;
  uint16_t machine = 0;
  uint64_t entry = 0;        // e_entry (virtual)
  uint64_t entry_paddr = 0;  // e_entry translated through its PT_LOAD
  std::vector<ElfSegment> segments;  // PT_LOAD only, in table order
  uint64_t paddr_start = 0;  // lowest p_paddr of a non-empty PT_LOAD
  uint64_t paddr_end = 0;    // highest p_paddr + p_memsz (exclusive)
};

// Validates and decodes `file`. Errors are kInvalidArgument and name the
// offending header, e.g. "program header 2 extends past end of file".
Result<ElfImage> ParseElf(std::span<const uint8_t> file);

// Checks that every PT_LOAD lies in guest RAM. kOutOfRange, e.g.
// "PT_LOAD segment 2 [0xfee00000, 0xfee02000) overlaps the LAPIC page
// [0xfee00000, 0xfee01000) (RAM is ...)" for a segment touching one of the
// platform's `holes`, or "PT_LOAD segment 1 [...) is outside guest RAM
// (RAM is ...)". N is the program header's index.
Status CheckSegmentsInRam(const ElfImage& image, const GuestMemory& mem,
                          std::span<const MemoryHole> holes = {});

// Copies each PT_LOAD to guest-physical p_paddr and zeroes its bss
// (p_memsz - p_filesz). Checks every segment (CheckSegmentsInRam) first: on
// error (kOutOfRange) guest memory is untouched.
Status LoadElfSegments(const ElfImage& image, std::span<const uint8_t> file,
                       GuestMemory& mem,
                       std::span<const MemoryHole> holes = {});

}  // namespace strata::amd64
