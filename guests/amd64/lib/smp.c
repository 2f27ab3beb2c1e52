/* AP start-up; see smp.h for the protocol. */
#include "smp.h"

#include "platform.h"
#include "runtime.h"
#include "x86.h"

/* The MP spec sends a second SIPI if the AP has not started after ~200 us;
 * on an emulating host starting takes longer, and a SIPI to an AP that is
 * already running is ignored, so retrying late is harmless. */
#define SIPI_RETRY_MS 10

extern const char ap_trampoline_start[], ap_trampoline_end[];

static volatile uint32_t ap_count;
static volatile uint32_t ap_bitmap[SMP_MAX_APIC_ID / 32];

/* Called by ap_entry32 on the AP's own stack; returns to `cli; hlt`. */
void ap_main(void);

#define CPUID_LEAF_TOPOLOGY 0x0B

uint32_t smp_cpuid_apic_id(void) {
  if (cpuid(0, 0).eax >= CPUID_LEAF_TOPOLOGY) {
    struct cpuid_regs t = cpuid(CPUID_LEAF_TOPOLOGY, 0);
    if (t.ebx != 0) return t.edx; /* EBX = 0: the leaf is not implemented */
  }
  return cpuid(1, 0).ebx >> 24;
}

static void mark_id(uint32_t apic_id) {
  if (apic_id < SMP_MAX_APIC_ID) {
    __atomic_fetch_or(&ap_bitmap[apic_id / 32], 1u << (apic_id % 32), __ATOMIC_SEQ_CST);
  }
}

/* Set by the BSP before it sends the IPIs: APs follow it into x2APIC mode,
 * as firmware leaves every CPU of a machine with more than 255 (SDM Vol. 3
 * §11.12.5.1; xAPIC ids are 8 bits, so IPIs by id need it). */
static volatile bool aps_x2apic;
static volatile uint32_t ap_id_mismatches;

void ap_main(void) {
  uint32_t id = smp_cpuid_apic_id();
  if (aps_x2apic && lapic_enable_x2apic() && lapic_id() != id) {
    __atomic_fetch_add(&ap_id_mismatches, 1, __ATOMIC_SEQ_CST);
  }
  /* Bitmap first: once the BSP sees the count, the bit is visible too. */
  mark_id(id);
  __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
}

static void send_startup(uint32_t ncpus, enum smp_ipi_mode mode, uint32_t self,
                         bool with_init) {
  const uint32_t init = LAPIC_ICR_DELIVERY_INIT | LAPIC_ICR_LEVEL_ASSERT;
  const uint32_t sipi = LAPIC_ICR_DELIVERY_STARTUP | LAPIC_ICR_LEVEL_ASSERT | AP_SIPI_VECTOR;
  if (mode == SMP_IPI_BROADCAST) {
    if (with_init) lapic_send_ipi(0, init | LAPIC_ICR_DEST_ALL_BUT_SELF);
    lapic_send_ipi(0, sipi | LAPIC_ICR_DEST_ALL_BUT_SELF);
    return;
  }
  for (uint32_t id = 0; id < ncpus; ++id) {
    if (id == self) continue;
    if (with_init) lapic_send_ipi(id, init);
    lapic_send_ipi(id, sipi);
  }
}

struct smp_status smp_boot_aps(uint32_t ncpus, enum smp_ipi_mode mode,
                               uint32_t timeout_ms) {
  struct smp_status st = {.expected = ncpus};
  if (ncpus > 255) st.x2apic = lapic_x2apic_mode() || lapic_enable_x2apic();
  aps_x2apic = st.x2apic;
  uint32_t self = lapic_id();
  mark_id(self);
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
  st.id_mismatches = __atomic_load_n(&ap_id_mismatches, __ATOMIC_SEQ_CST);
  for (uint32_t i = 0; i < SMP_MAX_APIC_ID / 32; ++i) {
    st.bitmap[i] = __atomic_load_n(&ap_bitmap[i], __ATOMIC_SEQ_CST);
    /* Counted by hand: __builtin_popcount would call into libgcc. */
    for (uint32_t bits = st.bitmap[i]; bits != 0; bits &= bits - 1) ++st.ids_seen;
  }
  return st;
}

void smp_print_ids(const struct smp_status *st) {
  for (uint32_t id = 0; id < SMP_MAX_APIC_ID; ++id) {
    if (st->bitmap[id / 32] & (1u << (id % 32))) printf(" %u", id);
  }
}

uint32_t smp_highest_id(const struct smp_status *st) {
  for (uint32_t id = SMP_MAX_APIC_ID; id-- > 0;) {
    if (st->bitmap[id / 32] & (1u << (id % 32))) return id;
  }
  return 0;
}
