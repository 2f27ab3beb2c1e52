// strata — the host side of a character device (a UART's console).
//
// Theory. A device model calls CharBackend::Write from a vCPU thread with
// its own lock held (Uart16550 transmits under its mutex so that bytes from
// several vCPUs keep their order). So Write must never block: a consumer
// that stalls — a full pipe nobody reads, a terminal stopped with ^S, a
// slow ssh session — must not stall the vCPU, nor every other thread that
// then waits for the UART's lock. Input travels the other way: a backend
// with input pushes it into the device's CharInput from a thread of its own.
//
// Provided here:
//   StdioBackend  — the VMM's console on host fds (stdout / stdin). Output
//                   goes into a bounded buffer that a writer thread drains;
//                   when the buffer is full, further output is dropped and
//                   counted (the writer thread, never the vCPU, logs a
//                   rate-limited warning; Stop() logs the total). An input
//                   thread reads the input fd and feeds the device, taking
//                   only what the device has room for; a terminal is put in
//                   raw mode while the console runs and restored by Stop().
//   BufferBackend — collects output in memory; for tests and for embedders
//                   that capture the console.
#pragma once

#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "core/unique_fd.h"

namespace strata {

class CharBackend {
 public:
  virtual ~CharBackend() = default;
  // Takes the bytes the guest sent. Called from vCPU threads, possibly
  // under the device's lock: must be thread-safe, must not block and must
  // not call back into the device.
  virtual void Write(std::span<const uint8_t> data) = 0;
};

// The device side of input: what a backend with input feeds (Uart16550).
class CharInput {
 public:
  virtual ~CharInput() = default;
  // Queues bytes for the guest; returns how many were taken.
  virtual size_t PushInput(std::span<const uint8_t> data) = 0;
  // Bytes PushInput can take now without loss.
  virtual size_t InputRoom() const = 0;
};

class StdioBackend : public CharBackend {
 public:
  // Output held for a consumer that is slower than the guest (64 KiB:
  // seconds of a guest printing through a polled UART).
  static constexpr size_t kDefaultBufferSize = 64 << 10;
  // How long Stop() keeps writing buffered output to a stalled consumer.
  static constexpr std::chrono::milliseconds kDefaultDrainTimeout{2000};

  struct Options {
    int out_fd = STDOUT_FILENO;
    int in_fd = STDIN_FILENO;  // -1: no input
    size_t buffer_size = kDefaultBufferSize;
    std::chrono::milliseconds drain_timeout = kDefaultDrainTimeout;
    // Put in_fd in raw mode if it is a terminal (see Start()).
    bool raw_tty = true;
    std::string name = "console";  // in messages ("com1")
    std::shared_ptr<spdlog::logger> logger;  // null: the strata logger
  };

  explicit StdioBackend(Options options);
  // Stop().
  ~StdioBackend() override;
  StdioBackend(const StdioBackend&) = delete;
  StdioBackend& operator=(const StdioBackend&) = delete;

  // Appends to the buffer, or drops (and counts) what does not fit or what
  // comes after the output fd failed. Never blocks. Output written before
  // Start() waits in the buffer.
  void Write(std::span<const uint8_t> data) override;

  // Where input goes; set before Start(). It must stay valid until Stop()
  // returns. Without one, the input fd is not read.
  void SetInput(CharInput* input) { input_ = input; }

  // Starts the writer thread and, with an input, the input thread. A
  // terminal on in_fd enters raw mode: no line editing, no echo, no CR/NL
  // translation or flow control on input, ^\ and ^Z are ordinary bytes for
  // the guest; ^C still raises SIGINT (the front end stops the VM on it) and
  // output processing stays on, so the guest's "\n" starts a new line. If
  // the process is a background job of that terminal, input stays off
  // (reading would stop the process with SIGTTIN). The threads block every
  // signal: a signal for the process goes to a thread that handles it, and
  // a write to a closed pipe fails with EPIPE instead of killing the
  // process. kBusy if already started.
  Status Start();

  // Stops the input thread, keeps writing buffered output for at most
  // drain_timeout, drops what is left, restores the terminal and logs how
  // much output was dropped, if any. Idempotent; later Writes are dropped.
  void Stop();

  struct Stats {
    uint64_t accepted = 0;  // bytes Write took into the buffer
    uint64_t written = 0;   // bytes written to out_fd
    uint64_t dropped = 0;   // bytes lost: buffer full, fd failed, drain cut
    uint64_t input = 0;     // bytes given to the input
  };
  Stats stats() const;
  // True while in_fd is a terminal in raw mode.
  bool tty_raw() const { return tty_raw_.load(std::memory_order_acquire); }

 private:
  enum class OutMode { kPlain, kPollThenWrite, kSocket };
  void WriterLoop();
  void InputLoop();
  void SetUpOutput();
  // Waits until out_fd_ takes data, the wake fd fires or timeout_ms passes.
  bool WaitWritable(int timeout_ms);
  ssize_t WriteOut(const uint8_t* p, size_t n);
  void ReportDrops(bool final);
  spdlog::logger& log() const;

  const Options opt_;
  CharInput* input_ = nullptr;
  RateLimit drop_limit_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // All below guarded by mu_.
  std::vector<uint8_t> buf_;  // ring of buffer_size bytes
  size_t head_ = 0;           // oldest byte
  size_t size_ = 0;           // bytes queued
  bool started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  bool failed_ = false;  // out_fd failed: drop everything from now on
  std::chrono::steady_clock::time_point deadline_;
  Stats stats_;
  uint64_t reported_drops_ = 0;

  OutMode mode_ = OutMode::kPlain;
  int out_fd_ = -1;          // opt_.out_fd or own_out_fd_
  UniqueFd own_out_fd_;      // our own non-blocking reopen of opt_.out_fd
  UniqueFd out_wake_;        // eventfd: Stop() wakes the writer's poll
  UniqueFd in_wake_;         // eventfd: Stop() wakes the input thread
  struct termios saved_tty_ {};
  std::atomic<bool> tty_raw_{false};
  std::thread writer_;
  std::thread reader_;
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
