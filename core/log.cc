#include "core/log.h"

#include <algorithm>
#include <memory>

#include <spdlog/sinks/stdout_sinks.h>

namespace strata {

std::shared_ptr<spdlog::logger> DefaultLogger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("strata", sink);
    l->set_pattern("strata: %l: %v");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return logger;
}

spdlog::logger& Log() { return *DefaultLogger(); }

Status SetLogLevel(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps anything unknown to "off"; only accept "off" when asked.
  if (lvl == spdlog::level::off && level != "off") {
    return MakeError(Errc::kInvalidArgument,
                     "unknown log level '{}' (use trace, debug, info, warn, "
                     "error, critical or off)",
                     level);
  }
  Log().set_level(lvl);
  return Ok();
}

RateLimit::RateLimit(std::string what, uint32_t burst, Clock::duration refill)
    : RateLimit(std::move(what), nullptr, burst, refill) {}

RateLimit::RateLimit(std::string what, std::shared_ptr<spdlog::logger> logger,
                     uint32_t burst, Clock::duration refill)
    : what_(std::move(what)),
      logger_(std::move(logger)),
      burst_(std::max<uint32_t>(burst, 1)),
      refill_(refill),
      tokens_(burst_) {}

RateLimit::Decision RateLimit::Take(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!started_) {
    last_refill_ = now;
    started_ = true;
  }
  if (refill_.count() > 0 && now > last_refill_ && tokens_ < burst_) {
    const auto periods = static_cast<uint64_t>((now - last_refill_) / refill_);
    if (periods > 0) {
      tokens_ = static_cast<uint32_t>(
          std::min<uint64_t>(burst_, tokens_ + periods));
      last_refill_ += refill_ * static_cast<Clock::rep>(periods);
    }
  }
  // A full bucket does not bank time.
  if (tokens_ == burst_) last_refill_ = now;
  Decision d;
  if (tokens_ > 0) {
    --tokens_;
    d.log = true;
    d.suppressed = suppressed_;
    suppressed_ = 0;
  } else {
    d.announce = suppressed_ == 0;
    ++suppressed_;
    ++dropped_;
  }
  return d;
}

uint64_t RateLimit::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::string RateLimit::SuppressingLine() const {
  const auto secs =
      std::chrono::duration_cast<std::chrono::duration<double>>(refill_);
  return fmt::format(
      "suppressing further {} messages (at most {} at once, then one every "
      "{:g} s)",
      what_, burst_, secs.count());
}

}  // namespace strata
