/*
 * The guest runtime: entry glue, serial console, exit paths, KUT-style
 * reporting and a PM-timer deadline. Every guest defines guest_main().
 */
#ifndef STRATA_GUEST_RUNTIME_H
#define STRATA_GUEST_RUNTIME_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/libc.h"
#include "common/printf.h"
#include "common/report.h"
#include "multiboot.h"

/*
 * Called by the runtime with the Multiboot magic (EAX at entry) and the boot
 * information; the return value is passed to guest_exit().
 */
int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi);

/* Serial console on COM1: serial_putc(), and printf() through it, are
 * declared in common/printf.h; the C library subset in common/libc.h. */

/* Ends the VM through the debug-exit port: VMM status (code << 1) | 1. */
__attribute__((noreturn)) void guest_exit(uint32_t code);
/* Ends the VM through ACPI PM1a control (S5): VMM status 0. */
__attribute__((noreturn)) void guest_poweroff(void);

/* kvm-unit-tests style results (report(), report_skip(), report_info()):
 * common/report.h. */
/* Prints "SUMMARY: N tests, F unexpected failures[, S skipped]"; returns the
 * exit code: 0 if nothing failed, else 1. */
int report_summary(void);

/*
 * A bounded wait measured with the ACPI PM timer. Expires after `ms` of guest
 * time, or early if the timer reads the same value for many polls in a row
 * (no PM timer: every wait must still end).
 */
struct deadline {
  uint32_t last;
  uint32_t elapsed_ticks;
  uint32_t limit_ticks;
  uint32_t unchanged_polls;
  bool timer_stuck;
};
void deadline_start(struct deadline *d, uint32_t ms);
bool deadline_expired(struct deadline *d);
/* Busy-waits about `us` microseconds (bounded the same way). */
void udelay(uint32_t us);

/*
 * True if this vCPU's supervisor code is being instruction-emulated (the
 * paravirtual KVM of the development hosts runs ~0.7 M instructions/s; TCG
 * and hardware virtualization run well over 100 M/s). Measured once with the
 * PM timer on a short loop; false if the PM timer does not count. Checks of
 * instructions KVM's emulator cannot execute (INT3/INT n and IRET outside
 * real mode, EMMS, ...) consult it to SKIP instead of stopping the VM.
 */
bool host_emulates_supervisor_code(void);

/* True if `word` occurs in `s` as a whole space-separated word. */
bool str_has_word(const char *s, const char *word);
/*
 * Looks for a space-separated word "key=value" in `s` with a decimal or
 * 0x-prefixed hexadecimal value. Returns true and sets *value if found;
 * false (and *value unchanged) if the key is absent or its value is not a
 * number.
 */
bool cmdline_get_uint(const char *s, const char *key, uint64_t *value);

#endif /* STRATA_GUEST_RUNTIME_H */
