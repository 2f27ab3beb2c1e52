/*
 * The guests' printf subset (see printf.h), written through the arch's
 * serial_putc(). 64-bit decimal division on i386 uses divl directly: the
 * guests link no libgcc.
 */
#include "common/printf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/libc.h"

void print_str(const char *s) {
  while (*s) serial_putc(*s++);
}

/* Divides *n by 10 and returns the remainder. */
static unsigned divmod10(unsigned long long *n) {
#if !defined(__i386__)
  unsigned r = (unsigned)(*n % 10);
  *n /= 10;
  return r;
#else
  uint32_t hi = (uint32_t)(*n >> 32), lo = (uint32_t)*n;
  uint32_t qhi = hi / 10, rem = hi % 10, qlo;
  /* rem < 10, so the 64/32 quotient fits in 32 bits: no #DE. */
  __asm__("divl %4" : "=a"(qlo), "=d"(rem) : "a"(lo), "d"(rem), "r"(10u));
  *n = ((unsigned long long)qhi << 32) | qlo;
  return rem;
#endif
}

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

static int emit_number(unsigned long long v, unsigned base, bool negative,
                       bool upper, const struct spec *sp) {
  char buf[24];
  int i = sizeof(buf);
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    unsigned d;
    if (base == 16) {
      d = (unsigned)(v & 0xF);
      v >>= 4;
    } else {
      d = divmod10(&v);
    }
    buf[--i] = digits[d];
  } while (v != 0);
  if (negative) buf[--i] = '-';
  return emit_padded(&buf[i], (int)sizeof(buf) - i, sp);
}

int vprintf_unlocked(const char *fmt, va_list ap) {
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

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}
