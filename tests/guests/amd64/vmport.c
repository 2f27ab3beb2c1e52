/*
 * vmport: VMware's backdoor I/O port (x86.vmport / platform device vmport,
 * QEMU's -machine vmport=on). A 32-bit IN from port 0x5658 with EAX =
 * 0x564D5868 ("VMXh") runs the command in ECX; the results come back in
 * EAX (the IN's data) and in EBX/ECX, which the VMM writes.
 *   - GETVERSION (0x0a): EAX = 6, EBX = the magic, ECX = 2 (QEMU's
 *     defaults: VMX version 6, type ESX server);
 *   - an unknown command, or EAX without the magic: EAX comes back as it
 *     went in, EBX and ECX untouched;
 *   - the port is 32 bits wide: a byte read is not a backdoor call (AL
 *     comes back as it went in).
 * With the argument "absent" (no vmport device) every read is an
 * unclaimed port: all-ones, registers untouched.
 * One "PASS:"/"FAIL:" line per check, then "SUMMARY: ..."; exit code 0 if
 * nothing failed, else 1.
 */
#include "lib/multiboot.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define VMPORT 0x5658
#define VMPORT_MAGIC 0x564D5868u
#define CMD_GETVERSION 0x0au
#define CMD_ILLEGAL 0xfffu
#define UNTOUCHED 0xdeadbeefu

struct regs {
  uint32_t eax, ebx, ecx, edx;
};

static struct regs backdoor(uint32_t eax, uint32_t ecx) {
  struct regs r = {eax, UNTOUCHED, ecx, VMPORT};
  __asm__ volatile("inl %%dx, %%eax"
                   : "+a"(r.eax), "+b"(r.ebx), "+c"(r.ecx), "+d"(r.edx));
  return r;
}

static void test_present(void) {
  struct regs r = backdoor(VMPORT_MAGIC, CMD_GETVERSION);
  report(r.eax == 6 && r.ebx == VMPORT_MAGIC && r.ecx == 2 && r.edx == VMPORT,
         "vmport: GETVERSION (eax 0x%x ebx 0x%x ecx 0x%x edx 0x%x)", r.eax, r.ebx, r.ecx,
         r.edx);
  r = backdoor(VMPORT_MAGIC, CMD_ILLEGAL);
  report(r.eax == VMPORT_MAGIC && r.ebx == UNTOUCHED && r.ecx == CMD_ILLEGAL,
         "vmport: an unknown command changes nothing (eax 0x%x ebx 0x%x ecx 0x%x)", r.eax,
         r.ebx, r.ecx);
  r = backdoor(0x12345678, CMD_GETVERSION);
  report(r.eax == 0x12345678 && r.ebx == UNTOUCHED && r.ecx == CMD_GETVERSION,
         "vmport: without the magic nothing runs (eax 0x%x ebx 0x%x ecx 0x%x)", r.eax, r.ebx,
         r.ecx);
  uint32_t eax = VMPORT_MAGIC, ebx = UNTOUCHED, ecx = CMD_GETVERSION;
  __asm__ volatile("inb %%dx, %%al" : "+a"(eax), "+b"(ebx), "+c"(ecx) : "d"(VMPORT));
  report(eax == VMPORT_MAGIC && ebx == UNTOUCHED && ecx == CMD_GETVERSION,
         "vmport: a byte read is no call, AL comes back (eax 0x%x ebx 0x%x)", eax, ebx);
}

static void test_absent(void) {
  struct regs r = backdoor(VMPORT_MAGIC, CMD_GETVERSION);
  report(r.eax == 0xffffffffu && r.ebx == UNTOUCHED && r.ecx == CMD_GETVERSION,
         "vmport: absent, the port is unclaimed (eax 0x%x ebx 0x%x ecx 0x%x)", r.eax, r.ebx,
         r.ecx);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline =
      (mbi->flags & MB_INFO_CMDLINE) ? (const char *)mb_phys(mbi->cmdline) : "";
  if (str_has_word(cmdline, "absent")) {
    test_absent();
  } else {
    test_present();
  }
  return report_summary();
}
