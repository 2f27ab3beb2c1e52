#include "machine/test_programs.h"

#include <cstdint>
#include <vector>

namespace strata::md::testing {

namespace {

// Real-mode programs at 0x1000 + 0x100 * kind (SDM Vol. 2 opcodes).
constexpr uint64_t kCodeBase = 0x1000;

std::vector<uint8_t> Code(TestProgram p) {
  switch (p) {
    case TestProgram::kHaltLoop:
      return {0xfa,         // cli
              0xf4,         // hlt
              0xeb, 0xfd};  // jmp hlt
    case TestProgram::kSpinLoop:
      return {0xfa,         // cli
              0xeb, 0xfe};  // jmp .
    case TestProgram::kPioLoop:
      return {0xfa,         // cli
              0x31, 0xc0,   // xor ax, ax
              0xe6, 0x80,   // out 0x80, al
              0x40,         // inc ax
              0xeb, 0xfb};  // jmp out
    case TestProgram::kPioRead:
      return {0xfa,         // cli
              0xe4, 0x81,   // in al, 0x81
              0xe6, 0x82,   // out 0x82, al
              0xf4,         // hlt
              0xeb, 0xfd};  // jmp hlt
    case TestProgram::kMmioLoop:
      // DS.base = kTestMmioAddr (LoadTestProgram), so [0] is that address.
      return {0xfa,               // cli
              0x31, 0xc0,         // xor ax, ax
              0xa2, 0x00, 0x00,   // mov [0], al
              0x40,               // inc ax
              0xeb, 0xfa};        // jmp mov
    case TestProgram::kTripleFault:
      // Run in protected mode with an empty IDT (see LoadTestProgram):
      // #UD cannot be delivered -> #GP -> #DF -> shutdown (SDM Vol. 3
      // §6.15, "Interrupt 8—Double Fault Exception").
      return {0x0f, 0x0b,   // ud2
              0xeb, 0xfe};  // jmp .
  }
  return {};
}

}  // namespace

uint64_t TestProgramAddress(TestProgram p) {
  return kCodeBase + 0x100 * static_cast<uint64_t>(p);
}

uint64_t TestReadNextPc() { return TestProgramAddress(TestProgram::kPioRead) + 3; }

Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p) {
  uint64_t at = TestProgramAddress(p);
  std::vector<uint8_t> code = Code(p);
  STRATA_TRY(vm.memory().Write(at, code.data(), code.size()));
  VcpuState s = STRATA_TRY(vcpu.GetState());
  s.cs.selector = 0;
  s.cs.base = 0;
  s.cs.limit = 0xffff;
  if (p == TestProgram::kMmioLoop) {
    s.ds.base = kTestMmioAddr;
    s.ds.selector = 0;
  }
  if (p == TestProgram::kTripleFault) {
    // Flat 32-bit protected mode, IDT limit 0. Only the hidden parts of
    // the segment registers matter: no selector is ever loaded.
    auto flat = [](Segment& seg, uint16_t sel, uint8_t type) {
      seg = Segment{};
      seg.selector = sel;
      seg.limit = 0xffffffff;
      seg.type = type;
      seg.present = 1;
      seg.s = 1;
      seg.db = 1;
      seg.g = 1;
    };
    flat(s.cs, 0x08, 0xb);
    flat(s.ds, 0x10, 0x3);
    flat(s.es, 0x10, 0x3);
    flat(s.ss, 0x10, 0x3);
    s.idt = {0, 0};
    s.cr0 = kCr0Pe | kCr0Et;
  }
  STRATA_TRY(vcpu.SetState(s));
  STRATA_TRY(vcpu.SetRegister(Reg::kRip, at));
  STRATA_TRY(vcpu.SetRegister(Reg::kRflags, kRflagsReserved1));
  return vcpu.SetRunnable(true);
}

}  // namespace strata::md::testing
