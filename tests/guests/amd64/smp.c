/*
 * smp: starts every AP with INIT + SIPI and waits (at most 5 s of PM-timer
 * time) until all of them checked in. The vCPU count comes from fw_cfg key
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
  bool broadcast = (mbi->flags & MB_INFO_CMDLINE) &&
                   str_has_word(mb_phys(mbi->cmdline), "broadcast");
  /* Past 255 cpus the APs' xAPIC ids are ambiguous until they switch to
   * x2APIC mode (smp.h): start them by broadcast. */
  if (ncpus > 255) broadcast = true;
  printf("smp: bsp apic id %u, starting %u APs (%s INIT/SIPI, vector 0x%02x)\n", lapic_id(),
         ncpus - 1, broadcast ? "broadcast" : "per-APIC-id", AP_SIPI_VECTOR);

  struct smp_status st =
      smp_boot_aps(ncpus, broadcast ? SMP_IPI_BROADCAST : SMP_IPI_UNICAST, SMP_TIMEOUT_MS);

  printf("smp: %u of %u cpus up%s\n", st.checked_in, st.expected,
         st.x2apic ? " (x2APIC mode)" : "");
  printf("smp: apic ids");
  smp_print_ids(&st);
  printf("\n");

  if (st.timed_out) {
    printf("smp: FAIL: timed out after %u ms with %u of %u cpus up%s\n", SMP_TIMEOUT_MS,
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
