#include "tests/integration/run_vmm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
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

Process::Process(const std::vector<std::string>& argv,
                 const SpawnOptions& opts) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (opts.stdout_fd < 0 && pipe2(out, O_CLOEXEC) != 0) return;
  if (opts.stderr_fd < 0 && pipe2(err, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    if (opts.controlling_tty) {
      setsid();
      ioctl(opts.stdin_fd, TIOCSCTTY, 0);
    }
    if (opts.stdin_fd >= 0) {
      dup2(opts.stdin_fd, 0);
    } else {
      const int null = open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, 0);
    }
    dup2(opts.stdout_fd >= 0 ? opts.stdout_fd : out[1], 1);
    dup2(opts.stderr_fd >= 0 ? opts.stderr_fd : err[1], 2);
    for (const char* v :
         {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
      unsetenv(v);
    }
    for (const std::string& e : opts.env) {
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
  if (out[1] >= 0) close(out[1]);
  if (err[1] >= 0) close(err[1]);
  out_ = out[0];
  err_ = err[0];
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) close(out_);
  if (err_ >= 0) close(err_);
}

void Process::Signal(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

ProcessResult Process::Wait(int timeout_seconds) {
  ProcessResult r;
  if (pid_ <= 0) return r;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::seconds(timeout_seconds);
  struct pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
  int status = 0;
  for (;;) {
    const bool pipes_open = fds[0].fd >= 0 || fds[1].fd >= 0;
    if (!pipes_open) {
      // Only the caller's fds: poll the child itself.
      pid_t w = waitpid(pid_, &status, WNOHANG);
      if (w == pid_) {
        reaped_ = true;
        break;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid_, SIGKILL);
      break;
    }
    if (!pipes_open) {
      usleep(10000);
      continue;
    }
    if (poll(fds, 2, static_cast<int>(std::min<long>(left, 100))) < 0) {
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          close(fds[i].fd);
          fds[i].fd = -1;
          (i == 0 ? out_ : err_) = -1;
        } else {
          (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
        }
      }
    }
  }
  if (!reaped_) {
    waitpid(pid_, &status, 0);
    reaped_ = true;
  }
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (!r.timed_out && WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  return r;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         int timeout_seconds,
                         const std::vector<std::string>& env) {
  SpawnOptions opts;
  opts.env = env;
  Process p(argv, opts);
  return p.Wait(timeout_seconds);
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

std::string Describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) +
         (r.term_signal ? " (signal " + std::to_string(r.term_signal) + ")"
                        : "") +
         (r.timed_out ? " (timed out)" : "") + "\n--- stdout\n" + r.out +
         "--- stderr\n" + r.err;
}

}  // namespace strata::testing
