#include "tests/kvm_testing.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
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

int KvmMaxVcpus() {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return 0;
  int n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (n <= 0) n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  close(fd);
  return n > 0 ? n : 0;
}

}  // namespace strata::testing
