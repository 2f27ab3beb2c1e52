#include "core/guest_memory_testing.h"
#include "arch/amd64/loader/boot_setup.h"

#include <gtest/gtest.h>

namespace strata::amd64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

void ExpectSameSegment(const md::Segment& a, const md::Segment& b,
                       const char* what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.base, b.base);
  EXPECT_EQ(a.limit, b.limit);
  EXPECT_EQ(a.selector, b.selector);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.present, b.present);
  EXPECT_EQ(a.dpl, b.dpl);
  EXPECT_EQ(a.db, b.db);
  EXPECT_EQ(a.s, b.s);
  EXPECT_EQ(a.l, b.l);
  EXPECT_EQ(a.g, b.g);
  EXPECT_EQ(a.avl, b.avl);
}

// Walks 4-level paging for `va` as the MMU would (SDM Vol. 3 §4.5), from
// tables read back out of guest memory. Returns the physical address or
// ~0 if not mapped.
uint64_t Walk(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
  uint64_t table = cr3 & kPteAddrMask;
  const int shifts[] = {39, 30, 21};
  for (int level = 0; level < 3; ++level) {
    const uint64_t idx = (va >> shifts[level]) & 0x1ff;
    auto e = mem.ReadObj<uint64_t>(table + idx * 8);
    if (!e || !(*e & kPtePresent)) return ~0ull;
    if (level == 1 && (*e & kPtePageSize)) return ~0ull;  // no 1 GiB pages
    if (level == 2) {
      if (!(*e & kPtePageSize)) return ~0ull;  // we only map 2 MiB pages
      EXPECT_NE(*e & kPteWritable, 0u);
      return (*e & kPteAddrMask & ~(2 * kMiB - 1)) | (va & (2 * kMiB - 1));
    }
    EXPECT_NE(*e & kPteWritable, 0u);
    table = *e & kPteAddrMask;
  }
  return ~0ull;
}

TEST(Descriptors, KnownEncodings) {
  // The flat descriptors every OS tutorial shows (SDM Vol. 3 §3.4.5).
  EXPECT_EQ(EncodeDescriptor(FlatCode32()), 0x00cf9b000000ffffull);
  EXPECT_EQ(EncodeDescriptor(FlatData()), 0x00cf93000000ffffull);
  EXPECT_EQ(EncodeDescriptor(Code64()), 0x00af9b000000ffffull);
  // Busy TSS at 0x12345678, limit 0x67, byte granular.
  EXPECT_EQ(EncodeDescriptor(BusyTss(0x12345678)), 0x12008b3456780067ull);
}

TEST(Descriptors, RoundTrip) {
  for (const md::Segment& s :
       {FlatCode32(), FlatData(), Code64(), BusyTss(0xabcdef00)}) {
    ExpectSameSegment(DecodeDescriptor(EncodeDescriptor(s), s.selector), s,
                      "round trip");
  }
}

class BootTables : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "low", 0, 16 * kMiB).has_value());
    ASSERT_TRUE(mem_.Fill(0, 0xcc, 16 * kMiB).has_value());
  }
  void ExpectGdtMatches(const md::VcpuState& st) {
    ASSERT_EQ(st.gdt.limit, kGdtSize - 1);
    auto desc = [&](uint16_t sel) {
      return *mem_.ReadObj<uint64_t>(st.gdt.base + sel);
    };
    EXPECT_EQ(desc(0), 0u);
    ExpectSameSegment(DecodeDescriptor(desc(st.cs.selector), st.cs.selector),
                      st.cs, "cs");
    for (const md::Segment* s : {&st.ds, &st.es, &st.fs, &st.gs, &st.ss}) {
      ExpectSameSegment(DecodeDescriptor(desc(s->selector), s->selector), *s,
                        "data");
    }
    ExpectSameSegment(DecodeDescriptor(desc(st.tr.selector), st.tr.selector),
                      st.tr, "tr");
    EXPECT_EQ(desc(kSelTss + 8), 0u);  // TSS base 63:32
  }
  GuestMemory mem_;
};

TEST_F(BootTables, Protected32State) {
  const uint64_t gdt = 0x100000, tss = 0x100040;
  ASSERT_TRUE(WriteGdt(mem_, gdt, tss).has_value());
  md::VcpuState st = MakeBootState(EntryMode::kProtected32, gdt, tss, 0);
  EXPECT_EQ(st.cr0, md::kCr0Pe | md::kCr0Et);
  EXPECT_EQ(st.cr4, 0u);
  EXPECT_EQ(st.efer, 0u);
  EXPECT_EQ(st.cs.selector, kSelCode32);
  EXPECT_EQ(st.cs.type, 0xb);
  EXPECT_EQ(st.cs.db, 1);
  EXPECT_EQ(st.cs.l, 0);
  EXPECT_EQ(st.cs.limit, 0xffffffffu);
  EXPECT_EQ(st.ss.selector, kSelData);
  EXPECT_EQ(st.ss.type, 0x3);
  // VMX guest-state checks for TR and LDTR (SDM Vol. 3 §26.3.1.2).
  EXPECT_EQ(st.tr.type, 11);
  EXPECT_EQ(st.tr.s, 0);
  EXPECT_EQ(st.tr.present, 1);
  EXPECT_EQ(st.tr.unusable, 0);
  EXPECT_EQ(st.tr.base, tss);
  EXPECT_EQ(st.tr.limit, kTssSize - 1);
  EXPECT_EQ(st.ldt.unusable, 1);
  EXPECT_EQ(st.apic_base, 0xfee00900u);
  ExpectGdtMatches(st);
  // The TSS itself is zeroed.
  for (uint64_t a = tss; a < tss + kTssSize; ++a) {
    EXPECT_EQ(*mem_.ReadObj<uint8_t>(a), 0);
  }
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(tss + kTssSize), 0xcc);
}

TEST_F(BootTables, Long64State) {
  const uint64_t gdt = 0x200000, tss = 0x200080, pml4 = 0x201000;
  ASSERT_TRUE(WriteGdt(mem_, gdt, tss).has_value());
  ASSERT_TRUE(WriteIdentityPageTables(mem_, pml4).has_value());
  md::VcpuState st = MakeBootState(EntryMode::kLong64, gdt, tss, pml4);
  EXPECT_EQ(st.cr0, md::kCr0Pe | md::kCr0Pg | md::kCr0Et);
  EXPECT_EQ(st.cr4, md::kCr4Pae);
  EXPECT_EQ(st.efer, md::kEferLme | md::kEferLma);
  EXPECT_EQ(st.cr3, pml4);
  EXPECT_EQ(st.cs.selector, kSelCode64);
  EXPECT_EQ(st.cs.l, 1);
  EXPECT_EQ(st.cs.db, 0);
  EXPECT_EQ(st.tr.type, 11);
  ExpectGdtMatches(st);
}

TEST_F(BootTables, IdentityPageTablesMapFirst4GiB) {
  const uint64_t pml4 = 0x300000;
  ASSERT_TRUE(WriteIdentityPageTables(mem_, pml4).has_value());
  for (uint64_t va : {0x0ull, 0x1000ull, 0x12345678ull, 0x7fffffffull,
                      0x80000000ull, 0xbfe00123ull, 0xfec00000ull,
                      0xfee00000ull, 0xffffffffull}) {
    EXPECT_EQ(Walk(mem_, pml4, va), va) << std::hex << va;
  }
  EXPECT_EQ(Walk(mem_, pml4, 4 * kGiB), ~0ull);
  EXPECT_EQ(Walk(mem_, pml4, 512 * kGiB), ~0ull);
  // Six pages exactly; the byte after is untouched.
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(pml4 + kPageTablesSize), 0xcc);
  // PML4[1..] and PDPT[4..] are empty.
  EXPECT_EQ(*mem_.ReadObj<uint64_t>(pml4 + 8), 0u);
  EXPECT_EQ(*mem_.ReadObj<uint64_t>(pml4 + kPageSize + 4 * 8), 0u);
}

TEST_F(BootTables, WritesOutsideRamFail) {
  auto st = WriteIdentityPageTables(mem_, 16 * kMiB - kPageSize);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), Errc::kOutOfRange);
}

}  // namespace
}  // namespace strata::amd64
