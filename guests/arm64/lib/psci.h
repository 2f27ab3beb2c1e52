/*
 * PSCI through the SMCCC (Arm DEN 0022, PSCI 1.1; DEN 0028 SMCCC). The
 * conduit is the device tree's /psci `method` ("hvc" unless it says
 * "smc"); fdt_parse() sets it.
 */
#ifndef STRATA_GUEST_ARM64_PSCI_H
#define STRATA_GUEST_ARM64_PSCI_H

#include <stdbool.h>
#include <stdint.h>

#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON_64 0xc4000003u
#define PSCI_AFFINITY_INFO_64 0xc4000004u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_FEATURES 0x8400000au

#define PSCI_SUCCESS 0
#define PSCI_NOT_SUPPORTED -1
#define PSCI_INVALID_PARAMETERS -2
#define PSCI_DENIED -3
#define PSCI_ALREADY_ON -4
#define PSCI_ON_PENDING -5
#define PSCI_INTERNAL_FAILURE -6
#define PSCI_NOT_PRESENT -7
#define PSCI_DISABLED -8
#define PSCI_INVALID_ADDRESS -9

/* AFFINITY_INFO results. */
#define PSCI_AFF_ON 0
#define PSCI_AFF_OFF 1
#define PSCI_AFF_ON_PENDING 2

extern bool psci_use_smc;

/* One SMCCC call: function id in w0, arguments x1..x3, result in x0. */
int64_t smccc_call(uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3);

static inline uint32_t psci_version(void) {
  return (uint32_t)smccc_call(PSCI_VERSION, 0, 0, 0);
}
static inline int64_t psci_cpu_on(uint64_t mpidr, uintptr_t entry, uint64_t context) {
  return smccc_call(PSCI_CPU_ON_64, mpidr, entry, context);
}
static inline int64_t psci_affinity_info(uint64_t mpidr) {
  return smccc_call(PSCI_AFFINITY_INFO_64, mpidr, 0, 0);
}
__attribute__((noreturn)) void psci_system_off(void);
__attribute__((noreturn)) void psci_system_reset(void);
int64_t psci_cpu_off(void);

/* "SUCCESS", "NOT_SUPPORTED", ... for a PSCI return code. */
const char *psci_strerror(int64_t ret);

#endif /* STRATA_GUEST_ARM64_PSCI_H */
