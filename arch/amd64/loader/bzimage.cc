#include "arch/amd64/loader/bzimage.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace strata::amd64 {

namespace {

// The boot-data area (bzimage.h): offsets from kBzBootDataBase.
constexpr uint64_t kGdtOffset = 0x0000;
constexpr uint64_t kTssOffset = 0x0100;
constexpr uint64_t kPageTablesOffset = 0x1000;  // 6 pages
constexpr uint64_t kZeroPageOffset = kPageTablesOffset + kPageTablesSize;
constexpr uint64_t kCmdlineOffset = kZeroPageOffset + kBzZeroPageSize;
static_assert(kCmdlineOffset < kBzBootDataSize);
constexpr uint64_t kCmdlineRoom = kBzBootDataSize - kCmdlineOffset;

constexpr uint64_t kSectorSize = 512;
// setup_sects is a byte: at most 255 setup sectors after the boot sector.
constexpr uint64_t kMaxSetupBytes = 256 * kSectorSize;
constexpr uint8_t kDefaultSetupSects = 4;  // boot.rst: 0 means 4
constexpr uint16_t kBootFlag = 0xaa55;
// The setup header runs from 0x1f1 to 0x202 + the byte at 0x201 (the
// length of the jump's target, boot.rst "Details of Header Fields").
constexpr uint64_t kHeaderEndByte = 0x201;

template <typename T>
T Get(std::span<const uint8_t> b, uint64_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

template <typename T>
void Put(std::span<uint8_t> b, uint64_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

Status CheckRam(const GuestMemory& mem, uint64_t gpa, uint64_t len,
                std::span<const MemoryHole> holes, std::string_view what) {
  if (gpa + len < gpa) {
    return MakeError(Errc::kOutOfRange, "{} [{:#x}, +{:#x}) wraps around",
                     what, gpa, len);
  }
  const std::string why = WhyNotRam(mem, gpa, len, holes);
  if (!why.empty()) {
    return MakeError(Errc::kOutOfRange, "{} [{:#x}, {:#x}) {} (guest RAM: {})",
                     what, gpa, gpa + len, why, DescribeRam(mem));
  }
  return Ok();
}

}  // namespace

bool IsBzImage(std::span<const uint8_t> file) {
  return file.size() >= kBzHeaderMagic + 4 &&
         Get<uint32_t>(file, kBzHeaderMagic) == kBzMagic;
}

Result<BootInfo> LoadBzImage(const ByteSource& image,
                             const BzImageParams& params, GuestMemory& mem,
                             BzImageLayout* layout_out) {
  // --- The image's header ---
  // The setup sectors are all that is parsed (at most 255 and the boot
  // sector); the rest goes to guest RAM unbuffered (below).
  const uint64_t file_size = image.size();
  if (file_size < kBzInitSize + 4) {
    return MakeError(Errc::kInvalidArgument,
                     "not a bzImage: {} bytes is shorter than the setup "
                     "header (boot protocol 2.12 needs {} bytes)",
                     file_size, kBzInitSize + 4);
  }
  std::vector<uint8_t> head(std::min(file_size, kMaxSetupBytes));
  STRATA_TRY(image.ReadAt(0, head));
  const std::span<const uint8_t> file(head);
  if (!IsBzImage(file) || Get<uint16_t>(file, kBzBootFlag) != kBootFlag) {
    return MakeError(Errc::kInvalidArgument,
                     "not a bzImage: no \"HdrS\" magic at {:#x} and boot "
                     "flag 0xaa55 at {:#x}",
                     kBzHeaderMagic, kBzBootFlag);
  }
  BzImageLayout lay;
  lay.version = Get<uint16_t>(file, kBzVersion);
  if (lay.version < kBzMinVersion) {
    return MakeError(Errc::kUnsupported,
                     "Linux boot protocol {}.{:02} is older than 2.12, the "
                     "first with the 64-bit entry point strata uses",
                     lay.version >> 8, lay.version & 0xff);
  }
  const uint16_t xlf = Get<uint16_t>(file, kBzXloadflags);
  if (!(xlf & kBzXlfKernel64)) {
    return MakeError(Errc::kUnsupported,
                     "this bzImage has no 64-bit entry point (xloadflags "
                     "{:#x} lacks XLF_KERNEL_64): a 32-bit kernel",
                     xlf);
  }
  uint8_t setup_sects = file[kBzSetupSects];
  if (setup_sects == 0) setup_sects = kDefaultSetupSects;
  const uint64_t kernel_offset = (uint64_t{setup_sects} + 1) * kSectorSize;
  const uint64_t header_end = 0x202 + file[kHeaderEndByte];
  if (kernel_offset >= file_size || header_end > kernel_offset ||
      header_end > kBzZeroPageSize) {
    return MakeError(Errc::kInvalidArgument,
                     "malformed bzImage: {} setup sectors (header to {:#x}) "
                     "in a {}-byte file",
                     setup_sects, header_end, file_size);
  }
  lay.kernel_size = file_size - kernel_offset;
  lay.init_size = std::max<uint64_t>(Get<uint32_t>(file, kBzInitSize),
                                     lay.kernel_size);
  const uint64_t cmdline_max = Get<uint32_t>(file, kBzCmdlineSize);
  if (params.cmdline.size() > cmdline_max ||
      params.cmdline.size() + 1 > kCmdlineRoom) {
    return MakeError(Errc::kInvalidArgument,
                     "the kernel command line is {} bytes; this kernel takes "
                     "at most {}",
                     params.cmdline.size(),
                     std::min<uint64_t>(cmdline_max, kCmdlineRoom - 1));
  }

  // --- Where things go ---
  const uint64_t boot = kBzBootDataBase;
  STRATA_TRY(CheckRam(mem, boot, kBzBootDataSize, params.holes,
                      "the Linux boot data"));
  const bool relocatable = file[kBzRelocatable] != 0;
  const uint64_t pref = Get<uint64_t>(file, kBzPrefAddress);
  lay.kernel_addr = kBzDefaultLoadAddress;
  if (relocatable && pref != 0 &&
      WhyNotRam(mem, pref, lay.init_size, params.holes).empty()) {
    lay.kernel_addr = pref;
  }
  STRATA_TRY(CheckRam(mem, lay.kernel_addr, lay.init_size, params.holes,
                      "the kernel (init_size)"));
  const uint64_t kernel_end = lay.kernel_addr + lay.init_size;

  if (params.initrd && params.initrd->size() > 0) {
    lay.initrd_size = params.initrd->size();
    // Highest page-aligned spot in the RAM segment below the limit.
    uint64_t limit = uint64_t{Get<uint32_t>(file, kBzInitrdAddrMax)} + 1;
    if (xlf & kBzXlfCanBeLoadedAbove4G) limit = uint64_t{1} << 32;
    limit = std::min<uint64_t>(limit, 1ull << 32);
    uint64_t best = 0;
    for (const auto& seg : mem.segments()) {
      const uint64_t top = std::min(seg->end(), limit);
      if (top < seg->gpa + lay.initrd_size) continue;
      const uint64_t at = (top - lay.initrd_size) & ~(kPageSize - 1);
      if (at >= std::max(seg->gpa, kernel_end) && at > best &&
          WhyNotRam(mem, at, lay.initrd_size, params.holes).empty()) {
        best = at;
      }
    }
    if (best == 0) {
      return MakeError(Errc::kOutOfRange,
                       "no room for the {}-byte initrd in guest RAM between "
                       "the kernel's end {:#x} and {:#x} (guest RAM: {})",
                       lay.initrd_size, kernel_end, limit, DescribeRam(mem));
    }
    lay.initrd_addr = best;
  }

  // --- The zero page ---
  std::vector<uint8_t> zp(kBzZeroPageSize, 0);
  std::span<uint8_t> z(zp);
  std::memcpy(zp.data() + kBzSetupSects, file.data() + kBzSetupSects,
              header_end - kBzSetupSects);
  z[kBzTypeOfLoader] = kBzTypeOfLoaderUndefined;
  z[kBzLoadflags] |= kBzLoadedHigh;
  lay.zero_page = boot + kZeroPageOffset;
  lay.cmdline = boot + kCmdlineOffset;
  Put<uint32_t>(z, kBzCmdLinePtr, static_cast<uint32_t>(lay.cmdline));
  Put<uint32_t>(z, kBzExtCmdLinePtr, static_cast<uint32_t>(lay.cmdline >> 32));
  Put<uint32_t>(z, kBzRamdiskImage, static_cast<uint32_t>(lay.initrd_addr));
  Put<uint32_t>(z, kBzExtRamdiskImage,
                static_cast<uint32_t>(lay.initrd_addr >> 32));
  Put<uint32_t>(z, kBzRamdiskSize, static_cast<uint32_t>(lay.initrd_size));
  Put<uint32_t>(z, kBzExtRamdiskSize,
                static_cast<uint32_t>(lay.initrd_size >> 32));
  const std::vector<E820Entry> e820 = BuildE820(mem);
  if (e820.size() > kBzE820Max) {
    return MakeError(Errc::kOutOfRange,
                     "the memory map has {} entries; the zero page holds {}",
                     e820.size(), kBzE820Max);
  }
  lay.e820_entries = static_cast<uint32_t>(e820.size());
  z[kBzE820Entries] = static_cast<uint8_t>(e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    const uint64_t at = kBzE820Table + i * 20;  // struct boot_e820_entry
    Put<uint64_t>(z, at, e820[i].addr);
    Put<uint64_t>(z, at + 8, e820[i].size);
    Put<uint32_t>(z, at + 16, e820[i].type);
  }

  // --- Write everything (all checked above) ---
  STRATA_TRY(mem.Fill(boot, 0, kBzBootDataSize));
  const uint64_t gdt_gpa = boot + kGdtOffset;
  const uint64_t tss_gpa = boot + kTssOffset;
  md::Segment cs = Code64();
  cs.selector = kBzBootCs;
  md::Segment ds = FlatData();
  ds.selector = kBzBootDs;
  const std::array<uint64_t, kGdtSize / sizeof(uint64_t)> gdt = {
      0, 0, EncodeDescriptor(cs), EncodeDescriptor(ds),
      EncodeDescriptor(BusyTss(tss_gpa)), tss_gpa >> 32,
  };
  STRATA_TRY(mem.Write(gdt_gpa, gdt.data(), kGdtSize));
  STRATA_TRY(WriteIdentityPageTables(mem, boot + kPageTablesOffset));
  STRATA_TRY(mem.Write(lay.zero_page, zp.data(), zp.size()));
  STRATA_TRY(mem.Write(lay.cmdline, params.cmdline.data(),
                       params.cmdline.size()));
  STRATA_TRY(mem.WriteWith(
      lay.kernel_addr, lay.kernel_size,
      [&](std::span<uint8_t> dst, uint64_t off) {
        return image.ReadAt(kernel_offset + off, dst);
      }));
  if (lay.initrd_size) {
    STRATA_TRY(mem.WriteWith(lay.initrd_addr, lay.initrd_size,
                             [&](std::span<uint8_t> dst, uint64_t off) {
                               return params.initrd->ReadAt(off, dst);
                             }));
  }

  BootInfo bi;
  bi.mode = EntryMode::kLong64;
  bi.sregs = MakeBootState(EntryMode::kLong64, gdt_gpa, tss_gpa,
                           boot + kPageTablesOffset);
  bi.sregs.cs = cs;
  bi.sregs.ds = bi.sregs.es = bi.sregs.ss = ds;
  bi.sregs.fs = bi.sregs.gs = ds;
  bi.entry = lay.kernel_addr + kBzEntry64Offset;
  bi.rsi = lay.zero_page;
  bi.kernel_end = AlignUp(kernel_end, kPageSize);
  bi.boot_data_start = boot;
  bi.boot_data_end = boot + kBzBootDataSize;
  if (layout_out) *layout_out = lay;
  return bi;
}

}  // namespace strata::amd64
