#include "arch/amd64/loader/elf.h"

#include <elf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>
#include <vector>

#include "arch/amd64/loader/e820.h"

namespace strata::amd64 {

// The <elf.h> structs are read by memcpy, which is only right on a
// little-endian host; strata's hosts (x86-64, arm64 Linux) all are.
static_assert(std::endian::native == std::endian::little);

namespace {

constexpr uint64_t k4GiB = 1ull << 32;

// A program header in ELF64 width, whichever class the file is.
struct Phdr {
  uint32_t type, flags;
  uint64_t offset, vaddr, paddr, filesz, memsz;
};

std::string_view MachineName(uint16_t m) {
  switch (m) {
    case EM_386: return "EM_386";
    case EM_X86_64: return "EM_X86_64";
    case EM_ARM: return "EM_ARM";
    case EM_AARCH64: return "EM_AARCH64";
    case EM_RISCV: return "EM_RISCV";
    default: return "unknown";
  }
}

std::string_view TypeName(uint16_t t) {
  switch (t) {
    case ET_NONE: return "ET_NONE";
    case ET_REL: return "ET_REL (an object file)";
    case ET_DYN: return "ET_DYN (position-independent)";
    case ET_CORE: return "ET_CORE (a core dump)";
    default: return "unknown";
  }
}

template <typename T>
T Load(std::span<const uint8_t> file, uint64_t off) {
  T v;
  std::memcpy(&v, file.data() + off, sizeof(T));
  return v;
}

// The common header fields after class-specific decoding.
struct Ehdr {
  uint16_t type, machine;
  uint32_t version;
  uint64_t entry, phoff;
  uint16_t ehsize, phentsize, phnum;
};

}  // namespace

Result<ElfImage> ParseElf(std::span<const uint8_t> file) {
  if (file.size() < SELFMAG || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "not an ELF file (no \\x7fELF magic at offset 0)");
  }
  if (file.size() < EI_NIDENT) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF file truncated: {} bytes, shorter than e_ident ({})",
                     file.size(), EI_NIDENT);
  }
  const uint8_t cls = file[EI_CLASS];
  if (cls != ELFCLASS32 && cls != ELFCLASS64) {
    return MakeError(Errc::kInvalidArgument,
                     "unsupported ELF class {} (expected 1 = ELF32 or 2 = "
                     "ELF64)",
                     cls);
  }
  if (file[EI_DATA] != ELFDATA2LSB) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF data encoding {} is not little-endian "
                     "(ELFDATA2LSB); x86 kernels are little-endian",
                     file[EI_DATA]);
  }
  if (file[EI_VERSION] != EV_CURRENT) {
    return MakeError(Errc::kInvalidArgument, "unsupported ELF version {}",
                     file[EI_VERSION]);
  }
  const bool is64 = cls == ELFCLASS64;
  const int bits = is64 ? 64 : 32;
  const size_t ehdr_size = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  const size_t phdr_size = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (file.size() < ehdr_size) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF header truncated: the file has {} bytes, an ELF{} "
                     "header needs {}",
                     file.size(), bits, ehdr_size);
  }
  Ehdr h;
  if (is64) {
    auto e = Load<Elf64_Ehdr>(file, 0);
    h = {e.e_type, e.e_machine, e.e_version, e.e_entry, e.e_phoff,
         e.e_ehsize, e.e_phentsize, e.e_phnum};
  } else {
    auto e = Load<Elf32_Ehdr>(file, 0);
    h = {e.e_type, e.e_machine, e.e_version, e.e_entry, e.e_phoff,
         e.e_ehsize, e.e_phentsize, e.e_phnum};
  }
  if (h.type != ET_EXEC) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF type {} {} is not ET_EXEC: only statically linked "
                     "executables can be loaded",
                     h.type, TypeName(h.type));
  }
  const uint16_t want_machine = is64 ? EM_X86_64 : EM_386;
  if (h.machine != want_machine) {
    if (h.machine == EM_386 || h.machine == EM_X86_64) {
      return MakeError(Errc::kInvalidArgument, "ELF class {} but machine {}",
                       bits, MachineName(h.machine));
    }
    return MakeError(Errc::kInvalidArgument,
                     "ELF machine {} ({}) is not x86: expected EM_386 or "
                     "EM_X86_64",
                     h.machine, MachineName(h.machine));
  }
  if (h.version != EV_CURRENT) {
    return MakeError(Errc::kInvalidArgument, "unsupported ELF e_version {}",
                     h.version);
  }
  if (h.ehsize < ehdr_size) {
    return MakeError(Errc::kInvalidArgument,
                     "e_ehsize {} is smaller than the ELF{} header ({})",
                     h.ehsize, bits, ehdr_size);
  }
  if (h.phnum == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF file has no program headers, so nothing to load");
  }
  if (h.phnum == PN_XNUM) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF file uses an extended program header count "
                     "(e_phnum = PN_XNUM), which is not supported");
  }
  if (h.phentsize < phdr_size) {
    return MakeError(Errc::kInvalidArgument,
                     "e_phentsize {} is smaller than an ELF{} program header "
                     "({})",
                     h.phentsize, bits, phdr_size);
  }
  // phnum and phentsize are 16-bit: the product cannot overflow 64 bits.
  const uint64_t table_size = uint64_t{h.phnum} * h.phentsize;
  if (h.phoff > file.size() || table_size > file.size() - h.phoff) {
    return MakeError(Errc::kInvalidArgument,
                     "program header table [{:#x}, +{:#x}) extends past end "
                     "of file ({} bytes)",
                     h.phoff, table_size, file.size());
  }

  ElfImage img;
  img.elf_class = is64 ? ElfClass::k64 : ElfClass::k32;
  img.machine = h.machine;
  img.entry = h.entry;
  const uint64_t addr_limit = is64 ? 0 : k4GiB;  // 0 = the whole 64-bit space
  for (uint32_t i = 0; i < h.phnum; ++i) {
    const uint64_t at = h.phoff + uint64_t{i} * h.phentsize;
    Phdr p;
    if (is64) {
      auto q = Load<Elf64_Phdr>(file, at);
      p = {q.p_type, q.p_flags, q.p_offset, q.p_vaddr, q.p_paddr, q.p_filesz,
           q.p_memsz};
    } else {
      auto q = Load<Elf32_Phdr>(file, at);
      p = {q.p_type, q.p_flags, q.p_offset, q.p_vaddr, q.p_paddr, q.p_filesz,
           q.p_memsz};
    }
    if (p.type == PT_NULL) continue;
    if (p.offset > file.size() || p.filesz > file.size() - p.offset) {
      return MakeError(Errc::kInvalidArgument,
                       "program header {} extends past end of file: "
                       "[{:#x}, +{:#x}) but the file has {} bytes",
                       i, p.offset, p.filesz, file.size());
    }
    if (p.type != PT_LOAD) continue;
    if (p.filesz > p.memsz) {
      return MakeError(Errc::kInvalidArgument,
                       "program header {}: p_filesz {:#x} is larger than "
                       "p_memsz {:#x}",
                       i, p.filesz, p.memsz);
    }
    const bool wraps = p.paddr + p.memsz < p.paddr ||
                       (addr_limit != 0 && p.paddr + p.memsz > addr_limit);
    if (wraps) {
      return MakeError(Errc::kInvalidArgument,
                       "program header {}: physical range [{:#x}, +{:#x}) "
                       "wraps the {}-bit address space",
                       i, p.paddr, p.memsz, bits);
    }
    if (p.vaddr + p.memsz < p.vaddr) {
      return MakeError(Errc::kInvalidArgument,
                       "program header {}: virtual range [{:#x}, +{:#x}) "
                       "wraps the address space",
                       i, p.vaddr, p.memsz);
    }
    img.segments.push_back(
        {i, p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.flags});
  }
  if (img.segments.empty()) {
    return MakeError(Errc::kInvalidArgument,
                     "ELF file has no PT_LOAD segments, so nothing to load");
  }

  // Overlaps: sort the non-empty segments by address and sweep, keeping the
  // one that reaches furthest so far; a segment starting before that end
  // overlaps it. O(n log n): a file may have 65534 PT_LOADs.
  std::vector<const ElfSegment*> by_addr;
  by_addr.reserve(img.segments.size());
  for (const ElfSegment& s : img.segments) {
    if (s.memsz != 0) by_addr.push_back(&s);
  }
  std::sort(by_addr.begin(), by_addr.end(),
            [](const ElfSegment* a, const ElfSegment* b) {
              return a->paddr != b->paddr ? a->paddr < b->paddr
                                          : a->index < b->index;
            });
  const ElfSegment* reach = nullptr;  // the furthest-reaching one so far
  for (const ElfSegment* s : by_addr) {
    if (reach != nullptr && s->paddr < reach->paddr + reach->memsz) {
      return MakeError(Errc::kInvalidArgument,
                       "PT_LOAD program headers {} and {} overlap at "
                       "physical address {:#x}",
                       std::min(s->index, reach->index),
                       std::max(s->index, reach->index), s->paddr);
    }
    if (reach == nullptr ||
        s->paddr + s->memsz > reach->paddr + reach->memsz) {
      reach = s;
    }
  }
  const bool any = !by_addr.empty();
  if (any) {
    img.paddr_start = by_addr.front()->paddr;
    img.paddr_end = reach->paddr + reach->memsz;
  }
  if (!any) {
    return MakeError(Errc::kInvalidArgument,
                     "every PT_LOAD segment is empty (p_memsz 0)");
  }

  // e_entry is virtual; the vCPU starts with paging off (or identity
  // mapped), so translate it through its segment as GRUB does.
  bool found = false;
  for (const ElfSegment& s : img.segments) {
    if (h.entry >= s.vaddr && h.entry - s.vaddr < s.memsz) {
      img.entry_paddr = h.entry - s.vaddr + s.paddr;
      found = true;
      break;
    }
  }
  if (!found) {
    return MakeError(Errc::kInvalidArgument,
                     "entry point {:#x} is not inside any PT_LOAD segment",
                     h.entry);
  }
  return img;
}

Status CheckSegmentsInRam(const ElfImage& image, const GuestMemory& mem,
                          std::span<const MemoryHole> holes) {
  for (const ElfSegment& s : image.segments) {
    const std::string why = WhyNotRam(mem, s.paddr, s.memsz, holes);
    if (!why.empty()) {
      return MakeError(Errc::kOutOfRange,
                       "PT_LOAD segment {} [{:#x}, {:#x}) {} (RAM is {}); "
                       "give the guest more memory or link the kernel "
                       "elsewhere",
                       s.index, s.paddr, s.paddr + s.memsz, why,
                       DescribeRam(mem));
    }
  }
  return Ok();
}

Status LoadElfSegments(const ElfImage& image, std::span<const uint8_t> file,
                       GuestMemory& mem, std::span<const MemoryHole> holes) {
  // Validate everything before writing anything.
  for (const ElfSegment& s : image.segments) {
    if (s.offset > file.size() || s.filesz > file.size() - s.offset ||
        s.filesz > s.memsz) {
      return MakeError(Errc::kInvalidArgument,
                       "program header {} does not fit the file it was "
                       "parsed from",
                       s.index);
    }
  }
  STRATA_TRY(CheckSegmentsInRam(image, mem, holes));
  for (const ElfSegment& s : image.segments) {
    STRATA_TRY(mem.Write(s.paddr, file.data() + s.offset, s.filesz));
    STRATA_TRY(mem.Fill(s.paddr + s.filesz, 0, s.memsz - s.filesz));
  }
  return Ok();
}

}  // namespace strata::amd64
