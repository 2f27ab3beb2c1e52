#include "core/guest_memory_testing.h"
#include "arch/amd64/loader/elf.h"

#include <string>

#include <gtest/gtest.h>

#include "arch/amd64/loader/elf_builder_testing.h"

namespace strata::amd64 {
namespace {

using testing::Bytes;
using testing::BuildElf;
using testing::PhdrOffset;
using testing::Put;
using testing::TestElf;

constexpr uint64_t kMiB = 1ull << 20;

TestElf Kernel32() {
  TestElf t;
  t.entry = 0x400010;
  t.segments = {
      {0x400000, std::nullopt, Bytes(64, 1), 0},
      {0x401000, std::nullopt, Bytes(32, 0x80), 0x3000},  // data + bss
  };
  return t;
}

TestElf Kernel64() {
  TestElf t;
  t.is64 = true;
  // Linked high, loaded low: entry must be translated through p_paddr.
  t.entry = 0xffffffff80200020;
  t.segments = {{0x200000, 0xffffffff80200000, Bytes(128, 7), 0x2000}};
  return t;
}

void ExpectError(std::span<const uint8_t> f, const std::string& needle) {
  auto r = ParseElf(f);
  ASSERT_FALSE(r.has_value()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find(needle), std::string::npos)
      << "message: " << r.error().message();
}

TEST(ParseElf, Elf32) {
  auto f = BuildElf(Kernel32());
  auto r = ParseElf(f);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->elf_class, ElfClass::k32);
  EXPECT_EQ(r->machine, EM_386);
  EXPECT_EQ(r->entry, 0x400010u);
  EXPECT_EQ(r->entry_paddr, 0x400010u);
  ASSERT_EQ(r->segments.size(), 2u);
  EXPECT_EQ(r->segments[1].paddr, 0x401000u);
  EXPECT_EQ(r->segments[1].filesz, 32u);
  EXPECT_EQ(r->segments[1].memsz, 0x3000u);
  EXPECT_EQ(r->paddr_start, 0x400000u);
  EXPECT_EQ(r->paddr_end, 0x404000u);
}

TEST(ParseElf, Elf64TranslatesEntry) {
  auto f = BuildElf(Kernel64());
  auto r = ParseElf(f);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->elf_class, ElfClass::k64);
  EXPECT_EQ(r->machine, EM_X86_64);
  EXPECT_EQ(r->entry_paddr, 0x200020u);
}

TEST(ParseElf, SkipsNonLoadHeaders) {
  TestElf t = Kernel32();
  t.segments.push_back({0, std::nullopt, Bytes(8, 0), 0, PT_NOTE});
  auto r = ParseElf(BuildElf(t));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->segments.size(), 2u);
}

TEST(ParseElfErrors, NotElf) {
  ExpectError({}, "not an ELF file");
  std::vector<uint8_t> junk(100, 'x');
  ExpectError(junk, "not an ELF file");
  auto f = BuildElf(Kernel32());
  f[1] = 'e';
  ExpectError(f, "not an ELF file");
}

TEST(ParseElfErrors, Truncated) {
  auto f = BuildElf(Kernel64());
  ExpectError(std::span(f).first(10), "shorter than e_ident");
  ExpectError(std::span(f).first(40), "ELF header truncated");
  ExpectError(std::span(f).first(40), "ELF64 header needs 64");
  // Header complete but the program header table cut off.
  ExpectError(std::span(f).first(80), "program header table");
  ExpectError(std::span(f).first(80), "extends past end of file");
}

TEST(ParseElfErrors, Ident) {
  auto f = BuildElf(Kernel32());
  f[EI_CLASS] = 3;
  ExpectError(f, "unsupported ELF class 3");
  f = BuildElf(Kernel32());
  f[EI_DATA] = ELFDATA2MSB;
  ExpectError(f, "not little-endian");
  f = BuildElf(Kernel32());
  f[EI_VERSION] = 0;
  ExpectError(f, "unsupported ELF version");
}

TEST(ParseElfErrors, TypeAndMachine) {
  auto f = BuildElf(Kernel32());
  Put<uint16_t>(f, offsetof(Elf32_Ehdr, e_type), ET_DYN);
  ExpectError(f, "is not ET_EXEC");

  TestElf t = Kernel64();
  t.machine = EM_386;
  ExpectError(BuildElf(t), "ELF class 64 but machine EM_386");
  t = Kernel32();
  t.machine = EM_X86_64;
  ExpectError(BuildElf(t), "ELF class 32 but machine EM_X86_64");
  t = Kernel64();
  t.machine = EM_AARCH64;
  ExpectError(BuildElf(t), "ELF machine 183 (EM_AARCH64) is not x86");
}

TEST(ParseElfErrors, HeaderSizes) {
  auto f = BuildElf(Kernel32());
  Put<uint16_t>(f, offsetof(Elf32_Ehdr, e_phnum), 0);
  ExpectError(f, "no program headers");
  f = BuildElf(Kernel32());
  Put<uint16_t>(f, offsetof(Elf32_Ehdr, e_phentsize), 16);
  ExpectError(f, "e_phentsize 16");
  f = BuildElf(Kernel32());
  Put<uint16_t>(f, offsetof(Elf32_Ehdr, e_ehsize), 20);
  ExpectError(f, "e_ehsize 20");
  f = BuildElf(Kernel64());
  Put<uint64_t>(f, offsetof(Elf64_Ehdr, e_phoff), ~0ull - 8);
  ExpectError(f, "program header table");
}

TEST(ParseElfErrors, ProgramHeaderPastEndOfFile) {
  TestElf t = Kernel32();
  t.segments.push_back({0x500000, std::nullopt, Bytes(16, 0), 0});
  auto f = BuildElf(t);
  Put<uint32_t>(f, PhdrOffset(false, 2) + offsetof(Elf32_Phdr, p_offset),
                static_cast<uint32_t>(f.size() - 8));
  ExpectError(f, "program header 2 extends past end of file");
  // An offset alone beyond the file, with 64-bit sizes that would overflow.
  f = BuildElf(Kernel64());
  Put<uint64_t>(f, PhdrOffset(true, 0) + offsetof(Elf64_Phdr, p_offset), 16);
  Put<uint64_t>(f, PhdrOffset(true, 0) + offsetof(Elf64_Phdr, p_filesz),
                ~0ull - 8);
  ExpectError(f, "program header 0 extends past end of file");
}

TEST(ParseElfErrors, FileszLargerThanMemsz) {
  auto f = BuildElf(Kernel32());
  Put<uint32_t>(f, PhdrOffset(false, 0) + offsetof(Elf32_Phdr, p_memsz), 8);
  ExpectError(f, "program header 0: p_filesz 0x40 is larger than p_memsz 0x8");
}

TEST(ParseElfErrors, AddressWraps) {
  TestElf t = Kernel32();
  t.segments[1].paddr = 0xfffff000;
  t.segments[1].vaddr = 0xfffff000;
  ExpectError(BuildElf(t), "wraps the 32-bit address space");
  TestElf u = Kernel64();
  u.segments[0].paddr = ~0ull - 0x100;
  ExpectError(BuildElf(u), "wraps the 64-bit address space");
}

TEST(ParseElfErrors, NoLoadSegments) {
  TestElf t;
  t.segments = {{0, std::nullopt, Bytes(8, 0), 0, PT_NOTE}};
  ExpectError(BuildElf(t), "no PT_LOAD segments");
}

TEST(ParseElfErrors, OverlappingSegments) {
  TestElf t = Kernel32();
  t.segments[1].paddr = 0x400020;
  t.segments[1].vaddr = 0x500000;
  ExpectError(BuildElf(t), "PT_LOAD program headers 0 and 1 overlap");
}

TEST(ParseElfErrors, EntryOutsideSegments) {
  TestElf t = Kernel32();
  t.entry = 0x100000;
  ExpectError(BuildElf(t), "entry point 0x100000 is not inside any PT_LOAD");
}

class LoadElf : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "low", 0, 8 * kMiB).has_value());
    ASSERT_TRUE(mem_.Fill(0, 0xaa, 8 * kMiB).has_value());
  }
  uint8_t At(uint64_t gpa) { return *mem_.ReadObj<uint8_t>(gpa); }
  GuestMemory mem_;
};

TEST_F(LoadElf, Elf32CopiesAndZeroesBss) {
  auto f = BuildElf(Kernel32());
  auto img = ParseElf(f);
  ASSERT_TRUE(img.has_value());
  ASSERT_TRUE(LoadElfSegments(*img, f, mem_).has_value());
  std::vector<uint8_t> got(64);
  ASSERT_TRUE(mem_.Read(0x400000, got.data(), got.size()).has_value());
  EXPECT_EQ(got, Bytes(64, 1));
  EXPECT_EQ(At(0x400040), 0xaa);       // between segments: untouched
  EXPECT_EQ(At(0x401000), 0x80);
  EXPECT_EQ(At(0x40101f), 0x9f);
  for (uint64_t a = 0x401020; a < 0x404000; a += 0x111) EXPECT_EQ(At(a), 0) << a;
  EXPECT_EQ(At(0x403fff), 0);
  EXPECT_EQ(At(0x404000), 0xaa);       // past memsz: untouched
}

TEST_F(LoadElf, Elf64AtPhysicalAddress) {
  auto f = BuildElf(Kernel64());
  auto img = ParseElf(f);
  ASSERT_TRUE(img.has_value());
  ASSERT_TRUE(LoadElfSegments(*img, f, mem_).has_value());
  EXPECT_EQ(At(0x200000), 7);
  EXPECT_EQ(At(0x20007f), 7 + 127);
  EXPECT_EQ(At(0x200080), 0);
  EXPECT_EQ(At(0x201fff), 0);
  EXPECT_EQ(At(0x202000), 0xaa);
}

TEST_F(LoadElf, SegmentOutsideRamWritesNothing) {
  TestElf t = Kernel32();
  // Segment 0 fits; segment 1's bss runs past the end of RAM (8 MiB).
  t.segments[1].paddr = 8 * kMiB - 0x1000;
  t.segments[1].vaddr = 8 * kMiB - 0x1000;
  auto f = BuildElf(t);
  auto img = ParseElf(f);
  ASSERT_TRUE(img.has_value());
  auto st = LoadElfSegments(*img, f, mem_);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), Errc::kOutOfRange);
  EXPECT_NE(st.error().message().find(
                "PT_LOAD segment 1 [0x7ff000, 0x802000) is outside guest RAM "
                "from 0x800000"),
            std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("[0x0, 0x800000)"), std::string::npos);
  EXPECT_EQ(At(0x400000), 0xaa);  // segment 0 was not written either
  EXPECT_EQ(At(8 * kMiB - 0x1000), 0xaa);
}

TEST_F(LoadElf, SegmentAcrossAdjacentRamSegments) {
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "more", 8 * kMiB, kMiB).has_value());
  TestElf t;
  t.entry = 8 * kMiB - 0x10;
  t.segments = {{8 * kMiB - 0x10, std::nullopt, Bytes(0x20, 0x40), 0}};
  auto f = BuildElf(t);
  auto img = ParseElf(f);
  ASSERT_TRUE(img.has_value());
  ASSERT_TRUE(LoadElfSegments(*img, f, mem_).has_value());
  EXPECT_EQ(At(8 * kMiB - 0x10), 0x40);
  EXPECT_EQ(At(8 * kMiB + 0xf), 0x5f);
}

}  // namespace
}  // namespace strata::amd64
