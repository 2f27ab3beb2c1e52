#include "core/driver.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "core/check.h"

namespace strata {

namespace {
// Lease accesses the calling thread is inside: Begin must not wait for a
// writer then (the writer may be waiting for one of them), nor may the
// thread take the write lock.
thread_local int t_lease_accesses = 0;
}  // namespace

int internal::LeaseAccessesOfThisThread() { return t_lease_accesses; }

// ---------------------------------------------------------------- Lease ----

Lease::Access::Access(std::unique_lock<std::mutex> lk, std::span<uint8_t> d)
    : lk_(std::move(lk)), data_(d) {
  ++t_lease_accesses;
}

Lease::Access::Access(Access&& other) noexcept
    : lk_(std::move(other.lk_)), data_(other.data_) {
  other.data_ = {};
}

Lease::Access::~Access() {
  if (lk_.owns_lock()) --t_lease_accesses;
}

Lease::Lease(Vm& vm, uint64_t gpa, uint64_t size,
             std::function<void()> on_revoke)
    : vm_(vm), gpa_(gpa), size_(size), on_revoke_(std::move(on_revoke)) {}

Lease::~Lease() {
  vm_.RemoveRevokeCallback(callback_id_);
  if (hold_ != nullptr) hold_->leases_.fetch_sub(1, std::memory_order_acq_rel);
}

void Lease::Revoke() {
  {
    // Waits for an access in progress: the writer must not change the map
    // under a copy.
    std::lock_guard lk(use_mu_);
    if (!valid_) return;
    valid_ = false;
    host_ = {};
  }
  revocations_.fetch_add(1, std::memory_order_relaxed);
  if (on_revoke_) on_revoke_();
}

Result<Lease::Access> Lease::Begin() {
  std::unique_lock lk(use_mu_);
  while (!valid_) {
    {
      VmReadLock rl(vm_);
      // A writer revokes leases before it takes the map lock; between the
      // two the read lock is free but the map is about to change.
      if (!vm_.LeaseRenewalBlocked()) {
        auto span = vm_.memory().Translate(gpa_, size_);
        if (!span) {
          return MakeError(Errc::kOutOfRange,
                           "lease [{:#x}, {:#x}) is no longer guest RAM: {}",
                           gpa_, gpa_ + size_, span.error().message());
        }
        host_ = *span;
        valid_ = true;
        break;
      }
    }
    if (t_lease_accesses > 0) {
      return MakeError(Errc::kBusy,
                       "lease [{:#x}, {:#x}): VM '{}' is changing its memory "
                       "map and this thread holds another lease access the "
                       "change may wait for; end it and retry",
                       gpa_, gpa_ + size_, vm_.name());
    }
    // Wait for that writer without use_mu_ (the next writer's revocation
    // takes it) and without the read lock (its map lock needs it gone).
    lk.unlock();
    vm_.WaitForLeaseRenewal();
    lk.lock();
  }
  return Access(std::move(lk), host_);
}

// ----------------------------------------------------------- DriverHold ----

Result<std::unique_ptr<DriverHold>> DriverHold::Acquire(
    Vm& vm, std::string name, std::function<void()> on_release_requested) {
  std::unique_ptr<DriverHold> h(
      new DriverHold(vm, std::move(name), std::move(on_release_requested)));
  std::lock_guard lk(vm.holds_mutex_);
  if (vm.shutting_down_) {
    return MakeError(Errc::kBusy,
                     "VM '{}' is shutting down; no new driver holds",
                     vm.name());
  }
  vm.holds_.push_back(h.get());
  return h;
}

DriverHold::~DriverHold() {
  STRATA_CHECK(leases_.load() == 0,
               "driver hold '{}' released with {} leases still alive",
               name_, leases_.load());
  std::unique_lock lk(vm_.holds_mutex_);
  // Vm::Shutdown may be running our release callback on another thread.
  vm_.holds_cv_.wait(lk, [&] {
    return !in_callback_ || pthread_equal(callback_thread_, pthread_self());
  });
  auto it = std::find(vm_.holds_.begin(), vm_.holds_.end(), this);
  if (it != vm_.holds_.end()) vm_.holds_.erase(it);
  vm_.holds_cv_.notify_all();
}

void DriverHold::RequestRelease() {
  if (release_requested_.exchange(true)) return;
  if (on_release_requested_) on_release_requested_();
}

Result<std::unique_ptr<Lease>> DriverHold::LeaseMemory(
    uint64_t gpa, uint64_t size, std::function<void()> on_revoke) {
  if (size == 0) {
    return MakeError(Errc::kInvalidArgument, "a lease needs a non-empty range");
  }
  std::unique_ptr<Lease> l(new Lease(vm_, gpa, size, std::move(on_revoke)));
  {
    VmReadLock rl(vm_);
    STRATA_TRY(vm_.memory().Translate(gpa, size));  // RAM now, or refuse
  }
  Lease* raw = l.get();
  l->callback_id_ = vm_.AddRevokeCallback([raw] { raw->Revoke(); });
  l->hold_ = this;
  leases_.fetch_add(1, std::memory_order_acq_rel);
  return l;
}

Result<std::unique_ptr<IoEventFd>> DriverHold::Doorbell(
    BusKind bus, uint64_t addr, uint32_t size,
    std::optional<uint64_t> datamatch) {
  Bus& b = bus == BusKind::kPio ? vm_.pio_bus() : vm_.mmio_bus();
  return b.AddIoEventFd(addr, size, datamatch);
}

Result<std::unique_ptr<IrqFd>> DriverHold::MsiFd(const md::MsiMessage& msi) {
  return vm_.AddMsiFd(msi);
}

Result<std::unique_ptr<IrqFd>> DriverHold::PinFd(const md::IrqPin& pin,
                                                 bool level) {
  return vm_.AddIrqFd(pin, level);
}

Result<bool> WaitReadable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return SysError("poll on fd {}", fd);
  }
}

}  // namespace strata
