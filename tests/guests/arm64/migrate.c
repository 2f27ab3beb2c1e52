/*
 * migrate: state that must survive a snapshot and restore (bhyverun
 * --save-on-signal FILE, then bhyverun --restore FILE). Sets up, on the
 * boot CPU:
 *   - memory: a 64 KiB buffer filled with a pattern (and its checksum);
 *   - system registers: TPIDR_EL0, TPIDRRO_EL0, CONTEXTIDR_EL1, the debug
 *     registers DBGBVR0/DBGBCR0 (a breakpoint programmed but not enabled),
 *     DBGWVR0, and MDSCR_EL1.MDE;
 *   - the GIC (v3, or v2 as the device tree says): SGI 2 and SPI 40
 *     priorities, SPI 40 enabled and routed to this CPU (GICD_IROUTER, or
 *     GICD_ITARGETSR on v2; never raised), and the EL1 virtual timer
 *     (PPI 27) ticking every 10 ms with IRQs unmasked throughout;
 *   - general registers x19-x28 live across the wait (inline asm).
 * Then prints kvm-unit-tests' "Now migrate the VM, then press a key to
 * continue..." and polls the PL011 for a byte — the VM is saved and
 * restored while it waits, and the key is given to the restored VM.
 * After the key it checks every item above, that the virtual counter did
 * not go backwards, and that timer ticks keep arriving. One PASS:/FAIL:
 * line per check, "migrate: all state survived" when all pass, SUMMARY;
 * the exit code is the failure count. Without a VMM that migrates (QEMU)
 * it passes too: nothing was lost.
 */
#include "lib/arm64.h"
#include "lib/exceptions.h"
#include "lib/gic.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/timer.h"

#define TICK_MS 10
#define PATTERN_BYTES (64 * 1024)
#define SPI 40
#define SGI 2

#define GICD_IPRIORITYR(n) (0x0400 + (n))
#define GICD_ISENABLER(n) (0x0100 + 4 * ((n) / 32))
#define GICD_IROUTER(n) (0x6000 + 8 * (n))
#define GICD_ITARGETSR(n) (0x0800 + (n))
#define GICR_SGI_IPRIORITYR(n) (0x10000 + 0x0400 + (n))

static volatile uint32_t ticks, other_irqs;
static uint64_t tick_interval;
static uint8_t pattern[PATTERN_BYTES];

static void irq(struct exception_frame *frame) {
  (void)frame;
  uint32_t iar = gic_ack();
  uint32_t intid = gic_intid(iar);
  if (intid == GIC_INTID_SPURIOUS) return;
  if (intid == TIMER_VIRT_INTID) {
    atomic_add_u32(&ticks, 1);
    timer_virt_arm(tick_interval);
  } else {
    atomic_add_u32(&other_irqs, 1);
  }
  gic_eoi(iar);
}

/* Byte lanes of 32-bit GIC registers (priorities, v2 targets), and 64-bit
 * IROUTER as two words: only plain 32-bit accesses (arm64.h). */
static void prio_write(uintptr_t base, uint32_t n, uint8_t v) {
  uintptr_t a = base + (n & ~3u);
  uint32_t w = mmio_read32(a);
  w &= ~(0xffu << (8 * (n % 4)));
  w |= (uint32_t)v << (8 * (n % 4));
  mmio_write32(a, w);
}
static uint8_t prio_read(uintptr_t base, uint32_t n) {
  return (uint8_t)(mmio_read32(base + (n & ~3u)) >> (8 * (n % 4)));
}

static uint32_t checksum(void) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i < PATTERN_BYTES; ++i) sum = sum * 31 + pattern[i];
  return sum;
}

/* Waits for the key with x19-x28 holding known values, and returns how
 * many of them still hold them afterwards. */
static uint32_t wait_with_live_registers(void) {
  uint64_t out[10];
  __asm__ volatile(
      "mov x19, #0x1919\n"
      "mov x20, #0x2020\n"
      "mov x21, #0x2121\n"
      "mov x22, #0x2222\n"
      "mov x23, #0x2323\n"
      "mov x24, #0x2424\n"
      "mov x25, #0x2525\n"
      "mov x26, #0x2626\n"
      "mov x27, #0x2727\n"
      "mov x28, #0x2828\n"
      "1: ldr w9, [%[fr]]\n"
      "tbz w9, #4, 2f\n" /* UARTFR.RXFE clear: a byte is there */
      "yield\n"
      "b 1b\n"
      "2: ldr w9, [%[dr]]\n"
      "stp x19, x20, [%[out], #0]\n"
      "stp x21, x22, [%[out], #16]\n"
      "stp x23, x24, [%[out], #32]\n"
      "stp x25, x26, [%[out], #48]\n"
      "stp x27, x28, [%[out], #64]\n"
      :
      : [fr] "r"(PL011_BASE + UARTFR), [dr] "r"(PL011_BASE + UARTDR),
        [out] "r"(out)
      : "x9", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
        "x28", "memory");
  static const uint64_t want[10] = {0x1919, 0x2020, 0x2121, 0x2222, 0x2323,
                                    0x2424, 0x2525, 0x2626, 0x2727, 0x2828};
  uint32_t ok = 0;
  for (int i = 0; i < 10; ++i) ok += out[i] == want[i];
  return ok;
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  uint64_t freq = cntfrq();
  bool gic_ok = freq != 0 && gic_dist_init() && gic_cpu_init();
  report(gic_ok, "the GICv%u and the counter are there", gic_version());
  if (!gic_ok) return report_summary();

  for (uint32_t i = 0; i < PATTERN_BYTES; ++i) {
    pattern[i] = (uint8_t)(i * 7 + (i >> 8));
  }
  const uint32_t sum = checksum();

  write_sysreg(tpidr_el0, 0x7e57ab1e0000cafeull);
  write_sysreg(tpidrro_el0, 0x0123456789abcdefull);
  write_sysreg(contextidr_el1, 0x5a5a1234ull);
  write_sysreg(dbgbvr0_el1, 0x40123450ull);
  /* BCR: E (bit 0) clear, PMC = EL1 (bits 2:1 = 0b01), BAS = 0xf. */
  write_sysreg(dbgbcr0_el1, (0xfull << 5) | (1ull << 1));
  write_sysreg(dbgwvr0_el1, 0x40abcde8ull);
  write_sysreg(mdscr_el1, read_sysreg(mdscr_el1) | (1ull << 15)); /* MDE */
  isb();

  /* SGI priorities: the redistributor's SGI frame (v3), the distributor's
   * banked IPRIORITYR (v2). An SPI's route: an affinity (v3), a CPU
   * interface bit (v2: this CPU's, from the banked GICD_ITARGETSR0). */
  const bool v2 = gic_version() == 2;
  const uintptr_t sgi_prio = v2 ? GICD_BASE + GICD_IPRIORITYR(0)
                                : gic_redist() + GICR_SGI_IPRIORITYR(0);
  prio_write(sgi_prio, SGI, 0x90);
  prio_write(GICD_BASE + GICD_IPRIORITYR(0), SPI, 0xa0);
  uint64_t route;
  if (v2) {
    route = prio_read(GICD_BASE + GICD_ITARGETSR(0), 0);
    if (route == 0) route = 1; /* a uniprocessor GIC: interface 0 */
    prio_write(GICD_BASE + GICD_ITARGETSR(0), SPI, (uint8_t)route);
  } else {
    route = read_mpidr() & 0xff00ffffffull;
    mmio_write32(GICD_BASE + GICD_IROUTER(SPI), (uint32_t)route);
    mmio_write32(GICD_BASE + GICD_IROUTER(SPI) + 4, (uint32_t)(route >> 32));
  }
  mmio_write32(GICD_BASE + GICD_ISENABLER(SPI), 1u << (SPI % 32));

  tick_interval = freq / 1000 * TICK_MS;
  set_irq_handler(irq);
  gic_enable_ppi(TIMER_VIRT_INTID);
  timer_virt_arm(tick_interval);
  irq_enable();
  udelay(50 * 1000);
  const uint32_t ticks_before = atomic_load_u32(&ticks);
  report(ticks_before > 0, "timer ticks before the migration (%u)",
         ticks_before);
  const uint64_t vct_before = cntvct();

  printf("Now migrate the VM, then press a key to continue...\n");
  const uint32_t live = wait_with_live_registers();
  report_info("Migration complete");

  const uint64_t vct_after = cntvct();
  report(live == 10, "x19-x28 kept their values across the wait (%u of 10)",
         live);
  report(vct_after >= vct_before, "the virtual counter did not go backwards");
  report(checksum() == sum, "64 KiB of memory kept its pattern");
  report(read_sysreg(tpidr_el0) == 0x7e57ab1e0000cafeull, "TPIDR_EL0 kept");
  report(read_sysreg(tpidrro_el0) == 0x0123456789abcdefull, "TPIDRRO_EL0 kept");
  report(read_sysreg(contextidr_el1) == 0x5a5a1234ull, "CONTEXTIDR_EL1 kept");
  report(read_sysreg(dbgbvr0_el1) == 0x40123450ull, "DBGBVR0_EL1 kept");
  report(read_sysreg(dbgbcr0_el1) == ((0xfull << 5) | (1ull << 1)),
         "DBGBCR0_EL1 kept");
  report(read_sysreg(dbgwvr0_el1) == 0x40abcde8ull, "DBGWVR0_EL1 kept");
  report((read_sysreg(mdscr_el1) & (1ull << 15)) != 0, "MDSCR_EL1.MDE kept");
  report(prio_read(sgi_prio, SGI) == 0x90, "the %s kept SGI %u's priority",
         v2 ? "distributor (banked)" : "redistributor", SGI);
  report(prio_read(GICD_BASE + GICD_IPRIORITYR(0), SPI) == 0xa0,
         "the distributor kept SPI %u's priority", SPI);
  report((mmio_read32(GICD_BASE + GICD_ISENABLER(SPI)) & (1u << (SPI % 32))) != 0,
         "the distributor kept SPI %u enabled", SPI);
  const uint64_t route_now =
      v2 ? prio_read(GICD_BASE + GICD_ITARGETSR(0), SPI)
         : mmio_read32(GICD_BASE + GICD_IROUTER(SPI)) |
               (uint64_t)mmio_read32(GICD_BASE + GICD_IROUTER(SPI) + 4) << 32;
  report(route_now == route,
         "the distributor kept SPI %u's route", SPI);
  const uint32_t t0 = atomic_load_u32(&ticks);
  struct deadline d;
  deadline_start(&d, 2000);
  while (atomic_load_u32(&ticks) < t0 + 5 && !deadline_expired(&d)) cpu_relax();
  const uint32_t t1 = atomic_load_u32(&ticks);
  report(t1 >= t0 + 5, "timer ticks keep arriving after the migration (%u)",
         t1 - t0);
  irq_disable();
  timer_virt_stop();
  report(other_irqs == 0, "no other interrupts (%u)", other_irqs);
  int failures = report_summary();
  if (failures == 0) printf("migrate: all state survived\n");
  return failures;
}
