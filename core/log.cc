#include "core/log.h"

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

}  // namespace strata
