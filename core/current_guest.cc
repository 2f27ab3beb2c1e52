#include "core/current_guest.h"

#include <pthread.h>

#include <atomic>

namespace strata {

namespace {

// initial-exec: no lazy TLS allocation, so reads are plain loads.
thread_local const CurrentGuest* t_current
    __attribute__((tls_model("initial-exec"))) = nullptr;

std::atomic<int> g_kick_signal{0};  // 0: the default, kDefaultKickSignal()
std::atomic<bool> g_kick_signal_used{false};

}  // namespace

const CurrentGuest* CurrentGuestOfThisThread() { return t_current; }

Vcpu* CurrentVcpu() { return t_current != nullptr ? t_current->vcpu : nullptr; }

namespace internal {
void SetCurrentGuest(const CurrentGuest* g) { t_current = g; }
}  // namespace internal

int DefaultKickSignal() { return SIGRTMIN + 4; }

int KickSignal() {
  g_kick_signal_used.store(true, std::memory_order_relaxed);
  int s = g_kick_signal.load(std::memory_order_relaxed);
  return s != 0 ? s : DefaultKickSignal();
}

Status SetKickSignal(int signo) {
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) {
    return MakeError(Errc::kInvalidArgument,
                     "signal {} cannot be the kick signal (it must be a "
                     "signal that can be blocked and queued, e.g. SIGUSR1 or "
                     "SIGRTMIN+n)",
                     signo);
  }
  if (g_kick_signal_used.load() && signo != KickSignal()) {
    return MakeError(Errc::kBusy,
                     "the kick signal is already in use by a running vCPU; "
                     "choose it before the first Vcpu::Run");
  }
  g_kick_signal.store(signo);
  return Ok();
}

sigset_t BlockKickSignal() {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_BLOCK, &set, &old);
  return old;
}

void UnblockKickSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace strata
