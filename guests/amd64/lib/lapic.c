/* Local APIC (xAPIC MMIO) helpers; see lapic.h. */
#include "lapic.h"

#include "exceptions.h"
#include "x86.h"

uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }

void lapic_write(uint32_t reg, uint32_t val) { mmio_write32(LAPIC_BASE + reg, val); }

uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

#if defined(__x86_64__)
/* A spurious interrupt is not in service: no EOI (SDM Vol. 3 §11.9). */
static void on_spurious(struct exception_frame *frame) { (void)frame; }
#endif

void lapic_enable(void) {
#if defined(__x86_64__)
  set_irq_handler(LAPIC_SPURIOUS_VECTOR, on_spurious);
#endif
  lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

/* Any value works; 0 is what the SDM recommends for future compatibility. */
void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

void lapic_timer_periodic(uint8_t vector, uint32_t initial_count) {
  lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_TIMER_DIVIDE_BY_1);
  lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | vector);
  /* Writing the initial count starts the timer (§11.5.4). */
  lapic_write(LAPIC_TIMER_INITIAL, initial_count);
}

void lapic_timer_stop(void) {
  lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
  lapic_write(LAPIC_TIMER_INITIAL, 0);
}
