/*
 * Serial console: polled writes to the COM1 16550, the hook of the shared
 * printf subset (guests/common/printf.c).
 */
#include <stdarg.h>
#include <stdint.h>

#include "platform.h"
#include "runtime.h"

void serial_putc(char c) {
  /* Bounded: a UART that never reports THRE must not hang the guest. */
  for (int i = 0; i < 100000; ++i) {
    if (inb(COM1_BASE + UART_LSR) & UART_LSR_THRE) break;
  }
  outb(COM1_BASE + UART_THR, (uint8_t)c);
}

int vprintf(const char *fmt, va_list ap) { return vprintf_unlocked(fmt, ap); }
