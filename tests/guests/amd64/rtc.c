/*
 * rtc: the pc machine's MC146818 RTC/CMOS and its keyboard-controller
 * reset, in 64-bit mode.
 *
 *  1. Reads the date and time the way firmware does (MC146818A datasheet,
 *     "Update Cycle": wait for register A's UIP to clear, then read; read
 *     again until two reads agree), in whatever format register B says
 *     (BCD or binary, 12- or 24-hour), and prints it with its Unix time:
 *     "rtc: time YYYY-MM-DD hh:mm:ss UTC, epoch N".
 *  2. Checks the CMOS memory-size bytes SeaBIOS reads against the RAM size
 *     (fw_cfg item 0x03, or `mem=BYTES` on the command line), split as the
 *     pc machine splits it (below min(size, 3 GiB), the rest from 4 GiB),
 *     and prints "rtc: cmos above 4 GiB: N x 64 KiB".
 *  3. Polls register C with interrupts off for PF at 1024 Hz.
 *  4. Routes IRQ 8 through the IOAPIC (pin 8, edge, active high — the ISA
 *     default, no MADT override) to vector 0x38 and counts 50 periodic
 *     interrupts at 1024 Hz (RS = 6), reading register C in the handler
 *     (which re-arms the line).
 *  5. Enables the update-ended interrupt and checks one arrives within
 *     1.2 s.
 *  6. Prints the summary and, if nothing failed, resets the machine with
 *     command 0xfe to the i8042 (port 0x64): the VMM exits with its reset
 *     status. Failing that, "rtc: FAIL: ..." and exit code 1.
 *
 * LINT0 is masked (symmetric I/O mode) so that the in-kernel 8259 does not
 * also deliver IRQ 8 as an ExtINT.
 */
#include "lib/exceptions.h"
#include "lib/fw_cfg.h"
#include "lib/lapic.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define RTC_VECTOR 0x38
#define RTC_PIN 8

/* MC146818 (datasheet Figure 3 and the register descriptions). */
#define RTC_INDEX 0x70
#define RTC_DATA 0x71
#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define RTC_CENTURY 0x32
#define RTC_A_UIP 0x80
#define RTC_A_1024HZ 0x26 /* DV = 010 (32.768 kHz), RS = 6 */
#define RTC_B_PIE 0x40
#define RTC_B_UIE 0x10
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80
#define RTC_HOUR_PM 0x80

/* CMOS memory-size bytes (as SeaBIOS and QEMU's pc use them). */
#define CMOS_BASE_MEM 0x15  /* KiB, 16 bits */
#define CMOS_EXT_MEM 0x17   /* KiB above 1 MiB, 16 bits, capped */
#define CMOS_EXT_MEM2 0x30  /* the same */
#define CMOS_MEM_16M 0x34   /* 64 KiB units above 16 MiB, 16 bits */
#define CMOS_MEM_4G 0x5B    /* 64 KiB units above 4 GiB, 24 bits */

#define KBC_COMMAND 0x64
#define KBC_PULSE_RESET 0xFE

/* IOAPIC (82093AA datasheet §3.2). */
#define IOAPIC_BASE 0xFEC00000u
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define RTE_MASKED (1u << 16)
#define LAPIC_LVT_LINT0 0x350

#define LOW_MEM_LIMIT (3ull << 30)
#define HIGH_MEM_BASE (4ull << 30)
#define PM_TICKS_PER_MS 3580u

static uint8_t cmos_read(uint8_t index) {
  outb(RTC_INDEX, index);
  return inb(RTC_DATA);
}
static void cmos_write(uint8_t index, uint8_t v) {
  outb(RTC_INDEX, index);
  outb(RTC_DATA, v);
}
static uint32_t cmos_read16(uint8_t index) {
  return cmos_read(index) | (uint32_t)cmos_read(index + 1) << 8;
}

static void ioapic_write(uint32_t index, uint32_t v) {
  mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, index);
  mmio_write32(IOAPIC_BASE + IOAPIC_WINDOW, v);
}

/* ------------------------------------------------------------- time -- */

struct rtc_time {
  uint32_t year, month, day, hour, minute, second;
};

static uint32_t from_bcd(uint8_t b, bool binary) {
  return binary ? b : (b >> 4) * 10u + (b & 0x0F);
}

static void read_raw(uint8_t raw[7]) {
  raw[0] = cmos_read(RTC_SECONDS);
  raw[1] = cmos_read(RTC_MINUTES);
  raw[2] = cmos_read(RTC_HOURS);
  raw[3] = cmos_read(RTC_DAY);
  raw[4] = cmos_read(RTC_MONTH);
  raw[5] = cmos_read(RTC_YEAR);
  raw[6] = cmos_read(RTC_CENTURY);
}

/* False if UIP never cleared or two reads never agreed. */
static bool read_time(struct rtc_time *t, uint32_t *uip_polls) {
  uint8_t a[7], b[7];
  struct deadline d;
  deadline_start(&d, 2000);
  *uip_polls = 0;
  for (;;) {
    while (cmos_read(RTC_REG_A) & RTC_A_UIP) {
      ++*uip_polls;
      if (deadline_expired(&d)) return false;
    }
    read_raw(a);
    read_raw(b);
    if (memcmp(a, b, sizeof(a)) == 0) break;
    if (deadline_expired(&d)) return false;
  }
  uint8_t reg_b = cmos_read(RTC_REG_B);
  bool binary = reg_b & RTC_B_DM_BINARY;
  t->second = from_bcd(a[0], binary);
  t->minute = from_bcd(a[1], binary);
  if (reg_b & RTC_B_24H) {
    t->hour = from_bcd(a[2], binary);
  } else {
    t->hour = from_bcd(a[2] & ~RTC_HOUR_PM, binary) % 12 + ((a[2] & RTC_HOUR_PM) ? 12 : 0);
  }
  t->day = from_bcd(a[3], binary);
  t->month = from_bcd(a[4], binary);
  t->year = from_bcd(a[6], binary) * 100 + from_bcd(a[5], binary);
  return true;
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil, years >= 1970). */
static uint64_t days_from_civil(uint32_t y, uint32_t m, uint32_t d) {
  y -= m <= 2;
  uint32_t era = y / 400;
  uint32_t yoe = y - era * 400;
  uint32_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (uint64_t)era * 146097 + doe - 719468;
}

static void test_time(void) {
  struct rtc_time t;
  uint32_t polls;
  bool ok = read_time(&t, &polls);
  report(ok, "the time reads consistently once UIP is clear (%u polls of UIP)", polls);
  if (!ok) return;
  uint64_t epoch = days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 +
                   t.minute * 60 + t.second;
  printf("rtc: time %04u-%02u-%02u %02u:%02u:%02u UTC, epoch %lu\n", t.year, t.month, t.day,
         t.hour, t.minute, t.second, (unsigned long)epoch);
  report(t.year >= 2020 && t.month >= 1 && t.month <= 12 && t.day >= 1 && t.day <= 31 &&
             t.hour < 24 && t.minute < 60 && t.second < 60,
         "the date and time are valid");
  uint8_t d = cmos_read(RTC_REG_D);
  report(d == RTC_D_VRT, "register D reads VRT (0x%02x)", d);
}

/* ------------------------------------------------------------- CMOS -- */

static void test_cmos(const char *cmdline) {
  uint64_t mem = 0;
  const char *source = "the command line";
  if (!cmdline_get_uint(cmdline, "mem", &mem)) {
    mem = fw_cfg_read_u64(FW_CFG_RAM_SIZE);
    source = "fw_cfg";
  }
  uint64_t low = mem < LOW_MEM_LIMIT ? mem : LOW_MEM_LIMIT;
  uint64_t high = mem - low;
  printf("rtc: RAM %lu MiB (from %s): %lu MiB below 4 GiB, %lu MiB above\n",
         (unsigned long)(mem >> 20), source, (unsigned long)(low >> 20),
         (unsigned long)(high >> 20));
  uint64_t ext = low > (1u << 20) ? (low - (1u << 20)) >> 10 : 0;
  if (ext > 0xFFFF) ext = 0xFFFF;
  uint64_t m16 = low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0;
  if (m16 > 0xFFFF) m16 = 0xFFFF;
  uint64_t m4g = high >> 16;
  if (m4g > 0xFFFFFF) m4g = 0xFFFFFF;

  uint32_t base = cmos_read16(CMOS_BASE_MEM);
  report(base == 640, "CMOS 0x15/0x16: base memory %u KiB (640)", base);
  uint32_t e1 = cmos_read16(CMOS_EXT_MEM), e2 = cmos_read16(CMOS_EXT_MEM2);
  report(e1 == ext && e2 == ext, "CMOS 0x17/0x18 and 0x30/0x31: extended memory %u, %u KiB (%u)",
         e1, e2, (uint32_t)ext);
  uint32_t a16 = cmos_read16(CMOS_MEM_16M);
  report(a16 == m16, "CMOS 0x34/0x35: %u x 64 KiB above 16 MiB (%u)", a16, (uint32_t)m16);
  uint32_t a4g = cmos_read16(CMOS_MEM_4G) | (uint32_t)cmos_read(CMOS_MEM_4G + 2) << 16;
  report(a4g == m4g, "CMOS 0x5b-0x5d: %u x 64 KiB above 4 GiB (%u)", a4g, (uint32_t)m4g);
  printf("rtc: cmos above 4 GiB: %u x 64 KiB\n", a4g);
}

/* ------------------------------------------------------- interrupts -- */

static volatile uint32_t irq_count, pf_count, uf_count, empty_count;

static void on_rtc(struct exception_frame *frame) {
  (void)frame;
  uint8_t c = cmos_read(RTC_REG_C); /* acknowledges: the line drops */
  ++irq_count;
  if (c & RTC_C_PF) ++pf_count;
  if (c & RTC_C_UF) ++uf_count;
  if (!(c & RTC_C_IRQF)) ++empty_count;
  lapic_eoi();
}

static void test_polled_pf(void) {
  cmos_write(RTC_REG_A, RTC_A_1024HZ);
  (void)cmos_read(RTC_REG_C);
  struct deadline d;
  deadline_start(&d, 100);
  uint32_t seen = 0;
  while (!deadline_expired(&d) && seen < 3) {
    if (cmos_read(RTC_REG_C) & RTC_C_PF) ++seen;
  }
  report(seen == 3, "PF is seen by polling register C with interrupts off (%u times, %u ms)",
         seen, d.elapsed_ticks / PM_TICKS_PER_MS);
}

static void test_periodic(void) {
  uint8_t b = cmos_read(RTC_REG_B);
  irq_count = pf_count = empty_count = 0;
  (void)cmos_read(RTC_REG_C);
  ioapic_write(IOAPIC_REDTBL(RTC_PIN) + 1, lapic_id() << 24);
  ioapic_write(IOAPIC_REDTBL(RTC_PIN), RTC_VECTOR); /* fixed, edge, high */
  cmos_write(RTC_REG_A, RTC_A_1024HZ);
  cmos_write(RTC_REG_B, b | RTC_B_PIE);
  struct deadline d;
  deadline_start(&d, 3000);
  irq_enable();
  while (pf_count < 50 && !deadline_expired(&d)) cpu_relax();
  irq_disable();
  uint32_t ms = d.elapsed_ticks / PM_TICKS_PER_MS;
  cmos_write(RTC_REG_B, b);
  (void)cmos_read(RTC_REG_C);
  printf("rtc: %u periodic interrupts in %u ms\n", pf_count, ms);
  /* 50 periods of 1024 Hz are 49 ms; a slow host may lose some (the line
   * stays high until the handler reads C), never gain. */
  report(pf_count >= 50 && ms >= 40, "50 periodic interrupts at 1024 Hz through IOAPIC pin 8 "
         "(%u in %u ms, %u without IRQF)", pf_count, ms, empty_count);
}

static void test_update(void) {
  uint8_t b = cmos_read(RTC_REG_B);
  uf_count = 0;
  (void)cmos_read(RTC_REG_C);
  cmos_write(RTC_REG_B, b | RTC_B_UIE);
  struct deadline d;
  deadline_start(&d, 1200);
  irq_enable();
  while (uf_count == 0 && !deadline_expired(&d)) cpu_relax();
  irq_disable();
  uint32_t ms = d.elapsed_ticks / PM_TICKS_PER_MS;
  cmos_write(RTC_REG_B, b);
  (void)cmos_read(RTC_REG_C);
  report(uf_count >= 1, "an update-ended interrupt within 1.2 s (after %u ms)", ms);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  set_irq_handler(RTC_VECTOR, on_rtc);
  lapic_enable();
  lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);

  test_time();
  test_cmos(cmdline);
  test_polled_pf();
  test_periodic();
  test_update();
  ioapic_write(IOAPIC_REDTBL(RTC_PIN), RTC_VECTOR | RTE_MASKED);

  int rc = report_summary();
  if (rc != 0) return rc;
  printf("rtc: resetting through the keyboard controller\n");
  outb(KBC_COMMAND, KBC_PULSE_RESET);
  udelay(100000);
  printf("rtc: FAIL: still running 100 ms after the reset command\n");
  return 1;
}
