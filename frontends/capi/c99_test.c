/*
 * The C ABI from C: the header compiles as pedantic C99 with warnings as
 * errors (BUILD sets the flags), and the calls that need no KVM behave as
 * documented when made from C — version, status names, a NULL handle's
 * message, config keys and the buffer protocol, bad keys at creation.
 * Prints one line per failed check; exit status 1 if any failed.
 */
#include <stdio.h>
#include <string.h>

#include "frontends/capi/strata.h"

static int failures;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      printf("FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
      failures++;                                                     \
    }                                                                 \
  } while (0)

int main(void) {
  strata_machine *m;
  char buf[32];
  size_t needed = 0;
  strata_exit ex;

  CHECK(strata_abi_version() == STRATA_ABI_VERSION);
  CHECK(strcmp(strata_status_name(STRATA_E_NOT_FOUND), "STRATA_E_NOT_FOUND") == 0);
  CHECK(strata_register_name(0) != NULL);

  CHECK(strata_wait(NULL, &ex) == STRATA_E_INVALID_ARGUMENT);
  CHECK(strcmp(strata_last_error(NULL), "strata_wait: the machine handle is NULL") == 0);

  m = strata_machine_new();
  CHECK(m != NULL);
  if (m == NULL) return 1;
  CHECK(strcmp(strata_last_error(m), "") == 0);
  CHECK(strata_config_set(m, "kernel.cmdline", "console=ttyS0") == STRATA_OK);
  CHECK(strata_config_get(m, "kernel.cmdline", NULL, 0, &needed) == STRATA_E_OUT_OF_RANGE);
  CHECK(needed == sizeof "console=ttyS0");
  CHECK(strata_config_get(m, "kernel.cmdline", buf, sizeof buf, NULL) == STRATA_OK);
  CHECK(strcmp(buf, "console=ttyS0") == 0);
  CHECK(strata_config_set(m, "cpu.cores", "2") == STRATA_OK);
  CHECK(strata_config_set(m, "no.such.key", "1") == STRATA_OK);
  CHECK(strata_machine_create(m) == STRATA_E_INVALID_ARGUMENT);
  CHECK(strstr(strata_last_error(m), "unknown config key 'no.such.key'") != NULL);
  CHECK(strata_vcpu_count(m) == 0);
  CHECK(strata_exit_fd(m) == -1);
  CHECK(strata_start(m) == STRATA_E_BUSY);
  CHECK(strata_machine_free(m) == STRATA_OK);

  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("PASS: the C ABI from C99\n");
  return 0;
}
