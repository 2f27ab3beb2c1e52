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
    case TestProgram::kTripleFault:
      // lidt [idt0] with limit 0, then int3: #GP -> #DF -> shutdown
      // (SDM Vol. 3 §6.15, "Interrupt 8—Double Fault Exception").
      return {0xfa,                    // cli
              0x0f, 0x01, 0x1e,        // lidt [disp16]
              0x0a, 0x13,              //   = 0x130a (the 6 zero bytes below)
              0xcc,                    // int3
              0xeb, 0xfe,              // jmp .
              0x90,                    // pad to 0x130a
              0, 0, 0, 0, 0, 0};       // limit 0, base 0
  }
  return {};
}

}  // namespace

Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p) {
  uint64_t at = kCodeBase + 0x100 * static_cast<uint64_t>(p);
  std::vector<uint8_t> code = Code(p);
  STRATA_TRY(vm.memory().Write(at, code.data(), code.size()));
  VcpuState s = STRATA_TRY(vcpu.GetState());
  s.cs.selector = 0;
  s.cs.base = 0;
  s.cs.limit = 0xffff;
  STRATA_TRY(vcpu.SetState(s));
  STRATA_TRY(vcpu.SetRegister(Reg::kRip, at));
  STRATA_TRY(vcpu.SetRegister(Reg::kRflags, kRflagsReserved1));
  return vcpu.SetRunnable(true);
}

}  // namespace strata::md::testing
