/* PSCI calls over HVC or SMC (SMCCC 1.x: results in x0-x3, x4-x17 may be
 * clobbered by an SMCCC 1.0 implementation). */
#include "psci.h"

#include "runtime.h"

bool psci_use_smc;

int64_t smccc_call(uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3) {
  register uint64_t x0 __asm__("x0") = fn;
  register uint64_t x1 __asm__("x1") = a1;
  register uint64_t x2 __asm__("x2") = a2;
  register uint64_t x3 __asm__("x3") = a3;
  if (psci_use_smc) {
    __asm__ volatile("smc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                       "x14", "x15", "x16", "x17", "memory");
  } else {
    __asm__ volatile("hvc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                       "x14", "x15", "x16", "x17", "memory");
  }
  return (int64_t)x0;
}

void psci_system_off(void) {
  smccc_call(PSCI_SYSTEM_OFF, 0, 0, 0);
  printf("psci: SYSTEM_OFF returned; halting\n");
  halt_forever();
}

void psci_system_reset(void) {
  smccc_call(PSCI_SYSTEM_RESET, 0, 0, 0);
  printf("psci: SYSTEM_RESET returned; halting\n");
  halt_forever();
}

int64_t psci_cpu_off(void) { return smccc_call(PSCI_CPU_OFF, 0, 0, 0); }

const char *psci_strerror(int64_t ret) {
  switch (ret) {
    case PSCI_SUCCESS: return "SUCCESS";
    case PSCI_NOT_SUPPORTED: return "NOT_SUPPORTED";
    case PSCI_INVALID_PARAMETERS: return "INVALID_PARAMETERS";
    case PSCI_DENIED: return "DENIED";
    case PSCI_ALREADY_ON: return "ALREADY_ON";
    case PSCI_ON_PENDING: return "ON_PENDING";
    case PSCI_INTERNAL_FAILURE: return "INTERNAL_FAILURE";
    case PSCI_NOT_PRESENT: return "NOT_PRESENT";
    case PSCI_DISABLED: return "DISABLED";
    case PSCI_INVALID_ADDRESS: return "INVALID_ADDRESS";
    default: return "(unknown)";
  }
}
