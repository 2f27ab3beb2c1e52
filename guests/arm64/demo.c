/*
 * demo: the guest the arm64 bhyverun boots when it is given no kernel.
 * Prints a banner with the CPU it runs on (MIDR_EL1 implementer and part
 * number), starts every other CPU in the device tree with PSCI CPU_ON and
 * counts them, then powers off with PSCI SYSTEM_OFF (VMM status 0; no
 * EXIT line).
 */
#include "lib/arm64.h"
#include "lib/fdt.h"
#include "lib/runtime.h"
#include "lib/smp.h"

/* Bring-up time grows with the vCPU count on a slow host: 2 s plus 20 ms
 * per vCPU, as the amd64 demo. */
#define DEMO_SMP_TIMEOUT_MS(n) (2000 + 20 * (n))

static const char *implementer_name(uint32_t impl) {
  switch (impl) {
    case 0x41: return "Arm";
    case 0x42: return "Broadcom";
    case 0x43: return "Cavium";
    case 0x46: return "Fujitsu";
    case 0x48: return "HiSilicon";
    case 0x4e: return "NVIDIA";
    case 0x50: return "Applied Micro";
    case 0x51: return "Qualcomm";
    case 0x61: return "Apple";
    case 0xc0: return "Ampere";
    default: return "unknown";
  }
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("strata demo guest\n");
  uint64_t midr = read_sysreg(midr_el1);
  uint32_t impl = (uint32_t)(midr >> 24) & 0xff, part = (uint32_t)(midr >> 4) & 0xfff;
  printf("cpu: implementer 0x%02x (%s), part 0x%03x, variant %u, revision %u\n", impl,
         implementer_name(impl), part, (uint32_t)(midr >> 20) & 0xf, (uint32_t)midr & 0xf);
  struct smp_status st = smp_start(DEMO_SMP_TIMEOUT_MS(boot_info.ncpus));
  printf("vcpus: %u of %u checked in\n", st.checked_in, st.expected);
  guest_poweroff();
}
