#include "arch/amd64/loader/boot_setup.h"

#include <vector>

namespace strata::amd64 {

namespace {

constexpr uint32_t kFlatLimit = 0xffffffff;
constexpr uint32_t kGranularityShift = 12;        // G=1: limit in 4 KiB units
constexpr uint32_t kGranularityLowBits = 0xfff;
constexpr uint64_t k2MiB = 2ull << 20;
constexpr uint64_t k1GiB = 1ull << 30;
constexpr uint64_t kEntriesPerTable = 512;
constexpr uint64_t kPageDirectories = kIdentityMapSize / k1GiB;  // 4

md::Segment Flat(uint16_t selector, uint8_t type) {
  md::Segment s;
  s.base = 0;
  s.limit = kFlatLimit;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;
  s.s = 1;
  s.l = 0;
  s.g = 1;
  return s;
}

md::Segment UnusableLdt() {
  md::Segment s;
  s.type = kTypeLdt;
  s.unusable = 1;  // SDM Vol. 3 §26.3.1.2: LDTR may be unusable
  return s;
}

}  // namespace

uint64_t EncodeDescriptor(const md::Segment& s) {
  const uint32_t raw_limit = s.g ? s.limit >> kGranularityShift : s.limit;
  uint64_t d = 0;
  d |= uint64_t{raw_limit & 0xffff};                   // limit 15:0
  d |= (s.base & 0xffffff) << 16;                      // base 23:0
  d |= uint64_t{s.type & 0xfu} << 40;
  d |= uint64_t{s.s & 1u} << 44;
  d |= uint64_t{s.dpl & 3u} << 45;
  d |= uint64_t{s.present & 1u} << 47;
  d |= uint64_t{(raw_limit >> 16) & 0xfu} << 48;       // limit 19:16
  d |= uint64_t{s.avl & 1u} << 52;
  d |= uint64_t{s.l & 1u} << 53;
  d |= uint64_t{s.db & 1u} << 54;
  d |= uint64_t{s.g & 1u} << 55;
  d |= ((s.base >> 24) & 0xff) << 56;                  // base 31:24
  return d;
}

md::Segment DecodeDescriptor(uint64_t d, uint16_t selector) {
  md::Segment s;
  const uint32_t raw_limit =
      static_cast<uint32_t>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
  s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
  s.type = (d >> 40) & 0xf;
  s.s = (d >> 44) & 1;
  s.dpl = (d >> 45) & 3;
  s.present = (d >> 47) & 1;
  s.avl = (d >> 52) & 1;
  s.l = (d >> 53) & 1;
  s.db = (d >> 54) & 1;
  s.g = (d >> 55) & 1;
  s.limit = s.g ? (raw_limit << kGranularityShift) | kGranularityLowBits
                : raw_limit;
  s.selector = selector;
  return s;
}

md::Segment FlatCode32() {
  return Flat(kSelCode32, kTypeCodeExecReadAccessed);
}

md::Segment FlatData() { return Flat(kSelData, kTypeDataReadWriteAccessed); }

md::Segment Code64() {
  md::Segment s = Flat(kSelCode64, kTypeCodeExecReadAccessed);
  s.l = 1;
  s.db = 0;  // L=1 requires D=0 (SDM Vol. 3 §5.2.1)
  return s;
}

md::Segment BusyTss(uint64_t tss_gpa) {
  md::Segment s;
  s.base = tss_gpa;
  s.limit = kTssSize - 1;
  s.selector = kSelTss;
  s.type = kTypeTssBusy;
  s.present = 1;
  s.s = 0;
  s.g = 0;
  return s;
}

Status WriteGdt(GuestMemory& mem, uint64_t gdt_gpa, uint64_t tss_gpa) {
  // The TSS descriptor's upper 8 bytes hold base 63:32; boot tables live
  // below 4 GiB, so they are zero, which in legacy mode also reads as a
  // null descriptor.
  const uint64_t gdt[kGdtSize / sizeof(uint64_t)] = {
      0,
      EncodeDescriptor(FlatCode32()),
      EncodeDescriptor(FlatData()),
      EncodeDescriptor(Code64()),
      EncodeDescriptor(BusyTss(tss_gpa)),
      tss_gpa >> 32,
  };
  static_assert(sizeof(gdt) == kGdtSize);
  STRATA_TRY(mem.Fill(tss_gpa, 0, kTssSize));
  return mem.Write(gdt_gpa, gdt, sizeof(gdt));
}

Status WriteIdentityPageTables(GuestMemory& mem, uint64_t pml4_gpa) {
  // 2 MiB pages rather than 1 GiB ones: not every CPU (or KVM CPUID) has
  // PDPE1GB. SDM Vol. 3 §4.5, Tables 4-15 (PML4E), 4-17 (PDPTE), 4-18 (PDE).
  const uint64_t pdpt_gpa = pml4_gpa + kPageSize;
  const uint64_t pd_gpa = pml4_gpa + 2 * kPageSize;
  const uint64_t table_flags = kPtePresent | kPteWritable;
  std::vector<uint64_t> t(kPageTablesSize / sizeof(uint64_t), 0);
  uint64_t* pml4 = t.data();
  uint64_t* pdpt = pml4 + kEntriesPerTable;
  uint64_t* pd = pdpt + kEntriesPerTable;
  pml4[0] = pdpt_gpa | table_flags;
  for (uint64_t i = 0; i < kPageDirectories; ++i) {
    pdpt[i] = (pd_gpa + i * kPageSize) | table_flags;
  }
  for (uint64_t i = 0; i < kPageDirectories * kEntriesPerTable; ++i) {
    pd[i] = (i * k2MiB) | table_flags | kPtePageSize;
  }
  return mem.Write(pml4_gpa, t.data(), kPageTablesSize);
}

md::VcpuState MakeBootState(EntryMode mode, uint64_t gdt_gpa,
                            uint64_t tss_gpa, uint64_t pml4_gpa) {
  md::VcpuState st;
  const md::Segment data = FlatData();
  st.ds = st.es = st.fs = st.gs = st.ss = data;
  st.tr = BusyTss(tss_gpa);
  st.ldt = UnusableLdt();
  st.gdt = {gdt_gpa, static_cast<uint16_t>(kGdtSize - 1)};
  st.idt = {0, 0};  // Multiboot §3.2: the OS must set up its own IDT
  st.apic_base = kApicBaseDefault | kApicBaseBsp | kApicBaseEnable;
  switch (mode) {
    case EntryMode::kProtected32:
      // Multiboot §3.2: CR0.PE set, CR0.PG clear. ET is hardwired to 1 on
      // every CPU since the 486 (SDM Vol. 3 §2.5).
      st.cs = FlatCode32();
      st.cr0 = md::kCr0Pe | md::kCr0Et;
      break;
    case EntryMode::kLong64:
      // IA-32e mode: CR0.PG with CR4.PAE and EFER.LME, EFER.LMA as the CPU
      // would set it (SDM Vol. 3 §9.8.5).
      st.cs = Code64();
      st.cr0 = md::kCr0Pe | md::kCr0Pg | md::kCr0Et;
      st.cr3 = pml4_gpa;
      st.cr4 = md::kCr4Pae;
      st.efer = md::kEferLme | md::kEferLma;
      break;
  }
  return st;
}

}  // namespace strata::amd64
