// strata — logging. strata logs through one spdlog logger named "strata"
// that writes to stderr, leaving stdout to the guest's console. Embedders may
// replace its sinks or level; the level comes from config (`log.level`) or the
// bhyverun -l flag.
//
// Anything a guest can make happen repeatedly (a register write, an exit)
// must not log once per event: a guest looping on it would flood the host's
// logs. Such sites log through a RateLimit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/result.h"

namespace strata {

// The strata logger (created on first use, thread-safe).
spdlog::logger& Log();
// The same logger, shared (VMs created without a logger of their own use it).
std::shared_ptr<spdlog::logger> DefaultLogger();

// Sets the level: trace, debug, info, warn, error, critical, off.
Status SetLogLevel(std::string_view level);

// A token bucket for one guest-triggerable log site: up to `burst` messages
// at once, then one more every `refill`. When a message is dropped for the
// first time since the last one logged, a single "suppressing further <what>
// messages" line is logged instead; the next message that gets through says
// how many were dropped ("(1234 similar messages suppressed)"). So N events
// in a burst produce at most burst + 1 lines, and a steady flood one line
// per refill period. Thread-safe; messages below the logger's level are
// neither formatted nor counted.
//
//   static RateLimit limit("ACPI sleep request");
//   limit.Warn("ACPI sleep type {} requested; ignoring", typ);
//
// A device that belongs to one VM logs through that VM's logger (Vm::log()),
// so an embedder running several VMs can tell their messages apart: give the
// logger to the constructor.
class RateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimit(std::string what, uint32_t burst = kDefaultBurst,
                     Clock::duration refill = kDefaultRefill);
  // As above, logging to `logger` (null: the strata logger).
  RateLimit(std::string what, std::shared_ptr<spdlog::logger> logger,
            uint32_t burst = kDefaultBurst,
            Clock::duration refill = kDefaultRefill);
  RateLimit(const RateLimit&) = delete;
  RateLimit& operator=(const RateLimit&) = delete;

  static constexpr uint32_t kDefaultBurst = 10;
  static constexpr Clock::duration kDefaultRefill = std::chrono::seconds(10);

  template <typename... Args>
  void Log(spdlog::level::level_enum level, fmt::format_string<Args...> f,
           Args&&... args) {
    if (!logger().should_log(level)) return;
    Emit(level, Take(Clock::now()), f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) {
    Log(spdlog::level::warn, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) {
    Log(spdlog::level::info, f, std::forward<Args>(args)...);
  }

  // What to do with one event at time `now` (exposed for tests).
  struct Decision {
    bool log = false;             // log the message
    uint64_t suppressed = 0;      // ... noting this many dropped before it
    bool announce = false;        // instead, log the "suppressing" line
  };
  Decision Take(Clock::time_point now);

  // Events dropped in total (for tests and statistics).
  uint64_t dropped() const;

 private:
  template <typename... Args>
  void Emit(spdlog::level::level_enum level, const Decision& d,
            fmt::format_string<Args...> f, Args&&... args) {
    if (d.log) {
      std::string msg = fmt::format(f, std::forward<Args>(args)...);
      if (d.suppressed != 0) {
        logger().log(level, "{} ({} similar message{} suppressed)", msg,
                     d.suppressed, d.suppressed == 1 ? "" : "s");
      } else {
        logger().log(level, "{}", msg);
      }
    } else if (d.announce) {
      logger().log(level, "{}", SuppressingLine());
    }
  }
  std::string SuppressingLine() const;
  spdlog::logger& logger() const {
    return logger_ ? *logger_ : strata::Log();
  }

  const std::string what_;
  const std::shared_ptr<spdlog::logger> logger_;  // null: strata::Log()
  const uint32_t burst_;
  const Clock::duration refill_;
  mutable std::mutex mu_;
  uint32_t tokens_;                 // guarded by mu_
  Clock::time_point last_refill_;   // guarded by mu_
  uint64_t suppressed_ = 0;         // since the last logged message
  uint64_t dropped_ = 0;            // in total
  bool started_ = false;            // last_refill_ is set
};

}  // namespace strata
