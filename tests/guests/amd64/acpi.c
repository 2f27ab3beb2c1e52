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
#include "lib/fw_cfg.h"
#include "lib/runtime.h"

#define BIOS_AREA_START 0xE0000u
#define BIOS_AREA_END 0x100000u

#define MADT_LOCAL_APIC 0
#define MADT_LOCAL_X2APIC 9
#define MADT_ENABLED 1u
#define MADT_ENTRIES_OFFSET 44
#define HEADER_SIZE 36

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, uint32_t len) {
  uint8_t s = 0;
  for (uint32_t i = 0; i < len; i++) s = (uint8_t)(s + p[i]);
  return s;
}

static const uint8_t *find_rsdp(void) {
  for (uintptr_t a = BIOS_AREA_START; a < BIOS_AREA_END; a += 16) {
    const uint8_t *p = (const uint8_t *)a;
    if (memcmp(p, "RSD PTR ", 8) == 0) return p;
  }
  return 0;
}

/* A table at `addr` whose signature and checksum are right, or null. */
static const uint8_t *table(uint64_t addr, const char *sig) {
  if (addr == 0 || addr >= 0x100000000ull) return 0;
  const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
  if (memcmp(t, sig, 4) != 0) return 0;
  const uint32_t len = get32(t + 4);
  if (len < HEADER_SIZE || len > 0x20000 || sum(t, len) != 0) return 0;
  return t;
}

/* The MADT through the XSDT (8-byte entries) or the RSDT (4-byte). */
static const uint8_t *find_madt(const uint8_t *sdt, uint32_t entry_size) {
  const uint32_t len = get32(sdt + 4);
  for (uint32_t at = HEADER_SIZE; at + entry_size <= len; at += entry_size) {
    const uint64_t a = entry_size == 8 ? get64(sdt + at) : get32(sdt + at);
    const uint8_t *t = (const uint8_t *)(uintptr_t)a;
    if (a != 0 && a < 0x100000000ull && memcmp(t, "APIC", 4) == 0) {
      return table(a, "APIC");
    }
  }
  return 0;
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  (void)mbi;
  const uint8_t *rsdp = find_rsdp();
  report(rsdp != 0, "RSDP found in 0xE0000-0xFFFFF");
  if (!rsdp) return report_summary();
  printf("acpi: RSDP at %p, revision %u\n", (const void *)rsdp, rsdp[15]);
  report(sum(rsdp, 20) == 0, "RSDP checksum (first 20 bytes)");
  report(rsdp[15] >= 2 && sum(rsdp, get32(rsdp + 20)) == 0,
         "RSDP extended checksum (revision 2)");
  const uint8_t *xsdt = table(get64(rsdp + 24), "XSDT");
  const uint8_t *rsdt = table(get32(rsdp + 16), "RSDT");
  report(xsdt != 0, "XSDT signature and checksum");
  report(rsdt != 0, "RSDT signature and checksum");
  const uint8_t *madt = xsdt ? find_madt(xsdt, 8) : 0;
  const uint8_t *madt_r = rsdt ? find_madt(rsdt, 4) : 0;
  report(madt != 0, "MADT through the XSDT, checksum");
  report(madt_r == madt, "the RSDT names the same MADT");
  if (!madt) return report_summary();

  uint32_t lapic = 0, x2apic = 0, bad = 0;
  const uint32_t len = get32(madt + 4);
  for (uint32_t at = MADT_ENTRIES_OFFSET; at + 2 <= len;) {
    const uint8_t type = madt[at], elen = madt[at + 1];
    if (elen < 2 || at + elen > len) {
      bad++;
      break;
    }
    if (type == MADT_LOCAL_APIC && elen == 8 &&
        (get32(madt + at + 4) & MADT_ENABLED)) {
      lapic++;
    } else if (type == MADT_LOCAL_X2APIC && elen == 16 &&
               (get32(madt + at + 8) & MADT_ENABLED)) {
      if (get32(madt + at + 4) <= 254) bad++;  /* x2APIC entries: ids >= 255 */
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
