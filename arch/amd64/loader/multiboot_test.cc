#include "core/guest_memory_testing.h"
#include "arch/amd64/loader/multiboot.h"

#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "arch/amd64/loader/e820.h"
#include "arch/amd64/loader/elf_builder_testing.h"

namespace strata::amd64 {
namespace {

using testing::Bytes;
using testing::BuildElf;
using testing::Put;
using testing::TestElf;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint8_t kPoison = 0xcc;

// Like a kvm-unit-tests x86 *.flat: ELF32, Multiboot header with flags 0,
// loaded at 4 MiB with a big bss.
TestElf KutLike() {
  TestElf t;
  t.entry = 0x400000;
  t.multiboot_flags = 0;
  t.segments = {{0x400000, std::nullopt, Bytes(0x200, 0x11), 0x40000}};
  return t;
}

std::string ReadString(const GuestMemory& mem, uint64_t gpa) {
  std::string s;
  for (;;) {
    auto c = mem.ReadObj<char>(gpa++);
    if (!c || *c == '\0') return s;
    s.push_back(*c);
  }
}

// Walks the identity page tables (2 MiB pages) like the MMU.
uint64_t Walk(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
  uint64_t t = cr3 & kPteAddrMask;
  for (int shift : {39, 30}) {
    auto e = mem.ReadObj<uint64_t>(t + ((va >> shift) & 0x1ff) * 8);
    if (!e || !(*e & kPtePresent)) return ~0ull;
    t = *e & kPteAddrMask;
  }
  auto pde = mem.ReadObj<uint64_t>(t + ((va >> 21) & 0x1ff) * 8);
  if (!pde || !(*pde & kPtePresent) || !(*pde & kPtePageSize)) return ~0ull;
  return (*pde & kPteAddrMask) | (va & (2 * kMiB - 1));
}

class LoadKernelTest : public ::testing::Test {
 protected:
  // 64 MiB low plus 64 MiB at 4 GiB: the platform's split layout, small.
  void SetUp() override {
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "low", 0, 64 * kMiB).has_value());
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "high", 4 * kGiB, 64 * kMiB).has_value());
    ASSERT_TRUE(mem_.Fill(0, kPoison, 64 * kMiB).has_value());
  }
  MultibootInfo Info(const BootInfo& bi) {
    auto info = mem_.ReadObj<MultibootInfo>(bi.rbx);
    EXPECT_TRUE(info.has_value());
    return info ? *info : MultibootInfo{};
  }
  uint8_t At(uint64_t gpa) { return *mem_.ReadObj<uint8_t>(gpa); }
  bool Untouched(uint64_t gpa, uint64_t len) {
    for (uint64_t a = gpa; a < gpa + len; ++a) {
      if (At(a) != kPoison) return false;
    }
    return true;
  }
  GuestMemory mem_;
};

// --- Header detection ----------------------------------------------------------

TEST(FindMultibootHeader, FindsValidHeader) {
  auto f = BuildElf(KutLike());
  auto h = FindMultibootHeader(f);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->magic, kMultibootHeaderMagic);
  EXPECT_EQ(h->flags, 0u);
  EXPECT_EQ(h->file_offset % 4, 0u);
  EXPECT_EQ(h->magic + h->flags + h->checksum, 0u);
}

TEST(FindMultibootHeader, RejectsBadChecksumMisalignmentAndFarHeaders) {
  auto f = BuildElf(KutLike());
  const uint64_t off = FindMultibootHeader(f)->file_offset;
  auto bad = f;
  Put<uint32_t>(bad, off + 8, 0x12345678);
  EXPECT_FALSE(FindMultibootHeader(bad).has_value());

  std::vector<uint8_t> raw(8192 + 64, 0);
  auto put_header = [&raw](uint64_t at, uint32_t flags) {
    Put<uint32_t>(raw, at, kMultibootHeaderMagic);
    Put<uint32_t>(raw, at + 4, flags);
    Put<uint32_t>(raw, at + 8, 0u - kMultibootHeaderMagic - flags);
  };
  put_header(102, 0);  // not 4-aligned
  EXPECT_FALSE(FindMultibootHeader(raw).has_value());
  put_header(8184, 0);  // would end past 8192
  EXPECT_FALSE(FindMultibootHeader(raw).has_value());
  put_header(8176, 0);  // last position that fits
  ASSERT_TRUE(FindMultibootHeader(raw).has_value());
  EXPECT_EQ(FindMultibootHeader(raw)->file_offset, 8176u);
  // A bogus magic with a bad checksum before a good header is skipped.
  Put<uint32_t>(raw, 200, kMultibootHeaderMagic);
  EXPECT_EQ(FindMultibootHeader(raw)->file_offset, 8176u);
  EXPECT_FALSE(FindMultibootHeader(std::span(raw).first(100)).has_value());
}

TEST(FindMultibootHeader, AoutKludgeFields) {
  std::vector<uint8_t> raw(256, 0);
  const uint32_t flags = kMbHeaderAoutKludge | kMbHeaderMemoryInfo;
  Put<uint32_t>(raw, 16, kMultibootHeaderMagic);
  Put<uint32_t>(raw, 20, flags);
  Put<uint32_t>(raw, 24, 0u - kMultibootHeaderMagic - flags);
  Put<uint32_t>(raw, 28, 0x100010);  // header_addr
  Put<uint32_t>(raw, 32, 0x100000);  // load_addr
  Put<uint32_t>(raw, 36, 0x101000);  // load_end_addr
  Put<uint32_t>(raw, 40, 0x102000);  // bss_end_addr
  Put<uint32_t>(raw, 44, 0x100020);  // entry_addr
  auto h = FindMultibootHeader(raw);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->header_addr, 0x100010u);
  EXPECT_EQ(h->load_addr, 0x100000u);
  EXPECT_EQ(h->load_end_addr, 0x101000u);
  EXPECT_EQ(h->bss_end_addr, 0x102000u);
  EXPECT_EQ(h->entry_addr, 0x100020u);
}

// --- LoadKernel ------------------------------------------------------------------

TEST_F(LoadKernelTest, KvmUnitTestsStyleElf32) {
  BootParams p;
  p.cmdline = "x86/apic.flat -smp 2 arg1";
  p.module = {'N', 'R', '_', 'C', 'P', 'U', 'S', '=', '2', '\n'};
  p.module_cmdline = "env";
  auto r = LoadKernel(BuildElf(KutLike()), p, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const BootInfo& bi = *r;
  EXPECT_EQ(bi.mode, EntryMode::kProtected32);
  EXPECT_EQ(bi.entry, 0x400000u);
  EXPECT_EQ(bi.rax, 0x2badb002u);
  EXPECT_EQ(bi.rflags, 0x2u);
  EXPECT_EQ(bi.kernel_end, 0x440000u);
  // Boot data in [1 MiB, 4 MiB), page aligned.
  EXPECT_EQ(bi.boot_data_start, 1 * kMiB);
  EXPECT_LE(bi.boot_data_end, 4 * kMiB);
  EXPECT_EQ(bi.boot_data_end % kPageSize, 0u);
  EXPECT_GE(bi.rbx, bi.boot_data_start);
  EXPECT_LT(bi.rbx, bi.boot_data_end);
  // Pages 0 and 1 are left alone (SIPI trampoline, test scratch page).
  EXPECT_TRUE(Untouched(0, 2 * kPageSize));

  // Kernel loaded, bss zeroed.
  EXPECT_EQ(At(0x400000), 0x11);
  EXPECT_EQ(At(0x400200), 0);
  EXPECT_EQ(At(0x43ffff), 0);
  EXPECT_EQ(At(0x440000), kPoison);

  const MultibootInfo info = Info(bi);
  EXPECT_EQ(info.flags, kMbInfoMemory | kMbInfoCmdline | kMbInfoMods |
                            kMbInfoMmap | kMbInfoLoaderName);
  EXPECT_EQ(info.mem_lower, 639u);
  EXPECT_EQ(info.mem_upper, 63u * 1024);
  EXPECT_EQ(ReadString(mem_, info.cmdline), "x86/apic.flat -smp 2 arg1");
  EXPECT_EQ(ReadString(mem_, info.boot_loader_name), "strata");

  ASSERT_EQ(info.mods_count, 1u);
  auto mod = mem_.ReadObj<MultibootModule>(info.mods_addr);
  ASSERT_TRUE(mod.has_value());
  EXPECT_EQ(mod->mod_start % kPageSize, 0u);
  EXPECT_EQ(mod->mod_end - mod->mod_start, p.module.size());
  EXPECT_LE(mod->mod_end, bi.boot_data_end);
  std::vector<uint8_t> content(p.module.size());
  ASSERT_TRUE(mem_.Read(mod->mod_start, content.data(), content.size()).has_value());
  EXPECT_EQ(content, p.module);
  EXPECT_EQ(ReadString(mem_, mod->string), "env");

  // The memory map is BuildE820's, including RAM above 4 GiB.
  const std::vector<E820Entry> e820 = BuildE820(mem_);
  ASSERT_EQ(info.mmap_length, e820.size() * sizeof(MultibootMmapEntry));
  for (size_t i = 0; i < e820.size(); ++i) {
    auto e = mem_.ReadObj<MultibootMmapEntry>(info.mmap_addr + i * 24);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->size, 20u);
    EXPECT_EQ(e->addr, e820[i].addr);
    EXPECT_EQ(e->len, e820[i].size);
    EXPECT_EQ(e->type, e820[i].type);
  }
  EXPECT_EQ(e820.back().addr, 4 * kGiB);
  EXPECT_EQ(e820.back().type, kE820Ram);

  // CS/DS caches match the GDT in guest memory.
  const md::VcpuState& st = bi.sregs;
  EXPECT_EQ(st.cr0, md::kCr0Pe | md::kCr0Et);
  EXPECT_GE(st.gdt.base, bi.boot_data_start);
  EXPECT_LT(st.gdt.base, bi.boot_data_end);
  auto cs = mem_.ReadObj<uint64_t>(st.gdt.base + st.cs.selector);
  auto ds = mem_.ReadObj<uint64_t>(st.gdt.base + st.ds.selector);
  auto tr = mem_.ReadObj<uint64_t>(st.gdt.base + st.tr.selector);
  EXPECT_EQ(*cs, EncodeDescriptor(st.cs));
  EXPECT_EQ(*ds, EncodeDescriptor(st.ds));
  EXPECT_EQ(*tr, EncodeDescriptor(st.tr));
  EXPECT_EQ(*cs, 0x00cf9b000000ffffull);
}

TEST_F(LoadKernelTest, NoModule) {
  BootParams p;
  p.cmdline = "x86/hello.flat";
  auto r = LoadKernel(BuildElf(KutLike()), p, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const MultibootInfo info = Info(*r);
  EXPECT_NE(info.flags & kMbInfoMods, 0u);
  EXPECT_EQ(info.mods_count, 0u);
}

TEST_F(LoadKernelTest, Elf32WithoutMultibootHeader) {
  TestElf t = KutLike();
  t.multiboot_flags.reset();
  auto r = LoadKernel(BuildElf(t), {}, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->mode, EntryMode::kProtected32);
  EXPECT_EQ(r->rax, 0x2badb002u);
  EXPECT_EQ(ReadString(mem_, Info(*r).cmdline), "");
}

TEST_F(LoadKernelTest, Elf64EntersLongModeWithIdentityMap) {
  TestElf t;
  t.is64 = true;
  t.entry = 0x600000;
  t.segments = {{0x600000, std::nullopt, Bytes(0x100, 0x22), 0x1000}};
  BootParams p;
  p.cmdline = "kernel64";
  auto r = LoadKernel(BuildElf(t), p, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const BootInfo& bi = *r;
  EXPECT_EQ(bi.mode, EntryMode::kLong64);
  EXPECT_EQ(bi.entry, 0x600000u);
  EXPECT_EQ(bi.rax, 0x2badb002u);
  EXPECT_EQ(bi.sregs.efer, md::kEferLme | md::kEferLma);
  EXPECT_EQ(bi.sregs.cr4, md::kCr4Pae);
  EXPECT_EQ(bi.sregs.cr0, md::kCr0Pe | md::kCr0Pg | md::kCr0Et);
  EXPECT_EQ(bi.sregs.cs.selector, kSelCode64);
  EXPECT_EQ(bi.sregs.cs.l, 1);
  EXPECT_EQ(*mem_.ReadObj<uint64_t>(bi.sregs.gdt.base + kSelCode64),
            EncodeDescriptor(bi.sregs.cs));
  const uint64_t cr3 = bi.sregs.cr3;
  EXPECT_GE(cr3, bi.boot_data_start);
  EXPECT_LT(cr3, bi.boot_data_end);
  EXPECT_EQ(cr3 % kPageSize, 0u);
  for (uint64_t va : {bi.entry, bi.rbx, uint64_t{0xfee00000}, uint64_t{0xffffffff}}) {
    EXPECT_EQ(Walk(mem_, cr3, va), va) << std::hex << va;
  }
  // The Multiboot info is reachable through the mapping and is complete.
  EXPECT_EQ(ReadString(mem_, Info(bi).cmdline), "kernel64");
  EXPECT_EQ(Info(bi).mods_count, 0u);
}

TEST_F(LoadKernelTest, KernelAt1MiBPushesBootDataPastIt) {
  TestElf t;
  t.entry = 0x100000;
  t.multiboot_flags = kMbHeaderPageAlignModules | kMbHeaderMemoryInfo;
  t.segments = {{0x100000, std::nullopt, Bytes(0x1000, 0x33), 0x123456}};
  BootParams p;
  p.module = Bytes(5000, 0);
  auto r = LoadKernel(BuildElf(t), p, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->kernel_end, 0x224000u);
  EXPECT_EQ(r->boot_data_start, r->kernel_end);
  EXPECT_GE(r->rbx, r->kernel_end);
  EXPECT_GE(r->sregs.gdt.base, r->kernel_end);
  auto mod = mem_.ReadObj<MultibootModule>(Info(*r).mods_addr);
  EXPECT_GE(mod->mod_start, r->kernel_end);
  EXPECT_EQ(mod->mod_end - mod->mod_start, 5000u);
  // The kernel's bss is still zero: boot data did not land on it.
  EXPECT_EQ(At(0x223455), 0);
  EXPECT_EQ(At(0x100000), 0x33);
}

TEST_F(LoadKernelTest, BigModuleMovesPastTheKernel) {
  BootParams p;
  p.module = Bytes(4 * kMiB, 3);
  auto r = LoadKernel(BuildElf(KutLike()), p, mem_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->boot_data_start, r->kernel_end);
  auto mod = mem_.ReadObj<MultibootModule>(Info(*r).mods_addr);
  EXPECT_EQ(mod->mod_end - mod->mod_start, 4 * kMiB);
  EXPECT_EQ(At(mod->mod_start + 4 * kMiB - 1), static_cast<uint8_t>(3 + 4 * kMiB - 1));
}

TEST_F(LoadKernelTest, AoutKludgeIsUnsupported) {
  TestElf t = KutLike();
  t.multiboot_flags = kMbHeaderAoutKludge;
  auto f = BuildElf(t);
  f.resize(f.size() + 64, 0);  // room for the address fields
  auto r = LoadKernel(f, {}, mem_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("a.out kludge"), std::string::npos);
  EXPECT_TRUE(Untouched(0x100000, 0x400000));
}

TEST_F(LoadKernelTest, UnknownRequiredFlagIsUnsupported) {
  TestElf t = KutLike();
  t.multiboot_flags = 1u << 5;
  auto r = LoadKernel(BuildElf(t), {}, mem_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("0x20"), std::string::npos);
  // Bit 2 (video mode) is accepted and ignored.
  t.multiboot_flags = kMbHeaderVideoMode;
  EXPECT_TRUE(LoadKernel(BuildElf(t), {}, mem_).has_value());
}

TEST_F(LoadKernelTest, BadElfIsInvalidArgument) {
  std::vector<uint8_t> junk(300, 0x90);
  auto r = LoadKernel(junk, {}, mem_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("not an ELF file"), std::string::npos);
}

TEST_F(LoadKernelTest, KernelOutsideRamWritesNothing) {
  TestElf t = KutLike();
  t.segments.push_back({0xc0000000, std::nullopt, Bytes(16, 0), 0});
  auto r = LoadKernel(BuildElf(t), {"x", {1, 2, 3}, "", {}}, mem_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_TRUE(Untouched(0x100000, 0x400000));  // no boot data
  EXPECT_TRUE(Untouched(0x400000, 0x1000));    // no kernel
}

// The platform's holes, as bhyverun's amd64 machdep passes them (scaled: the
// test RAM below 4 GiB ends at 64 MiB).
std::vector<MemoryHole> TestHoles() {
  return {
      {"the LAPIC page", 0xfee00000, 0x1000},
      {"the IOAPIC page", 0xfec00000, 0x1000},
      {"the MMIO hole below 4 GiB", 64 * kMiB, 4 * kGiB - 64 * kMiB},
  };
}

std::string LoadError(const TestElf& t, GuestMemory& mem) {
  BootParams p;
  p.cmdline = "k";
  p.holes = TestHoles();
  auto r = LoadKernel(BuildElf(t), p, mem);
  if (r.has_value()) return "loaded";
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  return r.error().message();
}

TEST_F(LoadKernelTest, SegmentOverTheLapicPageIsNamed) {
  TestElf t = KutLike();
  t.segments.push_back({0xfedff000, std::nullopt, Bytes(16, 0), 0x3000});
  const std::string m = LoadError(t, mem_);
  EXPECT_NE(m.find("PT_LOAD segment 1 [0xfedff000, 0xfee02000) overlaps the "
                   "LAPIC page [0xfee00000, 0xfee01000)"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("boot data"), std::string::npos) << m;
  EXPECT_TRUE(Untouched(0x100000, 0x400000));
}

TEST_F(LoadKernelTest, SegmentOverTheIoapicPageIsNamed) {
  TestElf t = KutLike();
  t.segments.push_back({0xfec00800, std::nullopt, Bytes(16, 0), 0});
  const std::string m = LoadError(t, mem_);
  EXPECT_NE(m.find("PT_LOAD segment 1 [0xfec00800, 0xfec00810) overlaps the "
                   "IOAPIC page"),
            std::string::npos)
      << m;
}

TEST_F(LoadKernelTest, SegmentIntoTheMmioHoleIsNamed) {
  // From RAM into the hole: used to be blamed on the boot data placed after
  // the kernel ("no room for the ... boot data").
  TestElf t = KutLike();
  t.segments.push_back({60 * kMiB, std::nullopt, Bytes(16, 0), 8 * kMiB});
  const std::string m = LoadError(t, mem_);
  EXPECT_NE(m.find("PT_LOAD segment 1 [0x3c00000, 0x4400000) overlaps the "
                   "MMIO hole below 4 GiB [0x4000000, 0x100000000)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("RAM is [0x0, 0x4000000), [0x100000000, 0x104000000)"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("boot data"), std::string::npos) << m;
}

TEST_F(LoadKernelTest, SegmentPastTheEndOfRamIsOutsideGuestRam) {
  TestElf t = KutLike();
  t.segments.push_back({4 * kGiB + 60 * kMiB, std::nullopt, Bytes(16, 0),
                        8 * kMiB});
  t.is64 = true;
  const std::string m = LoadError(t, mem_);
  EXPECT_NE(m.find("PT_LOAD segment 1 [0x103c00000, 0x104400000) is outside "
                   "guest RAM from 0x104000000 (RAM is"),
            std::string::npos)
      << m;
  t.segments[1].paddr = t.segments[1].vaddr.emplace(8 * kGiB);
  const std::string m2 = LoadError(t, mem_);
  EXPECT_NE(m2.find("PT_LOAD segment 1 [0x200000000, 0x200800000) is outside "
                    "guest RAM (RAM is"),
            std::string::npos)
      << m2;
}

TEST(LoadKernel, NoRoomForBootData) {
  // 2 MiB of RAM, kernel filling [1 MiB, 2 MiB): nowhere to put boot data.
  GuestMemory mem;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "low", 0, 2 * kMiB).has_value());
  ASSERT_TRUE(mem.Fill(0, kPoison, 2 * kMiB).has_value());
  TestElf t;
  t.entry = 0x100000;
  t.multiboot_flags = 0;
  t.segments = {{0x100000, std::nullopt, Bytes(16, 1), kMiB}};
  auto r = LoadKernel(BuildElf(t), {}, mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("no room for the"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(*mem.ReadObj<uint8_t>(0x100000), kPoison);
}


// e_phnum is 16 bits and 0xffff means "extended count", so 65534 PT_LOADs
// is the most a file can have. The overlap check must not be quadratic in
// them (it took 13-27 s): sort by address and compare neighbours.
TestElf ManyTinySegments(size_t n, uint64_t base, uint64_t stride) {
  TestElf t;
  t.entry = base;
  t.multiboot_flags = 0;
  t.segments.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // Reverse address order, so nothing relies on the table being sorted.
    const uint64_t at = base + (n - 1 - i) * stride;
    t.segments.push_back({at, std::nullopt, {static_cast<uint8_t>(i)}, stride});
  }
  return t;
}

TEST_F(LoadKernelTest, SixtyFiveThousandTinySegmentsLoadQuickly) {
  constexpr size_t kSegments = 65534;
  const std::vector<uint8_t> f =
      BuildElf(ManyTinySegments(kSegments, 8 * kMiB, 16));
  const auto start = std::chrono::steady_clock::now();
  auto r = LoadKernel(f, {"many", {}, "", {}}, mem_);
  const double secs = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  ASSERT_TRUE(r.has_value()) << r.error().message();
  std::printf("LoadKernel of %zu PT_LOAD segments: %.3f s\n", kSegments, secs);
  RecordProperty("load_seconds", std::to_string(secs));
  EXPECT_LT(secs, 5.0);  // generous: sanitizer builds on a slow host
  EXPECT_EQ(At(8 * kMiB), static_cast<uint8_t>(kSegments - 1));
  EXPECT_EQ(At(8 * kMiB + 1), 0);  // bss of the segment
  EXPECT_EQ(At(8 * kMiB + 16), static_cast<uint8_t>(kSegments - 2));
}

TEST(ParseElfMany, OverlapAmongManySegmentsIsFound) {
  // Two of 65534 overlap, far apart in the table: the error names both.
  TestElf t = ManyTinySegments(65534, 8 * kMiB, 16);
  t.segments[40000].paddr = t.segments[3].paddr + 8;
  t.segments[40000].vaddr = 0x40000000;
  t.segments[40000].memsz = 4;  // inside segment 3 only
  auto r = ParseElf(BuildElf(t));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("PT_LOAD program headers 3 and 40000 "
                                     "overlap"),
            std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace strata::amd64
