/*
 * kvm-unit-tests style results, shared by the amd64 and arm64 guest
 * runtimes: "PASS: msg", "FAIL: msg", "SKIP: msg", "INFO: msg". Each
 * arch's runtime.h declares report_summary(), whose return value (the
 * guest's exit code) is the arch's convention.
 */
#ifndef STRATA_GUEST_COMMON_REPORT_H
#define STRATA_GUEST_COMMON_REPORT_H

#include <stdbool.h>
#include <stdint.h>

void report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "SUMMARY: N tests, F unexpected failures[, S skipped]"; returns F. */
uint32_t report_print_summary(void);

#endif /* STRATA_GUEST_COMMON_REPORT_H */
