/*
 * Secondary CPU bring-up with PSCI CPU_ON (see smp.h). A check-in is a
 * release store of the CPU's MPIDR into its slot and an atomic increment
 * of the count; the boot CPU's acquire loads pair with them.
 */
#include "smp.h"

#include "arm64.h"
#include "exceptions.h"
#include "psci.h"
#include "runtime.h"

int boot_cpu_index = -1;
volatile uint64_t cpu_checkin_mpidr[MAX_CPUS];
volatile uint32_t cpus_checked_in;
volatile uint32_t cpu_checkin_count[MAX_CPUS];
void (*volatile secondary_fn)(uint32_t cpu_index);

extern const char secondary_entry[];
/* Called by entry.S on a secondary CPU with its stack and MMU set up. */
__attribute__((noreturn)) void secondary_start(uint64_t cpu_index);

void smp_check_in(uint32_t index) {
  atomic_store_u64(&cpu_checkin_mpidr[index], read_sysreg(mpidr_el1));
  atomic_add_u32(&cpu_checkin_count[index], 1);
  atomic_add_u32(&cpus_checked_in, 1);
  sev();
}

void secondary_start(uint64_t cpu_index) {
  write_sysreg(tpidr_el1, cpu_index);
  vectors_install();
  smp_check_in((uint32_t)cpu_index);
  void (*fn)(uint32_t) = secondary_fn;
  if (fn != NULL) fn((uint32_t)cpu_index);
  /* Parked but ON: AFFINITY_INFO keeps reporting it. */
  irq_disable();
  for (;;) wfe();
}

struct smp_status smp_start(uint32_t timeout_ms) {
  struct smp_status st = {.expected = boot_info.ncpus};
  if (boot_cpu_index < 0) {
    printf("smp: the boot CPU's MPIDR 0x%lx is not in the device tree\n",
           (unsigned long)read_mpidr());
    st.cpu_on_failures = st.expected;
    return st;
  }
  smp_check_in((uint32_t)boot_cpu_index);
  for (uint32_t i = 0; i < boot_info.ncpus; ++i) {
    if ((int)i == boot_cpu_index) continue;
    int64_t ret = psci_cpu_on(boot_info.mpidr[i], (uintptr_t)secondary_entry, i);
    if (ret != PSCI_SUCCESS) {
      printf("smp: CPU_ON cpu %u (mpidr 0x%lx): %s (%ld)\n", i,
             (unsigned long)boot_info.mpidr[i], psci_strerror(ret), (long)ret);
      ++st.cpu_on_failures;
    }
  }
  struct deadline d;
  deadline_start(&d, timeout_ms);
  uint32_t want = st.expected - st.cpu_on_failures;
  while (atomic_load_u32(&cpus_checked_in) < want) {
    if (deadline_expired(&d)) {
      st.timed_out = true;
      break;
    }
    cpu_relax();
  }
  st.checked_in = atomic_load_u32(&cpus_checked_in);
  return st;
}
