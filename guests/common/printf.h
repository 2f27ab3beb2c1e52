/*
 * The guests' console output, shared by the amd64 and arm64 runtimes.
 *
 * printf: %d %i %u %x %X %p %s %c %%, flags '-' and '0', a field width,
 * and the length modifiers l and ll. No floating point.
 */
#ifndef STRATA_GUEST_COMMON_PRINTF_H
#define STRATA_GUEST_COMMON_PRINTF_H

#include <stdarg.h>

/* The arch hook: writes one byte to the console (polled, bounded). Each
 * arch's lib/console.c defines it (COM1 16550 on amd64, PL011 on arm64). */
void serial_putc(char c);

void print_str(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Defined by each arch's lib/console.c: vprintf_unlocked() plus whatever
 * serialisation between CPUs that arch's console needs. */
int vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* The formatter itself, writing through serial_putc() with no lock. */
int vprintf_unlocked(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif /* STRATA_GUEST_COMMON_PRINTF_H */
