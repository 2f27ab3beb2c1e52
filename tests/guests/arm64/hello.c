/*
 * hello: the smallest end-to-end check of the arm64 boot path. Prints a
 * greeting, the exception level and MPIDR it was entered with, where the
 * DTB was (x0) and what it says (RAM, CPUs, PSCI conduit, bootargs).
 * Exits with code 0 (EXIT: STATUS=1) if it runs at EL1 and the DTB lists
 * RAM and this CPU, else 1 (EXIT: STATUS=3); then PSCI SYSTEM_OFF.
 */
#include "lib/arm64.h"
#include "lib/fdt.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/smp.h"

/* From guest.ld. gcc takes its address PC-relatively (ADRP), so this is
 * where the image really runs. */
extern const char __image_start[];

int guest_main(uintptr_t dtb) {
  printf("Hello from an arm64 strata guest\n");
  unsigned el = current_el();
  uint64_t mpidr = read_sysreg(mpidr_el1);
  printf("CurrentEL: EL%u\n", el);
  printf("MPIDR: 0x%lx\n", (unsigned long)mpidr);
  uintptr_t image = (uintptr_t)__image_start;
  printf("image: 0x%lx, dtb: 0x%lx (%u bytes)\n", (unsigned long)image,
         (unsigned long)dtb, boot_info.totalsize);
  printf("memory: 0x%lx bytes (%lu MiB) at 0x%lx\n", (unsigned long)boot_info.mem_size,
         (unsigned long)(boot_info.mem_size >> 20), (unsigned long)boot_info.mem_base);
  printf("cpus: %u in the device tree, boot cpu index %d\n", boot_info.ncpus, boot_cpu_index);
  printf("psci: method %s\n", boot_info.psci_method[0] ? boot_info.psci_method : "(none)");
  printf("bootargs: %s\n", boot_info.bootargs[0] ? boot_info.bootargs : "(none)");

  bool ok = true;
  if (el != 1) {
    printf("hello: FAIL: entered at EL%u, expected EL1\n", el);
    ok = false;
  }
  if (image != IMAGE_BASE) {
    printf("hello: FAIL: loaded at 0x%lx, linked at 0x%lx\n", (unsigned long)image,
           (unsigned long)IMAGE_BASE);
    ok = false;
  }
  if (boot_info.mem_size == 0) {
    printf("hello: FAIL: no /memory reg in the device tree\n");
    ok = false;
  }
  if (boot_cpu_index < 0) {
    printf("hello: FAIL: MPIDR 0x%lx is not a /cpus/cpu reg\n", (unsigned long)read_mpidr());
    ok = false;
  }
  printf("hello: %s\n", ok ? "done" : "FAILED");
  return ok ? 0 : 1;
}
