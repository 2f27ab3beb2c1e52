// strata — Multiboot (v0.6.96) kernel loading for amd64 guests.
//
// LoadKernel is the amd64 kernel loader: it takes an ELF32 or ELF64
// executable (with or without a Multiboot header), loads it, writes the
// boot data the kernel expects and returns the boot processor's entry state.
// kvm-unit-tests' x86 *.flat files are ELF32 Multiboot kernels and rely on
// the details documented in ../shared/docs/KVM-UNIT-TESTS.md:
//   - EAX = 0x2BADB002, EBX = Multiboot info (§3.2), also for ELF64 kernels,
//     which enter in 64-bit mode with the first 4 GiB identity mapped;
//   - the info carries mem_lower/upper, the command line, exactly one module
//     (the env file) when one is given, the full E820 map including RAM above
//     4 GiB, and the boot loader name "strata" (§3.3);
//   - all boot data (GDT, TSS, page tables, info, strings, module) lives in
//     [1 MiB, 4 MiB), or right after the kernel when the kernel occupies that
//     window; never in pages 0 and 1 (the SIPI trampoline and a test scratch
//     page).
// Not supported: the a.out kludge (header flag 16), video mode requests are
// ignored (no VBE/framebuffer info is provided, flag 11/12 stay clear).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/amd64/loader/boot_setup.h"
#include "arch/amd64/loader/e820.h"
#include "arch/amd64/loader/elf.h"
#include "core/guest_memory.h"
#include "core/result.h"

namespace strata::amd64 {

// Multiboot spec 0.6.96 §3.1.1: the header is 4-byte aligned within the
// first 8192 bytes of the file.
inline constexpr uint32_t kMultibootHeaderMagic = 0x1badb002;
inline constexpr uint64_t kMultibootSearchLimit = 8192;
inline constexpr uint64_t kMultibootHeaderAlign = 4;
// §3.2: EAX on entry.
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2badb002;

// Header flags (§3.1.2). Bits 0-15 are requirements: a loader that does not
// understand one must refuse the kernel.
inline constexpr uint32_t kMbHeaderPageAlignModules = 1u << 0;
inline constexpr uint32_t kMbHeaderMemoryInfo = 1u << 1;
inline constexpr uint32_t kMbHeaderVideoMode = 1u << 2;
inline constexpr uint32_t kMbHeaderRequiredMask = 0x0000ffff;
inline constexpr uint32_t kMbHeaderAoutKludge = 1u << 16;

// Info flags (§3.3).
inline constexpr uint32_t kMbInfoMemory = 1u << 0;
inline constexpr uint32_t kMbInfoBootDevice = 1u << 1;
inline constexpr uint32_t kMbInfoCmdline = 1u << 2;
inline constexpr uint32_t kMbInfoMods = 1u << 3;
inline constexpr uint32_t kMbInfoMmap = 1u << 6;
inline constexpr uint32_t kMbInfoLoaderName = 1u << 9;

inline constexpr const char* kBootLoaderName = "strata";

// Where boot data goes unless the kernel is there (KVM-UNIT-TESTS.md).
inline constexpr uint64_t kBootDataWindowStart = 1ull << 20;
inline constexpr uint64_t kBootDataWindowEnd = 4ull << 20;

struct MultibootHeader {
  uint64_t file_offset = 0;
  uint32_t magic = 0, flags = 0, checksum = 0;
  // Valid when flags has kMbHeaderAoutKludge (§3.1.3).
  uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0,
           bss_end_addr = 0, entry_addr = 0;
};

// The boot information structure (§3.3), 88 bytes.
struct MultibootInfo {
  uint32_t flags;
  uint32_t mem_lower, mem_upper;  // KiB
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr;
  uint32_t drives_length, drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe_control_info, vbe_mode_info;
  uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
};
static_assert(sizeof(MultibootInfo) == 88);

// A module (§3.3): [mod_start, mod_end) and a NUL-terminated string.
struct MultibootModule {
  uint32_t mod_start, mod_end, string, reserved;
};
static_assert(sizeof(MultibootModule) == 16);

// A memory map entry (§3.3); `size` counts the bytes after itself (20).
struct __attribute__((packed)) MultibootMmapEntry {
  uint32_t size;
  uint64_t addr, len;
  uint32_t type;
};
static_assert(sizeof(MultibootMmapEntry) == 24);

// The first valid header (magic, and magic + flags + checksum == 0 mod 2^32)
// in the first 8192 bytes at a 4-byte-aligned offset; nullopt if none.
// Headers with the a.out kludge are returned (LoadKernel rejects them).
std::optional<MultibootHeader> FindMultibootHeader(
    std::span<const uint8_t> file);

struct BootParams {
  std::string cmdline;          // "<program> <args>" for kvm-unit-tests
  std::vector<uint8_t> module;  // env file / initrd; empty = no module
  std::string module_cmdline;
  // The platform's non-RAM ranges (LAPIC, IOAPIC, MMIO hole), named in the
  // error for a kernel segment that lands in one.
  std::vector<MemoryHole> holes;
};

// Parses and loads `file`, writes the boot data and returns the entry state.
// Nothing is written to guest memory unless everything fits. Errors:
// kInvalidArgument (bad ELF), kUnsupported (a.out kludge or unknown required
// Multiboot features), kOutOfRange (a kernel segment outside guest RAM or in
// one of params.holes — checked first — or no RAM left for the boot data).
Result<BootInfo> LoadKernel(std::span<const uint8_t> file,
                            const BootParams& params, GuestMemory& mem);

}  // namespace strata::amd64
