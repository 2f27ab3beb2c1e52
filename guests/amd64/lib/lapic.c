/* Local APIC helpers (xAPIC MMIO or x2APIC MSRs); see lapic.h. */
#include "lapic.h"

#include "exceptions.h"
#include "x86.h"

#define MSR_APIC_BASE 0x1B
#define APIC_BASE_EXTD (1u << 10)
#define APIC_BASE_EN (1u << 11)
#define MSR_X2APIC_FIRST 0x800
#define MSR_X2APIC_ICR 0x830
#define CPUID_1_ECX_X2APIC (1u << 21)

#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_ICR_SEND_PENDING (1u << 12)

/* One flag for every CPU: the BSP switches first and the APs follow it
 * (smp.c) before they touch the LAPIC, so all use one mode. */
static bool x2apic_mode;

bool lapic_x2apic_supported(void) { return (cpuid(1, 0).ecx & CPUID_1_ECX_X2APIC) != 0; }

bool lapic_enable_x2apic(void) {
  if (!lapic_x2apic_supported()) return false;
  wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_EN | APIC_BASE_EXTD);
  x2apic_mode = true;
  return true;
}

bool lapic_x2apic_mode(void) { return x2apic_mode; }

uint32_t lapic_read(uint32_t reg) {
  if (x2apic_mode) return (uint32_t)rdmsr(MSR_X2APIC_FIRST + reg / 16);
  return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(uint32_t reg, uint32_t val) {
  if (x2apic_mode) {
    wrmsr(MSR_X2APIC_FIRST + reg / 16, val);
  } else {
    mmio_write32(LAPIC_BASE + reg, val);
  }
}

uint32_t lapic_id(void) {
  uint32_t id = lapic_read(LAPIC_ID);
  return x2apic_mode ? id : id >> 24;
}

static void wait_icr_idle(void) {
  for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & LAPIC_ICR_SEND_PENDING); ++i) {
    cpu_relax();
  }
}

void lapic_send_ipi(uint32_t dest, uint32_t icr_lo) {
  if (x2apic_mode) {
    /* No delivery-status bit in x2APIC mode (§11.12.9). */
    wrmsr(MSR_X2APIC_ICR, ((uint64_t)dest << 32) | icr_lo);
    return;
  }
  wait_icr_idle();
  lapic_write(LAPIC_ICR_HI, dest << 24);
  lapic_write(LAPIC_ICR_LO, icr_lo); /* the low-half write sends it */
  wait_icr_idle();
}

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
