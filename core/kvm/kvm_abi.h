// strata — variable-length KVM ioctl buffers, laid out by hand.
//
// Linux 6.1's uapi headers declare trailing arrays with
// __DECLARE_FLEX_ARRAY, an anonymous struct holding an empty struct and the
// array. In C an empty struct has size 0; in C++ it has size 1, which moves
// the array (kvm_cpuid2::entries lands at offset 16 instead of 8) and —
// worse — changes the ioctl numbers, which encode the struct size
// (KVM_GET_SUPPORTED_CPUID becomes 0xc00cae05 and KVM rejects it). So
// strata never uses those members: it builds the buffers with the C offsets
// below and takes those ioctl numbers from C translation units
// (kvm_ioctls.c, arch/<arch>/kvm/kvm_ioctls_<arch>.c).
// Internal header.
#pragma once

#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
extern const unsigned long strata_kvm_set_gsi_routing;
}
// The architectures' own numbers live with them (arch/<arch>/kvm/).

namespace strata::kvm {

// ioctl(2) on a KVM fd, retried while a signal interrupts it (EINTR; the
// kick signal's SA_RESTART does not cover ioctls that return -EINTR).
// KVM_RUN is the exception: its EINTR is a kick and is not retried here.
inline int IoctlRetry(int fd, unsigned long req, const void* arg) {
  int r;
  do {
    r = ioctl(fd, req, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

// C offsets of the trailing arrays (include/uapi/linux/kvm.h and
// arch/x86/include/uapi/asm/kvm.h).
inline constexpr size_t kCountedArrayOffset = 8;  // __u32 n, __u32 pad

// A buffer holding a two-u32 header followed by n entries of Entry
// (kvm_cpuid2, kvm_msrs, kvm_msr_list, kvm_irq_routing).
template <typename Entry>
class CountedBuffer {
 public:
  explicit CountedBuffer(uint32_t n)
      : bytes_((kCountedArrayOffset + n * sizeof(Entry) + 7) / 8) {
    set_count(n);
  }
  void* data() { return bytes_.data(); }
  uint32_t count() const {
    uint32_t n;
    std::memcpy(&n, bytes_.data(), 4);
    return n;
  }
  void set_count(uint32_t n) { std::memcpy(bytes_.data(), &n, 4); }
  Entry* entries() {
    return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(bytes_.data()) +
                                    kCountedArrayOffset);
  }

 private:
  std::vector<uint64_t> bytes_;  // 8-byte aligned storage
};

}  // namespace strata::kvm
