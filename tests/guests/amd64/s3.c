/*
 * s3: ACPI S3 suspend to RAM and resume, as kvm-unit-tests' s3 test and an
 * OS do it (ACPI 6.5 §7.4.2, §16.3). Finds the FADT and the FACS through
 * the RSDP, stores a marker in low memory, copies a real-mode resume stub
 * to 0x1000 and points the FACS's firmware waking vector at it (with
 * "novector" on the command line: leaves the vector 0), arms the RTC alarm
 * for every second (don't-care alarm bytes, AIE), enables RTC_EN in PM1_EN
 * and writes SLP_TYP=1 | SLP_EN to PM1a_CNT.
 *
 * On resume the stub runs in real mode: prints "R" on COM1, reads PM1_STS
 * and writes the marker (0x2a, VMM status 85) to the debug-exit port if
 * WAK_STS and RTC_STS are set, else 0x7f (VMM status 255). If the guest
 * keeps running after SLP_EN it prints a FAIL and exits 1 (status 3).
 * Without a waking vector the machine resets (VMM status 2).
 */
#include "lib/acpi.h"
#include "lib/multiboot.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define MARKER_ADDR 0x0ff8u
#define MARKER 0x2au
#define RESUME_ADDR 0x1000u

#define FADT_FIRMWARE_CTRL 36
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_X_FIRMWARE_CTRL 132
#define FACS_WAKING_VECTOR 12

#define PM1_EN_RTC 0x400u
#define PM1_CNT_SLP_TYP_S3 (1u << 10)
#define PM1_CNT_SLP_EN (1u << 13)

#define RTC_SECONDS_ALARM 1
#define RTC_MINUTES_ALARM 3
#define RTC_HOURS_ALARM 5
#define RTC_REG_A 10
#define RTC_REG_B 11
#define RTC_REG_C 12
#define RTC_A_UIP 0x80
#define RTC_B_AIE 0x20
#define RTC_DONT_CARE 0xc0

extern const uint8_t s3_resume_start[], s3_resume_end[], s3_resume_pm1_port[];

/* The resume stub (16-bit code, copied to RESUME_ADDR). */
__asm__(
    ".pushsection .rodata\n"
    ".global s3_resume_start, s3_resume_end, s3_resume_pm1_port\n"
    ".code16\n"
    "s3_resume_start:\n"
    "  mov $0x3f8, %dx\n"
    "  mov $0x52, %al\n" /* 'R' */
    "  out %al, %dx\n"
    "  mov $0x0a, %al\n"
    "  out %al, %dx\n"
    "  xor %ax, %ax\n"
    "  mov %ax, %ds\n"
    "  .byte 0xba\n" /* mov $imm16, %dx: PM1a_EVT_BLK, patched in */
    "s3_resume_pm1_port:\n"
    "  .word 0\n"
    "  in %dx, %ax\n"
    "  and $0x8400, %ax\n" /* WAK_STS | RTC_STS */
    "  cmp $0x8400, %ax\n"
    "  jne 2f\n"
    "  mov 0x0ff8, %eax\n" /* MARKER_ADDR */
    "  jmp 3f\n"
    "2:\n"
    "  mov $0x7f, %eax\n"
    "3:\n"
    "  mov $0xf4, %dx\n"
    "  out %eax, %dx\n"
    "1:\n"
    "  hlt\n"
    "  jmp 1b\n"
    "s3_resume_end:\n"
#if defined(__x86_64__)
    ".code64\n"
#else
    ".code32\n"
#endif
    ".popsection\n");

/* A pointer to low physical memory (identity mapped) that gcc cannot see
 * through: page 0 addresses otherwise trip -Warray-bounds. */
static void *low_mem(uintptr_t addr) {
  __asm__("" : "+r"(addr));
  return (void *)addr;
}

static uint8_t rtc_in(uint8_t reg) {
  outb(0x70, reg);
  return inb(0x71);
}

static void rtc_out(uint8_t reg, uint8_t v) {
  outb(0x70, reg);
  outb(0x71, v);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  const bool novector = str_has_word(cmdline, "novector");
  const uint8_t *fadt = acpi_find("FACP");
  if (!fadt) {
    printf("s3: FAIL: no FADT through the RSDP and XSDT\n");
    return 1;
  }
  uint64_t facs_addr = acpi_get64(fadt + FADT_X_FIRMWARE_CTRL);
  if (facs_addr == 0) facs_addr = acpi_get32(fadt + FADT_FIRMWARE_CTRL);
  uint8_t *facs = (uint8_t *)acpi_table(facs_addr, "FACS");
  const uint16_t evt = (uint16_t)acpi_get32(fadt + FADT_PM1A_EVT_BLK);
  const uint16_t cnt = (uint16_t)acpi_get32(fadt + FADT_PM1A_CNT_BLK);
  if (!facs || evt == 0 || cnt == 0) {
    printf("s3: FAIL: FACS %p, PM1a_EVT_BLK 0x%x, PM1a_CNT_BLK 0x%x\n", (void *)facs, evt,
           cnt);
    return 1;
  }
  printf("s3: FACS at %p, PM1a_EVT_BLK 0x%x, PM1a_CNT_BLK 0x%x\n", (void *)facs, evt, cnt);

  *(volatile uint32_t *)low_mem(MARKER_ADDR) = MARKER;
  uint8_t *stub = low_mem(RESUME_ADDR);
  memcpy(stub, s3_resume_start, (size_t)(s3_resume_end - s3_resume_start));
  const size_t port_at = (size_t)(s3_resume_pm1_port - s3_resume_start);
  stub[port_at] = (uint8_t)evt;
  stub[port_at + 1] = (uint8_t)(evt >> 8);
  *(volatile uint32_t *)(facs + FACS_WAKING_VECTOR) = novector ? 0 : RESUME_ADDR;

  outw(evt + 2, PM1_EN_RTC);
  /* The alarm on every second, armed just after an update. */
  while (!(rtc_in(RTC_REG_A) & RTC_A_UIP)) {
  }
  while (rtc_in(RTC_REG_A) & RTC_A_UIP) {
  }
  (void)rtc_in(RTC_REG_C);
  rtc_out(RTC_SECONDS_ALARM, RTC_DONT_CARE);
  rtc_out(RTC_MINUTES_ALARM, RTC_DONT_CARE);
  rtc_out(RTC_HOURS_ALARM, RTC_DONT_CARE);
  rtc_out(RTC_REG_B, rtc_in(RTC_REG_B) | RTC_B_AIE);

  printf("s3: suspending (waking vector 0x%x)\n", novector ? 0 : RESUME_ADDR);
  outw(cnt, PM1_CNT_SLP_TYP_S3 | PM1_CNT_SLP_EN);
  /* A suspended CPU runs nothing more; a few thousand loops are plenty for
   * the VMM to park it. */
  for (volatile uint32_t i = 0; i < 200000; i++) {
  }
  printf("s3: FAIL: still running after SLP_EN\n");
  return 1;
}
