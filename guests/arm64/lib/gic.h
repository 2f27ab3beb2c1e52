/*
 * A minimal GIC driver for GICv3 (IHI 0069: affinity routing, everything
 * Group 1 Non-secure, the system-register CPU interface) and GICv2 (IHI
 * 0048B: the memory-mapped CPU interface, SGIs by CPU target list). The
 * version and the addresses come from the device tree's interrupt
 * controller (fdt.h boot_info), so the same guest runs on either.
 */
#ifndef STRATA_GUEST_ARM64_GIC_H
#define STRATA_GUEST_ARM64_GIC_H

#include <stdbool.h>
#include <stdint.h>

/* The distributor (boot CPU, once). GICv3: ARE_NS and EnableGrp1NS;
 * GICv2: Enable. False (printed) if the device tree names no GIC or the
 * distributor is not the version it names. */
bool gic_dist_init(void);
/* 2 or 3 once gic_dist_init succeeded, else 0. */
uint32_t gic_version(void);
/* This CPU. GICv3: finds its redistributor by GICR_TYPER affinity, wakes
 * it (GICR_WAKER.ProcessorSleep), puts SGIs/PPIs in Group 1 and enables
 * the CPU interface (ICC_SRE_EL1.SRE, PMR, IGRPEN1). GICv2: learns its CPU
 * interface number (GICD_ITARGETSR0, banked) and enables GICC (PMR, CTLR).
 * False (printed) on failure. */
bool gic_cpu_init(void);
/* GICv3: this CPU's redistributor RD frame; GICv2: the CPU interface. */
uintptr_t gic_redist(void);

/* SGI/PPI on this CPU (INTID < 32): its priority and enable bit, in the
 * redistributor's SGI frame (v3) or the banked distributor registers (v2). */
void gic_enable_ppi(uint32_t intid);
void gic_disable_ppi(uint32_t intid);

/* Acknowledge / end: ICC_IAR1_EL1 / ICC_EOIR1_EL1, or GICC_IAR / GICC_EOIR.
 * gic_eoi takes the whole value gic_ack returned (v2 SGIs carry the source
 * CPU in it); gic_intid extracts the interrupt id. */
uint32_t gic_ack(void);
void gic_eoi(uint32_t iar);
uint32_t gic_intid(uint32_t iar);
#define GIC_INTID_SPURIOUS 1023

/* An SGI to the CPU with this MPIDR: ICC_SGI1R_EL1 by affinity (v3), or
 * GICD_SGIR with the target's CPU interface bit (v2). */
void gic_send_sgi(uint64_t mpidr, uint32_t intid);

#endif /* STRATA_GUEST_ARM64_GIC_H */
