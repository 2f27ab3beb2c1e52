// strata — helpers for integration tests that run bhyverun as a process.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace strata::testing {

struct ProcessResult {
  int exit_code = -1;     // -1 if killed by a signal or timed out
  int term_signal = 0;    // the signal that killed it, if one did
  bool timed_out = false;
  std::string out, err;   // what was read from the pipes we made
};

// Exit status, signal, timeout and both outputs, for assertion messages.
std::string Describe(const ProcessResult& r);

// Path of a runfile ("strata/frontends/bhyverun/bhyverun").
std::string Runfile(const std::string& rel);

// How to start a child. An fd of -1 means: stdin /dev/null (never the
// test's terminal: bhyverun would read it and make it raw), stdout/stderr a
// pipe the Process reads into ProcessResult::out/err. Given fds are the
// caller's (a pipe it reads when it likes, a pty slave) and stay open.
struct SpawnOptions {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Make stdin_fd (a terminal) the child's controlling terminal, with the
  // child leading a new session in its foreground: what a shell does.
  bool controlling_tty = false;
  // "NAME=value" entries added to the child's environment.
  std::vector<std::string> env;
};

// A running child. The child does not inherit ASAN_OPTIONS, UBSAN_OPTIONS,
// LSAN_OPTIONS or TSAN_OPTIONS (Bazel's sanitizer configs set them for the
// test binaries, e.g. abort_on_error=1): a sanitizer-built VMM then runs
// with its own defaults, as it does under kvm-unit-tests, so a report ends
// it with the VMM-error status rather than SIGABRT. Pass them in `env` to
// override.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const SpawnOptions& opts);
  ~Process();  // kills and reaps a child still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Reads our pipes until the child has closed them and exited, or until
  // timeout_seconds (then SIGKILL, timed_out). Call once.
  ProcessResult Wait(int timeout_seconds);

 private:
  pid_t pid_ = -1;
  int out_ = -1;  // our read ends, or -1
  int err_ = -1;
  bool reaped_ = false;
};

// Runs argv with a time limit, capturing stdout and stderr.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         int timeout_seconds = 60,
                         const std::vector<std::string>& env = {});

// The first sanitizer report (ASan, LSan, UBSan, TSan) in `err`, or "".
std::string SanitizerReport(const std::string& err);

}  // namespace strata::testing
