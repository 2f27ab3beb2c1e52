/* Runtime start, exit paths, reporting, counter waits and string helpers. */
#include "runtime.h"

#include "arm64.h"
#include "exceptions.h"
#include "fdt.h"
#include "psci.h"
#include "smp.h"

/* Called by entry.S on the boot CPU with the DTB address (x0 at entry). */
__attribute__((noreturn)) void runtime_start(uintptr_t dtb);

void runtime_start(uintptr_t dtb) {
  vectors_install();
  bool have_dt = fdt_parse(dtb);
  boot_cpu_index = have_dt ? fdt_cpu_index(read_mpidr()) : -1;
  write_sysreg(tpidr_el1, boot_cpu_index < 0 ? 0 : (uint64_t)boot_cpu_index);
  if (!have_dt) guest_exit(1);
  int code = guest_main(dtb);
  guest_exit((uint32_t)code);
}

void halt_forever(void) {
  irq_disable();
  for (;;) wfi();
}

void guest_exit(uint32_t code) {
  printf("EXIT: STATUS=%u\n", (code << 1) | 1);
  psci_system_off();
}

void guest_poweroff(void) { psci_system_off(); }

void guest_reset(void) { psci_system_reset(); }

int report_summary(void) { return (int)report_print_summary(); }

#define COUNTER_STUCK_POLLS 1000000u

void deadline_start(struct deadline *d, uint32_t ms) {
  uint64_t freq = cntfrq();
  /* CNTFRQ_EL0 is firmware-programmed; 0 would make every wait instant,
   * so assume the common 62.5 MHz then. */
  if (freq == 0) freq = 62500000;
  d->start = d->last = cntvct();
  d->limit_ticks = freq / 1000 * ms;
  d->unchanged_polls = 0;
  d->timer_stuck = false;
}

bool deadline_expired(struct deadline *d) {
  uint64_t now = cntvct();
  if (now == d->last) {
    if (++d->unchanged_polls >= COUNTER_STUCK_POLLS) d->timer_stuck = true;
  } else {
    d->unchanged_polls = 0;
    d->last = now;
  }
  return d->timer_stuck || now - d->start >= d->limit_ticks;
}

void udelay(uint32_t us) {
  struct deadline d;
  deadline_start(&d, 0);
  uint64_t freq = cntfrq() ? cntfrq() : 62500000;
  d.limit_ticks = freq / 1000000 * us;
  while (!deadline_expired(&d)) cpu_relax();
}
