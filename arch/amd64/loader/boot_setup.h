// strata — the CPU state an amd64 kernel is entered with, and the tables
// (GDT, TSS, identity page tables) that state points into.
//
// Theory: a VM entry checks the guest segment registers' hidden parts
// against each other, not against the GDT in memory (SDM Vol. 3 §26.3.1.2),
// but the guest's first far jump or segment load reads the GDT. So the
// descriptors written to guest memory and the caches in md::VcpuState are
// built from the same md::Segment values (EncodeDescriptor), and they stay
// equal by construction.
//
// GDT layout, shared by both entry modes:
//   0x00 null
//   0x08 flat 32-bit code (base 0, limit 4 GiB, type 0xb, D=1, G=1)
//   0x10 flat data        (base 0, limit 4 GiB, type 0x3, B=1, G=1)
//   0x18 64-bit code      (type 0xb, L=1, D=0)
//   0x20 busy TSS (type 11), 16 bytes so that it is also a valid long-mode
//        system descriptor (SDM Vol. 3 §7.2.3); only TR uses it: VMX needs
//        a usable busy TSS in TR even though the guest never switches tasks.
#pragma once

#include <cstdint>

#include "core/guest_memory.h"
#include "core/result.h"
#include "machine/vcpu_state.h"

namespace strata::amd64 {

enum class EntryMode {
  kProtected32,  // flat 32-bit protected mode, paging off (Multiboot §3.2)
  kLong64,       // 64-bit mode, first 4 GiB identity mapped
};

// What the vCPU register setup needs to start the boot processor.
struct BootInfo {
  EntryMode mode = EntryMode::kProtected32;
  uint64_t entry = 0;          // RIP
  uint64_t rbx = 0, rax = 0;   // Multiboot: rax = magic, rbx = info address
  uint64_t rsp = 0;            // undefined under Multiboot; 0
  uint64_t rsi = 0;            // Linux: the zero page (boot_params)
  uint64_t rflags = md::kRflagsReserved1;  // IF = 0, VM = 0 (Multiboot §3.2)
  md::VcpuState sregs;         // segments, descriptor tables, CRs, EFER
  uint64_t kernel_end = 0;     // end of the loaded image, page aligned
  // Where LoadKernel put the GDT, page tables, Multiboot info and module
  // ([start, end), page aligned); later data must avoid it too.
  uint64_t boot_data_start = 0;
  uint64_t boot_data_end = 0;
};

inline constexpr uint64_t kPageSize = 4096;

// Selectors (index << 3, TI = 0, RPL = 0).
inline constexpr uint16_t kSelCode32 = 0x08;
inline constexpr uint16_t kSelData = 0x10;
inline constexpr uint16_t kSelCode64 = 0x18;
inline constexpr uint16_t kSelTss = 0x20;
inline constexpr uint64_t kGdtSize = 0x30;  // 4 descriptors + 16-byte TSS

// A 32-bit TSS is 104 bytes (SDM Vol. 3 §7.2.1), as is the 64-bit one
// (§7.7) without an I/O bitmap.
inline constexpr uint64_t kTssSize = 104;

// Segment descriptor types (SDM Vol. 3 §3.4.5.1, §3.5): with the accessed
// bit set, as the CPU would after loading them.
inline constexpr uint8_t kTypeCodeExecReadAccessed = 0xb;
inline constexpr uint8_t kTypeDataReadWriteAccessed = 0x3;
inline constexpr uint8_t kTypeLdt = 0x2;
inline constexpr uint8_t kTypeTssBusy = 0xb;  // 32-bit or 64-bit busy TSS

// Identity page tables: PML4, one PDPT and four page directories of 2 MiB
// pages covering [0, 4 GiB) (SDM Vol. 3 §4.5).
inline constexpr uint64_t kIdentityMapSize = 1ull << 32;
inline constexpr uint64_t kPageTablesSize = 6 * kPageSize;
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPtePageSize = 1ull << 7;  // PS: 2 MiB page in a PDE
inline constexpr uint64_t kPteAddrMask = 0x000ffffffffff000ull;

// IA32_APIC_BASE at reset for the boot processor: xAPIC enabled at
// 0xfee00000, BSP flag set (SDM Vol. 3 §10.4.4).
inline constexpr uint64_t kApicBaseDefault = 0xfee00000;
inline constexpr uint64_t kApicBaseBsp = 1ull << 8;
inline constexpr uint64_t kApicBaseEnable = 1ull << 11;

// The 8-byte descriptor for a segment's hidden part (SDM Vol. 3 §3.4.5,
// Figure 3-8); limits of G=1 segments are stored in 4 KiB units.
uint64_t EncodeDescriptor(const md::Segment& s);
// The inverse, as the CPU loads a selector: `selector` is recorded as given.
md::Segment DecodeDescriptor(uint64_t desc, uint16_t selector);

// Segment caches for the GDT above.
md::Segment FlatCode32();
md::Segment FlatData();
md::Segment Code64();
md::Segment BusyTss(uint64_t tss_gpa);

// Writes the GDT at `gdt_gpa` (kGdtSize bytes) with a TSS descriptor for a
// zeroed TSS at `tss_gpa` (kTssSize bytes, also written).
Status WriteGdt(GuestMemory& mem, uint64_t gdt_gpa, uint64_t tss_gpa);

// Writes kPageTablesSize bytes of identity page tables at `pml4_gpa` (page
// aligned): PML4, PDPT, then four PDs.
Status WriteIdentityPageTables(GuestMemory& mem, uint64_t pml4_gpa);

// The complete non-GPR state for `mode`. `pml4_gpa` is used for kLong64.
md::VcpuState MakeBootState(EntryMode mode, uint64_t gdt_gpa,
                            uint64_t tss_gpa, uint64_t pml4_gpa);

}  // namespace strata::amd64
