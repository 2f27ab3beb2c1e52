/* kvm-unit-tests style results (see report.h), through printf. */
#include "common/report.h"

#include <stdarg.h>

#include "common/printf.h"

static uint32_t tests_run, tests_failed, tests_skipped;

static void vreport(const char *tag, const char *fmt, va_list ap) {
  /* Three printf calls, so not atomic against other CPUs' output: the
   * guests report from the boot CPU only. */
  printf("%s: ", tag);
  vprintf(fmt, ap);
  printf("\n");
}

void report(bool pass, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ++tests_run;
  if (!pass) ++tests_failed;
  vreport(pass ? "PASS" : "FAIL", fmt, ap);
  va_end(ap);
}

void report_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ++tests_run;
  ++tests_skipped;
  vreport("SKIP", fmt, ap);
  va_end(ap);
}

void report_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport("INFO", fmt, ap);
  va_end(ap);
}

uint32_t report_print_summary(void) {
  printf("SUMMARY: %u tests, %u unexpected failures", tests_run, tests_failed);
  if (tests_skipped) printf(", %u skipped", tests_skipped);
  printf("\n");
  return tests_failed;
}
