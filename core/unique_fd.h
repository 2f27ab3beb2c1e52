// strata — an owned file descriptor.
//
// Every descriptor strata opens (/dev/kvm, a VM, a vCPU, an eventfd, a
// device fd, a kernel file) is held by one UniqueFd, which closes it when
// it goes out of scope or is reset, so an early return on an error path
// cannot leak it and a moved-from owner cannot close it twice. Move-only,
// like std::unique_ptr; get() lends the number to a system call.
#pragma once

#include <unistd.h>

#include <utility>

namespace strata {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of fd (a negative value holds nothing, so the result
  // of a failed open() may be wrapped before it is checked).
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing: the caller closes it.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  // Closes what it holds (close(2)'s error is not reported: the descriptor
  // is gone either way, and nothing strata closes has buffered writes) and
  // takes fd instead.
  void reset(int fd = -1) {
    const int old = std::exchange(fd_, fd < 0 ? -1 : fd);
    if (old >= 0) ::close(old);
  }

 private:
  int fd_ = -1;
};

}  // namespace strata
