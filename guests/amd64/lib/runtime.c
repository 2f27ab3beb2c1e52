/* Runtime start, exit paths, reporting, PM-timer waits and string helpers. */
#include "runtime.h"

#include "exceptions.h"
#include "platform.h"

/* Called by entry32.S / entry64.S with the Multiboot magic and info. */
__attribute__((noreturn)) void runtime_start(uint32_t mb_magic, uint32_t mbi);

void runtime_start(uint32_t mb_magic, uint32_t mbi) {
  idt_install();
  int code = guest_main(mb_magic, (const struct multiboot_info *)mb_phys(mbi));
  guest_exit((uint32_t)code);
}

void guest_exit(uint32_t code) {
  outl(DEBUG_EXIT_PORT, code);
  /* Still here: the VMM has no debug-exit device. */
  printf("guest_exit(%u): debug-exit port 0x%x did not end the VM; halting\n",
         code, DEBUG_EXIT_PORT);
  halt_forever();
}

void guest_poweroff(void) {
  outw(ACPI_PM1A_CNT_PORT, ACPI_PM1_CNT_SLP_EN);
  /* A VMM may act on the request asynchronously (QEMU does): give it a
   * second before saying anything. */
  struct deadline d;
  deadline_start(&d, 1000);
  while (!deadline_expired(&d)) cpu_relax();
  printf("guest_poweroff: PM1a control 0x%x did not power off; halting\n",
         ACPI_PM1A_CNT_PORT);
  halt_forever();
}

int report_summary(void) { return report_print_summary() ? 1 : 0; }

/* Polls with an unchanged PM timer value before it counts as stuck. Each
 * read is an I/O exit (microseconds), so the timer moves between reads. */
#define PM_TIMER_STUCK_POLLS 10000u

void deadline_start(struct deadline *d, uint32_t ms) {
  d->last = pmtimer_read();
  d->elapsed_ticks = 0;
  /* ACPI_PM_TMR_HZ / 1000 = 3579.5 ticks per ms; 3580 keeps 32-bit math. */
  d->limit_ticks = ms * 3580u;
  d->unchanged_polls = 0;
  d->timer_stuck = false;
}

bool deadline_expired(struct deadline *d) {
  uint32_t now = pmtimer_read();
  uint32_t delta = (now - d->last) & ACPI_PM_TMR_MASK;
  d->last = now;
  if (delta == 0) {
    if (++d->unchanged_polls >= PM_TIMER_STUCK_POLLS) d->timer_stuck = true;
  } else {
    d->unchanged_polls = 0;
  }
  d->elapsed_ticks += delta;
  return d->timer_stuck || d->elapsed_ticks >= d->limit_ticks;
}

void udelay(uint32_t us) {
  struct deadline d;
  deadline_start(&d, 0);
  d.limit_ticks = us * 36u / 10u; /* 3.58 ticks per microsecond */
  while (!deadline_expired(&d)) cpu_relax();
}

bool host_emulates_supervisor_code(void) {
  /* 20000 instructions: ~30 ms emulated, well under 1 ms otherwise. The
   * fastest of three runs, so one preemption of the vCPU does not count. */
  enum { kLoops = 10000, kRuns = 3, kThresholdTicks = 3580 * 3 /* 3 ms */ };
  uint32_t fastest = UINT32_MAX;
  for (int run = 0; run < kRuns; ++run) {
    uint32_t start = pmtimer_read();
    for (uint32_t i = kLoops; i != 0;) {
      __asm__ volatile("dec %0" : "+r"(i));
    }
    uint32_t ticks = (pmtimer_read() - start) & ACPI_PM_TMR_MASK;
    if (ticks < fastest) fastest = ticks;
  }
  return fastest > kThresholdTicks;
}

bool str_has_word(const char *s, const char *word) {
  size_t len = strlen(word);
  while (*s) {
    while (*s == ' ') ++s;
    const char *start = s;
    while (*s && *s != ' ') ++s;
    if ((size_t)(s - start) == len && memcmp(start, word, len) == 0) return true;
  }
  return false;
}

bool cmdline_get_uint(const char *s, const char *key, uint64_t *value) {
  size_t klen = strlen(key);
  while (*s) {
    while (*s == ' ') ++s;
    const char *start = s;
    while (*s && *s != ' ') ++s;
    if ((size_t)(s - start) <= klen || memcmp(start, key, klen) != 0 || start[klen] != '=') {
      continue;
    }
    const char *p = start + klen + 1;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
      base = 16;
      p += 2;
    }
    if (p == s) return false;
    uint64_t v = 0;
    for (; p < s; ++p) {
      unsigned d;
      if (*p >= '0' && *p <= '9') {
        d = (unsigned)(*p - '0');
      } else if (base == 16 && *p >= 'a' && *p <= 'f') {
        d = (unsigned)(*p - 'a' + 10);
      } else if (base == 16 && *p >= 'A' && *p <= 'F') {
        d = (unsigned)(*p - 'A' + 10);
      } else {
        return false;
      }
      v = v * base + d; /* gcc inlines 64-bit multiplication, even -m32 */
    }
    *value = v;
    return true;
  }
  return false;
}
