// strata — logging. strata logs through one spdlog logger named "strata"
// that writes to stderr, leaving stdout to the guest's console. Embedders may
// replace its sinks or level; the level comes from config (`log.level`) or the
// bhyverun -l flag.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/result.h"

namespace strata {

// The strata logger (created on first use, thread-safe).
spdlog::logger& Log();
// The same logger, shared (VMs created without a logger of their own use it).
std::shared_ptr<spdlog::logger> DefaultLogger();

// Sets the level: trace, debug, info, warn, error, critical, off.
Status SetLogLevel(std::string_view level);

}  // namespace strata
