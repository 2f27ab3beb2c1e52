/*
 * A minimal GICv3 driver (GICv3/v4 spec IHI 0069): affinity routing,
 * everything Group 1 Non-secure, the system-register CPU interface.
 */
#ifndef STRATA_GUEST_ARM64_GIC_H
#define STRATA_GUEST_ARM64_GIC_H

#include <stdbool.h>
#include <stdint.h>

/* Distributor: ARE_NS and EnableGrp1NS (boot CPU, once). */
bool gic_dist_init(void);
/* This CPU: finds its redistributor by GICR_TYPER affinity, wakes it
 * (GICR_WAKER.ProcessorSleep), puts SGIs/PPIs in Group 1, enables the
 * CPU interface (ICC_SRE_EL1.SRE, PMR, IGRPEN1). False (printed) if no
 * redistributor matches this CPU. */
bool gic_cpu_init(void);
/* This CPU's redistributor RD frame (after gic_cpu_init). */
uintptr_t gic_redist(void);

/* SGI/PPI on this CPU (INTID < 32), through its redistributor. */
void gic_enable_ppi(uint32_t intid);
void gic_disable_ppi(uint32_t intid);

/* ICC_IAR1_EL1 / ICC_EOIR1_EL1. */
uint32_t gic_ack(void);
void gic_eoi(uint32_t iar);
#define GIC_INTID_SPURIOUS 1023

/* An SGI to the CPU with this MPIDR via ICC_SGI1R_EL1. */
void gic_send_sgi(uint64_t mpidr, uint32_t intid);

#endif /* STRATA_GUEST_ARM64_GIC_H */
