// strata — the one "is KVM here?" check shared by tests that need /dev/kvm.
// A missing /dev/kvm is reported loudly and the test is counted as skipped
// (scripts/test_summary.py lists every skip); on our machines there are none.
#pragma once

#include <gtest/gtest.h>

namespace strata::testing {

// True if /dev/kvm can be opened; otherwise prints a "SKIPPED: ..." line.
bool KvmAvailableOrSay();

// The host's KVM_CAP_MAX_VCPUS (KVM_CAP_NR_VCPUS if that is 0, as the KVM
// API doc says); 0 without /dev/kvm.
int KvmMaxVcpus();

}  // namespace strata::testing

#define STRATA_REQUIRE_KVM()                                   \
  do {                                                         \
    if (!::strata::testing::KvmAvailableOrSay()) {             \
      GTEST_SKIP() << "/dev/kvm is missing or not accessible"; \
    }                                                          \
  } while (0)
