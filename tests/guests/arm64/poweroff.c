/*
 * poweroff: prints one line and calls PSCI SYSTEM_OFF without an EXIT
 * line, so the VMM's exit status is its plain power-off status (0).
 */
#include "lib/runtime.h"

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("poweroff: calling PSCI SYSTEM_OFF\n");
  guest_poweroff();
}
