// strata — VMs, vCPUs and their locking protocol.
//
// Theory of operation
// -------------------
// vCPU states. Each Vcpu is in one of four states, guarded by its mutex:
//   IDLE      no thread is in its run loop, nobody holds it.
//   RUNNING   a host thread is inside Vcpu::Run() — in guest mode or handling
//             an exit on the vCPU's behalf.
//   SLEEPING  a thread is inside Run() but waiting in the VMM (e.g. a halted
//             vCPU without an in-kernel interrupt controller).
//   FROZEN    one or more lockers hold the vCPU; Run() waits at the top of
//             its loop until the last one lets go.
// Transitions: IDLE -> RUNNING (Run entry), RUNNING <-> SLEEPING (the loop),
// RUNNING/SLEEPING -> IDLE (the loop noticing a freeze request or a stop),
// IDLE -> FROZEN (a locker), FROZEN -> IDLE (the last unlocker).
//
// Lock classes, in the order they are taken:
//   1. VM write lock (VmWriteLock) — for memory-map changes. Serialises
//      writers, marks the VM "writer active" under the creation mutex,
//      freezes every vCPU that exists, then takes the map lock exclusively.
//      Lease revocation callbacks (device backends holding guest memory)
//      run after that. While a writer is active, a newly created vCPU is
//      born frozen and added to the writer's set, so lazy creation cannot
//      slip a running vCPU past the writer.
//   2. vCPU lock (VcpuLock) — freezes one vCPU: requests the freeze, kicks
//      the vCPU out of guest mode and waits until its loop parks it. Nests:
//      the vCPU runs again when the last freezer unlocks.
//   3. VM read lock (VmReadLock) — the map lock shared: interrupt injection
//      and memory-map readers outside vCPU context. A vCPU handling an exit
//      needs no read lock for guest memory: writers freeze it first.
//
// Calls from a vCPU's own exit handler: freezing the calling vCPU itself is
// a no-op that is still counted (the handler is, by construction, not in
// guest mode), so an exit handler may take the VM write lock. If two vCPUs
// race for the write lock, the loser parks itself IDLE while it waits for
// the writer mutex so that the winner can freeze it — no deadlock.
//
// Lazy vCPU creation. The vCPU table is a fixed array of max_vcpus atomic
// pointers chosen at VM creation. Vm::vcpu(id) is a lock-free acquire load
// and may return nullptr; every path copes with that (a kick, a freeze or an
// interrupt for a vCPU that does not exist yet is a no-op). CreateVcpu(id)
// takes the creation mutex, re-checks, asks the backend, and publishes with
// a release store; if a writer is active the new vCPU starts frozen.
//
// Stopping. Vm::RequestStop(status) records the first status and kicks
// every vCPU; each Run() returns. ExitStatus says why.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/bus.h"
#include "core/current_guest.h"
#include "core/exit.h"
#include "core/guest_memory.h"
#include "core/result.h"
#include "machine/vmmapi_machdep.h"

namespace strata {

class Vm;

enum class VcpuState : uint8_t { kIdle, kRunning, kSleeping, kFrozen };
std::string_view VcpuStateName(VcpuState s);

// Why a VM stopped, and the process exit status bhyverun maps it to.
// VMM-side codes are even so they never collide with the debug-exit
// device's (V << 1) | 1, and never 1 or 77 (kvm-unit-tests' pass and skip).
struct ExitStatus {
  enum class Why : uint8_t {
    kPowerOff,    // guest powered off (ACPI S5, PSCI SYSTEM_OFF): 0
    kGuestExit,   // debug-exit device: (V << 1) | 1
    kReset,       // guest asked for a reset (not supported yet): 2
    kGuestCrash,  // triple fault / shutdown / crash event: 4
    kVmmError,    // strata failed or the guest did something invalid: 6
  };
  Why why = Why::kPowerOff;
  int code = 0;
  std::string message;  // for errors and crashes

  static ExitStatus PowerOff() { return {Why::kPowerOff, 0, ""}; }
  static ExitStatus GuestExit(uint64_t v) {
    return {Why::kGuestExit, static_cast<int>(((v << 1) | 1) & 0xff), ""};
  }
  static ExitStatus Reset() { return {Why::kReset, kExitReset, "guest reset"}; }
  static ExitStatus Crash(std::string m) {
    return {Why::kGuestCrash, kExitGuestCrash, std::move(m)};
  }
  static ExitStatus VmmError(std::string m) {
    return {Why::kVmmError, kExitVmmError, std::move(m)};
  }

  static constexpr int kExitReset = 2;
  static constexpr int kExitGuestCrash = 4;
  static constexpr int kExitVmmError = 6;
  static constexpr int kExitUsage = 8;  // bhyverun: bad options/config
};

// Per-vCPU exit statistics, maintained by the dispatcher wrapper.
struct VcpuStats {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(ExitKind::kCount)>
      exits{};
  std::array<std::atomic<uint64_t>,
             static_cast<size_t>(md::ArchExitReason::kCount)>
      arch_exits{};
  std::atomic<uint64_t> kicks{0};   // kicks consumed by this vCPU
  std::atomic<uint64_t> entries{0}; // guest entries
};

class Vcpu {
 public:
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  uint32_t id() const { return id_; }
  Vm& vm() const { return *vm_; }
  uint64_t token() const { return token_; }
  VcpuState state() const;
  const VcpuStats& stats() const { return stats_; }

  // Runs the vCPU on the calling thread until the VM stops or the vCPU is
  // asked to return (ReturnFromRun). Only one thread may run a vCPU at a
  // time; a second caller gets kBusy.
  Status Run();

  // Makes Run() return to its caller (after the current exit) without
  // stopping the VM — used by embedders that step a vCPU.
  void ReturnFromRun();

  // Kick: leave guest mode and pass through the loop top at least once.
  void Kick();

  // Registers (see machine/vmmapi_machdep.h for names). Callers outside the
  // vCPU's own thread must hold a VcpuLock on it.
  Result<uint64_t> GetRegister(md::Reg r) { return backend_->GetRegister(r); }
  Status SetRegister(md::Reg r, uint64_t v) {
    return backend_->SetRegister(r, v);
  }
  Result<md::VcpuState> GetState() { return backend_->GetState(); }
  Status SetState(const md::VcpuState& s) { return backend_->SetState(s); }
  Result<md::FpuState> GetFpu() { return backend_->GetFpu(); }
  Status SetFpu(const md::FpuState& f) { return backend_->SetFpu(f); }
  Result<uint64_t> GetSysReg(uint64_t id) { return backend_->GetSysReg(id); }
  Status SetSysReg(uint64_t id, uint64_t v) {
    return backend_->SetSysReg(id, v);
  }
  Status Reset() { return backend_->Reset(); }
  // Powered on (runnable) or waiting to be started by another vCPU (x86
  // wait-for-SIPI, ARM PSCI off). Non-boot vCPUs start waiting when the
  // platform has an in-kernel interrupt controller.
  Status SetRunnable(bool runnable) { return backend_->SetRunnable(runnable); }
  std::string DumpRegisters() { return backend_->DumpRegisters(); }

  VcpuBackend& backend() { return *backend_; }

 private:
  friend class Vm;
  friend class VcpuLock;
  friend class VmWriteLock;
  Vcpu(Vm* vm, uint32_t id, std::unique_ptr<VcpuBackend> backend);

  void Freeze();
  void Unfreeze();
  void KickLocked();       // m_ held: a kick (counted in stats().kicks)
  void InterruptLocked();  // m_ held: leave guest mode, nothing counted
  // Parks at the loop top while frozen; returns false if Run must return.
  bool ParkIfRequested(std::unique_lock<std::mutex>& lk);
  void ConsumeKickSignals();
  // Handles one exit. Anything that ends the VM goes through
  // Vm::RequestStop, which the loop notices before the next entry.
  void Dispatch(VmExit& exit);
  void DispatchInner(VmExit& exit);
  void HandleIo(const IoExit& io);
  void HandleMmio(const MmioExit& mmio);
  void FailVm(const std::string& what);

  Vm* const vm_;
  const uint32_t id_;
  const uint64_t token_;
  std::unique_ptr<VcpuBackend> backend_;

  mutable std::mutex m_;
  std::condition_variable cv_;
  VcpuState state_ = VcpuState::kIdle;  // m_
  uint32_t freeze_count_ = 0;           // m_
  bool has_runner_ = false;             // m_
  pthread_t runner_{};                  // m_, valid if has_runner_
  std::atomic<bool> requests_{false};   // freeze/stop/return pending
  std::atomic<bool> return_requested_{false};
  std::atomic<bool> kick_pending_{false};
  CurrentGuest record_;
  VcpuStats stats_;
};

struct VmOptions {
  std::string name = "strata";
  uint32_t max_vcpus = 1;  // fixed for the VM's life; <= host limit
  md::MachineOptions machine;
};

// Arch exit handlers: one per md::ArchExitReason. Return false to stop the
// VM (after calling Vm::RequestStop with a reason).
using ArchExitHandler = std::function<bool(Vcpu&, md::ArchExit&)>;

class Vm {
 public:
  // Creates a VM on a backend. Fails with kOutOfRange if max_vcpus is 0 or
  // above the host's limit.
  static Result<std::unique_ptr<Vm>> Create(
      const VmOptions& opts, std::unique_ptr<VmBackend> backend);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  const VmOptions& options() const { return opts_; }
  uint32_t max_vcpus() const { return opts_.max_vcpus; }

  // Lazily created vCPUs.
  Vcpu* vcpu(uint32_t id) const;  // nullptr if absent or id out of range
  Result<Vcpu*> CreateVcpu(uint32_t id);  // idempotent
  uint32_t vcpu_count() const;            // created so far

  // Guest memory. AddMemory takes the VM write lock itself.
  GuestMemory& memory() { return memory_; }
  const GuestMemory& memory() const { return memory_; }
  Result<const MemorySegment*> AddMemory(std::string name, uint64_t gpa,
                                         uint64_t size);

  Bus& pio_bus() { return pio_bus_; }
  Bus& mmio_bus() { return mmio_bus_; }

  // Interrupts, from any thread.
  Status SetIrqLine(uint32_t gsi, bool level);
  Status SignalMsi(uint64_t address, uint32_t data);

  void SetArchExitHandler(md::ArchExitReason r, ArchExitHandler h);

  // Stop: first status wins; every vCPU's Run() returns.
  void RequestStop(ExitStatus status);
  bool stop_requested() const {
    return stop_requested_.load(std::memory_order_acquire);
  }
  std::optional<ExitStatus> exit_status() const;

  // Called with the VM write lock held, after all vCPUs are frozen, so that
  // holders of guest-memory leases can drop them (see vmm_drv in illumos).
  using RevokeCallback = std::function<void()>;
  void AddRevokeCallback(RevokeCallback cb);

  VmBackend& backend() { return *backend_; }

 private:
  friend class Vcpu;
  friend class VmReadLock;
  friend class VmWriteLock;
  Vm(const VmOptions& opts, std::unique_ptr<VmBackend> backend);

  VmOptions opts_;
  std::unique_ptr<VmBackend> backend_;
  GuestMemory memory_;
  Bus pio_bus_;
  Bus mmio_bus_;

  std::unique_ptr<std::atomic<Vcpu*>[]> vcpus_;
  std::vector<std::unique_ptr<Vcpu>> owned_vcpus_;  // create_mutex_
  mutable std::mutex create_mutex_;
  bool writer_active_ = false;                   // create_mutex_
  std::vector<Vcpu*> writer_frozen_;             // create_mutex_
  std::mutex writer_mutex_;                      // serialises writers
  std::shared_mutex map_lock_;

  std::vector<ArchExitHandler> arch_handlers_;
  std::vector<RevokeCallback> revoke_callbacks_;  // writer_mutex_

  std::atomic<bool> stop_requested_{false};
  mutable std::mutex stop_mutex_;
  std::optional<ExitStatus> exit_status_;  // stop_mutex_
};

// Freezes one vCPU for the lifetime of the object (lock class 2).
class VcpuLock {
 public:
  explicit VcpuLock(Vcpu& v) : v_(v) { v_.Freeze(); }
  ~VcpuLock() { v_.Unfreeze(); }
  VcpuLock(const VcpuLock&) = delete;
  VcpuLock& operator=(const VcpuLock&) = delete;

 private:
  Vcpu& v_;
};

// Shared map lock (lock class 3).
class VmReadLock {
 public:
  explicit VmReadLock(Vm& vm) : vm_(vm) { vm_.map_lock_.lock_shared(); }
  ~VmReadLock() { vm_.map_lock_.unlock_shared(); }
  VmReadLock(const VmReadLock&) = delete;
  VmReadLock& operator=(const VmReadLock&) = delete;

 private:
  Vm& vm_;
};

// Exclusive VM lock: every vCPU frozen, then the map lock (lock class 1).
class VmWriteLock {
 public:
  explicit VmWriteLock(Vm& vm);
  ~VmWriteLock();
  VmWriteLock(const VmWriteLock&) = delete;
  VmWriteLock& operator=(const VmWriteLock&) = delete;

 private:
  Vm& vm_;
  std::vector<Vcpu*> frozen_;
};

}  // namespace strata
