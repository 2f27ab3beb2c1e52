// strata — amd64 vCPU register file as seen through the API.
// Layouts follow the SDM, not KVM's structs; the KVM backend converts.
#pragma once

#include <cstdint>
#include <cstring>

namespace strata::md {

// A segment register with its hidden part (SDM Vol. 3 §3.4.3, §3.4.5).
struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0;     // 4-bit type field
  uint8_t present = 0;
  uint8_t dpl = 0;
  uint8_t db = 0;       // default operation size (32-bit)
  uint8_t s = 0;        // code/data (1) or system (0)
  uint8_t l = 0;        // 64-bit code segment
  uint8_t g = 0;        // limit granularity 4 KiB
  uint8_t avl = 0;
  uint8_t unusable = 0;
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;
};

// Everything but the GPRs, RIP and RFLAGS: the state the SDM calls
// "processor state" in §9.1 and a VMCS keeps in its guest-state area.
struct VcpuState {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
  uint64_t efer = 0;
  uint64_t apic_base = 0;
};

// x87/SSE state in FXSAVE layout (SDM Vol. 1 §10.5.1), plus the whole
// XSAVE area (SDM Vol. 1 §13.4) and XCR0 when the host supports XSAVE. On
// SetFpu with has_xsave, the legacy fields above are written into the
// area's legacy region first, so either view may be edited.
struct FpuState {
  uint8_t fpr[8][16] = {};
  uint16_t fcw = 0x37f;
  uint16_t fsw = 0;
  uint8_t ftwx = 0;
  uint16_t last_opcode = 0;
  uint64_t last_ip = 0;
  uint64_t last_dp = 0;
  uint8_t xmm[16][16] = {};
  uint32_t mxcsr = 0x1f80;
  bool has_xsave = false;
  uint64_t xcr0 = 1;          // x87 always enabled
  uint32_t xsave[1024] = {};  // 4 KiB non-compacted XSAVE image
};

// Architectural constants used by loaders and the reset state.
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Mp = 1ull << 1;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Ne = 1ull << 5;
inline constexpr uint64_t kCr0Wp = 1ull << 16;
inline constexpr uint64_t kCr0Nw = 1ull << 29;
inline constexpr uint64_t kCr0Cd = 1ull << 30;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pse = 1ull << 4;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kCr4Osfxsr = 1ull << 9;
inline constexpr uint64_t kCr4Osxmmexcpt = 1ull << 10;
inline constexpr uint64_t kEferSce = 1ull << 0;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kEferNxe = 1ull << 11;
inline constexpr uint64_t kRflagsReserved1 = 1ull << 1;
inline constexpr uint64_t kRflagsIf = 1ull << 9;

}  // namespace strata::md
