/*
 * AArch64 system registers, barriers and small inline helpers for the
 * guests. Register names follow the Arm ARM (DDI 0487); the GICv3 CPU
 * interface registers are spelled by encoding (GICv3 spec §12.1) so the
 * assembler needs no -march extension.
 */
#ifndef STRATA_GUEST_ARM64_H
#define STRATA_GUEST_ARM64_H

#include <stdbool.h>
#include <stdint.h>

#define read_sysreg(r)                                      \
  ({                                                        \
    uint64_t __v;                                           \
    __asm__ volatile("mrs %0, " #r : "=r"(__v)::"memory"); \
    __v;                                                    \
  })
#define write_sysreg(r, v) \
  __asm__ volatile("msr " #r ", %0" ::"r"((uint64_t)(v)) : "memory")

/* GICv3 CPU interface, system-register form (GICv3 spec §12.2). */
#define ICC_PMR_EL1 S3_0_C4_C6_0
#define ICC_IAR1_EL1 S3_0_C12_C12_0
#define ICC_EOIR1_EL1 S3_0_C12_C12_1
#define ICC_BPR1_EL1 S3_0_C12_C12_3
#define ICC_CTLR_EL1 S3_0_C12_C12_4
#define ICC_SRE_EL1 S3_0_C12_C12_5
#define ICC_IGRPEN1_EL1 S3_0_C12_C12_7
#define ICC_SGI1R_EL1 S3_0_C12_C11_5

#define isb() __asm__ volatile("isb" ::: "memory")
#define dsb(opt) __asm__ volatile("dsb " #opt ::: "memory")
#define dmb(opt) __asm__ volatile("dmb " #opt ::: "memory")

static inline void cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
static inline void wfe(void) { __asm__ volatile("wfe" ::: "memory"); }
static inline void sev(void) { __asm__ volatile("sev" ::: "memory"); }

/* PSTATE.I: IRQs masked while set. */
static inline void irq_enable(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }

/* MPIDR_EL1 affinity fields only (Aff3..Aff0; bit 31 RES1, U and MT cleared). */
#define MPIDR_HWID_MASK 0xff00ffffffull
static inline uint64_t read_mpidr(void) { return read_sysreg(mpidr_el1) & MPIDR_HWID_MASK; }

static inline unsigned current_el(void) {
  return (unsigned)((read_sysreg(CurrentEL) >> 2) & 3);
}

/* Generic timer (Arm ARM D11). The ISB keeps the counter read in order. */
static inline uint64_t cntfrq(void) { return read_sysreg(cntfrq_el0); }
static inline uint64_t cntvct(void) {
  isb();
  return read_sysreg(cntvct_el0);
}

/*
 * MMIO accessors in asm with plain register addressing: a trapped access
 * the hypervisor emulates needs a valid syndrome (ESR_EL2.ISV), which
 * loads/stores with writeback and load/store pairs do not give (KVM exits
 * with KVM_EXIT_ARM_NISV). gcc may pick post-index forms for volatile
 * accesses in a loop; these cannot.
 */
static inline uint32_t mmio_read32(uintptr_t addr) {
  uint32_t v;
  __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
  return v;
}
static inline void mmio_write32(uintptr_t addr, uint32_t v) {
  __asm__ volatile("str %w0, [%1]" ::"rZ"(v), "r"(addr) : "memory");
}
static inline uint64_t mmio_read64(uintptr_t addr) {
  uint64_t v;
  __asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

#endif /* STRATA_GUEST_ARM64_H */
