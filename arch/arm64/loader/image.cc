#include "arch/arm64/loader/image.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace strata::arm64 {

namespace {

// drivers/firmware/efi/libstub/zboot-header.S.
constexpr uint64_t kZbootTypeOffset = 4;  // "zimg"
constexpr uint64_t kZbootPayloadOffset = 8;   // LE32
constexpr uint64_t kZbootPayloadSize = 12;    // LE32
constexpr uint64_t kZbootCompTypeOffset = 24;  // NUL-terminated
constexpr uint64_t kZbootCompTypeMax = 32;     // up to the PE magic at 0x38
constexpr uint64_t kZbootHeaderSize = kZbootCompTypeOffset + kZbootCompTypeMax;

// booting.rst "Setup the device tree": at most 2 MiB.
constexpr uint64_t kDtbMax = 2ull << 20;
// booting.rst "Setup the initrd": "a 1 GB aligned physical memory window of
// up to 32 GB in size that fully covers the kernel Image as well".
constexpr uint64_t kInitrdWindowAlign = 1ull << 30;
constexpr uint64_t kInitrdWindowSize = 32ull << 30;

template <typename T>
T Le(std::span<const uint8_t> b, uint64_t off) {
  T v;  // the hosts strata runs on are little-endian, like the headers
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string Mib(uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

Status CheckInRam(std::string_view what, uint64_t addr, uint64_t size,
                  uint64_t ram_base, uint64_t ram_end) {
  if (addr < ram_base || addr + size < addr || addr + size > ram_end) {
    return MakeError(Errc::kOutOfRange,
                     "{} [{:#x}, +{:#x}) ({}) does not fit in RAM [{:#x}, "
                     "{:#x}) ({})",
                     what, addr, size, Mib(size), ram_base, ram_end,
                     Mib(ram_end - ram_base));
  }
  return Ok();
}

}  // namespace

bool IsLinuxImage(std::span<const uint8_t> b) {
  return b.size() >= kImageHeaderSize &&
         Le<uint32_t>(b, kImageMagicOffset) == kImageMagic;
}

bool IsGzip(std::span<const uint8_t> b) {
  return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

bool IsZbootImage(std::span<const uint8_t> b) {
  return b.size() >= kZbootHeaderSize && b[0] == 'M' && b[1] == 'Z' &&
         std::memcmp(b.data() + kZbootTypeOffset, "zimg", 4) == 0;
}

Result<ArmImage> ParseLinuxImage(std::span<const uint8_t> b) {
  if (b.size() < kImageHeaderSize) {
    return MakeError(Errc::kInvalidArgument,
                     "not an arm64 Image: {} bytes is shorter than its "
                     "{}-byte header",
                     b.size(), kImageHeaderSize);
  }
  if (!IsLinuxImage(b)) {
    return MakeError(Errc::kInvalidArgument,
                     "not an arm64 Image: no \"ARM\\x64\" magic at offset {} "
                     "(found {:#010x})",
                     kImageMagicOffset, Le<uint32_t>(b, kImageMagicOffset));
  }
  ArmImage im;
  im.file_size = b.size();
  im.text_offset = Le<uint64_t>(b, kImageTextOffsetOffset);
  const uint64_t header_size = Le<uint64_t>(b, kImageSizeOffset);
  im.flags = Le<uint64_t>(b, kImageFlagsOffset);
  if (header_size == 0) {
    // booting.rst: before v3.17 image_size is 0 and text_offset 0x80000;
    // flags were not defined either (the kernel is little-endian: old
    // big-endian kernels are not told apart).
    im.legacy = true;
    im.text_offset = kImageLegacyTextOffset;
    im.flags = 0;
  } else if (im.flags & kImageFlagBigEndian) {
    return MakeError(Errc::kUnsupported,
                     "this arm64 Image is a big-endian kernel (header flags "
                     "{:#x}, bit 0); strata boots little-endian kernels only",
                     im.flags);
  }
  switch ((im.flags >> kImageFlagPageSizeShift) & 3) {
    case 1: im.page_size = ArmImage::PageSize::k4K; break;
    case 2: im.page_size = ArmImage::PageSize::k16K; break;
    case 3: im.page_size = ArmImage::PageSize::k64K; break;
    default: im.page_size = ArmImage::PageSize::kUnspecified; break;
  }
  im.phys_anywhere = (im.flags & kImageFlagPhysAnywhere) != 0;
  // The header's size counts the BSS; a signed Image may carry trailing
  // bytes (its Authenticode signature) past it, which are copied too.
  im.image_size = std::max(header_size, im.file_size);
  if (im.text_offset >= std::numeric_limits<uint64_t>::max() / 2 ||
      im.image_size >= std::numeric_limits<uint64_t>::max() / 2) {
    return MakeError(Errc::kInvalidArgument,
                     "malformed arm64 Image: text_offset {:#x}, image_size "
                     "{:#x}",
                     im.text_offset, header_size);
  }
  return im;
}

Result<uint64_t> ImageLoadAddress(const ArmImage& im, uint64_t ram_base,
                                  uint64_t ram_size) {
  const uint64_t ram_end = ram_base + ram_size;
  if (ram_end < ram_base) {
    return MakeError(Errc::kInvalidArgument, "RAM [{:#x}, +{:#x}) wraps around",
                     ram_base, ram_size);
  }
  // booting.rst: "placed text_offset bytes from a 2MB aligned base address
  // anywhere in usable system RAM"; with bit 3 clear, "as close as possible
  // to the base of DRAM". The lowest such base serves both.
  const uint64_t base = AlignUp(ram_base, kImageBaseAlign);
  const uint64_t addr = base + im.text_offset;
  if (base < ram_base || addr < base || addr > ram_end ||
      im.image_size > ram_end - addr) {
    return MakeError(Errc::kOutOfRange,
                     "the arm64 Image needs {:#x} bytes ({}) at {:#x} (2 MiB-"
                     "aligned base {:#x} + text_offset {:#x}); RAM is [{:#x}, "
                     "{:#x}) ({})",
                     im.image_size, Mib(im.image_size), addr, base,
                     im.text_offset, ram_base, ram_end, Mib(ram_size));
  }
  return addr;
}

Result<std::vector<uint8_t>> Gunzip(std::span<const uint8_t> in,
                                    uint64_t max_size) {
  if (!IsGzip(in)) {
    return MakeError(Errc::kInvalidArgument, "not gzip data (no 1f 8b magic)");
  }
  z_stream zs{};
  // 16 + MAX_WBITS: a gzip wrapper, not zlib or raw deflate (zlib.h).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return MakeError(Errc::kInternal, "zlib inflateInit2 failed: {}",
                     zs.msg ? zs.msg : "?");
  }
  std::vector<uint8_t> out;
  size_t in_pos = 0;
  constexpr size_t kInChunk = 1u << 30;  // avail_in is 32-bit
  constexpr size_t kOutStep = 4u << 20;
  int rc = Z_OK;
  for (;;) {
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const size_t n = std::min(kInChunk, in.size() - in_pos);
      zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (zs.total_out == out.size() && out.size() >= max_size) {
      // The cap is reached: one more byte tells a stream of exactly
      // max_size bytes from a bomb, without allocating past the cap.
      uint8_t probe;
      zs.next_out = &probe;
      zs.avail_out = 1;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0) {
        inflateEnd(&zs);
        return MakeError(Errc::kOutOfRange,
                         "gzip data inflates to more than {} bytes ({}), the "
                         "limit: refused",
                         max_size, Mib(max_size));
      }
    } else {
      if (zs.total_out == out.size()) {
        out.resize(std::min<uint64_t>(out.size() + kOutStep, max_size));
      }
      zs.next_out = out.data() + zs.total_out;
      zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
      rc = inflate(&zs, Z_NO_FLUSH);
    }
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == in.size()) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  const uint64_t total = zs.total_out;
  const std::string msg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    if (rc == Z_BUF_ERROR) {
      return MakeError(Errc::kInvalidArgument,
                       "truncated gzip data: the stream ends after {} input "
                       "bytes without its trailer ({} bytes inflated)",
                       in.size(), total);
    }
    return MakeError(Errc::kInvalidArgument, "corrupt gzip data: {} (zlib {})",
                     msg.empty() ? "inflate failed" : msg, rc);
  }
  out.resize(total);
  return out;
}

Result<std::vector<uint8_t>> UnpackArmKernel(std::span<const uint8_t> file,
                                             uint64_t max_size) {
  if (IsGzip(file)) {
    return STRATA_TRY_CTX(Gunzip(file, max_size), "gzip-compressed kernel");
  }
  if (IsZbootImage(file)) {
    const uint64_t off = Le<uint32_t>(file, kZbootPayloadOffset);
    const uint64_t size = Le<uint32_t>(file, kZbootPayloadSize);
    const char* type =
        reinterpret_cast<const char*>(file.data() + kZbootCompTypeOffset);
    const std::string comp(type, strnlen(type, kZbootCompTypeMax));
    if (comp != "gzip") {
      return MakeError(Errc::kUnsupported,
                       "EFI zboot kernel compressed with \"{}\": strata "
                       "decompresses gzip only (boot the kernel's Image, or "
                       "build it with CONFIG_KERNEL_GZIP)",
                       comp);
    }
    if (off > file.size() || size > file.size() - off) {
      return MakeError(Errc::kInvalidArgument,
                       "malformed EFI zboot kernel: payload [{:#x}, +{:#x}) "
                       "past the {}-byte file",
                       off, size, file.size());
    }
    return STRATA_TRY_CTX(Gunzip(file.subspan(off, size), max_size),
                          "EFI zboot kernel's payload");
  }
  if (file.size() > max_size) {
    return MakeError(Errc::kOutOfRange,
                     "the kernel is {} bytes, more than the {}-byte limit",
                     file.size(), max_size);
  }
  return std::vector<uint8_t>(file.begin(), file.end());
}

Result<BootLayout> PlanArmBoot(std::span<const uint8_t> kernel,
                               uint64_t initrd_size, uint64_t dtb_size,
                               uint64_t ram_base, uint64_t ram_size) {
  const uint64_t ram_end = ram_base + ram_size;
  if (ram_size == 0 || ram_end < ram_base) {
    return MakeError(Errc::kInvalidArgument,
                     "RAM [{:#x}, +{:#x}) is empty or wraps around", ram_base,
                     ram_size);
  }
  if (kernel.empty()) {
    return MakeError(Errc::kInvalidArgument, "the kernel is empty");
  }
  if (IsGzip(kernel) || IsZbootImage(kernel)) {
    return MakeError(Errc::kInvalidArgument,
                     "the kernel is still compressed (unpack it with "
                     "UnpackArmKernel first)");
  }
  if (kernel.size() >= 4 && std::memcmp(kernel.data(), "\x7f" "ELF", 4) == 0) {
    // Loading it raw would enter the ELF header.
    return MakeError(Errc::kUnsupported,
                     "the kernel is an ELF file: strata boots an arm64 Image "
                     "or a raw binary (objcopy -O binary)");
  }
  if (dtb_size == 0 || dtb_size > kDtbMax) {
    return MakeError(Errc::kInvalidArgument,
                     "a DTB of {} bytes: booting.rst allows 1 to {} bytes",
                     dtb_size, kDtbMax);
  }

  BootLayout lay;
  lay.kernel_file_size = kernel.size();
  if (IsLinuxImage(kernel)) {
    const ArmImage im = STRATA_TRY(ParseLinuxImage(kernel));
    lay.kind = BootLayout::Kind::kLinuxImage;
    lay.kernel_addr = STRATA_TRY(ImageLoadAddress(im, ram_base, ram_size));
    lay.kernel_size = im.image_size;
  } else {
    lay.kind = BootLayout::Kind::kRaw;
    lay.kernel_addr = ram_base + kRawKernelOffset;
    lay.kernel_size = kernel.size();
    STRATA_TRY(CheckInRam("the raw kernel (at RAM base + 0x80000)",
                          lay.kernel_addr, lay.kernel_size, ram_base,
                          ram_end));
  }
  lay.entry = lay.kernel_addr;
  const uint64_t kernel_end = lay.kernel_addr + lay.kernel_size;

  // hw/arm/boot.c: initrd at loader_start + MIN(ram_size / 2, 128 MiB), not
  // below the kernel, page-aligned; the DTB after it, 2 MiB-aligned.
  uint64_t initrd = ram_base + std::min(ram_size / 2, kInitrdMaxOffset);
  initrd = AlignUp(std::max(initrd, kernel_end), kInitrdAlign);
  if (initrd_size != 0) {
    STRATA_TRY(CheckInRam("the initrd (after the kernel's end)", initrd,
                          initrd_size, ram_base, ram_end));
    const uint64_t window = lay.kernel_addr & ~(kInitrdWindowAlign - 1);
    if (initrd + initrd_size - window > kInitrdWindowSize) {
      return MakeError(Errc::kOutOfRange,
                       "the initrd [{:#x}, +{:#x}) and the kernel at {:#x} "
                       "do not fit in one 1 GiB-aligned 32 GiB window "
                       "(booting.rst)",
                       initrd, initrd_size, lay.kernel_addr);
    }
    lay.initrd_addr = initrd;
    lay.initrd_size = initrd_size;
  }
  if (initrd + initrd_size < initrd || initrd + initrd_size > ram_end) {
    return MakeError(Errc::kOutOfRange, "no room for the DTB: RAM ends at {:#x}",
                     ram_end);
  }
  lay.dtb_addr = AlignUp(initrd + initrd_size, kDtbAlign);
  lay.dtb_size = dtb_size;
  STRATA_TRY(CheckInRam(
      initrd_size ? "the DTB (after the initrd, 2 MiB-aligned)"
                  : "the DTB (after the kernel, 2 MiB-aligned)",
      lay.dtb_addr, dtb_size, ram_base, ram_end));
  return lay;
}

}  // namespace strata::arm64
