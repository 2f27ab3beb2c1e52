// strata — checks for programming errors (lock-order and context rules).
//
// These are enabled in every build: they guard rules whose violation would
// otherwise be a deadlock or a data race that shows up once in a thousand
// runs. A failed check prints what was violated and where, then aborts.
#pragma once

#include <fmt/format.h>

namespace strata::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const std::string& what);
}  // namespace strata::internal

#define STRATA_CHECK(cond, ...)                                          \
  do {                                                                   \
    if (!(cond)) [[unlikely]] {                                          \
      ::strata::internal::CheckFailed(__FILE__, __LINE__,                \
                                      ::fmt::format(__VA_ARGS__));       \
    }                                                                    \
  } while (0)
