#include "devices/exit_line.h"

#include <cstring>

namespace strata {

std::optional<uint64_t> ExitLineMatcher::Feed(uint8_t byte) {
  if (byte == '\n') {
    std::optional<uint64_t> status = overflow_ ? std::nullopt : Match();
    len_ = 0;
    overflow_ = false;
    return status;
  }
  if (overflow_) return std::nullopt;
  if (len_ == kMaxLine) {
    // Too long to be an exit line: forget it until the next newline.
    overflow_ = true;
    return std::nullopt;
  }
  line_[len_++] = static_cast<char>(byte);
  return std::nullopt;
}

std::optional<uint64_t> ExitLineMatcher::Match() const {
  std::string_view line(line_, len_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, kExitLinePrefix.size()) != kExitLinePrefix) {
    return std::nullopt;
  }
  const std::string_view digits = line.substr(kExitLinePrefix.size());
  if (digits.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;  // would overflow
    v = v * 10 + d;
  }
  return v;
}

void ExitLineBackend::Write(std::span<const uint8_t> data) {
  // The console gets the line before the VM is asked to stop.
  if (next_ != nullptr) next_->Write(data);
  std::lock_guard lock(mu_);
  for (uint8_t b : data) {
    if (auto status = matcher_.Feed(b)) on_exit_(*status);
  }
}

void ExitLineMatcher::SaveState(StateWriter& out) const {
  out.Bool(overflow_);
  out.U64(len_);
  out.Bytes(std::span(reinterpret_cast<const uint8_t*>(line_), len_));
}

Status ExitLineMatcher::LoadState(StateReader& in) {
  overflow_ = STRATA_TRY(in.Bool());
  const uint64_t n = STRATA_TRY(in.U64());
  if (n > kMaxLine) {
    return in.Fail(fmt::format("an exit line of {} bytes (at most {})", n,
                               kMaxLine));
  }
  std::span<const uint8_t> b = STRATA_TRY(in.Bytes(n));
  std::memcpy(line_, b.data(), n);
  len_ = n;
  return Ok();
}

Status ExitLineBackend::SaveState(StateWriter& out) {
  std::lock_guard lk(mu_);
  matcher_.SaveState(out);
  return Ok();
}

Status ExitLineBackend::LoadState(StateReader& in) {
  std::lock_guard lk(mu_);
  STRATA_TRY(matcher_.LoadState(in));
  return in.ExpectEnd();
}

}  // namespace strata
