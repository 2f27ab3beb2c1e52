/*
 * reset: prints one line and calls PSCI SYSTEM_RESET (no EXIT line); the
 * VMM reports a reset (or, if it reboots the guest, the line repeats).
 */
#include "lib/runtime.h"

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("reset: calling PSCI SYSTEM_RESET\n");
  guest_reset();
}
