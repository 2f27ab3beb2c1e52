#include "core/vm.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "core/log.h"

namespace strata {

namespace {

std::atomic<uint64_t> g_next_token{1};

// The vCPU whose Run() loop the calling thread is in (whole loop, not only
// the run window). Used to let exit handlers take locks on their own VM.
thread_local Vcpu* t_running_vcpu = nullptr;

// The kick signal is normally blocked and consumed with sigtimedwait(); the
// handler only matters if some thread unblocks it, and then must do nothing
// (the default action would kill the process).
void KickSignalHandler(int, siginfo_t*, void*) {}

void InstallKickHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = KickSignalHandler;
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: interrupt blocking calls
    sigemptyset(&sa.sa_mask);
    sigaction(KickSignal(), &sa, nullptr);
  });
}

uint64_t LoadLe(const uint8_t* p, uint32_t size) {
  uint64_t v = 0;
  std::memcpy(&v, p, size);  // amd64 and arm64 hosts are little endian
  return v;
}

void StoreLe(uint8_t* p, uint32_t size, uint64_t v) { std::memcpy(p, &v, size); }

}  // namespace

std::string_view VcpuStateName(VcpuState s) {
  switch (s) {
    case VcpuState::kIdle: return "idle";
    case VcpuState::kRunning: return "running";
    case VcpuState::kSleeping: return "sleeping";
    case VcpuState::kFrozen: return "frozen";
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
    case ExitKind::kArch: return "arch";
    case ExitKind::kUnknown: return "unknown";
    case ExitKind::kCount: break;
  }
  return "?";
}

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

void Vcpu::KickLocked() {
  kick_pending_.store(true, std::memory_order_release);
  InterruptLocked();
}

void Vcpu::InterruptLocked() {
  backend_->RequestImmediateExit();
  if (has_runner_ && !pthread_equal(runner_, pthread_self())) {
    union sigval sv;
    sv.sival_ptr = reinterpret_cast<void*>(token_);
    if (pthread_sigqueue(runner_, KickSignal(), sv) == 0) {
      GlobalKickStats().sent.fetch_add(1, std::memory_order_relaxed);
    }
  }
  cv_.notify_all();  // a SLEEPING vCPU waits on cv_
}

void Vcpu::Kick() {
  std::lock_guard lk(m_);
  KickLocked();
}

void Vcpu::ReturnFromRun() {
  std::lock_guard lk(m_);
  return_requested_.store(true, std::memory_order_release);
  requests_.store(true, std::memory_order_release);
  InterruptLocked();
}

void Vcpu::Freeze() {
  std::unique_lock lk(m_);
  ++freeze_count_;
  requests_.store(true, std::memory_order_release);
  // From the vCPU's own exit handler: it is not in guest mode and cannot
  // re-enter before the handler returns, so it counts as frozen.
  if (has_runner_ && pthread_equal(runner_, pthread_self())) return;
  while (state_ == VcpuState::kRunning || state_ == VcpuState::kSleeping) {
    InterruptLocked();
    cv_.wait(lk);
  }
  state_ = VcpuState::kFrozen;
}

void Vcpu::Unfreeze() {
  std::lock_guard lk(m_);
  assert(freeze_count_ > 0);
  if (--freeze_count_ == 0) {
    if (state_ == VcpuState::kFrozen) state_ = VcpuState::kIdle;
    cv_.notify_all();
  }
}

bool Vcpu::ParkIfRequested(std::unique_lock<std::mutex>& lk) {
  for (;;) {
    if (vm_->stop_requested() ||
        return_requested_.load(std::memory_order_acquire)) {
      return false;
    }
    if (freeze_count_ == 0) break;
    // Let the freezer in: IDLE, then wait for the last unfreeze.
    if (state_ == VcpuState::kRunning || state_ == VcpuState::kSleeping) {
      state_ = VcpuState::kIdle;
      cv_.notify_all();
    }
    cv_.wait(lk, [&] {
      return (freeze_count_ == 0 && state_ != VcpuState::kFrozen) ||
             vm_->stop_requested() ||
             return_requested_.load(std::memory_order_acquire);
    });
  }
  requests_.store(false, std::memory_order_release);
  state_ = VcpuState::kRunning;
  return true;
}

void Vcpu::ConsumeKickSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  const struct timespec zero = {0, 0};
  siginfo_t si;
  while (sigtimedwait(&set, &si, &zero) >= 0) {
    auto token = reinterpret_cast<uint64_t>(si.si_value.sival_ptr);
    if (si.si_code == SI_QUEUE && token == token_) {
      GlobalKickStats().delivered.fetch_add(1, std::memory_order_relaxed);
    } else {
      GlobalKickStats().stray.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

Status Vcpu::Run() {
  {
    std::lock_guard lk(m_);
    if (has_runner_) {
      return MakeError(Errc::kBusy,
                       "vCPU {} is already running on another thread", id_);
    }
    has_runner_ = true;
    runner_ = pthread_self();
  }
  // Outside guest mode the kick signal stays blocked; the backend unblocks
  // it only while in the guest (see core/current_guest.h).
  sigset_t old_mask = BlockKickSignal();
  sigset_t guest_mask = old_mask;
  sigdelset(&guest_mask, KickSignal());
  Status result = backend_->SetGuestSignalMask(guest_mask);
  Vcpu* const outer = t_running_vcpu;
  t_running_vcpu = this;

  std::unique_lock lk(m_);
  while (result && ParkIfRequested(lk)) {
    lk.unlock();
    for (;;) {
      // Order matters (see current_guest.h): clear immediate_exit, then
      // look at requests and kicks, then enter. A request or kick made
      // after the look finds immediate_exit set, or the signal.
      backend_->ClearImmediateExit();
      if (requests_.load(std::memory_order_acquire)) break;
      if (kick_pending_.exchange(false, std::memory_order_acq_rel)) {
        stats_.kicks.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      VmExit exit;
      stats_.entries.fetch_add(1, std::memory_order_relaxed);
      internal::SetCurrentGuest(&record_);
      Status s = backend_->Run(&exit);
      internal::SetCurrentGuest(nullptr);
      if (!s) {
        FailVm(fmt::format("vCPU {}: {}", id_, s.error().message()));
        break;
      }
      if (exit.kind == ExitKind::kNone) ConsumeKickSignals();
      Dispatch(exit);
    }
    lk.lock();
  }
  state_ = VcpuState::kIdle;
  has_runner_ = false;
  return_requested_.store(false, std::memory_order_release);
  cv_.notify_all();
  lk.unlock();

  t_running_vcpu = outer;
  ConsumeKickSignals();  // don't leave our kicks pending on this thread
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

void Vcpu::FailVm(const std::string& what) {
  Log().error("{}", what);
  vm_->RequestStop(ExitStatus::VmmError(what));
}

// Statistics wrap the dispatcher, not each handler.
void Vcpu::Dispatch(VmExit& exit) {
  stats_.exits[static_cast<size_t>(exit.kind)].fetch_add(
      1, std::memory_order_relaxed);
  if (exit.kind == ExitKind::kArch) {
    auto r = static_cast<size_t>(exit.arch.reason);
    if (r < stats_.arch_exits.size()) {
      stats_.arch_exits[r].fetch_add(1, std::memory_order_relaxed);
    }
  }
  DispatchInner(exit);
}

void Vcpu::DispatchInner(VmExit& exit) {
  switch (exit.kind) {
    case ExitKind::kNone:
      return;
    case ExitKind::kIo:
      HandleIo(exit.io);
      return;
    case ExitKind::kMmio:
      HandleMmio(exit.mmio);
      return;
    case ExitKind::kHalt: {
      // Only without an in-kernel interrupt controller: sleep in the VMM
      // until something kicks or interrupts this vCPU.
      std::unique_lock lk(m_);
      state_ = VcpuState::kSleeping;
      cv_.notify_all();
      cv_.wait(lk, [&] {
        return kick_pending_.load(std::memory_order_acquire) ||
               requests_.load(std::memory_order_acquire);
      });
      state_ = VcpuState::kRunning;
      cv_.notify_all();
      return;
    }
    case ExitKind::kShutdown:
      Log().error("vCPU {}: guest shut down (triple fault)\n{}", id_,
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

void Vcpu::HandleIo(const IoExit& io) {
  Bus& bus = vm_->pio_bus();
  for (uint32_t i = 0; i < io.count; ++i) {
    uint8_t* p = io.data + static_cast<size_t>(i) * io.size;
    if (io.write) {
      Status s = bus.Write(io.port, io.size, LoadLe(p, io.size));
      if (!s) return FailVm(fmt::format("vCPU {}: {}", id_, s.error().message()));
    } else {
      Result<uint64_t> v = bus.Read(io.port, io.size);
      if (!v) return FailVm(fmt::format("vCPU {}: {}", id_, v.error().message()));
      StoreLe(p, io.size, *v);
    }
  }
}

void Vcpu::HandleMmio(const MmioExit& mmio) {
  Bus& bus = vm_->mmio_bus();
  if (mmio.write) {
    Status s = bus.Write(mmio.gpa, mmio.size, LoadLe(mmio.data, mmio.size));
    if (!s) FailVm(fmt::format("vCPU {}: {}", id_, s.error().message()));
  } else {
    Result<uint64_t> v = bus.Read(mmio.gpa, mmio.size);
    if (!v) return FailVm(fmt::format("vCPU {}: {}", id_, v.error().message()));
    StoreLe(mmio.data, mmio.size, *v);
  }
}

// ------------------------------------------------------------------ Vm ----

Vm::Vm(const VmOptions& opts, std::unique_ptr<VmBackend> backend)
    : opts_(opts),
      backend_(std::move(backend)),
      pio_bus_(BusKind::kPio),
      mmio_bus_(BusKind::kMmio),
      vcpus_(new std::atomic<Vcpu*>[opts.max_vcpus]),
      arch_handlers_(static_cast<size_t>(md::ArchExitReason::kCount)) {
  for (uint32_t i = 0; i < opts.max_vcpus; ++i) vcpus_[i].store(nullptr);
}

Vm::~Vm() = default;

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
  InstallKickHandlerOnce();
  return std::unique_ptr<Vm>(new Vm(opts, std::move(backend)));
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
    // Born frozen: the active writer unfreezes it with the others.
    v->freeze_count_ = 1;
    v->state_ = VcpuState::kFrozen;
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

Status Vm::SetIrqLine(uint32_t gsi, bool level) {
  return backend_->SetIrqLine(gsi, level);
}

Status Vm::SignalMsi(uint64_t address, uint32_t data) {
  return backend_->SignalMsi(address, data);
}

void Vm::SetArchExitHandler(md::ArchExitReason r, ArchExitHandler h) {
  auto i = static_cast<size_t>(r);
  assert(i < arch_handlers_.size());
  arch_handlers_[i] = std::move(h);
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

void Vm::AddRevokeCallback(RevokeCallback cb) {
  std::lock_guard lk(writer_mutex_);  // writers run the callbacks
  revoke_callbacks_.push_back(std::move(cb));
}

// --------------------------------------------------------- VmWriteLock ----

VmWriteLock::VmWriteLock(Vm& vm) : vm_(vm) {
  Vcpu* self = t_running_vcpu != nullptr && &t_running_vcpu->vm() == &vm
                   ? t_running_vcpu
                   : nullptr;
  if (self != nullptr && !vm.writer_mutex_.try_lock()) {
    // Another writer is freezing vCPUs, possibly waiting for us: park as
    // IDLE while we wait, then wait out any freeze before running on.
    {
      std::lock_guard lk(self->m_);
      self->state_ = VcpuState::kIdle;
      self->cv_.notify_all();
    }
    vm.writer_mutex_.lock();
    std::unique_lock lk(self->m_);
    self->cv_.wait(lk, [&] {
      return self->freeze_count_ == 0 && self->state_ != VcpuState::kFrozen;
    });
    self->state_ = VcpuState::kRunning;
  } else if (self == nullptr) {
    vm.writer_mutex_.lock();
  }
  std::vector<Vcpu*> snapshot;
  {
    std::lock_guard lk(vm.create_mutex_);
    vm.writer_active_ = true;
    for (auto& v : vm.owned_vcpus_) snapshot.push_back(v.get());
  }
  for (Vcpu* v : snapshot) {
    v->Freeze();
    frozen_.push_back(v);
  }
  vm.map_lock_.lock();
  for (auto& cb : vm.revoke_callbacks_) cb();
}

VmWriteLock::~VmWriteLock() {
  vm_.map_lock_.unlock();
  {
    std::lock_guard lk(vm_.create_mutex_);
    vm_.writer_active_ = false;
    frozen_.insert(frozen_.end(), vm_.writer_frozen_.begin(),
                   vm_.writer_frozen_.end());
    vm_.writer_frozen_.clear();
  }
  for (Vcpu* v : frozen_) v->Unfreeze();
  vm_.writer_mutex_.unlock();
}

}  // namespace strata
