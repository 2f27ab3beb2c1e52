/*
 * The local APIC, in xAPIC mode through its MMIO page at LAPIC_BASE
 * (0xFEE00000, the reset value of IA32_APIC_BASE; SDM Vol. 3 §11.4.1,
 * register map Table 11-1), or in x2APIC mode through MSRs 0x800 + offset/16
 * (§11.12.1.2) once lapic_enable_x2apic() switched this CPU over: the same
 * register offsets serve both. 32- and 64-bit guests alike (the 64-bit ones
 * reach the page through the VMM's identity map of the low 4 GiB).
 *
 * Enough for a guest to take external interrupts and to wake itself from
 * HLT: software enable through the spurious-interrupt vector register
 * (§11.9), end of interrupt (§11.8.5), the APIC id (§11.4.6) and the
 * periodic timer (§11.5.4). Vectors are installed with set_irq_handler()
 * (exceptions.h, 64-bit guests).
 */
#ifndef STRATA_GUEST_LAPIC_H
#define STRATA_GUEST_LAPIC_H

#include <stdbool.h>
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
/* The APIC id: bits 31:24 of the ID register in xAPIC mode, all 32 bits in
 * x2APIC mode. */
uint32_t lapic_id(void);

/* CPUID.01H:ECX[21]. */
bool lapic_x2apic_supported(void);
/* Sets IA32_APIC_BASE.EXTD (with EN) on this CPU: x2APIC mode until reset
 * (§11.12.5; INIT does not leave it, so APs start in xAPIC mode). Returns
 * false, changing nothing, when the CPU has no x2APIC. */
bool lapic_enable_x2apic(void);
/* Whether this CPU's accessors use x2APIC mode. */
bool lapic_x2apic_mode(void);

/* Interrupt command register (§11.6.1, §11.12.9): delivery mode, level and
 * shorthand bits of the low half. */
#define LAPIC_ICR_DELIVERY_INIT (5u << 8)
#define LAPIC_ICR_DELIVERY_STARTUP (6u << 8)
#define LAPIC_ICR_LEVEL_ASSERT (1u << 14)
#define LAPIC_ICR_DEST_ALL_BUT_SELF (3u << 18)
/* Sends an IPI to APIC id `dest` (ignored with a shorthand): the xAPIC's
 * two ICR writes, high half first, waiting for the delivery-status bit; or
 * one 64-bit write of ICR MSR 0x830 (32-bit destination) in x2APIC mode. */
void lapic_send_ipi(uint32_t dest, uint32_t icr_lo);

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
