/*
 * The EL1 virtual timer (Arm ARM D11.2.4): CNTV_TVAL_EL0 counts down from
 * the value written, CNTV_CTL_EL0 ENABLE/IMASK/ISTATUS. Its interrupt is
 * PPI 27 (TIMER_VIRT_INTID), level-sensitive: re-arm or mask it before the
 * EOI.
 */
#ifndef STRATA_GUEST_ARM64_TIMER_H
#define STRATA_GUEST_ARM64_TIMER_H

#include <stdint.h>

#include "arm64.h"

#define CNTV_CTL_ENABLE (1u << 0)
#define CNTV_CTL_IMASK (1u << 1)
#define CNTV_CTL_ISTATUS (1u << 2)

/* Fires `ticks` counter ticks from now. */
static inline void timer_virt_arm(uint64_t ticks) {
  write_sysreg(cntv_tval_el0, ticks);
  write_sysreg(cntv_ctl_el0, CNTV_CTL_ENABLE);
  isb();
}

static inline void timer_virt_stop(void) {
  write_sysreg(cntv_ctl_el0, 0);
  isb();
}

static inline uint64_t timer_virt_ctl(void) { return read_sysreg(cntv_ctl_el0); }

#endif /* STRATA_GUEST_ARM64_TIMER_H */
