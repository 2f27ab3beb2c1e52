// strata — where a character device's output goes.
//
// A CharBackend is the host side of a UART/console: the device model calls
// Write with the bytes the guest transmitted. Input travels the other way
// through the device (e.g. Uart16550::PushInput), so a backend only sinks.
//
// Provided here:
//   StdioBackend  — writes to a host fd (stdout by default), completing each
//                   write despite EINTR, partial writes and a non-blocking fd.
//   BufferBackend — collects output in memory; for tests and for embedders
//                   that capture the console.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <string>

namespace strata {

class CharBackend {
 public:
  virtual ~CharBackend() = default;
  // Takes the bytes the guest sent. Called from vCPU threads; must be
  // thread-safe and must not call back into the device.
  virtual void Write(std::span<const uint8_t> data) = 0;
};

// Writes each chunk to fd before returning (no user-space buffering, so the
// console stays in step with the guest even if strata dies). Does not own or
// close fd. If the fd fails (e.g. EPIPE), output is dropped and one warning
// is logged.
class StdioBackend : public CharBackend {
 public:
  explicit StdioBackend(int fd = STDOUT_FILENO) : fd_(fd) {}
  void Write(std::span<const uint8_t> data) override;

 private:
  const int fd_;
  std::mutex mu_;       // keeps concurrent writers' chunks whole
  bool failed_ = false;  // guarded by mu_; set after the first hard error
};

// Appends everything to an in-memory string. Thread-safe.
class BufferBackend : public CharBackend {
 public:
  void Write(std::span<const uint8_t> data) override;
  // Everything written so far.
  std::string contents() const;
  // Returns contents and clears them.
  std::string Take();

 private:
  mutable std::mutex mu_;
  std::string buf_;  // guarded by mu_
};

}  // namespace strata
