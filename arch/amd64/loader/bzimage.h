// strata — the Linux x86 boot protocol (Documentation/arch/x86/boot.rst,
// versions 2.x): loading a bzImage and entering it at its 64-bit entry
// point, as a boot loader that skips the real-mode setup code does.
//
// Theory. A bzImage is the real-mode setup (setup_sects + 1 sectors, with
// the setup header at 0x1f1) followed by the protected-mode kernel. A
// 64-bit boot loader (boot.rst, "64-bit Boot Protocol"):
//   - copies the protected-mode kernel to its load address: pref_address
//     when the kernel is relocatable and that fits, else 1 MiB (with
//     init_size bytes of room from there);
//   - fills a zero page (struct boot_params) with the image's setup header
//     and what a loader adds: type_of_loader 0xff, the command line
//     pointer, the initrd address and size (32-bit fields plus their
//     ext_* high halves), and the E820 map (up to 128 entries);
//   - enters at load address + 0x200 in 64-bit mode, paging on with an
//     identity map covering the kernel, the zero page and the command line,
//     a GDT whose __BOOT_CS (0x10) is flat 64-bit code and __BOOT_DS (0x18)
//     flat data, CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, interrupts off, and
//     RSI = the zero page.
// Requirements checked (kUnsupported otherwise, naming what is missing):
// the "HdrS" magic and boot_flag 0xAA55, protocol 2.12 or later (for
// xloadflags), XLF_KERNEL_64. Everything is checked before guest memory is
// written: the kernel, the initrd and the boot data must be RAM and outside
// the platform's holes.
//
// Layout: GDT, TSS, page tables, zero page and command line in
// [kBzBootDataBase, +kBzBootDataSize) (low RAM, outside pages 0-1 and the
// legacy hole); the kernel at its load address; the initrd page-aligned at
// the top of RAM below min(initrd_addr_max + 1, 4 GiB, end of low RAM),
// above the kernel's init_size.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/amd64/loader/boot_setup.h"
#include "arch/amd64/loader/e820.h"
#include "core/guest_memory.h"
#include "core/host_file.h"
#include "core/result.h"

namespace strata::amd64 {

// boot.rst "The Real-Mode Kernel Header": offsets in the file and in the
// zero page (the setup header sits at the same offset in both).
inline constexpr uint64_t kBzSetupSects = 0x1f1;
inline constexpr uint64_t kBzBootFlag = 0x1fe;  // 0xAA55
inline constexpr uint64_t kBzHeaderMagic = 0x202;  // "HdrS"
inline constexpr uint64_t kBzVersion = 0x206;
inline constexpr uint64_t kBzTypeOfLoader = 0x210;
inline constexpr uint64_t kBzLoadflags = 0x211;
inline constexpr uint64_t kBzRamdiskImage = 0x218;
inline constexpr uint64_t kBzRamdiskSize = 0x21c;
inline constexpr uint64_t kBzCmdLinePtr = 0x228;
inline constexpr uint64_t kBzInitrdAddrMax = 0x22c;
inline constexpr uint64_t kBzKernelAlignment = 0x230;
inline constexpr uint64_t kBzRelocatable = 0x234;
inline constexpr uint64_t kBzXloadflags = 0x236;
inline constexpr uint64_t kBzCmdlineSize = 0x238;
inline constexpr uint64_t kBzPrefAddress = 0x258;
inline constexpr uint64_t kBzInitSize = 0x260;
// Zero-page fields outside the setup header (boot.rst "The Zero Page",
// arch/x86/include/uapi/asm/bootparam.h).
inline constexpr uint64_t kBzExtRamdiskImage = 0x0c0;
inline constexpr uint64_t kBzExtRamdiskSize = 0x0c4;
inline constexpr uint64_t kBzExtCmdLinePtr = 0x0c8;
inline constexpr uint64_t kBzE820Entries = 0x1e8;
inline constexpr uint64_t kBzE820Table = 0x2d0;
inline constexpr uint64_t kBzE820Max = 128;
inline constexpr uint64_t kBzZeroPageSize = 4096;

inline constexpr uint32_t kBzMagic = 0x53726448;  // "HdrS"
inline constexpr uint16_t kBzMinVersion = 0x020c;  // 2.12: xloadflags
inline constexpr uint16_t kBzXlfKernel64 = 1u << 0;
inline constexpr uint16_t kBzXlfCanBeLoadedAbove4G = 1u << 1;
inline constexpr uint8_t kBzLoadedHigh = 1u << 0;  // loadflags
inline constexpr uint8_t kBzTypeOfLoaderUndefined = 0xff;
inline constexpr uint64_t kBzDefaultLoadAddress = 0x100000;
inline constexpr uint64_t kBzEntry64Offset = 0x200;

// The boot GDT's selectors for this protocol.
inline constexpr uint16_t kBzBootCs = 0x10;
inline constexpr uint16_t kBzBootDs = 0x18;

inline constexpr uint64_t kBzBootDataBase = 0x10000;
inline constexpr uint64_t kBzBootDataSize = 0x10000;

// True if `file` carries a Linux setup header ("HdrS" at 0x202).
bool IsBzImage(std::span<const uint8_t> file);

struct BzImageParams {
  std::string cmdline;
  std::optional<ByteSource> initrd;  // none, or empty: no initrd
  std::vector<MemoryHole> holes;
};

// What was loaded where, for logs and tests.
struct BzImageLayout {
  uint16_t version = 0;
  uint64_t kernel_addr = 0, kernel_size = 0, init_size = 0;
  uint64_t zero_page = 0, cmdline = 0;
  uint64_t initrd_addr = 0, initrd_size = 0;
  uint32_t e820_entries = 0;
};

// Loads `file` into `mem` (see the theory above) and returns the boot
// processor's entry state; RSI (BootInfo::rsi) is the zero page. Only the
// setup sectors are read into a buffer: the protected-mode kernel and the
// initrd go from their sources (a HostFile: the page cache) straight into
// guest RAM. Errors:
// kInvalidArgument (truncated or malformed image, a command line longer
// than the kernel's cmdline_size), kUnsupported (protocol or 64-bit entry
// missing), kOutOfRange (kernel, initrd or boot data do not fit in RAM).
Result<BootInfo> LoadBzImage(const ByteSource& file,
                             const BzImageParams& params, GuestMemory& mem,
                             BzImageLayout* layout = nullptr);

}  // namespace strata::amd64
