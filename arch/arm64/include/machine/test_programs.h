// strata — tiny guest programs for the MI core's tests (arm64 values of
// the names in arch/amd64/include/machine/test_programs.h).
#pragma once

#include "core/result.h"
#include "core/vm.h"

namespace strata::md::testing {

enum class TestProgram {
  kHaltLoop,     // wfi forever
  kSpinLoop,     // b .
  kPioLoop,      // stores its loop counter to kTestPioPort forever
  kTripleFault,  // PSCI SYSTEM_RESET-free crash: an abort with VBAR = 0
  kPioRead,      // loads from kTestReadPort into x0, stores x0 to
                 // kTestEchoPort, then wfi forever
  kMmioLoop,     // stores its loop counter (a byte) to kTestMmioAddr forever
};

// arm64 has no port I/O: the loop writes to an MMIO address outside RAM.
inline constexpr uint64_t kTestPioPort = 0x0a000000;
inline constexpr bool kTestPioIsMmio = true;
inline constexpr uint64_t kTestRamSize = 1 << 20;
inline constexpr uint64_t kTestReadPort = 0x0a001000;
inline constexpr uint64_t kTestEchoPort = 0x0a002000;
inline constexpr Reg kTestReadReg = Reg::kX0;
inline constexpr uint64_t kTestReadResultMask = 0xff;
inline constexpr uint64_t kTestMmioAddr = 0x0a003000;

Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p);
uint64_t TestProgramAddress(TestProgram p);
uint64_t TestReadNextPc();

}  // namespace strata::md::testing
