/*
 * The local APIC in xAPIC mode, through its MMIO page at LAPIC_BASE
 * (0xFEE00000, the reset value of IA32_APIC_BASE; SDM Vol. 3 §11.4.1,
 * register map Table 11-1). 32- and 64-bit guests alike (the 64-bit ones
 * reach it through the VMM's identity map of the low 4 GiB).
 *
 * Enough for a guest to take external interrupts and to wake itself from
 * HLT: software enable through the spurious-interrupt vector register
 * (§11.9), end of interrupt (§11.8.5), the APIC id (§11.4.6) and the
 * periodic timer (§11.5.4). Vectors are installed with set_irq_handler()
 * (exceptions.h, 64-bit guests).
 */
#ifndef STRATA_GUEST_LAPIC_H
#define STRATA_GUEST_LAPIC_H

#include <stdint.h>

#include "layout.h" /* LAPIC_BASE, LAPIC_ID */

/* Registers (offsets in the MMIO page; SDM Vol. 3 Table 11-1). */
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3E0

/* SVR (§11.9, Figure 11-23): bit 8 is the software enable. */
#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_SPURIOUS_VECTOR 0xFF

/* LVT timer (§11.5.1, Figure 11-8): mode in bits 18:17, mask in bit 16. */
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_TIMER_PERIODIC (1u << 17)
/* Divide configuration (§11.5.4, Figure 11-10): 1011b = divide by 1. */
#define LAPIC_TIMER_DIVIDE_BY_1 0xB

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t val);
/* The xAPIC id: bits 31:24 of the ID register. */
uint32_t lapic_id(void);

/*
 * Software-enables the LAPIC with LAPIC_SPURIOUS_VECTOR as the spurious
 * vector. A spurious interrupt needs no EOI (§11.9); 64-bit guests get a
 * gate for it that ignores it.
 */
void lapic_enable(void);
/* Signals end of interrupt for the vector being serviced (§11.8.5): every
 * handler of a LAPIC-delivered (fixed) interrupt calls it once. */
void lapic_eoi(void);

/*
 * Starts the LAPIC timer in periodic mode on `vector`, divide by 1, with
 * `initial_count` bus clocks per period. KVM's LAPIC counts at 1 GHz
 * (1 ns per clock), so 10 ms is 10,000,000. lapic_timer_stop() masks it
 * and clears the count.
 */
void lapic_timer_periodic(uint8_t vector, uint32_t initial_count);
void lapic_timer_stop(void);

#endif /* STRATA_GUEST_LAPIC_H */
