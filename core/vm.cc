#include "core/vm.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "core/backend.h"
#include "core/check.h"
#include "core/driver.h"
#include "core/log.h"

namespace strata {

namespace {

std::atomic<uint64_t> g_next_token{1};

// Lock bookkeeping of the calling thread, for the checks in the theory
// statement (core/vm.h): which VM's write lock it holds, and the read locks.
thread_local const Vm* t_write_locked = nullptr;
constexpr int kMaxTrackedReadLocks = 8;
thread_local const Vm* t_read_locked[kMaxTrackedReadLocks] = {};
thread_local int t_read_lock_depth = 0;

bool ThisThreadHoldsReadLock(const Vm* vm) {
  for (int i = 0; i < std::min(t_read_lock_depth, kMaxTrackedReadLocks); ++i) {
    if (t_read_locked[i] == vm) return true;
  }
  return false;
}

// amd64 and arm64 hosts are little endian. Fixed-size copies for the sizes
// an exit has, so the hot path makes no library call.
uint64_t LoadLe(const uint8_t* p, uint32_t size) {
  switch (size) {
    case 1: return p[0];
    case 2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case 8: { uint64_t v; std::memcpy(&v, p, 8); return v; }
    default: {
      uint64_t v = 0;
      std::memcpy(&v, p, std::min<uint32_t>(size, 8));
      return v;
    }
  }
}

void StoreLe(uint8_t* p, uint32_t size, uint64_t v) {
  switch (size) {
    case 1: p[0] = static_cast<uint8_t>(v); return;
    case 2: { uint16_t x = static_cast<uint16_t>(v); std::memcpy(p, &x, 2); return; }
    case 4: { uint32_t x = static_cast<uint32_t>(v); std::memcpy(p, &x, 4); return; }
    case 8: std::memcpy(p, &v, 8); return;
    default: std::memcpy(p, &v, std::min<uint32_t>(size, 8)); return;
  }
}

// A counter only its vCPU's thread writes: a plain add (no locked
// instruction on the hot path); other threads still read it atomically.
void Bump(std::atomic<uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// The vCPU of `vm` the calling thread runs, or null.
Vcpu* CurrentVcpuOf(const Vm& vm) {
  Vcpu* v = CurrentVcpu();
  return v != nullptr && &v->vm() == &vm ? v : nullptr;
}

}  // namespace

std::string_view VcpuStateName(VcpuState s) {
  switch (s) {
    case VcpuState::kIdle: return "idle";
    case VcpuState::kRunning: return "running";
    case VcpuState::kSleeping: return "sleeping";
    case VcpuState::kFrozen: return "frozen";
    case VcpuState::kBlocked: return "blocked";
  }
  return "?";
}

std::string_view ExitKindName(ExitKind k) {
  switch (k) {
    case ExitKind::kNone: return "none";
    case ExitKind::kIo: return "io";
    case ExitKind::kMmio: return "mmio";
    case ExitKind::kHalt: return "halt";
    case ExitKind::kShutdown: return "shutdown";
    case ExitKind::kSystemEvent: return "system-event";
    case ExitKind::kFailEntry: return "fail-entry";
    case ExitKind::kInternalError: return "internal-error";
    case ExitKind::kArch: return "arch";
    case ExitKind::kUnknown: return "unknown";
    case ExitKind::kCount: break;
  }
  return "?";
}

std::string_view InternalErrorName(InternalErrorExit::Kind k) {
  switch (k) {
    case InternalErrorExit::Kind::kEmulation:
      return "instruction emulation failed";
    case InternalErrorExit::Kind::kSimultaneousFault:
      return "simultaneous exceptions";
    case InternalErrorExit::Kind::kDeliveryEvent:
      return "event delivery failed";
    case InternalErrorExit::Kind::kUnexpectedExit:
      return "unexpected exit reason";
    case InternalErrorExit::Kind::kOther:
      break;
  }
  return "unknown internal error";
}

// A blocking wait inside an exit handler: the vCPU is BLOCKED (quiescent,
// exit unfinished) for the scope, so a writer can quiesce it meanwhile. On
// the way out it waits until no writer holds it, then runs on.
class BlockedSection {
 public:
  explicit BlockedSection(Vcpu& v) : v_(v) {
    std::lock_guard lk(v_.m_);
    v_.state_ = VcpuState::kBlocked;
    v_.cv_.notify_all();
  }
  ~BlockedSection() {
    std::unique_lock lk(v_.m_);
    v_.cv_.wait(lk, [&] { return v_.holders_ == 0; });
    v_.state_ = VcpuState::kRunning;
  }
  BlockedSection(const BlockedSection&) = delete;
  BlockedSection& operator=(const BlockedSection&) = delete;

 private:
  Vcpu& v_;
};

// ---------------------------------------------------------------- Vcpu ----

Vcpu::Vcpu(Vm* vm, uint32_t id, std::unique_ptr<VcpuBackend> backend)
    : vm_(vm),
      id_(id),
      token_(g_next_token.fetch_add(1, std::memory_order_relaxed)),
      backend_(std::move(backend)) {
  record_ = CurrentGuest{vm, this, token_};
}

Vcpu::~Vcpu() = default;

VcpuState Vcpu::state() const {
  std::lock_guard lk(m_);
  return state_;
}

bool Vcpu::IsRunnerThread() const {
  return pthread_equal(runner_thread_.load(std::memory_order_acquire),
                       pthread_self());
}

void Vcpu::InterruptLocked() {
  backend_->RequestImmediateExit();
  if (has_runner_ && !pthread_equal(runner_, pthread_self())) {
    union sigval sv;
    sv.sival_ptr = reinterpret_cast<void*>(token_);
    if (pthread_sigqueue(runner_, KickSignal(), sv) == 0) {
      stats_.signals_sent.fetch_add(1, std::memory_order_relaxed);
      vm_->stats_.kick_signals_sent.fetch_add(1, std::memory_order_relaxed);
    }
  }
  cv_.notify_all();  // a SLEEPING vCPU waits on cv_
}

void Vcpu::Kick() {
  std::lock_guard lk(m_);
  kick_pending_.store(true, std::memory_order_release);
  InterruptLocked();
}

void Vcpu::ReturnFromRun() {
  std::lock_guard lk(m_);
  return_requested_ = true;
  requests_.store(true, std::memory_order_release);
  InterruptLocked();
}

void Vcpu::Post(std::function<void(Vcpu&)> fn) {
  std::lock_guard lk(m_);
  mailbox_.push_back(std::move(fn));
  requests_.store(true, std::memory_order_release);
  InterruptLocked();
}

void Vcpu::Acquire(Hold how) {
  std::unique_lock lk(m_);
  if (has_runner_ && pthread_equal(runner_, pthread_self())) {
    // From the vCPU's own run loop: it is not in guest mode and cannot
    // re-enter before the caller returns, so it counts as held.
    ++self_locks_;
    return;
  }
  ++lock_requests_;
  requests_.store(true, std::memory_order_release);
  // One kick per guest entry: requests_ is set, so the loop parks at its
  // next top (a SLEEPING vCPU is woken by the kick's notify). Kicking on
  // every wakeup made the waiters on one vCPU wake each other (a kick
  // notifies cv_) and queue a real-time signal each round until the vCPU
  // parked: tens of thousands where parking is slow (the nested SVM L1),
  // and a full signal queue loses the kick of a vCPU blocked in the kernel,
  // whose lockers then wait forever. Only an entry that raced the request
  // (it saw no request, then entered: immediate_exit ends it) may see
  // another kick.
  uint64_t kicked_at_entry = ~uint64_t{0};
  for (;;) {
    if (state_ == VcpuState::kIdle || state_ == VcpuState::kFrozen) break;
    if (how == Hold::kQuiesce && state_ == VcpuState::kBlocked) break;
    STRATA_CHECK(!(state_ == VcpuState::kBlocked && t_write_locked == vm_),
                 "VcpuLock on vCPU {} while holding its VM's write lock: the "
                 "vCPU is blocked mid-exit waiting for that lock",
                 id_);
    const uint64_t entries = stats_.entries.load(std::memory_order_relaxed);
    if (entries != kicked_at_entry) {
      kicked_at_entry = entries;
      InterruptLocked();
    }
    cv_.wait(lk);
  }
  if (state_ == VcpuState::kIdle) state_ = VcpuState::kFrozen;
  ++holders_;
}

void Vcpu::Release() {
  std::lock_guard lk(m_);
  if (has_runner_ && pthread_equal(runner_, pthread_self()) && self_locks_ > 0) {
    --self_locks_;
    return;
  }
  assert(holders_ > 0 && lock_requests_ > 0);
  --holders_;
  --lock_requests_;
  if (holders_ == 0) {
    if (!has_runner_ && state_ == VcpuState::kFrozen) state_ = VcpuState::kIdle;
    cv_.notify_all();
  }
}

Status Vcpu::CheckRegisterAccess() const {
  if (IsRunnerThread()) return Ok();
  std::lock_guard lk(m_);
  if (!has_runner_ || holders_ > 0) return Ok();
  return MakeError(Errc::kBusy,
                   "vCPU {} is running on another thread: hold a VcpuLock on "
                   "it, or Post() the access to the vCPU",
                   id_);
}

// Register access: the runner thread uses the backend's register cache
// alone; any other thread (a VcpuLock holder — there may be several at
// once, nested lockers share a freeze — or the only user of a vCPU without
// a runner) takes regs_mu_, since the cache is not thread-safe.
template <typename F>
auto Vcpu::WithRegisters(F&& f) -> decltype(f()) {
  STRATA_TRY(CheckRegisterAccess());
  if (IsRunnerThread()) return f();
  std::lock_guard lk(regs_mu_);
  return f();
}

Result<uint64_t> Vcpu::GetRegister(md::Reg r) {
  return WithRegisters([&] { return backend_->GetRegister(r); });
}
Status Vcpu::SetRegister(md::Reg r, uint64_t v) {
  return WithRegisters([&] { return backend_->SetRegister(r, v); });
}
Result<md::VcpuState> Vcpu::GetState() {
  return WithRegisters([&] { return backend_->GetState(); });
}
Status Vcpu::SetState(const md::VcpuState& s) {
  return WithRegisters([&] { return backend_->SetState(s); });
}
Result<md::FpuState> Vcpu::GetFpu() {
  return WithRegisters([&] { return backend_->GetFpu(); });
}
Status Vcpu::SetFpu(const md::FpuState& f) {
  return WithRegisters([&] { return backend_->SetFpu(f); });
}
Result<uint64_t> Vcpu::GetSysReg(uint64_t id) {
  return WithRegisters([&] { return backend_->GetSysReg(id); });
}
Status Vcpu::SetSysReg(uint64_t id, uint64_t v) {
  return WithRegisters([&] { return backend_->SetSysReg(id, v); });
}
Status Vcpu::Reset() {
  return WithRegisters([&] { return backend_->Reset(); });
}
Status Vcpu::SetRunnable(bool runnable) {
  return WithRegisters([&] { return backend_->SetRunnable(runnable); });
}
std::string Vcpu::DumpRegisters() {
  if (!CheckRegisterAccess()) return "(registers unavailable: vCPU running)";
  if (IsRunnerThread()) return backend_->DumpRegisters();
  std::lock_guard lk(regs_mu_);
  return backend_->DumpRegisters();
}

bool Vcpu::CompleteLastExit() {
  // Re-enter with immediate_exit set: KVM finishes the pending instruction
  // (writes the read value, advances RIP/PC) and returns -EINTR without
  // running guest code. A split access may produce one more exit first.
  for (int rounds = 0; backend_->ExitNeedsCompletion(); ++rounds) {
    if (rounds == 16) {
      FailVm(fmt::format("vCPU {}: the last exit did not complete after 16 "
                         "re-entries",
                         id_));
      return false;
    }
    backend_->RequestImmediateExit();
    stats_.completions.fetch_add(1, std::memory_order_relaxed);
    VmExit exit;
    Status s = backend_->Run(&exit);
    if (!s) {
      FailVm(fmt::format("vCPU {}: completing the last exit: {}", id_,
                         s.error().message()));
      return false;
    }
    if (exit.kind != ExitKind::kNone) Dispatch(exit);
  }
  return true;
}

bool Vcpu::ServiceRequests() {
  if (!CompleteLastExit()) return false;
  std::unique_lock lk(m_);
  for (;;) {
    if (vm_->stop_requested() || return_requested_) return false;
    if (lock_requests_ > 0) {
      // Let the lockers in: FROZEN at the loop top until the last lets go.
      state_ = VcpuState::kFrozen;
      cv_.notify_all();
      cv_.wait(lk, [&] {
        return lock_requests_ == 0 || vm_->stop_requested() ||
               return_requested_;
      });
      if (lock_requests_ == 0) state_ = VcpuState::kRunning;
      continue;
    }
    if (!mailbox_.empty()) {
      std::deque<std::function<void(Vcpu&)>> work;
      work.swap(mailbox_);
      lk.unlock();
      for (auto& fn : work) {
        fn(*this);
        stats_.requests.fetch_add(1, std::memory_order_relaxed);
      }
      lk.lock();
      continue;
    }
    requests_.store(false, std::memory_order_release);
    return true;
  }
}

void Vcpu::CountKickSignal(const siginfo_t& si) {
  auto token = reinterpret_cast<uint64_t>(si.si_value.sival_ptr);
  if (si.si_code == SI_QUEUE && token == record_.token) {
    stats_.signals_delivered.fetch_add(1, std::memory_order_relaxed);
    vm_->stats_.kick_signals_delivered.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.signals_stray.fetch_add(1, std::memory_order_relaxed);
    vm_->stats_.kick_signals_stray.fetch_add(1, std::memory_order_relaxed);
  }
}

// The kick signal's handler. The kick itself was done before the signal was
// sent (immediate_exit set); the signal's only job is to make KVM_RUN return
// -EINTR, which its arrival does. The handler counts it against the vCPU
// whose run loop the thread is in (lock-free atomics only: async-signal
// safe) and leaves errno alone.
void Vcpu::OnKickSignal(int, siginfo_t* si, void*) {
  if (const CurrentGuest* g = CurrentGuestOfThisThread()) {
    g->vcpu->CountKickSignal(*si);
  }
}

void Vcpu::ConsumeKickSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  const struct timespec zero = {0, 0};
  siginfo_t si;
  while (sigtimedwait(&set, &si, &zero) >= 0) CountKickSignal(si);
}

namespace {

// Installs Vcpu's kick handler for the kick signal once per process, or
// says why it cannot: an ignored signal cannot interrupt guest mode, and a
// handler someone else installed is theirs.
Status InstallKickHandler(void (*handler)(int, siginfo_t*, void*)) {
  static std::mutex mu;
  std::lock_guard lk(mu);
  const int sig = KickSignal();
  struct sigaction sa;
  if (sigaction(sig, nullptr, &sa) != 0) return SysError("sigaction({})", sig);
  if ((sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == handler) {
    return Ok();
  }
  if ((sa.sa_flags & SA_SIGINFO) == 0 && sa.sa_handler == SIG_IGN) {
    return MakeError(Errc::kUnsupported,
                     "the kick signal {} ({}) is ignored (SIG_IGN) in this "
                     "process, so vCPUs could not be interrupted; restore its "
                     "default action or choose another with SetKickSignal",
                     sig, strsignal(sig));
  }
  if ((sa.sa_flags & SA_SIGINFO) != 0 || sa.sa_handler != SIG_DFL) {
    return MakeError(Errc::kUnsupported,
                     "the kick signal {} ({}) already has a handler in this "
                     "process; strata installs its own, so choose a free "
                     "signal with SetKickSignal",
                     sig, strsignal(sig));
  }
  struct sigaction mine = {};
  mine.sa_sigaction = handler;
  // SA_RESTART: a kick that lands while an exit handler is in a system call
  // (a write to the console, an eventfd) restarts it instead of failing it.
  mine.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&mine.sa_mask);
  if (sigaction(sig, &mine, nullptr) != 0) return SysError("sigaction({})", sig);
  return Ok();
}

}  // namespace

Status Vcpu::Run() {
  if (const CurrentGuest* g = CurrentGuestOfThisThread()) {
    return MakeError(Errc::kBusy,
                     "this thread is already running vCPU {}; a thread runs "
                     "one vCPU at a time",
                     g->vcpu->id());
  }
  if (Status s = InstallKickHandler(&Vcpu::OnKickSignal); !s) return s;
  // Blocked until the runner and this thread's record are published, so a
  // kick is never delivered to a thread that cannot tell whose it is (see
  // core/current_guest.h); unblocked for the whole loop below.
  sigset_t old_mask = BlockKickSignal();
  {
    std::lock_guard lk(m_);
    if (has_runner_) {
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      return MakeError(Errc::kBusy,
                       "vCPU {} is already running on another thread", id_);
    }
    has_runner_ = true;
    runner_ = pthread_self();
    runner_thread_.store(runner_, std::memory_order_release);
    if (state_ == VcpuState::kIdle) state_ = VcpuState::kRunning;
  }
  {
    std::lock_guard lk(vm_->runners_mutex_);
    ++vm_->runners_;
    vm_->started_.store(true, std::memory_order_release);
  }
  Status result = Ok();
  internal::SetCurrentGuest(&record_);
  UnblockKickSignal();

  VmExit exit;
  while (result) {
    // Order matters (see current_guest.h): clear immediate_exit, then look
    // at requests and kicks, then enter. A request or kick made after the
    // look finds immediate_exit set, or the signal. The clear is a seq_cst
    // exchange and the look a seq_cst load, so the two cannot be reordered
    // (the store-buffer case).
    backend_->ClearImmediateExit();
    if (requests_.load(std::memory_order_seq_cst)) {
      if (!ServiceRequests()) break;
      continue;
    }
    // A kick missed by this look still interrupts the entry (immediate_exit
    // or the signal), so the load may be plain; only a set flag needs the
    // exchange.
    if (kick_pending_.load(std::memory_order_relaxed) &&
        kick_pending_.exchange(false, std::memory_order_acq_rel)) {
      Bump(stats_.kicks);
      continue;
    }
    Bump(stats_.entries);
    Status s = backend_->Run(&exit);
    if (!s) {
      FailVm(fmt::format("vCPU {}: {}", id_, s.error().message()));
      result = std::move(s);
      break;
    }
    Dispatch(exit);
  }
  BlockKickSignal();
  {
    std::lock_guard lk(m_);
    has_runner_ = false;
    runner_thread_.store(pthread_t{}, std::memory_order_release);
    state_ = holders_ > 0 ? VcpuState::kFrozen : VcpuState::kIdle;
    return_requested_ = false;
    cv_.notify_all();
  }
  // No new kick signal can be queued to this thread now (has_runner_ is
  // false); take the ones in flight before the caller's mask returns.
  ConsumeKickSignals();
  internal::SetCurrentGuest(nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  {
    // Last touch of the VM: Vm::Shutdown may free it once runners_ is 0.
    std::lock_guard lk(vm_->runners_mutex_);
    --vm_->runners_;
    vm_->runners_cv_.notify_all();
  }
  return result;
}

void Vcpu::FailVm(const std::string& what) {
  vm_->log().error("{}", what);
  vm_->RequestStop(ExitStatus::VmmError(what));
}

// Statistics wrap the dispatcher, not each handler.
void Vcpu::Dispatch(VmExit& exit) {
  Bump(stats_.exits[static_cast<size_t>(exit.kind)]);
  if (exit.kind == ExitKind::kArch) {
    auto r = static_cast<size_t>(exit.arch.reason);
    if (r < stats_.arch_exits.size()) Bump(stats_.arch_exits[r]);
  }
  DispatchInner(exit);
}

void Vcpu::Sleep() {
  // Only without an in-kernel interrupt controller: sleep in the VMM until
  // something kicks or interrupts this vCPU.
  std::unique_lock lk(m_);
  state_ = VcpuState::kSleeping;
  cv_.notify_all();
  cv_.wait(lk, [&] {
    return kick_pending_.load(std::memory_order_acquire) ||
           requests_.load(std::memory_order_acquire);
  });
  state_ = VcpuState::kRunning;
  cv_.notify_all();
}

void Vcpu::DispatchInner(VmExit& exit) {
  switch (exit.kind) {
    case ExitKind::kNone:
      return;
    case ExitKind::kIo:
      if (vm_->has_coalesced_.load(std::memory_order_acquire)) {
        vm_->DrainCoalesced();
      }
      HandleIo(exit.io);
      return;
    case ExitKind::kMmio:
      if (vm_->has_coalesced_.load(std::memory_order_acquire)) {
        vm_->DrainCoalesced();
      }
      HandleMmio(exit.mmio);
      return;
    case ExitKind::kHalt:
      Sleep();
      return;
    case ExitKind::kShutdown:
      vm_->log().error("vCPU {}: guest shut down (triple fault)\n{}", id_,
                       DumpRegisters());
      vm_->RequestStop(ExitStatus::Crash(
          fmt::format("vCPU {}: guest shut down (triple fault)", id_)));
      return;
    case ExitKind::kSystemEvent:
      switch (exit.event) {
        case SystemEvent::kPowerOff:
          vm_->RequestStop(ExitStatus::PowerOff());
          return;
        case SystemEvent::kReset:
          vm_->RequestStop(ExitStatus::Reset());
          return;
        case SystemEvent::kCrash:
          vm_->RequestStop(
              ExitStatus::Crash(fmt::format("vCPU {}: guest crashed", id_)));
          return;
        case SystemEvent::kOther:
          break;
      }
      FailVm(fmt::format("vCPU {}: unhandled system event (raw reason {})",
                         id_, exit.raw_reason));
      return;
    case ExitKind::kFailEntry:
      FailVm(fmt::format(
          "vCPU {}: VM entry failed (hardware reason {:#x} on host CPU {}); "
          "the register state is invalid for this host\n{}",
          id_, exit.fail_entry.hardware_reason, exit.fail_entry.host_cpu,
          DumpRegisters()));
      return;
    case ExitKind::kInternalError: {
      std::string data;
      for (uint32_t i = 0; i < exit.internal.ndata && i < 16; ++i) {
        data += fmt::format(" {:#x}", exit.internal.data[i]);
      }
      FailVm(fmt::format(
          "vCPU {}: {} internal error: {} (suberror {}, data:{})\n{}", id_,
          vm_->backend_->name(), InternalErrorName(exit.internal.kind),
          exit.internal.suberror, data, DumpRegisters()));
      return;
    }
    case ExitKind::kArch: {
      auto r = static_cast<size_t>(exit.arch.reason);
      ArchExitHandler* h =
          r < vm_->arch_handlers_.size() && vm_->arch_handlers_[r]
              ? &vm_->arch_handlers_[r]
              : nullptr;
      if (h == nullptr) {
        FailVm(fmt::format("vCPU {}: unhandled {} exit {}\n{}", id_,
                           md::kArchName, md::ArchExitName(exit.arch.reason),
                           DumpRegisters()));
        return;
      }
      if (!(*h)(*this, exit.arch) && !vm_->stop_requested()) {
        FailVm(fmt::format("vCPU {}: {} exit handler failed", id_,
                           md::ArchExitName(exit.arch.reason)));
      }
      return;
    }
    case ExitKind::kUnknown:
    case ExitKind::kCount:
      break;
  }
  FailVm(fmt::format("vCPU {}: unknown exit (raw reason {}); stopping the "
                     "VM\n{}",
                     id_, exit.raw_reason, DumpRegisters()));
}

// One access of an I/O or MMIO exit: a hit in this vCPU's cache inline,
// the bus's full dispatch otherwise. False, with the VM stopped, if the bus
// refuses it (fatal unclaimed accesses).
bool Vcpu::BusAccess(Bus& bus, BusCache& cache, uint64_t addr, uint32_t size,
                     bool write, uint8_t* data) {
  const IoContext ctx{this};
  if (write) {
    const uint64_t v = LoadLe(data, size);
    if (bus.CachedWrite(ctx, addr, size, v, cache)) return true;
    Status s = bus.Write(ctx, addr, size, v, &cache);
    if (s) return true;
    FailVm(fmt::format("vCPU {}: {}", id_, s.error().message()));
    return false;
  }
  uint64_t v;
  if (!bus.CachedRead(ctx, addr, size, cache, &v)) {
    Result<uint64_t> r = bus.Read(ctx, addr, size, &cache);
    if (!r) {
      FailVm(fmt::format("vCPU {}: {}", id_, r.error().message()));
      return false;
    }
    v = *r;
  }
  StoreLe(data, size, v);
  return true;
}

void Vcpu::HandleIo(const IoExit& io) {
  Bus& bus = vm_->pio_bus();
  for (uint32_t i = 0; i < io.count; ++i) {
    uint8_t* p = io.data + static_cast<size_t>(i) * io.size;
    if (!BusAccess(bus, pio_cache_, io.port, io.size, io.write, p)) return;
  }
}

void Vcpu::HandleMmio(const MmioExit& mmio) {
  BusAccess(vm_->mmio_bus(), mmio_cache_, mmio.gpa, mmio.size, mmio.write,
            mmio.data);
}

// ------------------------------------------------------------------ Vm ----

namespace {

// The buses' accelerator: the backend, noting when coalescing starts so the
// run loop drains the ring only for VMs that use it.
class VmBusAccelerator final : public BusAccelerator {
 public:
  VmBusAccelerator(VmBackend* be, std::atomic<bool>* has_coalesced)
      : be_(be), has_coalesced_(has_coalesced) {}
  Status AssignIoEventFd(BusKind kind, uint64_t addr, uint32_t size,
                         std::optional<uint64_t> datamatch, int fd,
                         bool assign) override {
    return be_->AssignIoEventFd(kind, addr, size, datamatch, fd, assign);
  }
  Status SetCoalescedZone(BusKind kind, uint64_t addr, uint64_t size,
                          bool add) override {
    STRATA_TRY(be_->SetCoalescedZone(kind, addr, size, add));
    if (add) has_coalesced_->store(true, std::memory_order_release);
    return Ok();
  }

 private:
  VmBackend* be_;
  std::atomic<bool>* has_coalesced_;
};

}  // namespace

Vm::Vm(const VmOptions& opts, std::unique_ptr<VmBackend> backend)
    : opts_(opts),
      logger_(opts.logger ? opts.logger : DefaultLogger()),
      backend_(std::move(backend)),
      pio_bus_(BusKind::kPio),
      mmio_bus_(BusKind::kMmio),
      vcpus_(new std::atomic<Vcpu*>[opts.max_vcpus]),
      arch_handlers_(static_cast<size_t>(md::ArchExitReason::kCount)) {
  for (uint32_t i = 0; i < opts.max_vcpus; ++i) vcpus_[i].store(nullptr);
  memory_.backing_ = opts.memory_backing;
  accel_ = std::make_unique<VmBusAccelerator>(backend_.get(), &has_coalesced_);
  pio_bus_.AttachAccelerator(accel_.get());
  mmio_bus_.AttachAccelerator(accel_.get());
  pio_bus_.set_logger(logger_);
  mmio_bus_.set_logger(logger_);
}

Vm::~Vm() {
  Status s = Shutdown();
  STRATA_CHECK(s.has_value(), "destroying VM '{}': {}", opts_.name,
               s ? "" : s.error().message());
  for (auto& v : owned_vcpus_) {
    std::lock_guard lk(v->m_);
    STRATA_CHECK(v->holders_ == 0 && v->lock_requests_ == 0,
                 "destroying VM '{}' while a VcpuLock on vCPU {} is held",
                 opts_.name, v->id());
  }
}

Result<std::unique_ptr<Vm>> Vm::Create(const VmOptions& opts,
                                       std::unique_ptr<VmBackend> backend) {
  if (backend == nullptr) {
    return MakeError(Errc::kInvalidArgument, "no hypervisor backend given");
  }
  uint32_t host_max = backend->HostMaxVcpus();
  if (opts.max_vcpus == 0 || opts.max_vcpus > host_max) {
    return MakeError(Errc::kOutOfRange,
                     "maximum vCPU count {} is outside 1..{} (the host's "
                     "limit, KVM_CAP_MAX_VCPUS)",
                     opts.max_vcpus, host_max);
  }
  STRATA_TRY(opts.topology.Validate(UINT32_MAX));
  return std::unique_ptr<Vm>(new Vm(opts, std::move(backend)));
}

Status Vm::Shutdown() {
  if (CurrentVcpuOf(*this) != nullptr) {
    return MakeError(Errc::kBusy,
                     "VM '{}' cannot be shut down from its own vCPU {} (it "
                     "would wait for itself); call RequestStop instead",
                     opts_.name, CurrentVcpu()->id());
  }
  std::unique_lock lk(runners_mutex_);
  if (runners_ > 0 && !stop_requested()) {
    lk.unlock();
    RequestStop(ExitStatus::Stopped(
        fmt::format("VM '{}' shut down while its vCPUs were running",
                    opts_.name)));
    lk.lock();
  }
  runners_cv_.wait(lk, [&] { return runners_ == 0; });
  lk.unlock();
  // Then the drivers: ask each holder to let go, wait for all.
  std::vector<DriverHold*> holds;
  {
    std::lock_guard hl(holds_mutex_);
    shutting_down_ = true;
    holds = holds_;
  }
  for (DriverHold* h : holds) {
    std::unique_lock hl(holds_mutex_);
    // Still registered? (It may have gone away since the snapshot.) While
    // its callback runs, ~DriverHold waits (unless the callback itself
    // destroys the hold, on this thread).
    if (std::find(holds_.begin(), holds_.end(), h) == holds_.end()) continue;
    h->callback_thread_ = pthread_self();
    h->in_callback_ = true;
    hl.unlock();
    h->RequestRelease();
    hl.lock();
    if (std::find(holds_.begin(), holds_.end(), h) != holds_.end()) {
      h->in_callback_ = false;
    }
    holds_cv_.notify_all();
  }
  std::unique_lock hl(holds_mutex_);
  holds_cv_.wait(hl, [&] { return holds_.empty(); });
  return Ok();
}

Vcpu* Vm::vcpu(uint32_t id) const {
  if (id >= opts_.max_vcpus) return nullptr;
  return vcpus_[id].load(std::memory_order_acquire);
}

uint32_t Vm::vcpu_count() const {
  std::lock_guard lk(create_mutex_);
  return static_cast<uint32_t>(owned_vcpus_.size());
}

Result<Vcpu*> Vm::CreateVcpu(uint32_t id) {
  if (id >= opts_.max_vcpus) {
    return MakeError(Errc::kOutOfRange,
                     "vCPU id {} is outside this VM's range 0..{} (max vCPUs "
                     "is fixed at creation)",
                     id, opts_.max_vcpus - 1);
  }
  if (Vcpu* v = vcpus_[id].load(std::memory_order_acquire)) return v;
  std::lock_guard lk(create_mutex_);
  if (Vcpu* v = vcpus_[id].load(std::memory_order_relaxed)) return v;
  auto be = STRATA_TRY_CTX(backend_->CreateVcpu(id),
                           fmt::format("creating vCPU {}", id));
  std::unique_ptr<Vcpu> v(new Vcpu(this, id, std::move(be)));
  if (writer_active_) {
    // Born held: the active writer releases it with the others.
    v->lock_requests_ = 1;
    v->holders_ = 1;
    v->state_ = VcpuState::kFrozen;
    v->requests_.store(true);
    writer_frozen_.push_back(v.get());
  }
  if (stop_requested()) v->requests_.store(true);
  Vcpu* raw = v.get();
  owned_vcpus_.push_back(std::move(v));
  vcpus_[id].store(raw, std::memory_order_release);
  return raw;
}

Result<const MemorySegment*> Vm::AddMemory(std::string name, uint64_t gpa,
                                           uint64_t size) {
  VmWriteLock wl(*this);
  const MemorySegment* seg =
      STRATA_TRY(memory_.AddSegment(std::move(name), gpa, size));
  Status s = backend_->MapMemory(*seg);
  if (!s) {
    (void)memory_.RemoveSegment(gpa);
    return std::move(s).error();
  }
  return seg;
}

Status Vm::RemoveMemory(uint64_t gpa) {
  VmWriteLock wl(*this);
  const MemorySegment* seg = memory_.Find(gpa);
  if (seg == nullptr || seg->gpa != gpa) {
    return MakeError(Errc::kNotFound, "no memory segment starts at {:#x}", gpa);
  }
  STRATA_TRY(backend_->UnmapMemory(*seg));
  return memory_.RemoveSegment(gpa);
}

Status Vm::ReadMemory(uint64_t gpa, void* dst, uint64_t len) {
  VmReadLock rl(*this);
  return memory_.Read(gpa, dst, len);
}

Status Vm::WriteMemory(uint64_t gpa, const void* src, uint64_t len) {
  VmReadLock rl(*this);
  return memory_.Write(gpa, src, len);
}

Status Vm::SetIrq(const md::IrqPin& pin, bool level) {
  VmReadLock rl(*this);
  if (irq_controller_) return irq_controller_->SetPin(pin, level);
  return backend_->SetIrq(pin, level);
}

Status Vm::SetIrqController(std::shared_ptr<IrqController> controller) {
  if (started_.load(std::memory_order_acquire)) {
    return MakeError(Errc::kBusy,
                     "the interrupt controller must be attached before the "
                     "first vCPU runs");
  }
  irq_controller_ = std::move(controller);
  return Ok();
}

Status Vm::SignalMsi(const md::MsiMessage& msi) {
  VmReadLock rl(*this);
  return backend_->SignalMsi(msi);
}

Result<std::unique_ptr<IrqFd>> Vm::NewIrqFd(std::shared_ptr<IrqFdBackend> be,
                                            uint32_t gsi, bool resample,
                                            bool owns_route,
                                            std::string_view what) {
  auto drop_route = [&] {
    if (owns_route) (void)be->RemoveRoute(gsi);
  };
  UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) {
    Error e = SysError("eventfd for the irqfd of {}", what);
    drop_route();
    return e;
  }
  UniqueFd rfd;
  if (resample) {
    rfd.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!rfd) {
      Error e = SysError("eventfd for the resample fd of {}", what);
      drop_route();
      return e;
    }
  }
  Status s = be->AssignIrqFd(gsi, fd.get(), rfd.get(), /*assign=*/true);
  if (!s) {
    drop_route();
    return std::move(s).error().Wrap(fmt::format("irqfd for {}", what));
  }
  return std::unique_ptr<IrqFd>(new IrqFd(std::move(be), gsi, std::move(fd),
                                          std::move(rfd), owns_route));
}

Result<std::unique_ptr<IrqFd>> Vm::AddIrqFd(const md::IrqPin& pin,
                                            bool level) {
  std::shared_ptr<IrqFdBackend> be = backend_->irqfds();
  if (!be) {
    return MakeError(Errc::kUnsupported,
                     "irqfd for {} needs an in-kernel interrupt controller",
                     md::IrqPinName(pin));
  }
  uint32_t gsi = STRATA_TRY(be->PinGsi(pin));
  return NewIrqFd(std::move(be), gsi, level, /*owns_route=*/false,
                  md::IrqPinName(pin));
}

Result<std::unique_ptr<IrqFd>> Vm::AddMsiFd(const md::MsiMessage& msi) {
  std::shared_ptr<IrqFdBackend> be = backend_->irqfds();
  if (!be) {
    return MakeError(Errc::kUnsupported,
                     "an MSI irqfd needs an in-kernel interrupt controller");
  }
  uint32_t gsi = STRATA_TRY(be->AddRoute(msi));
  return NewIrqFd(std::move(be), gsi, /*resample=*/false, /*owns_route=*/true,
                  "an MSI");
}

Result<std::unique_ptr<IrqFd>> Vm::AddHvSintFd(const HvSint& sint, bool ack) {
  const std::string what =
      fmt::format("SynIC SINT {} of VP {}", sint.sint, sint.vp_index);
  std::shared_ptr<IrqFdBackend> be = backend_->irqfds();
  if (!be) {
    return MakeError(Errc::kUnsupported,
                     "an irqfd for {} needs an in-kernel interrupt controller",
                     what);
  }
  uint32_t gsi = STRATA_TRY(be->AddRoute(sint));
  return NewIrqFd(std::move(be), gsi, ack, /*owns_route=*/true, what);
}

Status Vm::SetPinMsiRoute(const md::IrqPin& pin,
                          const std::optional<md::MsiMessage>& msi) {
  std::shared_ptr<IrqFdBackend> be = backend_->irqfds();
  if (!be) {
    return MakeError(Errc::kUnsupported,
                     "a pin route for {} needs GSI routing in the hypervisor",
                     md::IrqPinName(pin));
  }
  return be->SetPinMsiRoute(pin, msi);
}

IrqFd::~IrqFd() {
  Status s = be_->AssignIrqFd(gsi_, fd_.get(), resample_fd_.get(),
                             /*assign=*/false);
  if (!s) Log().warn("removing the irqfd of GSI {}: {}", gsi_, s.error().message());
  if (owns_route_) (void)be_->RemoveRoute(gsi_);
}

Status IrqFd::Trigger() {
  const uint64_t one = 1;
  for (;;) {
    ssize_t r = write(fd_.get(), &one, sizeof(one));
    if (r == sizeof(one)) return Ok();
    if (r < 0 && errno == EINTR) continue;
    // EAGAIN: the counter is at its maximum, i.e. already pending.
    if (r < 0 && errno == EAGAIN) return Ok();
    return SysError("triggering the irqfd of GSI {}", gsi_);
  }
}

const md::MachineOptions& Vm::machine_options() const {
  return backend_->machine_options();
}

Status Vm::SetArchExitHandler(md::ArchExitReason r, ArchExitHandler h) {
  auto i = static_cast<size_t>(r);
  if (i >= arch_handlers_.size()) {
    return MakeError(Errc::kInvalidArgument, "no {} exit reason {}",
                     md::kArchName, i);
  }
  if (started_.load(std::memory_order_acquire)) {
    return MakeError(Errc::kBusy,
                     "the {} exit handler must be installed before the first "
                     "vCPU runs",
                     md::ArchExitName(r));
  }
  arch_handlers_[i] = std::move(h);
  return Ok();
}

void Vm::RequestStop(ExitStatus status) {
  {
    std::lock_guard lk(stop_mutex_);
    if (!exit_status_) exit_status_ = std::move(status);
  }
  stop_requested_.store(true, std::memory_order_release);
  for (uint32_t i = 0; i < opts_.max_vcpus; ++i) {
    Vcpu* v = vcpu(i);
    if (v == nullptr) continue;
    std::lock_guard lk(v->m_);
    v->requests_.store(true, std::memory_order_release);
    v->InterruptLocked();
  }
}

std::optional<ExitStatus> Vm::exit_status() const {
  std::lock_guard lk(stop_mutex_);
  return exit_status_;
}

void Vm::DrainCoalesced() {
  std::lock_guard lk(coalesced_mutex_);
  backend_->DrainCoalesced([&](const CoalescedWrite& w) {
    Bus& bus = w.bus == BusKind::kPio ? pio_bus_ : mmio_bus_;
    stats_.coalesced_writes.fetch_add(1, std::memory_order_relaxed);
    Status s = bus.Write(IoContext::Device(), w.addr, w.size, w.value);
    if (!s) {
      log().error("coalesced write at {:#x}: {}", w.addr, s.error().message());
      RequestStop(ExitStatus::VmmError(s.error().message()));
    }
  });
}

std::string Vm::DumpStats() const {
  std::string out = fmt::format("VM '{}' statistics:\n", opts_.name);
  std::vector<Vcpu*> vcpus;
  {
    std::lock_guard lk(create_mutex_);
    for (auto& v : owned_vcpus_) vcpus.push_back(v.get());
  }
  std::sort(vcpus.begin(), vcpus.end(),
            [](Vcpu* a, Vcpu* b) { return a->id() < b->id(); });
  for (Vcpu* v : vcpus) {
    const VcpuStats& s = v->stats();
    out += fmt::format("  vcpu {}: entries {}, kicks {}, requests {}, "
                       "completions {}",
                       v->id(), s.entries.load(), s.kicks.load(),
                       s.requests.load(), s.completions.load());
    for (size_t k = 0; k < s.exits.size(); ++k) {
      if (uint64_t n = s.exits[k].load()) {
        out += fmt::format(", {} {}", ExitKindName(static_cast<ExitKind>(k)), n);
      }
    }
    for (size_t k = 1; k < s.arch_exits.size(); ++k) {
      if (uint64_t n = s.arch_exits[k].load()) {
        out += fmt::format(", {} {}",
                           md::ArchExitName(static_cast<md::ArchExitReason>(k)),
                           n);
      }
    }
    out += "\n";
  }
  out += fmt::format(
      "  kick signals: sent {}, delivered {}, stray {}\n"
      "  unclaimed accesses: pio {}, mmio {}\n"
      "  coalesced writes replayed: {}\n",
      stats_.kick_signals_sent.load(), stats_.kick_signals_delivered.load(),
      stats_.kick_signals_stray.load(), pio_bus_.unclaimed_count(),
      mmio_bus_.unclaimed_count(), stats_.coalesced_writes.load());
  return out;
}

uint64_t Vm::AddRevokeCallback(RevokeCallback cb) {
  std::lock_guard lk(revoke_mutex_);
  uint64_t id = next_revoke_id_++;
  revoke_callbacks_.emplace_back(
      id, std::make_shared<RevokeCallback>(std::move(cb)));
  return id;
}

void Vm::RemoveRevokeCallback(uint64_t id) {
  std::lock_guard lk(revoke_mutex_);
  auto it = std::find_if(revoke_callbacks_.begin(), revoke_callbacks_.end(),
                         [&](const auto& e) { return e.first == id; });
  if (it != revoke_callbacks_.end()) revoke_callbacks_.erase(it);
}

bool Vm::LeaseRenewalBlocked() {
  std::lock_guard g(lease_gate_mutex_);
  STRATA_CHECK(!leases_gated_ ||
                   !pthread_equal(lease_gate_writer_, pthread_self()),
               "Lease::Begin on VM '{}' from its own writer (a revoke "
               "callback or a VmWriteLock holder) would wait for itself",
               opts_.name);
  return leases_gated_;
}

void Vm::WaitForLeaseRenewal() {
  std::unique_lock g(lease_gate_mutex_);
  lease_gate_cv_.wait(g, [&] { return !leases_gated_; });
}

// ------------------------------------------------------------ the locks ----

VcpuLock::VcpuLock(Vcpu& v) : v_(v) {
  Vcpu* self = CurrentVcpu();
  STRATA_CHECK(self == nullptr || self == &v,
               "VcpuLock on vCPU {} from the run loop of vCPU {}: a vCPU must "
               "never wait for another (two doing it to each other "
               "deadlock); use Vcpu::Post to run the work on the target",
               v.id(), self != nullptr ? self->id() : 0);
  v_.Acquire(Vcpu::Hold::kFreeze);
}

VcpuLock::~VcpuLock() { v_.Release(); }

VmReadLock::VmReadLock(Vm& vm) : vm_(vm) {
  if (t_write_locked == &vm) return;  // the writer may read its own map
  vm_.map_lock_.lock_shared();
  if (t_read_lock_depth < kMaxTrackedReadLocks) {
    t_read_locked[t_read_lock_depth] = &vm;
  }
  ++t_read_lock_depth;
}

VmReadLock::~VmReadLock() {
  if (t_write_locked == &vm_) return;
  --t_read_lock_depth;
  if (t_read_lock_depth < kMaxTrackedReadLocks) {
    t_read_locked[t_read_lock_depth] = nullptr;
  }
  vm_.map_lock_.unlock_shared();
}

VmWriteLock::VmWriteLock(Vm& vm) : vm_(vm) {
  STRATA_CHECK(t_write_locked != &vm,
               "VmWriteLock on VM '{}' is not recursive", vm.name());
  STRATA_CHECK(internal::LeaseAccessesOfThisThread() == 0,
               "VmWriteLock on VM '{}' inside a lease access would wait for "
               "that access; end it first",
               vm.name());
  STRATA_CHECK(!ThisThreadHoldsReadLock(&vm),
               "VmWriteLock on VM '{}' while holding its VmReadLock would "
               "deadlock",
               vm.name());
  if (Vcpu* self = CurrentVcpuOf(vm)) {
    if (!vm.writer_mutex_.try_lock()) {
      // Another writer may be quiescing vCPUs, this one included: wait
      // BLOCKED so it can.
      BlockedSection blocked(*self);
      vm.writer_mutex_.lock();
    }
  } else {
    vm.writer_mutex_.lock();
  }
  std::vector<Vcpu*> snapshot;
  {
    std::lock_guard lk(vm.create_mutex_);
    vm.writer_active_ = true;
    for (auto& v : vm.owned_vcpus_) snapshot.push_back(v.get());
  }
  for (Vcpu* v : snapshot) {
    v->Acquire(Vcpu::Hold::kQuiesce);
    held_.push_back(v);
  }
  {
    // Before the first revocation: from here until the map change is done,
    // a lease that is renewed would translate the old map (see
    // Lease::Begin).
    std::lock_guard g(vm.lease_gate_mutex_);
    vm.leases_gated_ = true;
    vm.lease_gate_writer_ = pthread_self();
  }
  {
    std::lock_guard lk(vm.revoke_mutex_);
    for (auto& [id, cb] : vm.revoke_callbacks_) (*cb)();
  }
  vm.map_lock_.lock();
  t_write_locked = &vm;
}

VmWriteLock::~VmWriteLock() {
  t_write_locked = nullptr;
  {
    // Still holding the map lock exclusively: a lease renewed from now on
    // (under the read lock) sees the new map.
    std::lock_guard g(vm_.lease_gate_mutex_);
    vm_.leases_gated_ = false;
  }
  vm_.lease_gate_cv_.notify_all();
  vm_.map_lock_.unlock();
  {
    std::lock_guard lk(vm_.create_mutex_);
    vm_.writer_active_ = false;
    held_.insert(held_.end(), vm_.writer_frozen_.begin(),
                 vm_.writer_frozen_.end());
    vm_.writer_frozen_.clear();
  }
  for (Vcpu* v : held_) v->Release();
  vm_.writer_mutex_.unlock();
}

}  // namespace strata
