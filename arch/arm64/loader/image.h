// strata — arm64 boot images and where a direct kernel boot puts things.
//
// Theory. The virt machine boots a kernel the way QEMU's -kernel does
// without firmware (hw/arm/boot.c): the kernel, an optional initrd and the
// DTB are copied into RAM and the boot CPU starts at the kernel's first
// instruction with x0 = the DTB's address, x1-x3 = 0, MMU and caches off
// (Documentation/arch/arm64/booting.rst, "Call the kernel image"). strata
// sets PC and x0 through the vCPU's registers, so unlike QEMU no boot stub
// occupies the bottom of RAM.
//
// Formats (checked in this order by UnpackArmKernel and PlanArmBoot):
//   - gzip (1f 8b): what `make Image.gz` and several distributions ship as
//     vmlinuz; inflated with zlib, at most kMaxKernelSize bytes (QEMU's
//     LOAD_IMAGE_MAX_GUNZIP_BYTES) so a gzip bomb is refused, then one of
//     the formats below.
//   - EFI zboot ("MZ" then "zimg" at offset 4,
//     drivers/firmware/efi/libstub/zboot-header.S): a PE/COFF decompressor
//     around a compressed Image; strata takes the gzip payload out directly
//     (other compressions: kUnsupported, naming the one found).
//   - Linux arm64 Image (booting.rst §4, "ARM\x64" at offset 56): loaded at
//     a 2 MiB-aligned base + text_offset, image_size bytes reserved (it
//     counts the BSS, which the file does not hold).
//   - anything else is a raw binary (kvm-unit-tests' and our guests' .flat):
//     loaded at RAM base + kRawKernelOffset, entered at its first byte.
//     hw/arm/boot.c: a file that is neither ELF, uImage nor an Image with
//     a header lands at `info->loader_start + kernel_load_offset`, where
//     kernel_load_offset is KERNEL64_LOAD_ADDR (0x80000) on AArch64
//     (load_aarch64_image keeps that default when the magic is missing).
//     Debian's signed linux-image-*-cloud-arm64 vmlinuz is an uncompressed
//     Image (its code0 is "MZ", the EFI stub's PE header); `file` calls it
//     "Linux kernel ARM64 boot executable Image, little-endian, 4K pages".
//
// Placement (PlanArmBoot) follows QEMU's arm_setup_direct_kernel_boot:
//   initrd at RAM base + min(RAM/2, 128 MiB), but not below the kernel's
//   end, 4 KiB-aligned ("far enough into RAM that when the kernel is
//   uncompressed it will not clobber the initrd", while staying in the
//   kernel's lowmem); the DTB right after the initrd, 2 MiB-aligned ("Some
//   AArch64 kernels on early bootup map the fdt region as [ALIGN_DOWN(fdt,
//   2MB) ... +2MB]", which also gives booting.rst's 8-byte alignment and
//   keeps the DTB alone in its 2 MiB block). One difference: the kernel's end
//   is load address + image_size (BSS included), where QEMU uses the file
//   size. kvmtool (arm/kvm.c) instead puts the DTB and the initrd at the top
//   of the first 256 MiB; both satisfy booting.rst.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"

namespace strata::arm64 {

// booting.rst §4, "The decompressed kernel image contains a 64-byte header".
inline constexpr uint64_t kImageHeaderSize = 64;
inline constexpr uint64_t kImageTextOffsetOffset = 8;   // LE64
inline constexpr uint64_t kImageSizeOffset = 16;        // LE64
inline constexpr uint64_t kImageFlagsOffset = 24;       // LE64
inline constexpr uint64_t kImageMagicOffset = 56;       // LE32
inline constexpr uint32_t kImageMagic = 0x644d5241;     // "ARM\x64"
inline constexpr uint64_t kImageFlagBigEndian = 1u << 0;
inline constexpr uint64_t kImageFlagPageSizeShift = 1;  // bits 1-2
inline constexpr uint64_t kImageFlagPhysAnywhere = 1u << 3;
// "Prior to v3.17 ... image_size is zero ... text_offset can be assumed to
// be 0x80000."
inline constexpr uint64_t kImageLegacyTextOffset = 0x80000;
inline constexpr uint64_t kImageBaseAlign = 2ull << 20;

// Raw binaries: hw/arm/boot.c KERNEL64_LOAD_ADDR.
inline constexpr uint64_t kRawKernelOffset = 0x80000;
// Largest kernel accepted after decompression (QEMU's
// LOAD_IMAGE_MAX_GUNZIP_BYTES).
inline constexpr uint64_t kMaxKernelSize = 256ull << 20;

inline constexpr uint64_t kInitrdMaxOffset = 128ull << 20;
inline constexpr uint64_t kInitrdAlign = 4096;
inline constexpr uint64_t kDtbAlign = 2ull << 20;

// A parsed Image header.
struct ArmImage {
  enum class PageSize { kUnspecified, k4K, k16K, k64K };
  uint64_t text_offset = 0;
  // What the kernel needs from its load address: the header's image_size,
  // at least the file's size; with image_size 0 (before v3.17) the file's.
  uint64_t image_size = 0;
  uint64_t file_size = 0;
  uint64_t flags = 0;
  bool legacy = false;        // image_size was 0: text_offset assumed 0x80000
  PageSize page_size = PageSize::kUnspecified;
  bool phys_anywhere = false;  // flags bit 3: any 2 MiB-aligned base in RAM
};

bool IsLinuxImage(std::span<const uint8_t> bytes);  // "ARM\x64" at 56
bool IsGzip(std::span<const uint8_t> bytes);         // 1f 8b
bool IsZbootImage(std::span<const uint8_t> bytes);   // "MZ", "zimg" at 4

// Parses an (uncompressed) Image's header. Errors: kInvalidArgument (too
// short, no magic, a size that wraps), kUnsupported (a big-endian kernel).
Result<ArmImage> ParseLinuxImage(std::span<const uint8_t> bytes);

// The Image's load address in RAM [ram_base, +ram_size): the lowest 2 MiB-
// aligned address in RAM plus text_offset. kOutOfRange when image_size bytes
// from there do not fit.
Result<uint64_t> ImageLoadAddress(const ArmImage& image, uint64_t ram_base,
                                  uint64_t ram_size);

// Inflates a gzip stream (trailing bytes after its end are ignored, as
// QEMU's gunzip does). Errors: kInvalidArgument (not gzip, corrupt or
// truncated), kOutOfRange (more than `max_size` bytes: refused, never
// allocated past the cap).
Result<std::vector<uint8_t>> Gunzip(std::span<const uint8_t> bytes,
                                    uint64_t max_size = kMaxKernelSize);

// The bytes to copy into guest memory for a kernel file: gzip and EFI
// zboot unpacked (see the theory), anything else as is.
Result<std::vector<uint8_t>> UnpackArmKernel(std::span<const uint8_t> file,
                                             uint64_t max_size = kMaxKernelSize);

struct BootLayout {
  enum class Kind { kLinuxImage, kRaw };
  Kind kind = Kind::kRaw;
  uint64_t kernel_addr = 0;
  uint64_t kernel_file_size = 0;  // bytes to copy to kernel_addr
  uint64_t kernel_size = 0;       // bytes reserved (Image: image_size)
  uint64_t entry = 0;             // PC of the boot CPU (= kernel_addr)
  uint64_t initrd_addr = 0, initrd_size = 0;  // size 0: no initrd
  uint64_t dtb_addr = 0, dtb_size = 0;        // x0 = dtb_addr
};

// Plans a direct boot of `kernel` (unpacked: UnpackArmKernel) with an
// initrd of `initrd_size` bytes (0: none) and a DTB of at most `dtb_size`
// bytes in RAM [ram_base, +ram_size). The DTB goes last, so a caller may
// plan with an upper bound (e.g. DtbSizeLimit() of fdt.h), build the tree
// with the planned initrd address and copy any tree of at most that size.
// Errors: kInvalidArgument (empty or still compressed kernel, a DTB over
// 2 MiB, a malformed Image), kUnsupported (big-endian Image, an ELF file:
// not loaded raw), kOutOfRange (anything that does
// not fit in RAM or booting.rst's initrd window, naming what and where).
Result<BootLayout> PlanArmBoot(std::span<const uint8_t> kernel,
                               uint64_t initrd_size, uint64_t dtb_size,
                               uint64_t ram_base, uint64_t ram_size);

}  // namespace strata::arm64
