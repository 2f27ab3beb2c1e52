/*
 * Application-processor start-up (SDM Vol. 3 §9.4.4, MP Spec 1.4 §B.4).
 *
 * The BSP copies a real-mode trampoline to AP_TRAMPOLINE_ADDR and sends
 * INIT then SIPI through its ICR — in x2APIC mode when more than 255 cpus
 * are asked for (xAPIC destinations stop at 8 bits) and the CPU has one.
 * Each AP switches to flat protected mode with the runtime GDT, takes the
 * next free stack (up to SMP_MAX_CPUS - 1 APs), reads its APIC id from
 * CPUID (leaf 0BH's 32-bit x2APIC id, or leaf 01H's 8-bit initial id),
 * switches to x2APIC mode if the BSP did (and checks that its ID register
 * agrees with CPUID),
 * atomically sets its bit in a bitmap of ids below SMP_MAX_APIC_ID and
 * counts itself in, then parks in `cli; hlt`. APs never print and never
 * return to the trampoline.
 */
#ifndef STRATA_GUEST_SMP_H
#define STRATA_GUEST_SMP_H

#include <stdbool.h>
#include <stdint.h>

#include "lapic.h" /* lapic_send_ipi, lapic_id */
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
  bool x2apic;          /* the BSP sent the IPIs in x2APIC mode (and the APs
                           switched too) */
  uint32_t id_mismatches; /* APs whose x2APIC id register differs from the
                             id CPUID gives them */
  uint32_t bitmap[SMP_MAX_APIC_ID / 32];
};

/* Starts APs and waits until ncpus cpus checked in or timeout_ms passed.
 * With more than 255 cpus, use SMP_IPI_BROADCAST: until the APs have
 * switched to x2APIC mode their 8-bit xAPIC ids are ambiguous, so an
 * INIT/SIPI by id may reach the wrong CPU.
 * More than SMP_MAX_CPUS is allowed and times out with the rest
 * uncounted. */
struct smp_status smp_boot_aps(uint32_t ncpus, enum smp_ipi_mode mode,
                               uint32_t timeout_ms);
/* Prints the APIC ids in `st` as " 0 1 2 ...". */
void smp_print_ids(const struct smp_status *st);
/* The highest APIC id in `st` (0 if none). */
uint32_t smp_highest_id(const struct smp_status *st);
/* This CPU's APIC id as CPUID reports it (x2APIC id when leaf 0BH exists). */
uint32_t smp_cpuid_apic_id(void);

#endif /* STRATA_GUEST_SMP_H */
