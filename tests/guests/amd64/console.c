/*
 * console: COM1 as a terminal, both ways. The command line chooses:
 *   echo N   prints "console: ready", then reads N bytes from COM1 (polling
 *            LSR.DR, no interrupts) and writes each back as it arrives, then
 *            "\nconsole: echoed N bytes"; exits 0. If no byte comes for
 *            20 s it prints "console: FAIL: ..." and exits 1.
 *   flood N  writes N KiB of 'a'-'z' lines to THR without polling LSR (one
 *            exit per byte: more than a stalled reader can take), then
 *            "console: flood done"; exits 0.
 * Anything else prints the usage and exits 1.
 */
#include "lib/multiboot.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

#define UART_RBR 0         /* receiver buffer register (DLAB=0) */
#define UART_LSR_DR 0x01   /* data ready */
#define ECHO_TIMEOUT_MS 20000

/* The decimal number after the word `word` on the command line, or -1. */
static long number_after(const char *s, const char *word) {
  size_t len = strlen(word);
  while (*s) {
    while (*s == ' ') ++s;
    const char *start = s;
    while (*s && *s != ' ') ++s;
    if ((size_t)(s - start) == len && memcmp(start, word, len) == 0) {
      while (*s == ' ') ++s;
      if (*s < '0' || *s > '9') return -1;
      long v = 0;
      while (*s >= '0' && *s <= '9' && v < 100000000) v = v * 10 + (*s++ - '0');
      return v;
    }
  }
  return -1;
}

static int echo(long n) {
  printf("console: ready\n");
  for (long i = 0; i < n; ++i) {
    struct deadline d;
    deadline_start(&d, ECHO_TIMEOUT_MS);
    while (!(inb(COM1_BASE + UART_LSR) & UART_LSR_DR)) {
      if (deadline_expired(&d)) {
        printf("\nconsole: FAIL: no input after %ld of %ld bytes\n", i, n);
        return 1;
      }
    }
    serial_putc((char)inb(COM1_BASE + UART_RBR));
  }
  printf("\nconsole: echoed %ld bytes\n", n);
  return 0;
}

static int flood(long kib) {
  for (long i = 0; i < kib * 1024; ++i) {
    /* 63 letters and a newline per line. */
    outb(COM1_BASE + UART_THR, (uint8_t)(i % 64 == 63 ? '\n' : 'a' + i % 64 % 26));
  }
  printf("console: flood done\n");
  return 0;
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline =
      (mbi->flags & MB_INFO_CMDLINE) ? (const char *)mb_phys(mbi->cmdline) : "";
  long n = number_after(cmdline, "echo");
  if (n >= 0) return echo(n);
  n = number_after(cmdline, "flood");
  if (n >= 0) return flood(n);
  printf("console: usage: echo N | flood N (got '%s')\n", cmdline);
  return 1;
}
