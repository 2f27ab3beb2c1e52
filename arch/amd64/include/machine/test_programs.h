// strata — tiny guest programs for tests of the MI core (machine-dependent:
// arch/arm64/testing/ has the same names). Each is a few instructions the
// test places in guest RAM and points a vCPU at.
#pragma once

#include "core/result.h"
#include "core/vm.h"

namespace strata::md::testing {

enum class TestProgram {
  kHaltLoop,     // interrupts off, halt forever (stays in the hypervisor)
  kSpinLoop,     // a tight branch-to-self loop (stays in guest mode)
  kPioLoop,      // writes its loop counter to kTestPioPort forever
  kTripleFault,  // takes an exception with no usable vector table
};

// The I/O port (amd64) or MMIO address (arm64) kPioLoop writes to.
inline constexpr uint64_t kTestPioPort = 0x80;
inline constexpr bool kTestPioIsMmio = false;

// Guest RAM the programs need, from GPA 0.
inline constexpr uint64_t kTestRamSize = 1 << 20;

// Writes the program into RAM (once per VM is enough) and sets the vCPU's
// registers to run it, runnable.
Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p);

}  // namespace strata::md::testing
