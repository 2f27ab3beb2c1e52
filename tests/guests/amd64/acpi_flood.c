/*
 * acpi_flood: a guest that repeats something the VMM warns about. Writes
 * PM1a_CNT 10000 times with SLP_EN and a sleep type the DSDT does not offer
 * (2-7: not S5, 0, nor S3, 1; the platform ignores them with a warning),
 * then exits
 * through the debug-exit port with 0 (VMM status 1). The VMM's stderr must
 * stay a few lines long: its warning is rate-limited.
 */
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

/* PM1_CNT.SLP_TYP, bits 12:10 (ACPI 6.4 §4.8.3.2.1, Table 4-18). */
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define FLOOD_WRITES 10000

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  (void)mbi;
  for (uint32_t i = 0; i < FLOOD_WRITES; ++i) {
    /* Types 2..7: every one but S5 (0) and S3 (1). */
    const uint16_t typ = (uint16_t)(i % 6 + 2);
    outw(ACPI_PM1A_CNT_PORT,
         (uint16_t)((typ << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN));
  }
  printf("acpi_flood: %u sleep requests written\n", (uint32_t)FLOOD_WRITES);
  return 0;
}
