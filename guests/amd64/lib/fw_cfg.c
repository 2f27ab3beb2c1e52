#include "fw_cfg.h"

#include "platform.h"
#include "runtime.h"

void fw_cfg_select(uint16_t key) { outw(FW_CFG_PORT_SEL, key); }

void fw_cfg_read(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len--) *p++ = inb(FW_CFG_PORT_DATA);
}

static uint64_t read_le(uint16_t key, size_t len) {
  uint8_t b[8];
  fw_cfg_select(key);
  fw_cfg_read(b, len);
  uint64_t v = 0;
  for (size_t i = len; i > 0; --i) v = (v << 8) | b[i - 1];
  return v;
}

uint16_t fw_cfg_read_u16(uint16_t key) { return (uint16_t)read_le(key, 2); }
uint32_t fw_cfg_read_u32(uint16_t key) { return (uint32_t)read_le(key, 4); }
uint64_t fw_cfg_read_u64(uint16_t key) { return read_le(key, 8); }

bool fw_cfg_present(void) {
  char sig[4];
  fw_cfg_select(FW_CFG_SIGNATURE);
  fw_cfg_read(sig, sizeof(sig));
  return memcmp(sig, "QEMU", 4) == 0;
}

uint32_t fw_cfg_dma_to(uint32_t control, uint64_t gpa, uint32_t len) {
  static volatile struct {
    uint32_t control, length;
    uint64_t address;
  } __attribute__((aligned(16))) access;
  access.control = __builtin_bswap32(control);
  access.length = __builtin_bswap32(len);
  access.address = __builtin_bswap64(gpa);
  uint64_t desc = (uintptr_t)&access;
  outl(FW_CFG_PORT_DMA, __builtin_bswap32((uint32_t)(desc >> 32)));
  outl(FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)desc));
  return __builtin_bswap32(access.control);
}

uint32_t fw_cfg_dma(uint32_t control, void *buf, uint32_t len) {
  return fw_cfg_dma_to(control, (uintptr_t)buf, len);
}
