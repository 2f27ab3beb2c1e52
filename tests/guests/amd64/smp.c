/*
 * smp: starts every AP with INIT + SIPI and waits (by default at most 5 s of
 * PM-timer time; "timeout_ms=N" on the command line, up to 600 000, for a
 * slow host: a TCG L1 with 300 sanitized vCPU threads on 2 CPUs) until all
 * of them checked in. The vCPU count comes from fw_cfg key
 * 0x05. By default each AP is started by APIC id (0..N-1, the VMM's default
 * topology); past 255 cpus, or with the word "broadcast" on the command
 * line, one "all excluding self" INIT/SIPI instead, and then the BSP and
 * every AP use x2APIC mode.
 *
 * Exit code 0 if all N cpus checked in with N distinct APIC ids, else 1.
 */
#include "lib/fw_cfg.h"
#include "lib/runtime.h"
#include "lib/smp.h"

#define SMP_TIMEOUT_MS 5000
#define SMP_MAX_TIMEOUT_MS 600000

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  if (!fw_cfg_present()) {
    printf("smp: FAIL: no fw_cfg (key 0x0000 does not read \"QEMU\")\n");
    return 1;
  }
  uint32_t ncpus = fw_cfg_read_u16(FW_CFG_NB_CPUS);
  if (ncpus == 0 || ncpus > SMP_MAX_CPUS) {
    printf("smp: FAIL: fw_cfg reports %u cpus (supported: 1..%u)\n", ncpus, SMP_MAX_CPUS);
    return 1;
  }
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  bool broadcast = str_has_word(cmdline, "broadcast");
  uint64_t timeout_ms = SMP_TIMEOUT_MS;
  if (cmdline_get_uint(cmdline, "timeout_ms", &timeout_ms) &&
      (timeout_ms == 0 || timeout_ms > SMP_MAX_TIMEOUT_MS)) {
    printf("smp: FAIL: timeout_ms=%u (1..%u)\n", (uint32_t)timeout_ms, SMP_MAX_TIMEOUT_MS);
    return 1;
  }
  /* Past 255 cpus the APs' xAPIC ids are ambiguous until they switch to
   * x2APIC mode (smp.h): start them by broadcast. */
  if (ncpus > 255) broadcast = true;
  printf("smp: bsp apic id %u, starting %u APs (%s INIT/SIPI, vector 0x%02x)\n", lapic_id(),
         ncpus - 1, broadcast ? "broadcast" : "per-APIC-id", AP_SIPI_VECTOR);

  struct smp_status st =
      smp_boot_aps(ncpus, broadcast ? SMP_IPI_BROADCAST : SMP_IPI_UNICAST, (uint32_t)timeout_ms);

  printf("smp: %u of %u cpus up%s\n", st.checked_in, st.expected,
         st.x2apic ? " (x2APIC mode)" : "");
  printf("smp: apic ids");
  smp_print_ids(&st);
  printf("\n");

  if (st.timed_out) {
    printf("smp: FAIL: timed out after %u ms with %u of %u cpus up%s\n", (uint32_t)timeout_ms,
           st.checked_in, st.expected,
           st.timer_stuck ? " (the PM timer at 0x608 is not counting)" : "");
    return 1;
  }
  if (st.id_mismatches != 0) {
    printf("smp: FAIL: %u APs have an x2APIC id other than CPUID's\n", st.id_mismatches);
    return 1;
  }
  if (st.checked_in != st.expected || st.ids_seen != st.expected) {
    printf("smp: FAIL: %u cpus checked in but %u distinct APIC ids\n", st.checked_in,
           st.ids_seen);
    return 1;
  }
  printf("smp: PASS\n");
  return 0;
}
