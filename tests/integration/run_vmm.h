// strata — helpers for integration tests that run bhyverun as a process.
#pragma once

#include <string>
#include <vector>

namespace strata::testing {

struct ProcessResult {
  int exit_code = -1;     // -1 if killed by a signal or timed out
  int term_signal = 0;    // the signal that killed it, if one did
  bool timed_out = false;
  std::string out, err;
};

// Path of a runfile ("strata/frontends/bhyverun/bhyverun").
std::string Runfile(const std::string& rel);

// Runs argv with a time limit, capturing stdout and stderr. `env` entries
// ("NAME=value") are added to the child's environment.
//
// The child does not inherit ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS or
// TSAN_OPTIONS (Bazel's sanitizer configs set them for the test binaries,
// e.g. abort_on_error=1): a sanitizer-built VMM then runs with its own
// defaults, as it does under kvm-unit-tests, so a report ends it with the
// VMM-error status rather than SIGABRT. Pass them in `env` to override.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         int timeout_seconds = 60,
                         const std::vector<std::string>& env = {});

// The first sanitizer report (ASan, LSan, UBSan, TSan) in `err`, or "".
std::string SanitizerReport(const std::string& err);

}  // namespace strata::testing
