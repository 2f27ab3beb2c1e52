#include "devices/char_backend.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/log.h"

namespace strata {

void StdioBackend::Write(std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (failed_) return;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The fd is non-blocking, typically because stdin and stdout share a
      // tty whose file description the input side made O_NONBLOCK. Wait for
      // room rather than drop console output.
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    failed_ = true;
    Log().warn("console backend: write to fd {} failed: {}; dropping further "
               "output",
               fd_, n < 0 ? std::strerror(errno) : "wrote 0 bytes");
    return;
  }
}

void BufferBackend::Write(std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  buf_.append(reinterpret_cast<const char*>(data.data()), data.size());
}

std::string BufferBackend::contents() const {
  std::lock_guard lock(mu_);
  return buf_;
}

std::string BufferBackend::Take() {
  std::lock_guard lock(mu_);
  return std::exchange(buf_, std::string());
}

}  // namespace strata
