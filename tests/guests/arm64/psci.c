/*
 * psci: the PSCI implementation's answers (PSCI DEN 0022, §5). Checks
 *   - PSCI_VERSION >= 0.2;
 *   - CPU_ON to an MPIDR not in the device tree -> INVALID_PARAMETERS, and
 *     AFFINITY_INFO of it -> INVALID_PARAMETERS;
 *   - CPU_ON to the boot CPU -> ALREADY_ON;
 *   - CPU_ON to a secondary twice back to back -> SUCCESS, then ALREADY_ON
 *     (or ON_PENDING); it checks in and AFFINITY_INFO reports it ON;
 *   - a secondary that calls CPU_OFF: AFFINITY_INFO reports it OFF, and a
 *     new CPU_ON brings it back (needs 3 CPUs; SKIP with fewer);
 *   - unknown SMCCC function ids (0x8400ff00 in the PSCI range,
 *     0xc5000000 in the SiP 64-bit range) -> NOT_SUPPORTED;
 *   - with PSCI >= 1.0, PSCI_FEATURES: CPU_ON supported, an unknown id
 *     NOT_SUPPORTED.
 * PASS:/FAIL:/SKIP: lines, SUMMARY; exit code = failure count. Run it
 * with 8 vCPUs as the tests do (at least 3 for every check).
 */
#include "lib/arm64.h"
#include "lib/fdt.h"
#include "lib/psci.h"
#include "lib/runtime.h"
#include "lib/smp.h"

#define WAIT_MS 2000
#define FN_UNKNOWN_PSCI 0x8400ff00u
#define FN_UNKNOWN_SIP64 0xc5000000u

extern const char secondary_entry[];

static void cpu_off_once(uint32_t cpu_index) {
  (void)cpu_index;
  /* Only this run: a second CPU_ON of the same CPU parks it ON. */
  secondary_fn = NULL;
  int64_t ret = psci_cpu_off();
  /* CPU_OFF returns only on failure (DENIED). */
  printf("psci: CPU_OFF on cpu %u returned %ld (%s)\n", smp_cpu_index(), (long)ret,
         psci_strerror(ret));
}

/* Waits until CPU `cpu` checked in `want` times in all. */
static bool wait_checked_in(int cpu, uint32_t want) {
  struct deadline d;
  deadline_start(&d, WAIT_MS);
  while (atomic_load_u32(&cpu_checkin_count[cpu]) < want) {
    if (deadline_expired(&d)) return false;
    cpu_relax();
  }
  return true;
}

static int64_t wait_affinity(uint64_t mpidr, int64_t want) {
  struct deadline d;
  deadline_start(&d, WAIT_MS);
  int64_t state;
  while ((state = psci_affinity_info(mpidr)) != want && !deadline_expired(&d)) cpu_relax();
  return state;
}

static const char *aff_name(int64_t v) {
  switch (v) {
    case PSCI_AFF_ON: return "ON";
    case PSCI_AFF_OFF: return "OFF";
    case PSCI_AFF_ON_PENDING: return "ON_PENDING";
    default: return psci_strerror(v);
  }
}

/* An MPIDR that is not a /cpus/cpu reg. */
static uint64_t absent_mpidr(void) {
  static const uint64_t candidates[] = {0xfe, 0xfefe, 0xfefefe, 0xfe00fefefe};
  for (unsigned i = 0; i < 4; ++i) {
    if (fdt_cpu_index(candidates[i]) < 0) return candidates[i];
  }
  return 0xfd00fdfdfd;
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  uint32_t v = psci_version();
  uint32_t major = v >> 16, minor = v & 0xffff;
  printf("psci: conduit %s, version %u.%u, %u cpus\n", psci_use_smc ? "smc" : "hvc", major,
         minor, boot_info.ncpus);
  report(major > 0 || minor >= 2, "PSCI_VERSION %u.%u >= 0.2 (0x%x)", major, minor, v);

  uint64_t absent = absent_mpidr();
  int64_t ret = psci_cpu_on(absent, (uintptr_t)secondary_entry, 0);
  report(ret == PSCI_INVALID_PARAMETERS, "CPU_ON mpidr 0x%lx (not in the DTB): %s (%ld)",
         (unsigned long)absent, psci_strerror(ret), (long)ret);
  ret = psci_affinity_info(absent);
  report(ret == PSCI_INVALID_PARAMETERS, "AFFINITY_INFO mpidr 0x%lx (not in the DTB): %s (%ld)",
         (unsigned long)absent, psci_strerror(ret), (long)ret);

  uint64_t self = read_mpidr();
  ret = psci_cpu_on(self, (uintptr_t)secondary_entry, (uint64_t)boot_cpu_index);
  report(ret == PSCI_ALREADY_ON, "CPU_ON the boot cpu (mpidr 0x%lx): %s (%ld)",
         (unsigned long)self, psci_strerror(ret), (long)ret);
  ret = psci_affinity_info(self);
  report(ret == PSCI_AFF_ON, "AFFINITY_INFO the boot cpu: %s (%ld)", aff_name(ret), (long)ret);

  /* The secondaries other than the boot CPU, in DTB order. */
  int a = -1, b = -1;
  for (uint32_t i = 0; i < boot_info.ncpus; ++i) {
    if ((int)i == boot_cpu_index) continue;
    if (a < 0) {
      a = (int)i;
    } else if (b < 0) {
      b = (int)i;
    }
  }
  smp_check_in((uint32_t)boot_cpu_index);

  if (a >= 0) {
    uint64_t m = boot_info.mpidr[a];
    int64_t first = psci_cpu_on(m, (uintptr_t)secondary_entry, (uint64_t)a);
    int64_t second = psci_cpu_on(m, (uintptr_t)secondary_entry, (uint64_t)a);
    report(first == PSCI_SUCCESS, "CPU_ON cpu %d (mpidr 0x%lx): %s (%ld)", a,
           (unsigned long)m, psci_strerror(first), (long)first);
    report(second == PSCI_ALREADY_ON || second == PSCI_ON_PENDING,
           "CPU_ON cpu %d again at once: %s (%ld)", a, psci_strerror(second), (long)second);
    bool in = wait_checked_in(a, 1);
    report(in, "cpu %d checked in with mpidr 0x%lx", a,
           (unsigned long)atomic_load_u64(&cpu_checkin_mpidr[a]));
    ret = wait_affinity(m, PSCI_AFF_ON);
    report(ret == PSCI_AFF_ON, "AFFINITY_INFO cpu %d: %s (%ld)", a, aff_name(ret), (long)ret);
    ret = psci_cpu_on(m, (uintptr_t)secondary_entry, (uint64_t)a);
    report(ret == PSCI_ALREADY_ON, "CPU_ON cpu %d once it runs: %s (%ld)", a,
           psci_strerror(ret), (long)ret);
  } else {
    report_skip("CPU_ON a secondary twice: only one cpu");
  }

  if (b >= 0) {
    uint64_t m = boot_info.mpidr[b];
    secondary_fn = cpu_off_once;
    ret = psci_cpu_on(m, (uintptr_t)secondary_entry, (uint64_t)b);
    bool in = ret == PSCI_SUCCESS && wait_checked_in(b, 1);
    int64_t off = wait_affinity(m, PSCI_AFF_OFF);
    report(in && off == PSCI_AFF_OFF,
           "cpu %d started (%s), called CPU_OFF: AFFINITY_INFO %s (%ld)", b,
           psci_strerror(ret), aff_name(off), (long)off);
    ret = psci_cpu_on(m, (uintptr_t)secondary_entry, (uint64_t)b);
    in = ret == PSCI_SUCCESS && wait_checked_in(b, 2);
    int64_t on = wait_affinity(m, PSCI_AFF_ON);
    report(in && on == PSCI_AFF_ON, "CPU_ON cpu %d after CPU_OFF: %s, AFFINITY_INFO %s", b,
           psci_strerror(ret), aff_name(on));
  } else {
    report_skip("CPU_OFF and CPU_ON again: fewer than 3 cpus");
  }

  ret = smccc_call(FN_UNKNOWN_PSCI, 0, 0, 0);
  report(ret == PSCI_NOT_SUPPORTED, "unknown function 0x%x: %s (%ld)", FN_UNKNOWN_PSCI,
         psci_strerror(ret), (long)ret);
  ret = smccc_call(FN_UNKNOWN_SIP64, 0, 0, 0);
  report(ret == PSCI_NOT_SUPPORTED, "unknown function 0x%x: %s (%ld)", FN_UNKNOWN_SIP64,
         psci_strerror(ret), (long)ret);

  if (major >= 1) {
    ret = smccc_call(PSCI_FEATURES, PSCI_CPU_ON_64, 0, 0);
    report(ret >= 0, "PSCI_FEATURES(CPU_ON): %ld (supported)", (long)ret);
    ret = smccc_call(PSCI_FEATURES, FN_UNKNOWN_PSCI, 0, 0);
    report(ret == PSCI_NOT_SUPPORTED, "PSCI_FEATURES(0x%x): %s (%ld)", FN_UNKNOWN_PSCI,
           psci_strerror(ret), (long)ret);
  } else {
    report_skip("PSCI_FEATURES: PSCI %u.%u has none", major, minor);
  }
  return report_summary();
}
