#include "tests/kvm_testing.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace strata::testing {

bool KvmAvailableOrSay() {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  std::fprintf(stderr, "SKIPPED: /dev/kvm is missing or not accessible; "
                       "this test needs KVM\n");
  return false;
}

}  // namespace strata::testing
