// strata — helpers for integration tests that run bhyverun as a process.
#pragma once

#include <string>
#include <vector>

namespace strata::testing {

struct ProcessResult {
  int exit_code = -1;     // -1 if killed by a signal or timed out
  bool timed_out = false;
  std::string out, err;
};

// Path of a runfile ("strata/frontends/bhyverun/bhyverun").
std::string Runfile(const std::string& rel);

// Runs argv with a time limit, capturing stdout and stderr.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         int timeout_seconds = 60);

}  // namespace strata::testing
