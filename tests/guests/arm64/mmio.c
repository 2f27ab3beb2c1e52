/*
 * mmio: MMIO round trips through the PL011 at 0x09000000. UARTFR must
 * read sane (reserved bits 31:9 clear, the transmit FIFO drains);
 * UARTIBRD, UARTFBRD, UARTLCR_H and UARTIMSC must read back what was
 * written (within their widths), and are restored; the PrimeCell ID
 * registers must read 0xb105f00d. Then one 32-bit read from 0x0a000000,
 * device space where strata's virt machine has nothing: it must read 0
 * (and the VMM logs the unclaimed access). QEMU's virt machine has a
 * virtio-mmio transport there (magic "virt", 0x74726976): that is a SKIP.
 * PASS:/FAIL:/SKIP: lines, SUMMARY; exit code = failure count.
 */
#include "lib/arm64.h"
#include "lib/platform.h"
#include "lib/runtime.h"

#define VIRTIO_MMIO_MAGIC 0x74726976u
#define UARTPERIPHID0 0xfe0
#define UARTPCELLID0 0xff0

struct reg_check {
  const char *name;
  uint32_t offset, mask, value;
};

static const struct reg_check kRegs[] = {
    {"UARTIBRD", UARTIBRD, 0xffff, 0x1234},
    {"UARTFBRD", UARTFBRD, 0x3f, 0x2a},
    {"UARTLCR_H", UARTLCR_H, 0xff, 0x70}, /* 8 bits, FIFOs on */
    {"UARTIMSC", UARTIMSC, 0x7ff, 0x050}, /* RX and RX-timeout masks */
};

static uint32_t read_id(uint32_t base_offset) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < 4; ++i) {
    v |= (mmio_read32(PL011_BASE + base_offset + 4 * i) & 0xff) << (8 * i);
  }
  return v;
}

int guest_main(uintptr_t dtb) {
  (void)dtb;
  printf("mmio: PL011 at 0x%lx\n", (unsigned long)PL011_BASE);
  uint32_t fr = mmio_read32(PL011_BASE + UARTFR);
  report((fr & ~0x1ffu) == 0, "UARTFR 0x%x has its reserved bits 31:9 clear", fr);
  bool drained = false;
  for (int i = 0; i < 1000000 && !drained; ++i) {
    drained = !(mmio_read32(PL011_BASE + UARTFR) & UARTFR_TXFF);
  }
  report(drained, "UARTFR.TXFF clears (transmit FIFO not stuck full)");

  uint32_t got[4], saved[4];
  for (unsigned i = 0; i < 4; ++i) {
    uintptr_t reg = PL011_BASE + kRegs[i].offset;
    saved[i] = mmio_read32(reg);
    mmio_write32(reg, kRegs[i].value);
    got[i] = mmio_read32(reg);
    mmio_write32(reg, saved[i]);
  }
  for (unsigned i = 0; i < 4; ++i) {
    report((got[i] & kRegs[i].mask) == kRegs[i].value,
           "%s (+0x%x) wrote 0x%x, read back 0x%x (was 0x%x, restored)", kRegs[i].name,
           kRegs[i].offset, kRegs[i].value, got[i], saved[i]);
  }
  uint32_t periph = read_id(UARTPERIPHID0), cell = read_id(UARTPCELLID0);
  report(cell == 0xb105f00d, "PrimeCell id 0x%08x (peripheral id 0x%08x, part 0x%03x)", cell,
         periph, periph & 0xfff);

  uint32_t v = mmio_read32(UNMAPPED_DEVICE_BASE);
  printf("mmio: read 0x%lx -> 0x%x\n", (unsigned long)UNMAPPED_DEVICE_BASE, v);
  if (v == VIRTIO_MMIO_MAGIC) {
    report_skip("0x%lx holds a virtio-mmio transport (magic \"virt\"), not unmapped space",
                (unsigned long)UNMAPPED_DEVICE_BASE);
  } else {
    report(v == 0, "unclaimed MMIO read at 0x%lx returned 0x%x, expected 0",
           (unsigned long)UNMAPPED_DEVICE_BASE, v);
  }
  return report_summary();
}
