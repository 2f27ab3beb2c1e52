// strata — builds small ELF32/ELF64 executables in memory for loader tests
// (test-only; no compiler or binary fixtures needed).
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace strata::amd64::testing {

struct TestSegment {
  uint64_t paddr = 0;
  std::optional<uint64_t> vaddr;  // default: paddr
  std::vector<uint8_t> data;      // p_filesz = data.size()
  uint64_t memsz = 0;             // 0: data.size()
  uint32_t type = PT_LOAD;
};

struct TestElf {
  bool is64 = false;
  uint16_t machine = 0;  // 0: EM_386 / EM_X86_64 by class
  uint64_t entry = 0;
  std::vector<TestSegment> segments;
  // Multiboot header right after the program headers, if set.
  std::optional<uint32_t> multiboot_flags;
};

inline size_t EhdrSize(bool is64) {
  return is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
}
inline size_t PhdrSize(bool is64) {
  return is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
}
// File offset of program header i.
inline size_t PhdrOffset(bool is64, size_t i) {
  return EhdrSize(is64) + i * PhdrSize(is64);
}

template <typename T>
void Put(std::vector<uint8_t>& f, size_t off, const T& v) {
  if (f.size() < off + sizeof(T)) f.resize(off + sizeof(T));
  std::memcpy(f.data() + off, &v, sizeof(T));
}

inline std::vector<uint8_t> BuildElf(const TestElf& t) {
  std::vector<uint8_t> f;
  const size_t nph = t.segments.size();
  size_t cur = PhdrOffset(t.is64, nph);
  size_t mb_off = 0;
  if (t.multiboot_flags) {
    cur = (cur + 3) & ~size_t{3};
    mb_off = cur;
    cur += 12;
  }
  std::vector<size_t> data_off;
  for (const TestSegment& s : t.segments) {
    cur = (cur + 15) & ~size_t{15};
    data_off.push_back(cur);
    cur += s.data.size();
  }
  f.resize(cur, 0);
  const uint16_t machine =
      t.machine != 0 ? t.machine : (t.is64 ? EM_X86_64 : EM_386);
  if (t.is64) {
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_EXEC;
    h.e_machine = machine;
    h.e_version = EV_CURRENT;
    h.e_entry = t.entry;
    h.e_phoff = sizeof(Elf64_Ehdr);
    h.e_ehsize = sizeof(Elf64_Ehdr);
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = static_cast<uint16_t>(nph);
    Put(f, 0, h);
  } else {
    Elf32_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS32;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_EXEC;
    h.e_machine = machine;
    h.e_version = EV_CURRENT;
    h.e_entry = static_cast<uint32_t>(t.entry);
    h.e_phoff = sizeof(Elf32_Ehdr);
    h.e_ehsize = sizeof(Elf32_Ehdr);
    h.e_phentsize = sizeof(Elf32_Phdr);
    h.e_phnum = static_cast<uint16_t>(nph);
    Put(f, 0, h);
  }
  for (size_t i = 0; i < nph; ++i) {
    const TestSegment& s = t.segments[i];
    const uint64_t vaddr = s.vaddr.value_or(s.paddr);
    const uint64_t memsz = s.memsz != 0 ? s.memsz : s.data.size();
    if (t.is64) {
      Elf64_Phdr p{};
      p.p_type = s.type;
      p.p_flags = PF_R | PF_W | PF_X;
      p.p_offset = data_off[i];
      p.p_vaddr = vaddr;
      p.p_paddr = s.paddr;
      p.p_filesz = s.data.size();
      p.p_memsz = memsz;
      p.p_align = 16;
      Put(f, PhdrOffset(true, i), p);
    } else {
      Elf32_Phdr p{};
      p.p_type = s.type;
      p.p_flags = PF_R | PF_W | PF_X;
      p.p_offset = static_cast<uint32_t>(data_off[i]);
      p.p_vaddr = static_cast<uint32_t>(vaddr);
      p.p_paddr = static_cast<uint32_t>(s.paddr);
      p.p_filesz = static_cast<uint32_t>(s.data.size());
      p.p_memsz = static_cast<uint32_t>(memsz);
      p.p_align = 16;
      Put(f, PhdrOffset(false, i), p);
    }
    std::memcpy(f.data() + data_off[i], s.data.data(), s.data.size());
  }
  if (t.multiboot_flags) {
    const uint32_t magic = 0x1badb002;
    const uint32_t flags = *t.multiboot_flags;
    Put(f, mb_off, magic);
    Put(f, mb_off + 4, flags);
    Put(f, mb_off + 8, static_cast<uint32_t>(0u - magic - flags));
  }
  return f;
}

inline std::vector<uint8_t> Bytes(size_t n, uint8_t first) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(first + i);
  return v;
}

}  // namespace strata::amd64::testing
