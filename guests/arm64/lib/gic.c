/*
 * Minimal GICv3 (IHI 0069H): the distributor with affinity routing, one
 * redistributor per CPU found by its GICR_TYPER affinity (§9.11.35), SGIs
 * and PPIs in Group 1, and the system-register CPU interface (§12.2).
 * The distributor's security state is whatever the VMM gives: with
 * GICD_CTLR.DS = 1 (a VM's usual view) bit 1 is EnableGrp1 and bit 4 ARE;
 * in the Non-secure view of a secure GIC they are EnableGrp1A and ARE_NS,
 * at the same positions.
 *
 * And minimal GICv2 (IHI 0048B), as kvm-unit-tests drives it: interrupts
 * stay in their reset group (Group 0 in a VM without the security
 * extensions, signalled as IRQ while GICC_CTLR.FIQEn is 0), GICD_CTLR and
 * GICC_CTLR bit 0 enable them, SGIs and PPIs are banked per CPU in the
 * distributor's first registers (§4.3), and an SGI names its targets by
 * CPU interface number (GICD_SGIR, §4.3.15), which each CPU reads from the
 * banked GICD_ITARGETSR0 (§4.3.12).
 */
#include "gic.h"

#include "arm64.h"
#include "fdt.h"
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
#define GICR_ICENABLER0 (GICR_SGI_FRAME + 0x0180)

/* GICv2 distributor (banked for INTID < 32) and CPU interface. */
#define GICD_TYPER 0x0004
#define GICD_ISENABLER0 0x0100
#define GICD_ICENABLER0 0x0180
#define GICD_IPRIORITYR(n) (0x0400 + (n))
#define GICD_ITARGETSR0 0x0800
#define GICD_SGIR 0x0f00
#define GICD_SGIR_TARGET_SHIFT 16
#define GICD_V2_ENABLE 1u
#define GICC_CTLR 0x0000
#define GICC_CTLR_ENABLE 1u
#define GICC_PMR 0x0004
#define GICC_BPR 0x0008
#define GICC_IAR 0x000c
#define GICC_EOIR 0x0010
#define GICC_IAR_INTID_MASK 0x3ffu

#define GIC_PRIORITY_DEFAULT 0xa0
#define GIC_POLL_LIMIT 1000000

static uint32_t version;
static uintptr_t dist_base, cpu_base, redist_base, redist_size;
static uintptr_t redist[MAX_CPUS];
/* GICv2: each CPU's interface bit (0 until that CPU ran gic_cpu_init). */
static volatile uint8_t cpu_if_mask[MAX_CPUS];

static bool poll_clear(uintptr_t reg, uint32_t bits, const char *what) {
  for (int i = 0; i < GIC_POLL_LIMIT; ++i) {
    if (!(mmio_read32(reg) & bits)) return true;
    cpu_relax();
  }
  printf("gic: %s did not clear (0x%x)\n", what, mmio_read32(reg));
  return false;
}

static bool gicv3_dist_init(void) {
  uint32_t arch = (mmio_read32(dist_base + GICD_PIDR2) >> 4) & 0xf;
  if (arch != 3 && arch != 4) {
    printf("gic: GICD_PIDR2.ArchRev is %u, not a GICv3\n", arch);
    return false;
  }
  /* ARE first (it may only change while the groups are disabled, §12.9.4). */
  mmio_write32(dist_base + GICD_CTLR, GICD_CTLR_ARE);
  if (!poll_clear(dist_base + GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")) return false;
  mmio_write32(dist_base + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_G1);
  return poll_clear(dist_base + GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP");
}

bool gic_dist_init(void) {
  version = 0;
  switch (boot_info.gic_version) {
    case 3:
      dist_base = boot_info.gic_dist;
      redist_base = boot_info.gic_redist;
      redist_size = boot_info.gic_redist_size;
      if (!gicv3_dist_init()) return false;
      break;
    case 2:
      dist_base = boot_info.gic_dist;
      cpu_base = boot_info.gic_cpu;
      mmio_write32(dist_base + GICD_CTLR, GICD_V2_ENABLE);
      if (!(mmio_read32(dist_base + GICD_CTLR) & GICD_V2_ENABLE)) {
        printf("gic: GICD_CTLR.Enable does not stick at 0x%lx: no GICv2 distributor\n",
               (unsigned long)dist_base);
        return false;
      }
      break;
    default:
      printf("gic: the device tree names no arm,gic-v3 or arm,cortex-a15-gic\n");
      return false;
  }
  version = boot_info.gic_version;
  return true;
}

uint32_t gic_version(void) { return version; }

static uint32_t mpidr_to_affinity(uint64_t mpidr) {
  return (uint32_t)(((mpidr >> 8) & 0xff000000u) | (mpidr & 0xffffffu));
}

static bool gicv2_cpu_init(void) {
  /* Each byte of the banked GICD_ITARGETSR0..7 reads as this CPU's own
   * interface bit (§4.3.12), except in a uniprocessor GIC
   * (GICD_TYPER.CPUNumber = 0), where they are RAZ: interface 0. */
  uint8_t mask = (uint8_t)mmio_read32(dist_base + GICD_ITARGETSR0);
  if (mask == 0 && ((mmio_read32(dist_base + GICD_TYPER) >> 5) & 7) == 0) mask = 1;
  if (mask == 0 || (mask & (mask - 1)) != 0) {
    printf("gic: GICD_ITARGETSR0 reads 0x%x: not one CPU interface\n", mask);
    return false;
  }
  cpu_if_mask[smp_cpu_index()] = mask;
  mmio_write32(dist_base + GICD_ICENABLER0, 0xffffffffu);
  mmio_write32(cpu_base + GICC_PMR, 0xff);
  mmio_write32(cpu_base + GICC_BPR, 0);
  mmio_write32(cpu_base + GICC_CTLR, GICC_CTLR_ENABLE);
  if (!(mmio_read32(cpu_base + GICC_CTLR) & GICC_CTLR_ENABLE)) {
    printf("gic: GICC_CTLR.Enable does not stick at 0x%lx\n", (unsigned long)cpu_base);
    return false;
  }
  return true;
}

bool gic_cpu_init(void) {
  if (version == 2) return gicv2_cpu_init();
  if (version != 3) {
    printf("gic: gic_cpu_init before gic_dist_init\n");
    return false;
  }
  uint64_t mpidr = read_mpidr();
  uint32_t aff = mpidr_to_affinity(mpidr);
  uintptr_t rd = 0;
  for (uintptr_t off = 0; off < redist_size; off += GICR_STRIDE) {
    uint64_t typer = mmio_read64(redist_base + off + GICR_TYPER);
    if ((uint32_t)(typer >> 32) == aff) {
      rd = redist_base + off;
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

uintptr_t gic_redist(void) {
  return version == 2 ? cpu_base : redist[smp_cpu_index()];
}

void gic_enable_ppi(uint32_t intid) {
  /* The same register layout at the redistributor's SGI frame (v3) and
   * at the distributor's banked first registers (v2). */
  uintptr_t regs = version == 2 ? dist_base : gic_redist() + GICR_SGI_FRAME;
  uintptr_t prio = regs + GICD_IPRIORITYR(intid & ~3u);
  uint32_t shift = (intid & 3) * 8;
  mmio_write32(prio, (mmio_read32(prio) & ~(0xffu << shift)) |
                         ((uint32_t)GIC_PRIORITY_DEFAULT << shift));
  mmio_write32(regs + GICD_ISENABLER0, 1u << intid);
}

void gic_disable_ppi(uint32_t intid) {
  if (version == 2) {
    mmio_write32(dist_base + GICD_ICENABLER0, 1u << intid);
    return;
  }
  uintptr_t rd = gic_redist();
  mmio_write32(rd + GICR_ICENABLER0, 1u << intid);
  poll_clear(rd + GICR_CTLR, GICR_CTLR_RWP, "GICR_CTLR.RWP");
}

uint32_t gic_ack(void) {
  uint32_t iar = version == 2 ? mmio_read32(cpu_base + GICC_IAR)
                              : (uint32_t)read_sysreg(ICC_IAR1_EL1);
  /* The acknowledge must complete before the handler's device accesses. */
  dsb(sy);
  return iar;
}

void gic_eoi(uint32_t iar) {
  if (version == 2) {
    /* Earlier device writes (a re-armed timer) land before the EOI. */
    dsb(sy);
    mmio_write32(cpu_base + GICC_EOIR, iar);
    return;
  }
  write_sysreg(ICC_EOIR1_EL1, iar);
  isb();
}

uint32_t gic_intid(uint32_t iar) {
  /* GICv2's IAR has the SGI source CPU in bits [12:10]; GICv3's INTID
   * field is 24 bits wide (ICC_IAR1_EL1, §12.2.11). */
  return version == 2 ? iar & GICC_IAR_INTID_MASK : iar & 0xffffffu;
}

void gic_send_sgi(uint64_t mpidr, uint32_t intid) {
  if (version == 2) {
    int target = fdt_cpu_index(mpidr);
    uint8_t mask = target >= 0 ? cpu_if_mask[target] : 0;
    if (mask == 0) {
      printf("gic: no CPU interface known for mpidr 0x%lx\n", (unsigned long)mpidr);
      return;
    }
    dsb(ishst);
    mmio_write32(dist_base + GICD_SGIR,
                 ((uint32_t)mask << GICD_SGIR_TARGET_SHIFT) | (intid & 0xf));
    return;
  }
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
