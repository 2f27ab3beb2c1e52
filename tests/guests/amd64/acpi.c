/*
 * acpi: the ACPI tables as an OS finds them (ACPI 6.5 §5.2.5.1: the RSDP on
 * a 16-byte boundary of the BIOS area 0xE0000-0xFFFFF), in 64-bit mode (the
 * VMM's identity map covers them). Checks the RSDP's two checksums, follows
 * the XSDT and the RSDT to the MADT, checks every table's checksum on the
 * way, counts the MADT's processor entries (Processor Local APIC, type 0,
 * and Processor Local x2APIC, type 9) with the enabled flag, and compares
 * the count with the vCPUs fw_cfg reports (item 0x05).
 *
 * Prints "acpi: N processors in the MADT (L local APIC, X x2APIC), fw_cfg
 * says C", one "PASS:"/"FAIL:" line per check, then "SUMMARY: ..."; exit
 * code 0 if nothing failed, else 1. Loops are bounded by the table lengths
 * (at most a few thousand entries): fast even when guest code is emulated.
 */
#include "lib/acpi.h"
#include "lib/fw_cfg.h"
#include "lib/runtime.h"

#define MADT_LOCAL_APIC 0
#define MADT_LOCAL_X2APIC 9
#define MADT_ENABLED 1u
#define MADT_ENTRIES_OFFSET 44

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  (void)mbi;
  const uint8_t *rsdp = acpi_find_rsdp();
  report(rsdp != 0, "RSDP found in 0xE0000-0xFFFFF");
  if (!rsdp) return report_summary();
  printf("acpi: RSDP at %p, revision %u\n", (const void *)rsdp, rsdp[15]);
  report(acpi_sum(rsdp, 20) == 0, "RSDP checksum (first 20 bytes)");
  report(rsdp[15] >= 2 && acpi_sum(rsdp, acpi_get32(rsdp + 20)) == 0,
         "RSDP extended checksum (revision 2)");
  const uint8_t *xsdt = acpi_table(acpi_get64(rsdp + 24), "XSDT");
  const uint8_t *rsdt = acpi_table(acpi_get32(rsdp + 16), "RSDT");
  report(xsdt != 0, "XSDT signature and checksum");
  report(rsdt != 0, "RSDT signature and checksum");
  const uint8_t *madt = xsdt ? acpi_find_in(xsdt, 8, "APIC") : 0;
  const uint8_t *madt_r = rsdt ? acpi_find_in(rsdt, 4, "APIC") : 0;
  report(madt != 0, "MADT through the XSDT, checksum");
  report(madt_r == madt, "the RSDT names the same MADT");
  if (!madt) return report_summary();

  uint32_t lapic = 0, x2apic = 0, bad = 0;
  const uint32_t len = acpi_get32(madt + 4);
  for (uint32_t at = MADT_ENTRIES_OFFSET; at + 2 <= len;) {
    const uint8_t type = madt[at], elen = madt[at + 1];
    if (elen < 2 || at + elen > len) {
      bad++;
      break;
    }
    if (type == MADT_LOCAL_APIC && elen == 8 &&
        (acpi_get32(madt + at + 4) & MADT_ENABLED)) {
      lapic++;
    } else if (type == MADT_LOCAL_X2APIC && elen == 16 &&
               (acpi_get32(madt + at + 8) & MADT_ENABLED)) {
      if (acpi_get32(madt + at + 4) <= 254) bad++;  /* x2APIC entries: ids >= 255 */
      x2apic++;
    }
    at += elen;
  }
  const uint32_t cpus = fw_cfg_present() ? fw_cfg_read_u16(FW_CFG_NB_CPUS) : 0;
  printf("acpi: %u processors in the MADT (%u local APIC, %u x2APIC), "
         "fw_cfg says %u\n",
         lapic + x2apic, lapic, x2apic, cpus);
  report(bad == 0, "MADT entries well formed");
  report(cpus != 0 && lapic + x2apic == cpus,
         "one enabled MADT processor entry per vCPU");
  return report_summary();
}
