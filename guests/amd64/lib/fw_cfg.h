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

/* The DMA interface (port 0x514, big-endian descriptor address). Control
 * bits of struct FWCfgDmaAccess: */
#define FW_CFG_DMA_ERROR 0x01u
#define FW_CFG_DMA_READ 0x02u
#define FW_CFG_DMA_SKIP 0x04u
#define FW_CFG_DMA_SELECT 0x08u
#define FW_CFG_DMA_WRITE 0x10u
/* Runs one transfer of len bytes to/from guest-physical buf (identity
 * mapped) with control (FW_CFG_DMA_SELECT | key << 16 selects first);
 * returns the control word the device left (0 on success). */
uint32_t fw_cfg_dma(uint32_t control, void *buf, uint32_t len);
uint32_t fw_cfg_dma_to(uint32_t control, uint64_t gpa, uint32_t len);

#endif /* STRATA_GUEST_FW_CFG_H */
