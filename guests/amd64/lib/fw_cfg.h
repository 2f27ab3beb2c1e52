/* QEMU fw_cfg over I/O ports: select a key, then read its bytes in order. */
#ifndef STRATA_GUEST_FW_CFG_H
#define STRATA_GUEST_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h" /* ports and well-known keys */

void fw_cfg_select(uint16_t key);
void fw_cfg_read(void *buf, size_t len); /* from the current offset */
uint16_t fw_cfg_read_u16(uint16_t key);  /* little-endian items */
uint32_t fw_cfg_read_u32(uint16_t key);
uint64_t fw_cfg_read_u64(uint16_t key);
/* True if key 0x0000 reads "QEMU". */
bool fw_cfg_present(void);

#endif /* STRATA_GUEST_FW_CFG_H */
