// strata — the kvm-unit-tests exit line on a console: a guest that prints a
// line "EXIT: STATUS=<n>" and then powers off asks for exit status n.
//
// kvm-unit-tests' arm64 (and powerpc, s390x) exit() prints
// "\nEXIT: STATUS=%d\n" with (code << 1) | 1 on the UART and then calls PSCI
// SYSTEM_OFF; its runner takes the status from that line. A VMM that turns
// the line into its own exit status lets the runner read it as it reads the
// isa-debug-exit status on x86 (devices/debug_exit.h, the same encoding).
//
// ExitLineMatcher is the byte-at-a-time recogniser, with no I/O: the line
// must be exactly "EXIT: STATUS=" followed by one or more decimal digits,
// starting at the beginning of a line (the start of the stream or just
// after '\n') and ending with '\n' or "\r\n". Anything else on the line
// (leading or trailing text, a sign, spaces) and a number that does not fit
// in 64 bits make the line not match. Memory is bounded: the matcher keeps
// at most kMaxLine bytes of the current line — no matching line is longer —
// and only remembers that a longer line has overflowed, so a guest that
// never sends a newline cannot grow it.
//
// ExitLineBackend is a CharBackend that feeds what a UART transmits to a
// matcher and passes it on to the real console (or nowhere).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "core/snapshot.h"
#include "devices/char_backend.h"

namespace strata {

inline constexpr std::string_view kExitLinePrefix = "EXIT: STATUS=";

class ExitLineMatcher {
 public:
  // Prefix, 20 digits (UINT64_MAX) and '\r'.
  static constexpr size_t kMaxLine = kExitLinePrefix.size() + 20 + 1;

  // Takes one transmitted byte; returns the status when it completes a
  // matching line (that is, on its '\n').
  std::optional<uint64_t> Feed(uint8_t byte);

  // Snapshots: the line seen so far.
  void SaveState(StateWriter& out) const;
  Status LoadState(StateReader& in);

 private:
  std::optional<uint64_t> Match() const;

  char line_[kMaxLine] = {};
  size_t len_ = 0;         // bytes of the current line in line_
  bool overflow_ = false;  // the current line is longer than kMaxLine
};

class ExitLineBackend : public CharBackend, public Snapshottable {
 public:
  // Called with the status of each matching line, from the writer's (vCPU)
  // thread under the device's lock: it should only ask the VM to stop.
  using ExitFn = std::function<void(uint64_t status)>;

  // next: where the bytes go on (null: discarded); must outlive this.
  ExitLineBackend(CharBackend* next, ExitFn on_exit)
      : next_(next), on_exit_(std::move(on_exit)) {}

  void Write(std::span<const uint8_t> data) override;
  Status SaveState(StateWriter& out) override;
  Status LoadState(StateReader& in) override;

 private:
  CharBackend* const next_;
  const ExitFn on_exit_;
  std::mutex mu_;
  ExitLineMatcher matcher_;  // guarded by mu_
};

}  // namespace strata
