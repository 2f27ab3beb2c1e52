/*
 * nisv: a data abort the hypervisor cannot decode. `ldp x0, x1, [x2]`
 * with x2 = 0x0a001000 (device space with nothing in strata's virt
 * machine) traps with ESR_EL2.ISV = 0: no syndrome says which registers
 * or how wide, so KVM exits with KVM_EXIT_ARM_NISV (or -ENOSYS) and the
 * VMM must stop the VM with a clear error; the load never returns. The
 * guest prints `nisv: ldp x0, x1, [0xa001000]: ...` first. If the load
 * does complete (an emulating VMM such as QEMU TCG), it prints what it
 * read and exits with code 1 (EXIT: STATUS=3): not what strata must do.
 */
#include "lib/platform.h"
#include "lib/runtime.h"

#define NISV_ADDRESS (UNMAPPED_DEVICE_BASE + 0x1000)

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("nisv: ldp x0, x1, [0x%lx]: a load pair without a valid syndrome; "
         "the VMM must stop the VM here\n",
         (unsigned long)NISV_ADDRESS);
  register uint64_t x0 __asm__("x0");
  register uint64_t x1 __asm__("x1");
  register uintptr_t x2 __asm__("x2") = NISV_ADDRESS;
  __asm__ volatile("ldp %0, %1, [%2]" : "=r"(x0), "=r"(x1) : "r"(x2) : "memory");
  printf("nisv: the load completed (x0=0x%lx x1=0x%lx): this VMM emulated it\n",
         (unsigned long)x0, (unsigned long)x1);
  return 1;
}
