/* AP start-up; see smp.h for the protocol. */
#include "smp.h"

#include "platform.h"
#include "runtime.h"

/* xAPIC interrupt command register (SDM Vol. 3 §11.6.1); the others are
 * in lapic.h. */
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_INIT (5u << 8)
#define ICR_DELIVERY_STARTUP (6u << 8)
#define ICR_SEND_PENDING (1u << 12)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_DEST_ALL_BUT_SELF (3u << 18)

/* The MP spec sends a second SIPI if the AP has not started after ~200 us;
 * on an emulating host starting takes longer, and a SIPI to an AP that is
 * already running is ignored, so retrying late is harmless. */
#define SIPI_RETRY_MS 10

extern const char ap_trampoline_start[], ap_trampoline_end[];

static volatile uint32_t ap_count;
static volatile uint32_t ap_bitmap[SMP_MAX_CPUS / 32];

/* Called by ap_entry32 on the AP's own stack; returns to `cli; hlt`. */
void ap_main(uint32_t apic_id);

void ap_main(uint32_t apic_id) {
  /* Bitmap first: once the BSP sees the count, the bit is visible too. */
  __atomic_fetch_or(&ap_bitmap[apic_id / 32], 1u << (apic_id % 32), __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
}

static void wait_icr_idle(void) {
  for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_SEND_PENDING); ++i) {
    cpu_relax();
  }
}

static void send_ipi(uint32_t dest_id, uint32_t icr_lo) {
  wait_icr_idle();
  lapic_write(LAPIC_ICR_HI, dest_id << 24);
  lapic_write(LAPIC_ICR_LO, icr_lo); /* the low-half write sends it */
  wait_icr_idle();
}

static void send_startup(uint32_t ncpus, enum smp_ipi_mode mode, uint32_t self,
                         bool with_init) {
  const uint32_t init = ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT;
  const uint32_t sipi = ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | AP_SIPI_VECTOR;
  if (mode == SMP_IPI_BROADCAST) {
    if (with_init) send_ipi(0, init | ICR_DEST_ALL_BUT_SELF);
    send_ipi(0, sipi | ICR_DEST_ALL_BUT_SELF);
    return;
  }
  for (uint32_t id = 0; id < ncpus; ++id) {
    if (id == self) continue;
    if (with_init) send_ipi(id, init);
    send_ipi(id, sipi);
  }
}

struct smp_status smp_boot_aps(uint32_t ncpus, enum smp_ipi_mode mode,
                               uint32_t timeout_ms) {
  struct smp_status st = {.expected = ncpus};
  uint32_t self = lapic_id();
  if (self < SMP_MAX_CPUS) {
    __atomic_fetch_or(&ap_bitmap[self / 32], 1u << (self % 32), __ATOMIC_SEQ_CST);
  }
  if (ncpus > 1) {
    memcpy((void *)(uintptr_t)AP_TRAMPOLINE_ADDR, ap_trampoline_start,
           (size_t)(ap_trampoline_end - ap_trampoline_start));
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
    send_startup(ncpus, mode, self, true);
    struct deadline d;
    deadline_start(&d, timeout_ms);
    bool retried = false;
    while (__atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) + 1 < ncpus) {
      if (deadline_expired(&d)) {
        st.timed_out = true;
        st.timer_stuck = d.timer_stuck;
        break;
      }
      if (!retried && d.elapsed_ticks >= SIPI_RETRY_MS * 3580u) {
        send_startup(ncpus, mode, self, false);
        retried = true;
      }
      cpu_relax();
    }
  }
  st.checked_in = __atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) + 1;
  for (uint32_t i = 0; i < SMP_MAX_CPUS / 32; ++i) {
    st.bitmap[i] = __atomic_load_n(&ap_bitmap[i], __ATOMIC_SEQ_CST);
    /* Counted by hand: __builtin_popcount would call into libgcc. */
    for (uint32_t bits = st.bitmap[i]; bits != 0; bits &= bits - 1) ++st.ids_seen;
  }
  return st;
}

void smp_print_ids(const struct smp_status *st) {
  for (uint32_t id = 0; id < SMP_MAX_CPUS; ++id) {
    if (st->bitmap[id / 32] & (1u << (id % 32))) printf(" %u", id);
  }
}
