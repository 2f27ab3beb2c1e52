#include "arch/amd64/loader/multiboot.h"

#include <cstring>

#include "arch/amd64/loader/e820.h"

namespace strata::amd64 {

namespace {

constexpr uint64_t k4GiB = 1ull << 32;
constexpr uint64_t kKiB = 1024;
constexpr uint64_t kLowMemoryEnd = 640 * kKiB;  // §3.3: mem_lower max 640
constexpr uint64_t kHeaderWords = 3;            // magic, flags, checksum
constexpr uint64_t kAoutWords = 5;              // header_addr..entry_addr
constexpr uint64_t kTableAlign = 16;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

uint32_t Word(std::span<const uint8_t> f, uint64_t off) {
  uint32_t v;
  std::memcpy(&v, f.data() + off, sizeof(v));
  return v;
}

// Offsets of each piece of boot data from the (page aligned) area start.
struct Layout {
  uint64_t gdt, tss, info, mmap, mods, loader_name, cmdline, module_cmdline;
  uint64_t page_tables;  // kLong64 only
  uint64_t module;       // non-empty module only
  uint64_t size;         // page aligned
};

Layout PlanBootData(EntryMode mode, size_t mmap_entries,
                    const BootParams& p) {
  Layout l{};
  uint64_t cur = 0;
  auto take = [&cur](uint64_t size, uint64_t align) {
    cur = AlignUp(cur, align);
    const uint64_t at = cur;
    cur += size;
    return at;
  };
  l.gdt = take(kGdtSize, kTableAlign);
  l.tss = take(kTssSize, kTableAlign);
  l.info = take(sizeof(MultibootInfo), kTableAlign);
  l.mmap = take(mmap_entries * sizeof(MultibootMmapEntry), kTableAlign);
  l.mods = take(sizeof(MultibootModule), kTableAlign);
  l.loader_name = take(std::strlen(kBootLoaderName) + 1, 1);
  l.cmdline = take(p.cmdline.size() + 1, 1);
  l.module_cmdline = take(p.module_cmdline.size() + 1, 1);
  if (mode == EntryMode::kLong64) l.page_tables = take(kPageTablesSize, kPageSize);
  // Modules are page aligned whether or not the header asks (§3.1.2 bit 0).
  if (!p.module.empty()) l.module = take(p.module.size(), kPageSize);
  l.size = AlignUp(cur, kPageSize);
  return l;
}

bool Overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end) {
  return a < b_end && b < a_end;
}

Status WriteString(GuestMemory& mem, uint64_t gpa, std::string_view s) {
  STRATA_TRY(mem.Write(gpa, s.data(), s.size()));
  const uint8_t nul = 0;
  return mem.Write(gpa + s.size(), &nul, 1);
}

}  // namespace

std::optional<MultibootHeader> FindMultibootHeader(
    std::span<const uint8_t> file) {
  const uint64_t limit = std::min<uint64_t>(file.size(), kMultibootSearchLimit);
  for (uint64_t off = 0; off + kHeaderWords * 4 <= limit;
       off += kMultibootHeaderAlign) {
    if (Word(file, off) != kMultibootHeaderMagic) continue;
    MultibootHeader h;
    h.file_offset = off;
    h.magic = Word(file, off);
    h.flags = Word(file, off + 4);
    h.checksum = Word(file, off + 8);
    if (static_cast<uint32_t>(h.magic + h.flags + h.checksum) != 0) continue;
    if (h.flags & kMbHeaderAoutKludge) {
      // The address fields follow; the spec does not require them to lie
      // within the first 8 KiB, only in the file.
      if (off + (kHeaderWords + kAoutWords) * 4 > file.size()) continue;
      h.header_addr = Word(file, off + 12);
      h.load_addr = Word(file, off + 16);
      h.load_end_addr = Word(file, off + 20);
      h.bss_end_addr = Word(file, off + 24);
      h.entry_addr = Word(file, off + 28);
    }
    return h;
  }
  return std::nullopt;
}

Result<BootInfo> LoadKernel(std::span<const uint8_t> file,
                            const BootParams& params, GuestMemory& mem) {
  if (auto mb = FindMultibootHeader(file)) {
    if (mb->flags & kMbHeaderAoutKludge) {
      return MakeError(Errc::kUnsupported,
                       "the Multiboot header at file offset {:#x} uses the "
                       "a.out kludge (flags bit 16), which strata does not "
                       "support; link the kernel as an ELF executable",
                       mb->file_offset);
    }
    const uint32_t known = kMbHeaderPageAlignModules | kMbHeaderMemoryInfo |
                           kMbHeaderVideoMode;
    const uint32_t unknown = mb->flags & kMbHeaderRequiredMask & ~known;
    if (unknown != 0) {
      return MakeError(Errc::kUnsupported,
                       "the Multiboot header requires features {:#x} that "
                       "strata does not know (Multiboot 0.6.96 §3.1.2)",
                       unknown);
    }
  }
  const ElfImage img = STRATA_TRY(ParseElf(file));
  // The kernel first: a segment outside RAM must be reported as such, not
  // as a boot data area (placed after the kernel) that does not fit.
  STRATA_TRY(CheckSegmentsInRam(img, mem, params.holes));
  const EntryMode mode =
      img.elf_class == ElfClass::k64 ? EntryMode::kLong64 : EntryMode::kProtected32;
  const uint64_t kernel_end = AlignUp(img.paddr_end, kPageSize);

  const std::vector<E820Entry> e820 = BuildE820(mem);
  const Layout lay = PlanBootData(mode, e820.size(), params);

  // [1 MiB, 4 MiB) unless the kernel is there or the data does not fit;
  // otherwise just past the kernel (and never below 1 MiB, where the legacy
  // hole and the trampoline pages are).
  bool window_free = lay.size <= kBootDataWindowEnd - kBootDataWindowStart;
  for (const ElfSegment& s : img.segments) {
    if (s.memsz != 0 && Overlaps(s.paddr, s.paddr + s.memsz,
                                 kBootDataWindowStart, kBootDataWindowEnd)) {
      window_free = false;
    }
  }
  const uint64_t base =
      window_free ? kBootDataWindowStart
                  : std::max(kernel_end, kBootDataWindowStart);
  if (base + lay.size > k4GiB || !IsRamRange(mem, base, lay.size)) {
    return MakeError(Errc::kOutOfRange,
                     "no room for the {} KiB of boot data (Multiboot info, "
                     "tables, module) at [{:#x}, {:#x}): it must be guest RAM "
                     "below 4 GiB (RAM is {}); give the guest more memory or "
                     "use a smaller module",
                     lay.size / kKiB, base, base + lay.size, DescribeRam(mem));
  }

  // Everything validated: from here on only writes that cannot fail for
  // range reasons. LoadElfSegments checks the kernel against RAM before it
  // writes anything.
  STRATA_TRY(LoadElfSegments(img, file, mem, params.holes));
  STRATA_TRY(mem.Fill(base, 0, lay.size));

  STRATA_TRY(WriteGdt(mem, base + lay.gdt, base + lay.tss));
  if (mode == EntryMode::kLong64) {
    STRATA_TRY(WriteIdentityPageTables(mem, base + lay.page_tables));
  }

  std::vector<MultibootMmapEntry> mmap;
  uint64_t mem_lower = 0, mem_upper = 0;
  for (const E820Entry& e : e820) {
    mmap.push_back({sizeof(MultibootMmapEntry) - sizeof(uint32_t), e.addr,
                    e.size, e.type});
    if (e.type != kE820Ram) continue;
    // §3.3: mem_lower counts from 0 (at most 640 KiB), mem_upper from 1 MiB
    // up to the first hole.
    if (e.addr == 0) mem_lower = std::min(e.end(), kLowMemoryEnd) / kKiB;
    if (e.addr <= kLegacyHoleEnd && kLegacyHoleEnd < e.end()) {
      mem_upper = std::min<uint64_t>((e.end() - kLegacyHoleEnd) / kKiB,
                                     UINT32_MAX);
    }
  }
  STRATA_TRY(mem.Write(base + lay.mmap, mmap.data(),
                       mmap.size() * sizeof(MultibootMmapEntry)));
  STRATA_TRY(WriteString(mem, base + lay.loader_name, kBootLoaderName));
  STRATA_TRY(WriteString(mem, base + lay.cmdline, params.cmdline));
  STRATA_TRY(WriteString(mem, base + lay.module_cmdline, params.module_cmdline));

  MultibootInfo info{};
  info.flags = kMbInfoMemory | kMbInfoCmdline | kMbInfoMods | kMbInfoMmap |
               kMbInfoLoaderName;
  info.mem_lower = static_cast<uint32_t>(mem_lower);
  info.mem_upper = static_cast<uint32_t>(mem_upper);
  // Every address below fits 32 bits: the area ends below 4 GiB (checked).
  info.cmdline = static_cast<uint32_t>(base + lay.cmdline);
  info.mods_addr = static_cast<uint32_t>(base + lay.mods);
  info.mmap_addr = static_cast<uint32_t>(base + lay.mmap);
  info.mmap_length =
      static_cast<uint32_t>(mmap.size() * sizeof(MultibootMmapEntry));
  info.boot_loader_name = static_cast<uint32_t>(base + lay.loader_name);
  if (!params.module.empty()) {
    STRATA_TRY(mem.Write(base + lay.module, params.module.data(),
                         params.module.size()));
    MultibootModule mod{};
    mod.mod_start = static_cast<uint32_t>(base + lay.module);
    mod.mod_end = static_cast<uint32_t>(base + lay.module + params.module.size());
    mod.string = static_cast<uint32_t>(base + lay.module_cmdline);
    STRATA_TRY(mem.WriteObj(base + lay.mods, mod));
    info.mods_count = 1;
  }
  STRATA_TRY(mem.WriteObj(base + lay.info, info));

  BootInfo bi;
  bi.mode = mode;
  bi.entry = img.entry_paddr;
  bi.rax = kMultibootBootloaderMagic;
  bi.rbx = base + lay.info;
  bi.rsp = 0;
  bi.sregs = MakeBootState(mode, base + lay.gdt, base + lay.tss,
                           base + lay.page_tables);
  bi.kernel_end = kernel_end;
  bi.boot_data_start = base;
  bi.boot_data_end = base + lay.size;
  return bi;
}

}  // namespace strata::amd64
