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
  kPioRead,      // reads kTestReadPort into the accumulator, writes it to
                 // kTestEchoPort, then halts forever
  kMmioLoop,     // writes its loop counter (a byte) to kTestMmioAddr forever
};

// The I/O port (amd64) or MMIO address (arm64) kPioLoop writes to.
inline constexpr uint64_t kTestPioPort = 0x80;
inline constexpr bool kTestPioIsMmio = false;
// kPioRead: the port (or MMIO address) read, the one the value is echoed
// to, the register the read lands in, and the PC right after the read.
inline constexpr uint64_t kTestReadPort = 0x81;
inline constexpr uint64_t kTestEchoPort = 0x82;
inline constexpr Reg kTestReadReg = Reg::kRax;
inline constexpr uint64_t kTestReadResultMask = 0xff;  // AL
// kMmioLoop's target: outside the test RAM.
inline constexpr uint64_t kTestMmioAddr = 0x10000000;

// Guest RAM the programs need, from GPA 0.
inline constexpr uint64_t kTestRamSize = 1 << 20;

// Writes the program into RAM (once per VM is enough) and sets the vCPU's
// registers to run it, runnable.
Status LoadTestProgram(Vm& vm, Vcpu& vcpu, TestProgram p);

// The guest-physical address of the program's first instruction, and (for
// kPioRead) of the instruction after the read.
uint64_t TestProgramAddress(TestProgram p);
uint64_t TestReadNextPc();

}  // namespace strata::md::testing
