/*
 * demo: the guest bhyverun boots when it is given no kernel. Prints a banner
 * with the CPU vendor, starts the APs (broadcast INIT/SIPI, from x2APIC mode
 * past 255 vCPUs) and counts them,
 * then powers off through ACPI PM1a control so the VMM exits with 0.
 */
#include "lib/fw_cfg.h"
#include "lib/runtime.h"
#include "lib/smp.h"
#include "lib/x86.h"

/* Bring-up time grows with the vCPU count on an instruction-emulating host
 * (each AP's start-up code is emulated): 2 s plus 20 ms per vCPU. */
#define DEMO_SMP_TIMEOUT_MS(n) (2000 + 20 * (n))

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  (void)mbi;
  printf("strata demo guest\n");

  struct cpuid_regs leaf0 = cpuid(0, 0);
  char vendor[13];
  memcpy(&vendor[0], &leaf0.ebx, 4);
  memcpy(&vendor[4], &leaf0.edx, 4);
  memcpy(&vendor[8], &leaf0.ecx, 4);
  vendor[12] = '\0';
  printf("cpu vendor: %s\n", vendor);

  uint32_t ncpus = fw_cfg_present() ? fw_cfg_read_u16(FW_CFG_NB_CPUS) : 1;
  if (ncpus == 0) ncpus = 1;
  /* Beyond SMP_MAX_CPUS the extra APs park uncounted: the count says so. */
  struct smp_status st = smp_boot_aps(ncpus, SMP_IPI_BROADCAST, DEMO_SMP_TIMEOUT_MS(ncpus));
  if (st.x2apic) {
    printf("apic: x2APIC mode, %u distinct ids, highest %u, %u mismatched\n", st.ids_seen,
           smp_highest_id(&st), st.id_mismatches);
  }
  printf("vcpus: %u of %u checked in\n", st.checked_in, st.expected);

  guest_poweroff();
}
