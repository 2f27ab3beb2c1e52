/*
 * Secondary CPU bring-up with PSCI CPU_ON. Every CPU in the device tree
 * other than the caller is started at the runtime's secondary entry with
 * its DTB index as the context id; the entry code gives it the stack for
 * that index, turns its MMU on, installs the vectors and checks in (its
 * MPIDR into its slot, then the count, with release order). Then it runs
 * `secondary_fn` if one is set, and parks (WFE loop, stays ON).
 */
#ifndef STRATA_GUEST_ARM64_SMP_H
#define STRATA_GUEST_ARM64_SMP_H

#include <stdbool.h>
#include <stdint.h>

#include "fdt.h"

struct smp_status {
  uint32_t expected;    /* CPUs in the DTB */
  uint32_t checked_in;  /* including the boot CPU */
  uint32_t cpu_on_failures;
  bool timed_out;
};

/* The boot CPU's DTB index (-1 if its MPIDR is not in the DTB). */
extern int boot_cpu_index;
/* Slot i: MPIDR recorded by CPU i itself when it checked in (0 until then,
 * so it is stored with bit 31, MPIDR's RES1 bit, set). */
extern volatile uint64_t cpu_checkin_mpidr[MAX_CPUS];
extern volatile uint32_t cpus_checked_in;
/* Check-ins per CPU (a CPU started again after CPU_OFF checks in again). */
extern volatile uint32_t cpu_checkin_count[MAX_CPUS];

/* Run by each secondary after it checked in; it may return (then the CPU
 * parks). Set it before smp_start(). */
extern void (*volatile secondary_fn)(uint32_t cpu_index);

/* Records the calling CPU as checked in (smp_start does it for the boot
 * CPU; guests that call CPU_ON themselves may). */
void smp_check_in(uint32_t cpu_index);

/* CPU_ON for every other CPU, then waits up to timeout_ms for all to
 * check in. Prints a line per failed CPU_ON. */
struct smp_status smp_start(uint32_t timeout_ms);

/* The DTB index of the calling CPU (from the per-CPU TPIDR_EL1). */
static inline uint32_t smp_cpu_index(void) {
  uint64_t v;
  __asm__ volatile("mrs %0, tpidr_el1" : "=r"(v));
  return (uint32_t)v;
}

#endif /* STRATA_GUEST_ARM64_SMP_H */
