/*
 * Minimal GICv3 (IHI 0069H): the distributor with affinity routing, one
 * redistributor per CPU found by its GICR_TYPER affinity (§9.11.35), SGIs
 * and PPIs in Group 1, and the system-register CPU interface (§12.2).
 * The distributor's security state is whatever the VMM gives: with
 * GICD_CTLR.DS = 1 (a VM's usual view) bit 1 is EnableGrp1 and bit 4 ARE;
 * in the Non-secure view of a secure GIC they are EnableGrp1A and ARE_NS,
 * at the same positions.
 */
#include "gic.h"

#include "arm64.h"
#include "platform.h"
#include "runtime.h"
#include "smp.h"

#define GICD_CTLR 0x0000
#define GICD_CTLR_ENABLE_G1 (1u << 1)
#define GICD_CTLR_ARE (1u << 4)
#define GICD_CTLR_RWP (1u << 31)
#define GICD_PIDR2 0xffe8

#define GICR_CTLR 0x0000
#define GICR_CTLR_RWP (1u << 3)
#define GICR_TYPER 0x0008
#define GICR_TYPER_LAST (1ull << 4)
#define GICR_WAKER 0x0014
#define GICR_WAKER_PROCESSOR_SLEEP (1u << 1)
#define GICR_WAKER_CHILDREN_ASLEEP (1u << 2)
#define GICR_SGI_FRAME 0x10000
#define GICR_IGROUPR0 (GICR_SGI_FRAME + 0x0080)
#define GICR_ISENABLER0 (GICR_SGI_FRAME + 0x0100)
#define GICR_ICENABLER0 (GICR_SGI_FRAME + 0x0180)
#define GICR_IPRIORITYR(n) (GICR_SGI_FRAME + 0x0400 + (n))

#define GIC_PRIORITY_DEFAULT 0xa0
#define GIC_POLL_LIMIT 1000000

static uintptr_t redist[MAX_CPUS];

static bool poll_clear(uintptr_t reg, uint32_t bits, const char *what) {
  for (int i = 0; i < GIC_POLL_LIMIT; ++i) {
    if (!(mmio_read32(reg) & bits)) return true;
    cpu_relax();
  }
  printf("gic: %s did not clear (0x%x)\n", what, mmio_read32(reg));
  return false;
}

bool gic_dist_init(void) {
  uint32_t arch = (mmio_read32(GICD_BASE + GICD_PIDR2) >> 4) & 0xf;
  if (arch != 3 && arch != 4) {
    printf("gic: GICD_PIDR2.ArchRev is %u, not a GICv3\n", arch);
    return false;
  }
  /* ARE first (it may only change while the groups are disabled, §12.9.4). */
  mmio_write32(GICD_BASE + GICD_CTLR, GICD_CTLR_ARE);
  if (!poll_clear(GICD_BASE + GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")) return false;
  mmio_write32(GICD_BASE + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_G1);
  return poll_clear(GICD_BASE + GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP");
}

static uint32_t mpidr_to_affinity(uint64_t mpidr) {
  return (uint32_t)(((mpidr >> 8) & 0xff000000u) | (mpidr & 0xffffffu));
}

bool gic_cpu_init(void) {
  uint64_t mpidr = read_mpidr();
  uint32_t aff = mpidr_to_affinity(mpidr);
  uintptr_t rd = 0;
  for (uintptr_t off = 0; off < GICR_REGION_SIZE; off += GICR_STRIDE) {
    uint64_t typer = mmio_read64(GICR_BASE + off + GICR_TYPER);
    if ((uint32_t)(typer >> 32) == aff) {
      rd = GICR_BASE + off;
      break;
    }
    if (typer & GICR_TYPER_LAST) break;
  }
  if (rd == 0) {
    printf("gic: no redistributor has affinity 0x%x (mpidr 0x%lx)\n", aff,
           (unsigned long)mpidr);
    return false;
  }
  redist[smp_cpu_index()] = rd;

  /* Wake the redistributor (§9.11.44). */
  mmio_write32(rd + GICR_WAKER, mmio_read32(rd + GICR_WAKER) & ~GICR_WAKER_PROCESSOR_SLEEP);
  if (!poll_clear(rd + GICR_WAKER, GICR_WAKER_CHILDREN_ASLEEP, "GICR_WAKER.ChildrenAsleep")) {
    return false;
  }
  /* All SGIs/PPIs disabled and Group 1 (Non-secure). */
  mmio_write32(rd + GICR_ICENABLER0, 0xffffffffu);
  if (!poll_clear(rd + GICR_CTLR, GICR_CTLR_RWP, "GICR_CTLR.RWP")) return false;
  mmio_write32(rd + GICR_IGROUPR0, 0xffffffffu);

  /* CPU interface: system registers, accept every priority, Group 1 on. */
  write_sysreg(ICC_SRE_EL1, read_sysreg(ICC_SRE_EL1) | 1);
  isb();
  if (!(read_sysreg(ICC_SRE_EL1) & 1)) {
    printf("gic: ICC_SRE_EL1.SRE does not stick: no system-register interface\n");
    return false;
  }
  write_sysreg(ICC_PMR_EL1, 0xff);
  write_sysreg(ICC_BPR1_EL1, 0);
  write_sysreg(ICC_IGRPEN1_EL1, 1);
  isb();
  return true;
}

uintptr_t gic_redist(void) { return redist[smp_cpu_index()]; }

void gic_enable_ppi(uint32_t intid) {
  uintptr_t rd = gic_redist();
  uintptr_t prio = rd + GICR_IPRIORITYR(intid & ~3u);
  uint32_t shift = (intid & 3) * 8;
  mmio_write32(prio, (mmio_read32(prio) & ~(0xffu << shift)) |
                         ((uint32_t)GIC_PRIORITY_DEFAULT << shift));
  mmio_write32(rd + GICR_ISENABLER0, 1u << intid);
}

void gic_disable_ppi(uint32_t intid) {
  uintptr_t rd = gic_redist();
  mmio_write32(rd + GICR_ICENABLER0, 1u << intid);
  poll_clear(rd + GICR_CTLR, GICR_CTLR_RWP, "GICR_CTLR.RWP");
}

uint32_t gic_ack(void) {
  uint32_t iar = (uint32_t)read_sysreg(ICC_IAR1_EL1);
  /* The acknowledge must complete before the handler's device accesses. */
  dsb(sy);
  return iar;
}

void gic_eoi(uint32_t iar) {
  write_sysreg(ICC_EOIR1_EL1, iar);
  isb();
}

void gic_send_sgi(uint64_t mpidr, uint32_t intid) {
  /* ICC_SGI1R_EL1 (§12.2.23): TargetList holds Aff0 % 16, RS = Aff0 / 16. */
  uint64_t aff0 = mpidr & 0xff, aff1 = (mpidr >> 8) & 0xff, aff2 = (mpidr >> 16) & 0xff,
           aff3 = (mpidr >> 32) & 0xff;
  uint64_t v = (1ull << (aff0 & 0xf)) | (aff1 << 16) | ((uint64_t)(intid & 0xf) << 24) |
               (aff2 << 32) | ((aff0 >> 4) << 44) | (aff3 << 48);
  /* Earlier stores must be visible to the target before it takes the SGI. */
  dsb(ishst);
  write_sysreg(ICC_SGI1R_EL1, v);
  isb();
}
