/*
 * timer: the EL1 virtual timer through the GIC (v3 or v2, as the device
 * tree says). Checks that CNTFRQ_EL0 is non-zero and CNTVCT_EL0 advances,
 * then initialises the distributor and this CPU's redistributor (v3) and
 * CPU interface, enables PPI 27 (the virtual timer), points VBAR_EL1 at
 * the runtime's vectors (done at start-up) and unmasks IRQs. The timer is
 * armed for 10 ms; each interrupt is acknowledged (ICC_IAR1_EL1 or
 * GICC_IAR), re-arms the timer (it is level-sensitive) and ends with
 * ICC_EOIR1_EL1 or GICC_EOIR, until 10 ticks were counted.
 * Reports one PASS:/FAIL: line per check and a SUMMARY line; the exit code
 * is the failure count (EXIT: STATUS=1 when all pass).
 */
#include "lib/arm64.h"
#include "lib/exceptions.h"
#include "lib/gic.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/timer.h"

#define TICKS 10
#define TICK_MS 10
#define TIMEOUT_MS 2000

static volatile uint32_t ticks, other_irqs, spurious;
static volatile uint32_t last_other_intid;
static uint64_t tick_interval;

static void irq(struct exception_frame *frame) {
  (void)frame;
  uint32_t iar = gic_ack();
  uint32_t intid = gic_intid(iar);
  if (intid == GIC_INTID_SPURIOUS) {
    ++spurious;
    return;
  }
  if (intid == TIMER_VIRT_INTID) {
    if (++ticks < TICKS) {
      timer_virt_arm(tick_interval);
    } else {
      timer_virt_stop();
    }
  } else {
    ++other_irqs;
    last_other_intid = intid;
  }
  gic_eoi(iar);
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  uint64_t freq = cntfrq();
  report(freq != 0, "CNTFRQ_EL0 is non-zero (%lu Hz)", (unsigned long)freq);
  uint64_t t0 = cntvct();
  for (volatile int i = 0; i < 100000; ++i) {
  }
  uint64_t t1 = cntvct();
  report(t1 > t0, "CNTVCT_EL0 advances (%lu ticks over a 100000-iteration loop)",
         (unsigned long)(t1 - t0));
  if (freq == 0) return report_summary();

  bool gic_ok = gic_dist_init() && gic_cpu_init();
  report(gic_ok, "GICv%u distributor, %s 0x%lx initialised", gic_version(),
         gic_version() == 2 ? "CPU interface" : "CPU interface and redistributor",
         (unsigned long)gic_redist());
  if (!gic_ok) return report_summary();

  tick_interval = freq / 1000 * TICK_MS;
  set_irq_handler(irq);
  gic_enable_ppi(TIMER_VIRT_INTID);
  uint64_t start = cntvct();
  timer_virt_arm(tick_interval);
  irq_enable();
  struct deadline d;
  deadline_start(&d, TIMEOUT_MS);
  /* Polled, not WFI: a tick taken between the check and a WFI would leave
   * the last WFI waiting for good, and the wait must stay bounded. */
  while (atomic_load_u32(&ticks) < TICKS && !deadline_expired(&d)) cpu_relax();
  irq_disable();
  uint64_t elapsed = cntvct() - start;
  timer_virt_stop();
  gic_disable_ppi(TIMER_VIRT_INTID);

  uint32_t n = atomic_load_u32(&ticks);
  printf("timer: %u ticks of %u ms in %lu ms (%u spurious)\n", n, TICK_MS,
         (unsigned long)(elapsed / (freq / 1000)), spurious);
  report(n == TICKS, "%u virtual timer interrupts (PPI %u) taken, expected %u", n,
         TIMER_VIRT_INTID, TICKS);
  /* Each tick is armed in the previous one's handler: at least TICKS
   * intervals of counter time. */
  report(elapsed >= TICKS * tick_interval, "the ticks took at least %u ms of counter time",
         TICKS * TICK_MS);
  report(other_irqs == 0, "no other interrupts (%u, last INTID %u)", other_irqs,
         last_other_intid);
  return report_summary();
}
