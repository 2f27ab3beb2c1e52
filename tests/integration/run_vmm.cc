#include "tests/integration/run_vmm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace strata::testing {

std::string Runfile(const std::string& rel) {
  const char* dir = getenv("TEST_SRCDIR");
  std::string base = dir ? dir : ".";
  return base + "/" + rel;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         int timeout_seconds,
                         const std::vector<std::string>& env) {
  ProcessResult r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (const char* v :
         {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
      unsetenv(v);
    }
    for (const std::string& e : env) {
      const size_t eq = e.find('=');
      if (eq != std::string::npos) {
        setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
      }
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::seconds(timeout_seconds);
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        } else {
          (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
        }
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (!r.timed_out && WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  return r;
}

std::string SanitizerReport(const std::string& err) {
  static const char* const kMarkers[] = {
      "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
      "WARNING: ThreadSanitizer", "runtime error:",
      "SUMMARY: UndefinedBehaviorSanitizer",
  };
  for (const char* m : kMarkers) {
    const size_t at = err.find(m);
    if (at == std::string::npos) continue;
    const size_t line = err.rfind('\n', at);
    const size_t start = line == std::string::npos ? 0 : line + 1;
    return err.substr(start, err.find('\n', at) - start);
  }
  return "";
}

}  // namespace strata::testing
