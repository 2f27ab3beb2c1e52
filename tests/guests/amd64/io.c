/*
 * io: port I/O and MMIO exit paths.
 *   - pc-testdev latch at 0xE0-0xE3: 32-bit writes, byte/word/dword reads of
 *     each lane, byte- and word-lane writes, string I/O (rep outs/ins);
 *   - an unclaimed port reads all-ones and ignores writes;
 *   - pc-testdev MMIO buffer at 0xFF000000: 1/2/4-byte round trips, mixed
 *     widths, the last dword of the 64 KiB window, and 8-byte MMX movq;
 *   - unclaimed MMIO reads 0 and ignores writes;
 *   - fw_cfg signature, vCPU count and RAM size; the DMA interface: its
 *     signature and ID bit, the file directory and etc/e820 read by DMA
 *     (checked against the I/O interface and the RAM size), a skip, and a
 *     buffer outside RAM answered with the error bit.
 * One "PASS:"/"FAIL:"/"SKIP:" line per check, then "SUMMARY: ..."; exit code
 * 0 if nothing failed, else 1.
 */
#include "lib/fw_cfg.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define UNCLAIMED_PORT 0x9F0
#define UNCLAIMED_MMIO 0xFE000000u

#define LATCH PC_TESTDEV_LATCH_PORT

static void test_latch(void) {
  outl(LATCH, 0x12345678);
  uint32_t v = inl(LATCH);
  report(v == 0x12345678, "pc-testdev latch: 32-bit write, 32-bit read (0x%08x)", v);

  uint8_t b0 = inb(LATCH), b1 = inb(LATCH + 1), b2 = inb(LATCH + 2), b3 = inb(LATCH + 3);
  report(b0 == 0x78 && b1 == 0x56 && b2 == 0x34 && b3 == 0x12,
         "pc-testdev latch: 8-bit reads of each lane (%02x %02x %02x %02x)", b0, b1, b2, b3);

  uint16_t w0 = inw(LATCH), w1 = inw(LATCH + 2);
  report(w0 == 0x5678 && w1 == 0x1234, "pc-testdev latch: 16-bit reads of each half (%04x %04x)",
         w0, w1);

  outb(LATCH + 1, 0xAB);
  v = inl(LATCH);
  report(v == 0x1234AB78, "pc-testdev latch: 8-bit write to lane 1 (0x%08x)", v);

  outw(LATCH + 2, 0xCDEF);
  v = inl(LATCH);
  report(v == 0xCDEFAB78, "pc-testdev latch: 16-bit write to the upper half (0x%08x)", v);
}

static void test_string_io(void) {
  static const uint32_t out[2] = {0x11111111, 0x22334455};
  const uint32_t *src = out;
  uint32_t count = 2;
  __asm__ volatile("rep outsl"
                   : "+S"(src), "+c"(count)
                   : "d"((uint16_t)LATCH), "m"(out)
                   : "memory");
  uint32_t v = inl(LATCH);
  report(v == 0x22334455, "pc-testdev latch: rep outsl of 2 dwords leaves the last (0x%08x)", v);

  uint16_t in[3] = {0, 0, 0};
  uint16_t *dst = in;
  count = 3;
  __asm__ volatile("rep insw" : "+D"(dst), "+c"(count) : "d"((uint16_t)(LATCH + 2)) : "memory");
  report(in[0] == 0x2233 && in[1] == 0x2233 && in[2] == 0x2233,
         "pc-testdev latch: rep insw of 3 words from the upper half (%04x %04x %04x)", in[0],
         in[1], in[2]);
}

static void test_unclaimed_port(void) {
  uint8_t b = inb(UNCLAIMED_PORT);
  uint16_t w = inw(UNCLAIMED_PORT);
  uint32_t l = inl(UNCLAIMED_PORT);
  report(b == 0xFF && w == 0xFFFF && l == 0xFFFFFFFF,
         "unclaimed port 0x%x reads all-ones (0x%02x 0x%04x 0x%08x)", UNCLAIMED_PORT, b, w, l);
  outl(UNCLAIMED_PORT, 0);
  l = inl(UNCLAIMED_PORT);
  report(l == 0xFFFFFFFF, "unclaimed port 0x%x ignores writes (0x%08x)", UNCLAIMED_PORT, l);
}

static void test_mmio(void) {
  const uintptr_t base = PC_TESTDEV_IOMEM;

  mmio_write8(base + 0x10, 0x5A);
  uint8_t b = mmio_read8(base + 0x10);
  report(b == 0x5A, "pc-testdev MMIO: 8-bit write, 8-bit read (0x%02x)", b);

  mmio_write16(base + 0x22, 0xBEEF);
  uint16_t w = mmio_read16(base + 0x22);
  report(w == 0xBEEF, "pc-testdev MMIO: 16-bit write, 16-bit read (0x%04x)", w);

  mmio_write32(base + 0x30, 0x11223344);
  uint32_t l = mmio_read32(base + 0x30);
  report(l == 0x11223344, "pc-testdev MMIO: 32-bit write, 32-bit read (0x%08x)", l);

  b = mmio_read8(base + 0x31);
  w = mmio_read16(base + 0x32);
  report(b == 0x33 && w == 0x1122,
         "pc-testdev MMIO: narrow reads of a 32-bit write (0x%02x 0x%04x)", b, w);

  mmio_write8(base + 0x31, 0xAA);
  l = mmio_read32(base + 0x30);
  report(l == 0x1122AA44, "pc-testdev MMIO: 8-bit write into a dword (0x%08x)", l);

  const uintptr_t last = base + PC_TESTDEV_IOMEM_SIZE - 4;
  mmio_write32(last, 0xCAFEF00D);
  l = mmio_read32(last);
  report(l == 0xCAFEF00D, "pc-testdev MMIO: last dword of the 64 KiB window (0x%08x)", l);
}

/* 8-byte MMIO through MMX movq (0F 6F / 0F 7F): needs CR0.EM=0, CR0.TS=0. */
static void test_mmio64(void) {
  if (!(cpuid(1, 0).edx & CPUID_1_EDX_MMX)) {
    report_skip("pc-testdev MMIO: 64-bit movq round trip (no MMX)");
    return;
  }
  write_cr0((read_cr0() & ~(uintptr_t)(CR0_EM | CR0_TS)) | CR0_MP);
  const uintptr_t addr = PC_TESTDEV_IOMEM + 0x40;
  static volatile uint64_t out = 0x0123456789ABCDEFull, in;
  in = 0;
  __asm__ volatile(
      "movq (%0), %%mm0\n\t"
      "movq %%mm0, (%1)\n\t"
      "movq (%1), %%mm1\n\t"
      "movq %%mm1, (%2)\n\t"
      /* Empties the x87 tags like EMMS, which KVM's instruction emulator
       * lacks (it emulates all guest supervisor code on the paravirtual
       * development hosts); FNINIT it has. */
      "fninit"
      :
      : "r"(&out), "r"(addr), "r"(&in)
      : "memory");
  uint32_t lo = mmio_read32(addr), hi = mmio_read32(addr + 4);
  report(in == out, "pc-testdev MMIO: 64-bit movq write, movq read (0x%08x%08x)",
         (uint32_t)(in >> 32), (uint32_t)in);
  report(lo == 0x89ABCDEF && hi == 0x01234567,
         "pc-testdev MMIO: 32-bit halves of a 64-bit write (0x%08x 0x%08x)", hi, lo);
}

static void test_unclaimed_mmio(void) {
  uint32_t l = mmio_read32(UNCLAIMED_MMIO);
  uint8_t b = mmio_read8(UNCLAIMED_MMIO + 1);
  report(l == 0 && b == 0, "unclaimed MMIO 0x%x reads 0 (0x%08x 0x%02x)", UNCLAIMED_MMIO, l, b);
  mmio_write32(UNCLAIMED_MMIO, 0xFFFFFFFF);
  l = mmio_read32(UNCLAIMED_MMIO);
  report(l == 0, "unclaimed MMIO 0x%x ignores writes (0x%08x)", UNCLAIMED_MMIO, l);
}

static void test_fw_cfg(void) {
  char sig[5] = {0};
  fw_cfg_select(FW_CFG_SIGNATURE);
  fw_cfg_read(sig, 4);
  bool present = memcmp(sig, "QEMU", 4) == 0;
  report(present, "fw_cfg: signature \"%s\"", sig);
  if (!present) {
    report_skip("fw_cfg: vCPU count (no fw_cfg)");
    report_skip("fw_cfg: RAM size (no fw_cfg)");
    return;
  }
  /* A re-select must restart at offset 0. */
  fw_cfg_select(FW_CFG_SIGNATURE);
  fw_cfg_read(sig, 4);
  report(memcmp(sig, "QEMU", 4) == 0, "fw_cfg: selecting again restarts at offset 0");
  uint32_t ncpus = fw_cfg_read_u16(FW_CFG_NB_CPUS);
  report(ncpus >= 1, "fw_cfg: vCPU count (key 0x05) = %u", ncpus);
  uint64_t ram = fw_cfg_read_u64(FW_CFG_RAM_SIZE);
  report(ram >= (4u << 20), "fw_cfg: RAM size (key 0x03) = %u MiB", (uint32_t)(ram >> 20));
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_fw_cfg_dma(void) {
  uint32_t id = fw_cfg_read_u32(FW_CFG_ID);
  report(id & 2, "fw_cfg DMA: ID 0x%x has the DMA bit", id);
  char sig[9] = {0};
  for (int i = 0; i < 8; ++i) sig[i] = (char)inb(FW_CFG_PORT_DMA + i);
  report(memcmp(sig, "QEMU CFG", 8) == 0, "fw_cfg DMA: register reads \"%s\"", sig);

  /* The directory: be32 count, then 64-byte entries (be32 size, be16
   * select, be16 reserved, name[56]). */
  static uint8_t dir[4 + 8 * 64];
  uint32_t ctl = fw_cfg_dma(FW_CFG_DMA_SELECT | FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_READ, dir,
                            sizeof(dir));
  uint32_t count = be32(dir), e820_size = 0;
  uint16_t e820_key = 0;
  for (uint32_t i = 0; i < count && i < 8; ++i) {
    const uint8_t *e = dir + 4 + 64 * i;
    if (strcmp((const char *)e + 8, "etc/e820") == 0) {
      e820_size = be32(e);
      e820_key = (uint16_t)(e[4] << 8 | e[5]);
    }
  }
  report(ctl == 0 && e820_key != 0 && e820_size % 20 == 0 && e820_size > 0,
         "fw_cfg DMA: directory (%u files, control 0x%x) lists etc/e820 (%u bytes)", count,
         ctl, e820_size);

  static uint8_t e820[20 * 8], e820_io[20 * 8];
  if (e820_size > sizeof(e820)) e820_size = sizeof(e820);
  ctl = fw_cfg_dma(FW_CFG_DMA_SELECT | (uint32_t)e820_key << 16 | FW_CFG_DMA_READ, e820,
                   e820_size);
  fw_cfg_select(e820_key);
  fw_cfg_read(e820_io, e820_size);
  uint64_t ram = 0;
  for (uint32_t off = 0; off + 20 <= e820_size; off += 20) {
    uint64_t len;
    uint32_t type;
    memcpy(&len, e820 + off + 8, 8);
    memcpy(&type, e820 + off + 16, 4);
    if (type == 1) ram += len;
  }
  uint64_t ram_size = fw_cfg_read_u64(FW_CFG_RAM_SIZE);
  report(ctl == 0 && memcmp(e820, e820_io, e820_size) == 0 && ram == ram_size,
         "fw_cfg DMA: etc/e820 matches the I/O read and sums to %u MiB (RAM size %u MiB)",
         (uint32_t)(ram >> 20), (uint32_t)(ram_size >> 20));

  /* Skip the first entry's address, read its length. */
  uint64_t len0 = 0, want;
  memcpy(&want, e820 + 8, 8);
  uint32_t c1 = fw_cfg_dma(FW_CFG_DMA_SELECT | (uint32_t)e820_key << 16 | FW_CFG_DMA_SKIP,
                           0, 8);
  uint32_t c2 = fw_cfg_dma(FW_CFG_DMA_READ, &len0, 8);
  report(c1 == 0 && c2 == 0 && len0 == want,
         "fw_cfg DMA: skip 8 then read 8 (the first entry's length, %u KiB)",
         (uint32_t)(len0 >> 10));

  ctl = fw_cfg_dma_to(FW_CFG_DMA_SELECT | FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_READ,
                      UNCLAIMED_MMIO, 64);
  report(ctl & FW_CFG_DMA_ERROR, "fw_cfg DMA: a buffer outside RAM sets the error bit (0x%x)",
         ctl);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  (void)mbi;
  test_latch();
  test_string_io();
  test_unclaimed_port();
  test_mmio();
  test_mmio64();
  test_unclaimed_mmio();
  test_fw_cfg();
  test_fw_cfg_dma();
  return report_summary();
}
