/*
 * driver: the guest half of a device served by a driver thread in the VMM
 * (core/driver.h): a doorbell the guest rings without a vCPU exit
 * (ioeventfd), a buffer the driver fills through its lease on guest RAM,
 * and an MSI the driver raises through an irqfd. The VMM half is
 * tests/integration/driver_amd64_test.cc.
 *
 * Protocol. A page at guest-physical `buf` (command line, default
 * DRIVER_BUF_DEFAULT) holds a header and `words` 32-bit data words:
 *   +0   request   the guest's sequence number for the doorbell it rings
 *   +4   done      the driver's: the last sequence number it served
 *   +8   words     the number of data words (for the driver to check)
 *   +12  magic     DRIVER_MAGIC once the guest has set the page up
 *   +16  data[words]
 * For i = 1..n (command line `n`, default DRIVER_ROUNDS_DEFAULT) the guest
 * clears data[], stores i in `request`, writes i (4 bytes) to port
 * DRIVER_DOORBELL_PORT, and waits with `sti; hlt` — bounded by a PM-timer
 * deadline (`timeout_ms`) and woken at least every 10 ms by the LAPIC
 * timer — until its MSI handler (vector DRIVER_MSI_VECTOR, fixed delivery
 * to APIC id 0) has counted i interrupts. Then `done` must be i and every
 * data[k] must be i * 0x01010101 ^ k.
 *
 * Output: "driver: ..." progress lines, then one PASS/FAIL line per check
 * (the APIC id, round trips answered, interrupts counted, buffers and
 * acknowledgements matching), a line "driver: interrupts counted N" and
 * "SUMMARY: 5 tests, F unexpected failures". Exit code 0 if nothing
 * failed. A round trip that times out ends the loop (every later one would
 * fail the same way).
 */
#include "lib/exceptions.h"
#include "lib/lapic.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define DRIVER_BUF_DEFAULT 0x800000u /* 8 MiB: past the image and boot data */
#define DRIVER_ROUNDS_DEFAULT 200u
#define DRIVER_WORDS_DEFAULT 64u
#define DRIVER_WORDS_MAX 1024u /* the page stays within 4 KiB + header */
#define DRIVER_TIMEOUT_MS_DEFAULT 5000u
#define DRIVER_DOORBELL_PORT 0x5A0
#define DRIVER_MSI_VECTOR 0x41
#define DRIVER_TIMER_VECTOR 0x40
#define DRIVER_MAGIC 0x52565244u /* "DRVR" */
/* 10 ms of LAPIC timer at 1 ns per count (lapic.h). */
#define DRIVER_TIMER_COUNT 10000000u
/* Mismatching words printed per round, and rounds printed in detail. */
#define DRIVER_DETAIL_WORDS 4
#define DRIVER_DETAIL_ROUNDS 4

struct driver_page {
  volatile uint32_t request;
  volatile uint32_t done;
  volatile uint32_t words;
  volatile uint32_t magic;
  volatile uint32_t data[];
};

static volatile uint32_t msi_count;
static volatile uint32_t timer_ticks;

static void on_msi(struct exception_frame *frame) {
  (void)frame;
  msi_count = msi_count + 1;
  lapic_eoi();
}

static void on_timer(struct exception_frame *frame) {
  (void)frame;
  timer_ticks = timer_ticks + 1;
  lapic_eoi();
}

static uint32_t pattern(uint32_t seq, uint32_t k) { return seq * 0x01010101u ^ k; }

/* Waits until at least `want` MSIs were counted; false on timeout. */
static bool wait_for_msi(uint32_t want, uint32_t timeout_ms) {
  struct deadline d;
  deadline_start(&d, timeout_ms);
  irq_disable();
  while (msi_count < want) {
    if (deadline_expired(&d)) {
      irq_enable();
      return false;
    }
    safe_halt();
    irq_disable();
  }
  irq_enable();
  return true;
}

static uint64_t arg(const char *cmdline, const char *key, uint64_t dflt) {
  uint64_t v = dflt;
  if (!cmdline_get_uint(cmdline, key, &v)) v = dflt;
  return v;
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  uint64_t buf = arg(cmdline, "buf", DRIVER_BUF_DEFAULT);
  uint32_t rounds = (uint32_t)arg(cmdline, "n", DRIVER_ROUNDS_DEFAULT);
  uint32_t words = (uint32_t)arg(cmdline, "words", DRIVER_WORDS_DEFAULT);
  uint32_t timeout_ms = (uint32_t)arg(cmdline, "timeout_ms", DRIVER_TIMEOUT_MS_DEFAULT);
  if (words == 0 || words > DRIVER_WORDS_MAX || buf % 4096 != 0 || buf >= (1ull << 32)) {
    printf("driver: bad arguments: buf=0x%lx (page aligned, below 4 GiB) words=%u (1..%u)\n",
           (unsigned long)buf, words, DRIVER_WORDS_MAX);
    return 1;
  }
  struct driver_page *page = (struct driver_page *)(uintptr_t)buf;
  printf("driver: buf 0x%lx, %u words, %u rounds, doorbell port 0x%x, msi vector 0x%x\n",
         (unsigned long)buf, words, rounds, DRIVER_DOORBELL_PORT, DRIVER_MSI_VECTOR);

  set_irq_handler(DRIVER_MSI_VECTOR, on_msi);
  set_irq_handler(DRIVER_TIMER_VECTOR, on_timer);
  lapic_enable();
  uint32_t apic_id = lapic_id();
  report(apic_id == 0, "LAPIC id is %u (the driver's MSI targets id 0)", apic_id);

  page->request = 0;
  page->done = 0;
  page->words = words;
  page->magic = DRIVER_MAGIC;
  lapic_timer_periodic(DRIVER_TIMER_VECTOR, DRIVER_TIMER_COUNT);
  irq_enable();

  uint32_t answered = 0, buffers_ok = 0, acks_ok = 0, count_ok = 0, detailed = 0;
  for (uint32_t i = 1; i <= rounds; ++i) {
    for (uint32_t k = 0; k < words; ++k) page->data[k] = 0;
    page->request = i;
    outl(DRIVER_DOORBELL_PORT, i);
    if (!wait_for_msi(i, timeout_ms)) {
      printf("driver: round %u: no interrupt within %u ms (counted %u, done %u)\n", i, timeout_ms,
             msi_count, page->done);
      break;
    }
    ++answered;
    uint32_t seen = msi_count;
    if (seen == i) ++count_ok;
    uint32_t done = page->done;
    if (done == i) ++acks_ok;
    uint32_t bad = 0;
    for (uint32_t k = 0; k < words; ++k) {
      uint32_t got = page->data[k];
      if (got == pattern(i, k)) continue;
      if (bad < DRIVER_DETAIL_WORDS && detailed < DRIVER_DETAIL_ROUNDS) {
        printf("driver: round %u: word %u is 0x%08x, expected 0x%08x\n", i, k, got,
               pattern(i, k));
      }
      ++bad;
    }
    if (bad == 0) {
      ++buffers_ok;
    } else if (detailed < DRIVER_DETAIL_ROUNDS) {
      printf("driver: round %u: %u of %u words wrong, done %u, interrupts %u\n", i, bad, words,
             done, seen);
      ++detailed;
    }
  }
  irq_disable();
  lapic_timer_stop();

  uint32_t counted = msi_count;
  report(answered == rounds, "round trips answered: %u of %u", answered, rounds);
  report(count_ok == answered && counted == answered,
         "one interrupt per doorbell: %u interrupts for %u round trips", counted, answered);
  report(buffers_ok == rounds, "buffers held the driver's pattern: %u of %u", buffers_ok, rounds);
  report(acks_ok == rounds, "driver acknowledged each sequence number: %u of %u", acks_ok,
         rounds);
  printf("driver: interrupts counted %u, timer ticks %u\n", counted, timer_ticks);
  return report_summary();
}
