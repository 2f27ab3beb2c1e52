/*
 * PL011 console: polled writes to UARTDR and a printf subset (the amd64
 * runtime's formatter, guests/amd64/lib/console.c, with PL011 output and
 * native 64-bit division). A lock keeps lines from different CPUs whole;
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

void print_str(const char *s) {
  while (*s) serial_putc(*s++);
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

struct spec {
  bool left;
  char pad;
  int width;
};

static int emit_padded(const char *s, int len, const struct spec *sp) {
  int n = 0;
  int fill = sp->width > len ? sp->width - len : 0;
  if (!sp->left) {
    /* Zero padding goes after a sign. */
    if (sp->pad == '0' && len > 0 && s[0] == '-') {
      serial_putc(*s++);
      --len;
      ++n;
    }
    for (; fill > 0; --fill, ++n) serial_putc(sp->pad);
  }
  for (int i = 0; i < len; ++i, ++n) serial_putc(s[i]);
  for (; fill > 0; --fill, ++n) serial_putc(' ');
  return n;
}

static int emit_number(unsigned long long v, unsigned base, bool negative, bool upper,
                       const struct spec *sp) {
  char buf[24];
  int i = sizeof(buf);
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    buf[--i] = digits[v % base];
    v /= base;
  } while (v != 0);
  if (negative) buf[--i] = '-';
  return emit_padded(&buf[i], (int)sizeof(buf) - i, sp);
}

static int vprintf_unlocked(const char *fmt, va_list ap) {
  int n = 0;
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      serial_putc(*fmt);
      ++n;
      continue;
    }
    struct spec sp = {.left = false, .pad = ' ', .width = 0};
    for (;; ++fmt) {
      if (fmt[1] == '-') {
        sp.left = true;
      } else if (fmt[1] == '0') {
        sp.pad = '0';
      } else {
        break;
      }
    }
    while (fmt[1] >= '0' && fmt[1] <= '9') sp.width = sp.width * 10 + (*++fmt - '0');
    int longs = 0;
    while (fmt[1] == 'l') {
      ++longs;
      ++fmt;
    }
    ++fmt;
    if (*fmt == '\0') break;
    switch (*fmt) {
      case 'd':
      case 'i': {
        long long v = longs >= 2 ? va_arg(ap, long long)
                      : longs == 1 ? va_arg(ap, long)
                                   : va_arg(ap, int);
        unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        n += emit_number(mag, 10, v < 0, false, &sp);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        unsigned long long v = longs >= 2 ? va_arg(ap, unsigned long long)
                               : longs == 1 ? va_arg(ap, unsigned long)
                                            : va_arg(ap, unsigned int);
        n += emit_number(v, *fmt == 'u' ? 10 : 16, false, *fmt == 'X', &sp);
        break;
      }
      case 'p': {
        uintptr_t v = (uintptr_t)va_arg(ap, void *);
        serial_putc('0');
        serial_putc('x');
        n += 2 + emit_number(v, 16, false, false, &sp);
        break;
      }
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (s == NULL) s = "(null)";
        n += emit_padded(s, (int)strlen(s), &sp);
        break;
      }
      case 'c': {
        char c = (char)va_arg(ap, int);
        n += emit_padded(&c, 1, &sp);
        break;
      }
      case '%':
        serial_putc('%');
        ++n;
        break;
      default: /* unknown conversion: print it verbatim */
        serial_putc('%');
        serial_putc(*fmt);
        n += 2;
        break;
    }
  }
  return n;
}

int vprintf(const char *fmt, va_list ap) {
  bool locked = console_acquire();
  int n = vprintf_unlocked(fmt, ap);
  if (locked) console_release();
  return n;
}

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}
