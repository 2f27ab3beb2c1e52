/*
 * pci: the pc machine's PCI bus 0 from the guest's side, in 64-bit mode.
 *
 * Scans bus 0 through configuration mechanism #1 (0xcf8/0xcfc; PCI Local
 * Bus 3.0 §3.2.2.3.2) and through ECAM at 0xe0000000 (PCIe Base 4.0
 * §7.2.2; inside the runtime's identity map of the low 4 GiB), printing
 * each function ("pci: 00:03.0 1b36:0005 class ff0000") and checking that
 * both ways agree and that the host bridge is at 00:00.0. If QEMU's
 * pci-testdev (1b36:0005) is there: checks CONFIG_DATA's byte lanes, sizes
 * its BARs (BAR0 4 KiB memory, BAR1 256 ports, BAR2 none), runs the
 * kvm-unit-tests pci-testdev protocol on both BARs where the VMM put them,
 * moves BAR0 (through 0xcf8, then through ECAM) and checks it answers at
 * the new address and not the old, and that clearing memory decode hides
 * it. With "reset" on the command line it ends by writing RST_CPU to the
 * reset control register at 0xcf9 instead of exiting (the VMM reports a
 * reset).
 *
 * One "PASS:"/"FAIL:" line per check, "pci: N functions", "pci-testdev
 * mem: <name>" per test run, then "SUMMARY: ..."; exit code 0 if nothing
 * failed, else 1.
 */
#include "lib/multiboot.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA 0xcfc
#define RESET_CONTROL 0xcf9
#define RST_CPU 0x04
#define SYS_RST 0x02
#define ECAM_BASE 0xe0000000ul

#define PCI_VENDOR 0x00
#define PCI_COMMAND 0x04
#define PCI_CLASS_REV 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define CMD_IO 0x1
#define CMD_MEM 0x2

#define TESTDEV_ID 0x00051b36u
#define HOST_BRIDGE_ID 0x29c08086u
#define TESTDEV_NR_WRITES 16

static uint32_t cf8_addr(uint32_t dev, uint32_t fn, uint32_t reg) {
  return 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc);
}
static uint32_t cfg_read32(uint32_t dev, uint32_t fn, uint32_t reg) {
  outl(CONFIG_ADDRESS, cf8_addr(dev, fn, reg));
  return inl(CONFIG_DATA);
}
static void cfg_write32(uint32_t dev, uint32_t fn, uint32_t reg, uint32_t v) {
  outl(CONFIG_ADDRESS, cf8_addr(dev, fn, reg));
  outl(CONFIG_DATA, v);
}
static uintptr_t ecam(uint32_t dev, uint32_t fn, uint32_t reg) {
  return ECAM_BASE + (dev << 15 | fn << 12 | reg);
}

/* ------------------------------------------------------------ testdev -- */

struct ops {
  bool io;
  uintptr_t base;
};
static uint8_t rd8(const struct ops *o, uint32_t off) {
  return o->io ? inb((uint16_t)(o->base + off)) : mmio_read8(o->base + off);
}
static uint32_t rd32(const struct ops *o, uint32_t off) {
  return o->io ? inl((uint16_t)(o->base + off)) : mmio_read32(o->base + off);
}
static void wr8(const struct ops *o, uint32_t off, uint8_t v) {
  if (o->io) {
    outb((uint16_t)(o->base + off), v);
  } else {
    mmio_write8(o->base + off, v);
  }
}

/* kvm-unit-tests' pci_testdev_one: select test nr, expect count 0, write
 * the signature 16 times at the offset, expect 16 counted (0 would mean an
 * eventfd swallowed them, which strata never does). */
static bool testdev_one(const struct ops *o, uint8_t nr) {
  wr8(o, 0, nr);
  if (rd32(o, 12) != 0) return false;
  uint8_t width = rd8(o, 1);
  if (width != 1) return false;
  uint32_t sig = rd32(o, 8), off = rd32(o, 4);
  for (int i = 0; i < TESTDEV_NR_WRITES; ++i) wr8(o, off, (uint8_t)sig);
  return rd32(o, 12) == TESTDEV_NR_WRITES;
}

static int testdev_all(const struct ops *o) {
  int n = 0;
  for (uint8_t nr = 0; testdev_one(o, nr); ++nr, ++n) {
    char name[32];
    unsigned i = 0;
    for (; i < sizeof(name) - 1; ++i) {
      name[i] = (char)rd8(o, 16 + i);
      if (!name[i]) break;
    }
    name[i] = 0;
    printf("pci-testdev %s: %s\n", o->io ? "io" : "mem", name);
  }
  return n;
}

static uint32_t bar_size_mask(uint32_t dev, uint32_t bar) {
  uint32_t reg = PCI_BAR0 + 4 * bar;
  uint32_t old = cfg_read32(dev, 0, reg);
  cfg_write32(dev, 0, reg, 0xffffffffu);
  uint32_t mask = cfg_read32(dev, 0, reg);
  cfg_write32(dev, 0, reg, old);
  return mask;
}

static void check_testdev(uint32_t dev) {
  /* CONFIG_DATA lanes: the id byte by byte and word by word. */
  outl(CONFIG_ADDRESS, cf8_addr(dev, 0, PCI_VENDOR));
  uint32_t bytes = inb(0xcfc) | inb(0xcfd) << 8 | inb(0xcfe) << 16 |
                   (uint32_t)inb(0xcff) << 24;
  uint32_t words = inw(0xcfc) | (uint32_t)inw(0xcfe) << 16;
  report(bytes == TESTDEV_ID && words == TESTDEV_ID,
         "config data lanes: bytes 0x%x, words 0x%x", bytes, words);

  /* Sizing, with decode off as an OS does. */
  uint32_t cmd = cfg_read32(dev, 0, PCI_COMMAND) & 0xffff;
  report((cmd & (CMD_IO | CMD_MEM)) == (CMD_IO | CMD_MEM),
         "the VMM enabled decode (command 0x%x)", cmd);
  cfg_write32(dev, 0, PCI_COMMAND, cmd & ~(CMD_IO | CMD_MEM));
  uint32_t m0 = bar_size_mask(dev, 0), m1 = bar_size_mask(dev, 1),
           m2 = bar_size_mask(dev, 2);
  report(m0 == 0xfffff000u, "BAR0: 32-bit memory, %u bytes (mask 0x%x)",
         ~(m0 & ~0xfu) + 1, m0);
  report((m1 & 1) && ((~(m1 & ~3u) + 1) & 0xffff) == 256,
         "BAR1: I/O, %u ports (mask 0x%x)", (~(m1 & ~3u) + 1) & 0xffff, m1);
  report(m2 == 0, "BAR2: none (mask 0x%x)", m2);
  cfg_write32(dev, 0, PCI_COMMAND, cmd);

  uint32_t bar0 = cfg_read32(dev, 0, PCI_BAR0) & ~0xfu;
  uint32_t bar1 = cfg_read32(dev, 0, PCI_BAR0 + 4) & ~3u;
  printf("pci-testdev: BAR0 at 0x%x, BAR1 at 0x%x\n", bar0, bar1);
  report(bar0 >= 0xc0000000u && bar0 < 0xe0000000u,
         "BAR0 is in the 32-bit PCI window");
  report(bar1 >= 0xc000 && bar1 <= 0xff00, "BAR1 is in the PCI I/O range");

  struct ops mem = {false, bar0}, io = {true, bar1};
  int nmem = testdev_all(&mem), nio = testdev_all(&io);
  report(nmem == 3 && nio == 3, "pci-testdev protocol: %d mem, %d io tests",
         nmem, nio);

  /* Move BAR0 by 1 MiB through 0xcf8; test 0 stays selected. */
  uint32_t moved = bar0 + 0x100000;
  wr8(&mem, 0, 0);
  cfg_write32(dev, 0, PCI_BAR0, moved);
  uint32_t at_new = mmio_read32(moved + 16), at_old = mmio_read32(bar0 + 16);
  report(at_new == 0x6f696d6du && at_old == 0,
         "BAR0 moved to 0x%x: the name reads 0x%x there, 0x%x at the old "
         "address",
         moved, at_new, at_old);
  struct ops mem2 = {false, moved};
  report(testdev_one(&mem2, 2), "the protocol at the new address");

  /* Back through ECAM. */
  mmio_write32(ecam(dev, 0, PCI_BAR0), bar0);
  report(mmio_read32(ecam(dev, 0, PCI_BAR0)) == bar0 &&
             mmio_read8(bar0 + 1) == 1 && mmio_read8(moved + 1) == 0,
         "BAR0 moved back through ECAM");

  /* Memory decode off hides BAR0, not BAR1. */
  cfg_write32(dev, 0, PCI_COMMAND, cmd & ~CMD_MEM);
  uint8_t width_mem = mmio_read8(bar0 + 1);
  uint8_t width_io = inb((uint16_t)(bar1 + 1));
  cfg_write32(dev, 0, PCI_COMMAND, cmd);
  report(width_mem == 0 && width_io == 1 && mmio_read8(bar0 + 1) == 1,
         "memory decode off hides BAR0 (width %u), BAR1 answers (%u)",
         width_mem, width_io);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline =
      (mbi->flags & MB_INFO_CMDLINE) ? (const char *)mb_phys(mbi->cmdline) : "";
  unsigned functions = 0, mismatches = 0;
  int testdev = -1;
  for (uint32_t dev = 0; dev < 32; ++dev) {
    uint32_t nfn = 1;
    for (uint32_t fn = 0; fn < nfn; ++fn) {
      uint32_t id = cfg_read32(dev, fn, PCI_VENDOR);
      uint32_t id_ecam = mmio_read32(ecam(dev, fn, PCI_VENDOR));
      if (id != id_ecam) ++mismatches;
      if ((id & 0xffff) == 0xffff) continue;
      if (fn == 0 && (cfg_read32(dev, 0, PCI_HEADER_TYPE) >> 16) & 0x80) {
        nfn = 8;
      }
      ++functions;
      printf("pci: 00:%02x.%u %04x:%04x class %06x\n", dev, fn, id & 0xffff,
             id >> 16, cfg_read32(dev, fn, PCI_CLASS_REV) >> 8);
      if (id == TESTDEV_ID && testdev < 0) testdev = (int)dev;
    }
  }
  printf("pci: %u functions\n", functions);
  report(mismatches == 0, "0xcf8/0xcfc and ECAM agree (%u mismatches)",
         mismatches);
  report(cfg_read32(0, 0, PCI_VENDOR) == HOST_BRIDGE_ID &&
             cfg_read32(0, 0, PCI_CLASS_REV) >> 8 == 0x060000,
         "host bridge 8086:29c0, class 060000 at 00:00.0");
  report(mmio_read32(ecam(0, 0, 0) + (1u << 20)) == 0xffffffffu,
         "bus 1 is empty");
  if (testdev >= 0) {
    check_testdev((uint32_t)testdev);
  } else {
    printf("pci: no pci-testdev\n");
  }
  if (str_has_word(cmdline, "reset")) {
    printf("pci: resetting through 0xcf9\n");
    outb(RESET_CONTROL, SYS_RST | RST_CPU);
    printf("pci: still running after the reset request\n");
  }
  return report_summary();
}
