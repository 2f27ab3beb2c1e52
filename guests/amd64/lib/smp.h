/*
 * Application-processor start-up (SDM Vol. 3 §9.4.4, MP Spec 1.4 §B.4).
 *
 * The BSP copies a real-mode trampoline to AP_TRAMPOLINE_ADDR and sends
 * INIT then SIPI through the xAPIC ICR. Each AP switches to flat protected
 * mode with the runtime GDT, picks a stack by its APIC id, atomically counts
 * itself in and sets its bit in a bitmap, then parks in `cli; hlt`. APs never
 * print and never return to the trampoline.
 */
#ifndef STRATA_GUEST_SMP_H
#define STRATA_GUEST_SMP_H

#include <stdbool.h>
#include <stdint.h>

#include "lapic.h" /* lapic_read, lapic_write, lapic_id */
#include "layout.h"

enum smp_ipi_mode {
  /* One INIT and one SIPI to "all excluding self". */
  SMP_IPI_BROADCAST,
  /* INIT and SIPI to each APIC id 0..ncpus-1 except the BSP's. */
  SMP_IPI_UNICAST,
};

struct smp_status {
  uint32_t expected;    /* cpus asked for, BSP included */
  uint32_t checked_in;  /* BSP + APs that ran ap_main */
  uint32_t ids_seen;    /* distinct APIC ids in the bitmap */
  bool timed_out;
  bool timer_stuck;     /* the PM timer never moved while waiting */
  uint32_t bitmap[SMP_MAX_CPUS / 32];
};

/* Starts APs and waits until ncpus cpus checked in or timeout_ms passed. */
struct smp_status smp_boot_aps(uint32_t ncpus, enum smp_ipi_mode mode,
                               uint32_t timeout_ms);
/* Prints the APIC ids in `st` as " 0 1 2 ...". */
void smp_print_ids(const struct smp_status *st);

#endif /* STRATA_GUEST_SMP_H */
