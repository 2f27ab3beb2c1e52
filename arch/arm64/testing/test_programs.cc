// strata — the MI tests' tiny guest programs in A64 (ARM ARM C6), run at
// EL1h with the MMU off from RAM at guest-physical 0.
#include "machine/test_programs.h"

#include <cstdint>
#include <vector>

namespace strata::md::testing {

namespace {

constexpr uint64_t kCodeBase = 0x1000;

// Encodings checked with aarch64-linux-gnu-as/objdump.
std::vector<uint32_t> Code(TestProgram p) {
  switch (p) {
    case TestProgram::kHaltLoop:
      return {0xd503207f,   // 1: wfi
              0x17ffffff};  //    b 1b
    case TestProgram::kSpinLoop:
      return {0x14000000};  // b .
    case TestProgram::kPioLoop:
      return {0xd2a14001,   //    movz x1, #0x0a00, lsl #16  (kTestPioPort)
              0x52800000,   //    mov w0, #0
              0xb9000020,   // 1: str w0, [x1]
              0x11000400,   //    add w0, w0, #1
              0x17fffffe};  //    b 1b
    case TestProgram::kMmioLoop:
      return {0xd2a14001,   //    movz x1, #0x0a00, lsl #16
              0xf2860001,   //    movk x1, #0x3000            (kTestMmioAddr)
              0x52800000,   //    mov w0, #0
              0x39000020,   // 1: strb w0, [x1]
              0x11000400,   //    add w0, w0, #1
              0x17fffffe};  //    b 1b
    case TestProgram::kPioRead:
      return {0xd2a14001,   //    movz x1, #0x0a00, lsl #16
              0xf2820001,   //    movk x1, #0x1000            (kTestReadPort)
              0xd2a14002,   //    movz x2, #0x0a00, lsl #16
              0xf2840002,   //    movk x2, #0x2000            (kTestEchoPort)
              0xb9400020,   //    ldr w0, [x1]
              0xb9000040,   //    str w0, [x2]
              0xd503207f,   // 1: wfi
              0x17ffffff};  //    b 1b
    case TestProgram::kTripleFault:
      break;  // no arm64 equivalent: LoadTestProgram refuses it
  }
  return {};
}

}  // namespace

uint64_t TestProgramAddress(TestProgram p) {
  return kCodeBase + 0x100 * static_cast<uint64_t>(p);
}

// The instruction after the ldr (the fifth).
uint64_t TestReadNextPc() {
  return TestProgramAddress(TestProgram::kPioRead) + 5 * 4;
}

Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p) {
  const std::vector<uint32_t> code = Code(p);
  if (code.empty()) {
    return MakeError(Errc::kUnsupported,
                     "arm64 has no triple fault: a guest that cannot take an "
                     "exception loops in it (the VM does not shut down)");
  }
  const uint64_t at = TestProgramAddress(p);
  STRATA_TRY(vm.memory().Write(at, code.data(), code.size() * 4));
  STRATA_TRY(vcpu.SetRegister(Reg::kPstate, kPstateModeEl1h | kPstateDaifMask));
  STRATA_TRY(vcpu.SetRegister(Reg::kPc, at));
  return vcpu.SetRunnable(true);
}

}  // namespace strata::md::testing
