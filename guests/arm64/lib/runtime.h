/*
 * The arm64 guest runtime: entry glue, PL011 console, exit paths,
 * KUT-style reporting, counter-based deadlines and string helpers. Every
 * guest defines guest_main(); the other pieces are psci.h, fdt.h, gic.h,
 * smp.h and exceptions.h.
 */
#ifndef STRATA_GUEST_ARM64_RUNTIME_H
#define STRATA_GUEST_ARM64_RUNTIME_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/libc.h"
#include "common/printf.h"
#include "common/report.h"

/*
 * Called on the boot CPU (MMU and caches on, VBAR_EL1 set, device tree
 * parsed into fdt.h's `boot_info`) with the DTB's physical address (x0 at
 * entry). The return value goes to guest_exit().
 */
int guest_main(uintptr_t dtb);

/* PL011 console (polled): serial_putc(), and printf() through it, are
 * declared in common/printf.h; the C library subset in common/libc.h. */

/*
 * kvm-unit-tests' exit convention: prints "EXIT: STATUS=<(code << 1) | 1>"
 * (the VMM turns that line into its exit status), then PSCI SYSTEM_OFF.
 */
__attribute__((noreturn)) void guest_exit(uint32_t code);
/* PSCI SYSTEM_OFF without an EXIT line: VMM status 0. */
__attribute__((noreturn)) void guest_poweroff(void);
/* PSCI SYSTEM_RESET. */
__attribute__((noreturn)) void guest_reset(void);
/* Parks this CPU for good (interrupts masked, WFI). */
__attribute__((noreturn)) void halt_forever(void);

/* kvm-unit-tests style results (report(), report_skip(), report_info()):
 * common/report.h. */
/* Prints "SUMMARY: N tests, F unexpected failures[, S skipped]"; returns
 * the failure count (the exit code). */
int report_summary(void);

/* A bounded wait on the virtual counter (CNTVCT_EL0 / CNTFRQ_EL0). A
 * counter that does not move for many polls ends the wait too. */
struct deadline {
  uint64_t start;
  uint64_t limit_ticks;
  uint64_t last;
  uint32_t unchanged_polls;
  bool timer_stuck;
};
void deadline_start(struct deadline *d, uint32_t ms);
bool deadline_expired(struct deadline *d);
void udelay(uint32_t us);

/* Atomics with the acquire/release order the CPU check-ins need. */
static inline uint32_t atomic_add_u32(volatile uint32_t *p, uint32_t v) {
  return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
static inline uint32_t atomic_load_u32(const volatile uint32_t *p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_u32(volatile uint32_t *p, uint32_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t atomic_load_u64(const volatile uint64_t *p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_u64(volatile uint64_t *p, uint64_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

#endif /* STRATA_GUEST_ARM64_RUNTIME_H */
