// strata — the driver interface: device backends that run outside the vCPU
// loop (the analogue of illumos' vmm_drv, which its viona network
// accelerator uses).
//
// Theory. A driver is a thread (or several) of the embedder's that serves a
// device without going through the vCPU loop: the guest rings a doorbell, the
// hypervisor signals an eventfd instead of exiting (ioeventfd), the driver
// thread wakes, moves data through guest memory, and raises an interrupt by
// writing another eventfd (irqfd). Three objects make that safe:
//
//   DriverHold   pins the VM: Vm::Shutdown (and ~Vm) stops the vCPUs, asks
//                every holder to let go (its release callback runs) and waits
//                until each DriverHold is destroyed. Everything below is made
//                through a hold and must be destroyed before it.
//   Lease        a range of guest RAM the driver may touch directly. A lease
//                is *valid* between the translation of its range and the next
//                change of the memory map: the VM write lock revokes every
//                lease (after quiescing the vCPUs, before it takes the map
//                lock) and waits for any access in progress to finish first.
//                Lease::Begin() re-translates a revoked lease under the VM
//                read lock, so a driver just brackets each burst of copying
//                with an Access and never sees a stale pointer. While a
//                writer is between its revocation and the end of its map
//                change, Begin() on a revoked lease waits for it. The optional
//                revoke callback tells the driver its range may have moved;
//                it must not call Begin() itself (checked: it would wait for
//                its own writer).
//   Doorbell / MsiFd / PinFd
//                ioeventfd and irqfd, from core/bus.h and core/irq.h.
//
// Lock order for drivers: Lease::Access → VmReadLock (taking it inside an
// access is fine; Vm::SignalMsi does). A revoke or release callback must
// not wait for the driver thread while that thread may be inside an Access
// (the writer is waiting for the access to end).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "core/bus.h"
#include "core/irq.h"
#include "core/result.h"
#include "core/vm.h"

namespace strata {

class DriverHold;

class Lease {
 public:
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  uint64_t gpa() const { return gpa_; }
  uint64_t size() const { return size_; }
  // How many times a write lock revoked this lease (for diagnostics/tests).
  uint64_t revocations() const {
    return revocations_.load(std::memory_order_relaxed);
  }

  // Access to the leased range. While an Access lives, the range stays
  // where data() says: a writer waits for it before changing the map. Keep
  // accesses short (one copy).
  // Taking the VM write lock inside an access is a checked error (the
  // writer would wait for the access).
  class Access {
   public:
    std::span<uint8_t> data() const { return data_; }
    Access(Access&& other) noexcept;
    Access& operator=(Access&&) = delete;
    ~Access();

   private:
    friend class Lease;
    Access(std::unique_lock<std::mutex> lk, std::span<uint8_t> d);
    std::unique_lock<std::mutex> lk_;
    std::span<uint8_t> data_;
  };

  // Starts an access, re-translating the range first if a writer revoked
  // it. kOutOfRange if the range is no longer guest RAM (the map changed
  // under the driver): the lease stays revoked and a later Begin retries.
  // A revoked lease cannot be renewed while a writer is changing the map:
  // Begin waits for it, or, if the calling thread holds another Access
  // (which that writer may be waiting for), fails with kBusy at once — end
  // the other access and retry.
  Result<Access> Begin();

 private:
  friend class DriverHold;
  Lease(Vm& vm, uint64_t gpa, uint64_t size, std::function<void()> on_revoke);
  void Revoke();  // from the writer, with the vCPUs quiesced

  Vm& vm_;
  const uint64_t gpa_;
  const uint64_t size_;
  std::function<void()> on_revoke_;
  uint64_t callback_id_ = 0;
  std::mutex use_mu_;
  bool valid_ = false;         // use_mu_
  std::span<uint8_t> host_;    // use_mu_, meaningful while valid_
  std::atomic<uint64_t> revocations_{0};
  DriverHold* hold_ = nullptr;
};

class DriverHold {
 public:
  // Pins vm. kBusy once the VM is shutting down. on_release_requested runs
  // (on the thread calling Vm::Shutdown) when the VM wants to go away; the
  // driver should stop and destroy the hold soon after.
  static Result<std::unique_ptr<DriverHold>> Acquire(
      Vm& vm, std::string name, std::function<void()> on_release_requested = {});
  ~DriverHold();
  DriverHold(const DriverHold&) = delete;
  DriverHold& operator=(const DriverHold&) = delete;

  Vm& vm() const { return vm_; }
  const std::string& name() const { return name_; }
  bool release_requested() const {
    return release_requested_.load(std::memory_order_acquire);
  }

  // A lease on [gpa, gpa+size) of guest RAM (kOutOfRange if it is not RAM).
  Result<std::unique_ptr<Lease>> LeaseMemory(
      uint64_t gpa, uint64_t size, std::function<void()> on_revoke = {});
  // A doorbell: guest writes of `size` bytes at addr (value *datamatch
  // only, if given) signal the returned eventfd and never exit.
  Result<std::unique_ptr<IoEventFd>> Doorbell(BusKind bus, uint64_t addr,
                                              uint32_t size,
                                              std::optional<uint64_t> datamatch);
  // Interrupts the driver thread raises with IrqFd::Trigger().
  Result<std::unique_ptr<IrqFd>> MsiFd(const md::MsiMessage& msi);
  Result<std::unique_ptr<IrqFd>> PinFd(const md::IrqPin& pin, bool level);

 private:
  friend class Vm;
  friend class Lease;
  DriverHold(Vm& vm, std::string name, std::function<void()> cb)
      : vm_(vm), name_(std::move(name)), on_release_requested_(std::move(cb)) {}
  void RequestRelease();  // from Vm::Shutdown

  Vm& vm_;
  const std::string name_;
  std::function<void()> on_release_requested_;
  std::atomic<bool> release_requested_{false};
  std::atomic<uint32_t> leases_{0};
  bool in_callback_ = false;      // vm_.holds_mutex_
  pthread_t callback_thread_{};   // vm_.holds_mutex_, valid if in_callback_
};

namespace internal {
// Lease accesses the calling thread is inside (for VmWriteLock's check).
int LeaseAccessesOfThisThread();
}  // namespace internal

// Waits until fd is readable or timeout_ms passes (-1: forever); true if
// readable. For driver threads that wait on a doorbell.
Result<bool> WaitReadable(int fd, int timeout_ms);

}  // namespace strata
