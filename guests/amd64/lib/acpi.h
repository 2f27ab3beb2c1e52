/* The ACPI tables as an OS finds them (ACPI 6.5 §5.2.5.1): the RSDP on a
 * 16-byte boundary of 0xE0000-0xFFFFF, tables below 4 GiB (identity
 * mapped). Every table returned has its signature and checksum checked. */
#ifndef STRATA_GUEST_ACPI_H
#define STRATA_GUEST_ACPI_H

#include <stdint.h>

#define ACPI_HEADER_SIZE 36

uint32_t acpi_get32(const uint8_t *p);
uint64_t acpi_get64(const uint8_t *p);
uint8_t acpi_sum(const uint8_t *p, uint32_t len);
/* The RSDP, or null. */
const uint8_t *acpi_find_rsdp(void);
/* The table at addr if its signature is sig and its checksum is right. */
const uint8_t *acpi_table(uint64_t addr, const char *sig);
/* The table `sig` listed in an XSDT (entry_size 8) or RSDT (4), or null. */
const uint8_t *acpi_find_in(const uint8_t *sdt, uint32_t entry_size, const char *sig);
/* The table `sig` through the RSDP's XSDT, or null. */
const uint8_t *acpi_find(const char *sig);

#endif /* STRATA_GUEST_ACPI_H */
