#include "acpi.h"

#include "runtime.h"

#define BIOS_AREA_START 0xE0000u
#define BIOS_AREA_END 0x100000u

uint32_t acpi_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t acpi_get64(const uint8_t *p) {
  return (uint64_t)acpi_get32(p) | (uint64_t)acpi_get32(p + 4) << 32;
}

uint8_t acpi_sum(const uint8_t *p, uint32_t len) {
  uint8_t s = 0;
  for (uint32_t i = 0; i < len; i++) s = (uint8_t)(s + p[i]);
  return s;
}

const uint8_t *acpi_find_rsdp(void) {
  for (uintptr_t a = BIOS_AREA_START; a < BIOS_AREA_END; a += 16) {
    const uint8_t *p = (const uint8_t *)a;
    if (memcmp(p, "RSD PTR ", 8) == 0) return p;
  }
  return 0;
}

const uint8_t *acpi_table(uint64_t addr, const char *sig) {
  if (addr == 0 || addr >= 0x100000000ull) return 0;
  const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
  if (memcmp(t, sig, 4) != 0) return 0;
  /* The FACS has a length but no checksum (§5.2.10). */
  const uint32_t len = acpi_get32(t + 4);
  if (memcmp(sig, "FACS", 4) == 0) return len >= 64 ? t : 0;
  if (len < ACPI_HEADER_SIZE || len > 0x20000 || acpi_sum(t, len) != 0) return 0;
  return t;
}

const uint8_t *acpi_find_in(const uint8_t *sdt, uint32_t entry_size, const char *sig) {
  const uint32_t len = acpi_get32(sdt + 4);
  for (uint32_t at = ACPI_HEADER_SIZE; at + entry_size <= len; at += entry_size) {
    const uint64_t a = entry_size == 8 ? acpi_get64(sdt + at) : acpi_get32(sdt + at);
    const uint8_t *t = (const uint8_t *)(uintptr_t)a;
    if (a != 0 && a < 0x100000000ull && memcmp(t, sig, 4) == 0) return acpi_table(a, sig);
  }
  return 0;
}

const uint8_t *acpi_find(const char *sig) {
  const uint8_t *rsdp = acpi_find_rsdp();
  if (!rsdp || rsdp[15] < 2) return 0;
  const uint8_t *xsdt = acpi_table(acpi_get64(rsdp + 24), "XSDT");
  return xsdt ? acpi_find_in(xsdt, 8, sig) : 0;
}
