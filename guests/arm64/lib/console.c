/*
 * PL011 console: polled writes to UARTDR, the hook of the shared printf
 * subset (guests/common/printf.c). A lock keeps lines from different CPUs whole;
 * the wait for it is bounded, so an exception handler that prints while
 * the lock is held still gets its message out.
 */
#include <stdarg.h>
#include <stdint.h>

#include "arm64.h"
#include "platform.h"
#include "runtime.h"

void serial_putc(char c) {
  /* Bounded: a UART whose FIFO never drains must not hang the guest. */
  for (int i = 0; i < 1000000; ++i) {
    if (!(mmio_read32(PL011_BASE + UARTFR) & UARTFR_TXFF)) break;
    cpu_relax();
  }
  mmio_write32(PL011_BASE + UARTDR, (uint8_t)c);
}

static volatile uint32_t console_lock;

static bool console_acquire(void) {
  for (uint32_t i = 0; i < 10000000u; ++i) {
    if (__atomic_exchange_n(&console_lock, 1u, __ATOMIC_ACQUIRE) == 0) return true;
    cpu_relax();
  }
  return false;
}

static void console_release(void) { __atomic_store_n(&console_lock, 0u, __ATOMIC_RELEASE); }

int vprintf(const char *fmt, va_list ap) {
  bool locked = console_acquire();
  int n = vprintf_unlocked(fmt, ap);
  if (locked) console_release();
  return n;
}
