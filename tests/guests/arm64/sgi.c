/*
 * sgi: software-generated interrupts between CPUs. The boot CPU starts
 * every CPU in the device tree with CPU_ON (the test runs with 8 vCPUs).
 * Each CPU, boot CPU included, initialises its redistributor and CPU
 * interface, enables SGI 1 and unmasks IRQs; when all are ready, CPU i
 * sends SGI 1 to CPU (i + 1) % N (GICv3: ICC_SGI1R_EL1 by the target's
 * DTB MPIDR; GICv2: GICD_SGIR by its CPU interface), and each receiver
 * acknowledges it (ICC_IAR1_EL1/EOIR1, or GICC_IAR/EOIR) in its IRQ
 * handler and counts it. Prints one line per CPU and a PASS:/FAIL:
 * line for each; `sgi: N of N cpus received their SGI`; SUMMARY; exit
 * code = failure count. A single CPU sends SGI 1 to itself.
 */
#include "lib/arm64.h"
#include "lib/exceptions.h"
#include "lib/fdt.h"
#include "lib/gic.h"
#include "lib/runtime.h"
#include "lib/smp.h"

#define SGI_ID 1
#define SMP_TIMEOUT_MS 5000
#define PHASE_TIMEOUT_MS 2000

static volatile uint32_t ready_count, done_count, go;
static volatile uint32_t gic_failed[MAX_CPUS];
static volatile uint32_t received[MAX_CPUS];
static volatile uint32_t wrong_intid[MAX_CPUS];

static void irq(struct exception_frame *frame) {
  (void)frame;
  uint32_t iar = gic_ack();
  uint32_t intid = gic_intid(iar);
  if (intid == GIC_INTID_SPURIOUS) return;
  uint32_t me = smp_cpu_index();
  if (intid == SGI_ID) {
    atomic_add_u32(&received[me], 1);
  } else {
    atomic_add_u32(&wrong_intid[me], 1);
  }
  gic_eoi(iar);
}

static uint32_t target_of(uint32_t i) { return (i + 1) % boot_info.ncpus; }

/* Every CPU: ready, wait for go, send, wait for its own SGI. */
static void run_cpu(uint32_t me) {
  if (!gic_cpu_init()) {
    gic_failed[me] = 1;
    atomic_add_u32(&ready_count, 1);
    atomic_add_u32(&done_count, 1);
    return;
  }
  gic_enable_ppi(SGI_ID);
  irq_enable();
  atomic_add_u32(&ready_count, 1);
  struct deadline d;
  deadline_start(&d, PHASE_TIMEOUT_MS * 2);
  while (!atomic_load_u32(&go) && !deadline_expired(&d)) cpu_relax();
  gic_send_sgi(boot_info.mpidr[target_of(me)], SGI_ID);
  deadline_start(&d, PHASE_TIMEOUT_MS);
  while (atomic_load_u32(&received[me]) == 0 && !deadline_expired(&d)) cpu_relax();
  /* Leave IRQs on a little longer: a duplicate would show up in the count. */
  udelay(1000);
  irq_disable();
  atomic_add_u32(&done_count, 1);
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  if (!gic_dist_init()) {
    report(false, "GIC distributor initialised");
    return report_summary();
  }
  set_irq_handler(irq);
  secondary_fn = run_cpu;
  struct smp_status st = smp_start(SMP_TIMEOUT_MS);
  printf("vcpus: %u of %u checked in\n", st.checked_in, st.expected);
  uint32_t me = (uint32_t)boot_cpu_index;
  uint32_t n = st.checked_in;

  /* The boot CPU's own part, with go given once everyone is ready. */
  if (!gic_cpu_init()) {
    gic_failed[me] = 1;
  } else {
    gic_enable_ppi(SGI_ID);
    irq_enable();
  }
  atomic_add_u32(&ready_count, 1);
  struct deadline d;
  deadline_start(&d, PHASE_TIMEOUT_MS);
  while (atomic_load_u32(&ready_count) < n && !deadline_expired(&d)) cpu_relax();
  uint32_t ready = atomic_load_u32(&ready_count);
  atomic_store_u32(&go, 1);
  sev();
  if (!gic_failed[me]) {
    gic_send_sgi(boot_info.mpidr[target_of(me)], SGI_ID);
    deadline_start(&d, PHASE_TIMEOUT_MS);
    while (atomic_load_u32(&received[me]) == 0 && !deadline_expired(&d)) cpu_relax();
    udelay(1000);
    irq_disable();
  }
  atomic_add_u32(&done_count, 1);
  deadline_start(&d, PHASE_TIMEOUT_MS * 2);
  while (atomic_load_u32(&done_count) < n && !deadline_expired(&d)) cpu_relax();

  report(st.checked_in == st.expected, "%u of %u cpus started", st.checked_in, st.expected);
  report(ready == n, "%u of %u cpus ready (GIC initialised, SGI %u enabled)", ready, n, SGI_ID);
  uint32_t ok_count = 0;
  for (uint32_t i = 0; i < boot_info.ncpus; ++i) {
    uint32_t from = (i + boot_info.ncpus - 1) % boot_info.ncpus;
    uint32_t got = atomic_load_u32(&received[i]);
    bool ok = !gic_failed[i] && got == 1 && wrong_intid[i] == 0;
    if (ok) ++ok_count;
    printf("sgi: cpu %u (mpidr 0x%lx) sent SGI %u to cpu %u, received %u (from cpu %u)%s\n", i,
           (unsigned long)boot_info.mpidr[i], SGI_ID, target_of(i), got, from,
           gic_failed[i] ? ", GIC init failed" : "");
    report(ok, "cpu %u received exactly one SGI %u (%u other INTIDs)", i, SGI_ID,
           wrong_intid[i]);
  }
  printf("sgi: %u of %u cpus received their SGI\n", ok_count, boot_info.ncpus);
  return report_summary();
}
