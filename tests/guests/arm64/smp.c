/*
 * smp: starts every CPU in the device tree (other than itself) with PSCI
 * CPU_ON (the test runs with 8 vCPUs). Each secondary gets its own stack
 * by DTB index (the CPU_ON context id), records its own MPIDR in its slot
 * (release store) and bumps the count (atomic add). The boot CPU waits at
 * most 5 s of virtual-counter time, then prints `vcpus: N of N checked in`
 * and one line per CPU with the MPIDR it recorded and what AFFINITY_INFO
 * says about it. Exit code 0 if every CPU checked in with the MPIDR the
 * DTB gives it and AFFINITY_INFO reports all of them ON, else 1.
 */
#include "lib/arm64.h"
#include "lib/fdt.h"
#include "lib/psci.h"
#include "lib/runtime.h"
#include "lib/smp.h"

#define SMP_TIMEOUT_MS 5000

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("smp: boot cpu %d (mpidr 0x%lx), starting %u more with CPU_ON\n", boot_cpu_index,
         (unsigned long)read_mpidr(), boot_info.ncpus ? boot_info.ncpus - 1 : 0);
  struct smp_status st = smp_start(SMP_TIMEOUT_MS);
  printf("vcpus: %u of %u checked in\n", st.checked_in, st.expected);

  bool ok = !st.timed_out && st.cpu_on_failures == 0 && st.checked_in == st.expected;
  for (uint32_t i = 0; i < boot_info.ncpus; ++i) {
    uint64_t seen = atomic_load_u64(&cpu_checkin_mpidr[i]);
    int64_t aff = psci_affinity_info(boot_info.mpidr[i]);
    bool match = seen != 0 && (seen & MPIDR_HWID_MASK) == boot_info.mpidr[i];
    printf("cpu %u: dtb mpidr 0x%lx, checked in with 0x%lx, affinity info %ld (%s)%s\n", i,
           (unsigned long)boot_info.mpidr[i], (unsigned long)seen, (long)aff,
           aff == PSCI_AFF_ON ? "ON" : aff == PSCI_AFF_OFF ? "OFF"
                                   : aff == PSCI_AFF_ON_PENDING ? "ON_PENDING" : "error",
           match ? "" : " MISMATCH");
    if (!match || aff != PSCI_AFF_ON) ok = false;
  }
  if (st.timed_out) {
    printf("smp: FAIL: timed out after %u ms with %u of %u cpus in\n", SMP_TIMEOUT_MS,
           st.checked_in, st.expected);
  }
  printf("smp: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
