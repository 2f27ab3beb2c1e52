#include "core/current_guest.h"

namespace strata {

namespace {

// initial-exec: no lazy TLS allocation, so reads are plain loads.
thread_local const CurrentGuest* t_current
    __attribute__((tls_model("initial-exec"))) = nullptr;

std::atomic<int> g_kick_signal{SIGUSR1};
std::atomic<bool> g_kick_signal_used{false};

}  // namespace

const CurrentGuest* CurrentGuestOfThisThread() { return t_current; }

namespace internal {
void SetCurrentGuest(const CurrentGuest* g) { t_current = g; }
}  // namespace internal

int KickSignal() {
  g_kick_signal_used.store(true, std::memory_order_relaxed);
  return g_kick_signal.load(std::memory_order_relaxed);
}

bool SetKickSignal(int signo) {
  if (g_kick_signal_used.load() || signo <= 0 || signo >= NSIG ||
      signo == SIGKILL || signo == SIGSTOP) {
    return false;
  }
  g_kick_signal.store(signo);
  return true;
}

sigset_t BlockKickSignal() {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_BLOCK, &set, &old);
  return old;
}

KickStats& GlobalKickStats() {
  static KickStats stats;
  return stats;
}

}  // namespace strata
