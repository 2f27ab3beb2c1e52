/*
 * demo: the guest bhyverun boots when it is given no kernel. Prints a banner
 * with the CPU vendor, signature and brand string, starts the APs (broadcast INIT/SIPI, from x2APIC mode
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

  /* Signature (SDM Vol. 2A Figure 3-6) and brand string (0x8000_0002-4). */
  uint32_t sig = cpuid(1, 0).eax;
  uint32_t family = (sig >> 8) & 0xf, model = (sig >> 4) & 0xf;
  if (family == 0xf) family += (sig >> 20) & 0xff;
  if (family == 0x6 || family >= 0xf) model |= ((sig >> 16) & 0xf) << 4;
  char brand[49] = "";
  if (cpuid(0x80000000, 0).eax >= 0x80000004) {
    for (uint32_t i = 0; i < 3; ++i) {
      struct cpuid_regs r = cpuid(0x80000002 + i, 0);
      memcpy(&brand[16 * i], &r, 16);
    }
    brand[48] = '\0';
  }
  printf("cpu: family 0x%x model 0x%x stepping %u, \"%s\"\n", family, model, sig & 0xf,
         brand);

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
