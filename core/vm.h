// strata — VMs, vCPUs and their locking protocol.
//
// Theory of operation
// -------------------
// vCPU states. Each Vcpu is in one of five states, guarded by its mutex:
//   IDLE      no thread is in its run loop and nobody holds it.
//   RUNNING   a host thread (the runner) is inside Vcpu::Run() — in guest
//             mode or handling an exit on the vCPU's behalf.
//   SLEEPING  the runner waits in the VMM for an event (a halted vCPU
//             without an in-kernel interrupt controller).
//   FROZEN    one or more lockers hold the vCPU; a runner, if any, waits at
//             the top of its loop with its last exit completed.
//   BLOCKED   the runner is inside an exit handler, waiting for a lock that
//             another thread holds (only the VM write lock's writer mutex).
//             It is quiescent — not in guest mode, touching no guest memory
//             — but its exit is not finished.
// "At the loop top" means: outside guest mode, no exit handler on the
// stack, and the last exit completed. KVM finishes a port/MMIO read, an MSR
// access or a hypercall only on the next KVM_RUN (the KVM API doc,
// "KVM_RUN"), so before the loop lets anyone else near the vCPU — to
// freeze it, run a request, stop or return — it re-enters once with
// immediate_exit set, which completes the instruction and runs nothing
// more: after an `in`, the device's value is in RAX and RIP is past the
// instruction.
//
// Lock classes, in the order they are taken:
//   1. VM write lock (VmWriteLock) — memory-map changes. Serialises writers
//      (writer mutex), marks the VM "writer active" under the creation
//      mutex, quiesces every vCPU that exists (each ends FROZEN at its loop
//      top, or BLOCKED), revokes guest-memory leases (waiting for accesses
//      in progress; their holders' callbacks run), then takes the map lock
//      exclusively. Leases are revoked before the map lock so that a driver
//      inside a lease access may still take the read lock; from the
//      revocation until the map lock is released no lease can be renewed
//      (Lease::Begin waits), or it would translate the map about to
//      change. While a writer is active a newly created vCPU is born frozen and joins the writer's
//      set, so lazy creation cannot slip a running vCPU past the writer.
//   2. vCPU lock (VcpuLock) — freezes one vCPU at its loop top: requests the
//      freeze, kicks the vCPU out of guest mode and waits until its loop
//      parks it. Nests. The vCPU runs again when the last freezer unlocks.
//      Registers of a frozen vCPU are consistent and safe to change.
//   3. VM read lock (VmReadLock) — the map lock shared. Taken by Vm's
//      guest-memory accessors (ReadMemory/WriteMemory/Translate-style
//      calls from outside vCPU context) and by interrupt injection
//      (SetIrq, SignalMsi) so neither runs against a half-changed map. A
//      vCPU handling an exit needs no read lock for guest memory: a writer
//      quiesces it first.
//
// Rules for vCPU context (a thread inside Vcpu::Run, see CurrentVcpu()):
//   - Never wait for another vCPU. VcpuLock on another vCPU from vCPU
//     context is a programming error (checked in every build: it would
//     deadlock when two vCPUs do it to each other). Cross-vCPU work —
//     INIT/SIPI, PSCI CPU_ON, reading another vCPU's registers, TLB-style
//     shootdowns — goes through the target's mailbox: Vcpu::Post() queues a
//     function that the target runs on its own thread at its loop top. It
//     never blocks; a reply is another Post back.
//   - Any blocking acquisition parks the caller first: VmWriteLock from an
//     exit handler marks the vCPU BLOCKED while it waits for the writer
//     mutex, so the current writer can quiesce it. A handler must not take
//     the write lock while holding a lock another vCPU's handler may wait
//     for (a device mutex): that vCPU cannot be quiesced. Defer such work
//     with Post() on the vCPU itself — it then runs at the loop top with no
//     device lock held.
//   - VcpuLock on the calling vCPU itself is a counted no-op (it is, by
//     construction, not in guest mode), so helpers that lock "a vCPU" work
//     from its own handlers.
//   - A VM read lock must not be held when taking the write lock (checked).
//
// Lazy vCPU creation. The vCPU table is a fixed array of max_vcpus atomic
// pointers chosen at VM creation. Vm::vcpu(id) is a lock-free acquire load
// and may return nullptr; every path copes with that (a kick, a freeze, a
// post or an interrupt for a vCPU that does not exist yet is a no-op or an
// error, never a crash). CreateVcpu(id) takes the creation mutex, re-checks,
// asks the backend, and publishes with a release store; if a writer is
// active the new vCPU starts frozen.
//
// Stopping and destruction. Vm::RequestStop(status) records the first
// status and interrupts every vCPU; each Run() completes its last exit and
// returns. Vm::Shutdown() (and ~Vm) request a stop if needed and wait until
// no thread is inside any of the VM's Run() calls, so destroying a running
// VM is safe from any thread but its own vCPU threads (a programming error,
// checked).
//
// Arch exit handlers are installed before the first vCPU runs and are
// read-only afterwards, so dispatch reads them without a lock.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/bus.h"
#include "core/current_guest.h"
#include "core/exit.h"
#include "core/guest_memory.h"
#include "core/irq.h"
#include "core/result.h"
#include "core/snapshot.h"
#include "core/topology.h"
#include "machine/vmmapi_machdep.h"

namespace spdlog {
class logger;
}

namespace strata {

class Vm;
class VmBackend;
class VcpuBackend;
class Lease;
class DriverHold;

enum class VcpuState : uint8_t { kIdle, kRunning, kSleeping, kFrozen, kBlocked };
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
    kStopped,     // stopped from outside (an embedder, a signal): 6
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
  // Not the guest's doing and not a failure: someone asked the VM to stop.
  // bhyverun still exits 6 (the guest did not finish).
  static ExitStatus Stopped(std::string m) {
    return {Why::kStopped, kExitVmmError, std::move(m)};
  }

  static constexpr int kExitReset = 2;
  static constexpr int kExitGuestCrash = 4;
  static constexpr int kExitVmmError = 6;
  static constexpr int kExitUsage = 8;  // bhyverun: bad options/config
};

// Per-vCPU statistics, maintained by the run loop (exits: by the dispatcher
// wrapper).
struct VcpuStats {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(ExitKind::kCount)>
      exits{};
  std::array<std::atomic<uint64_t>,
             static_cast<size_t>(md::ArchExitReason::kCount)>
      arch_exits{};
  std::atomic<uint64_t> kicks{0};        // kick requests the loop consumed
  std::atomic<uint64_t> entries{0};      // guest entries
  std::atomic<uint64_t> completions{0};  // immediate-exit re-entries
  std::atomic<uint64_t> requests{0};     // mailbox functions run
  std::atomic<uint64_t> signals_sent{0};       // kick signals queued to it
  std::atomic<uint64_t> signals_delivered{0};  // kick signals for this vCPU
  std::atomic<uint64_t> signals_stray{0};  // consumed here, meant for another
};

// Per-VM statistics.
struct VmStats {
  std::atomic<uint64_t> kick_signals_sent{0};  // queued with pthread_sigqueue
  std::atomic<uint64_t> kick_signals_delivered{0};  // matched their vCPU
  std::atomic<uint64_t> kick_signals_stray{0};      // consumed by another
  std::atomic<uint64_t> coalesced_writes{0};   // replayed from the ring
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
  // asked to return (ReturnFromRun); on return its last exit is complete.
  // Only one thread may run a vCPU at a time and a thread runs one vCPU at a
  // time: a second caller gets kBusy.
  Status Run();

  // Makes Run() return to its caller (after completing the current exit)
  // without stopping the VM — for embedders that step a vCPU.
  void ReturnFromRun();

  // Kick: leave guest mode and pass through the loop top at least once.
  void Kick();

  // Mailbox: runs fn on the vCPU's runner thread at its loop top (last exit
  // completed, no handler on the stack), in the order posted. Callable from
  // any thread, including another vCPU's exit handler; never blocks. If no
  // thread runs the vCPU, fn waits until one does.
  void Post(std::function<void(Vcpu&)> fn);

  // Registers (see machine/vmmapi_machdep.h for names). Callable from the
  // vCPU's own thread (its exit handlers, its mailbox functions), or by a
  // thread holding a VcpuLock on it, or while no thread runs it; otherwise
  // kBusy.
  Result<uint64_t> GetRegister(md::Reg r);
  Status SetRegister(md::Reg r, uint64_t v);
  Result<md::VcpuState> GetState();
  Status SetState(const md::VcpuState& s);
  Result<md::FpuState> GetFpu();
  Status SetFpu(const md::FpuState& f);
  Result<uint64_t> GetSysReg(uint64_t id);
  Status SetSysReg(uint64_t id, uint64_t v);
  Status Reset();
  // Powered on (runnable) or waiting to be started by another vCPU (x86
  // wait-for-SIPI, ARM PSCI off). Non-boot vCPUs start waiting when the
  // platform has an in-kernel interrupt controller.
  Status SetRunnable(bool runnable);
  std::string DumpRegisters();

 private:
  friend class Vm;
  friend class VcpuLock;
  friend class VmWriteLock;
  friend class BlockedSection;
  Vcpu(Vm* vm, uint32_t id, std::unique_ptr<VcpuBackend> backend);

  enum class Hold { kFreeze, kQuiesce };
  void Acquire(Hold how);
  void Release();
  void InterruptLocked();  // m_ held: leave guest mode, nothing counted
  bool IsRunnerThread() const;
  Status CheckRegisterAccess() const;
  template <typename F>
  auto WithRegisters(F&& f) -> decltype(f());
  // At the loop top with requests pending: completes the last exit, runs
  // the mailbox, parks while frozen. Returns false if Run must return.
  bool ServiceRequests();
  bool CompleteLastExit();
  // Kick signals: the handler (installed by Run) and the pending ones taken
  // synchronously when the loop ends; each is counted delivered (queued for
  // this vCPU's token) or stray.
  static void OnKickSignal(int signo, siginfo_t* si, void* uctx);
  void CountKickSignal(const siginfo_t& si);
  void ConsumeKickSignals();
  // Handles one exit. Anything that ends the VM goes through
  // Vm::RequestStop, which the loop notices before the next entry.
  void Dispatch(VmExit& exit);
  void DispatchInner(VmExit& exit);
  void HandleIo(const IoExit& io);
  void HandleMmio(const MmioExit& mmio);
  bool BusAccess(Bus& bus, BusCache& cache, uint64_t addr, uint32_t size,
                 bool write, uint8_t* data);
  void Sleep();
  void FailVm(const std::string& what);

  Vm* const vm_;
  const uint32_t id_;
  const uint64_t token_;
  std::unique_ptr<VcpuBackend> backend_;

  mutable std::mutex m_;
  std::mutex regs_mu_;  // register access from threads other than the runner
  std::condition_variable cv_;
  VcpuState state_ = VcpuState::kIdle;  // m_
  uint32_t lock_requests_ = 0;          // m_: lockers asking or holding
  uint32_t holders_ = 0;                // m_: lockers holding it
  uint32_t self_locks_ = 0;             // m_: no-op locks by its own runner
  bool has_runner_ = false;             // m_
  pthread_t runner_{};                  // m_, valid if has_runner_
  std::deque<std::function<void(Vcpu&)>> mailbox_;  // m_
  bool return_requested_ = false;       // m_
  // Any of: lock request, stop, return, mailbox. Set under m_ by whoever
  // adds work; cleared under m_ by the loop when nothing is left.
  std::atomic<bool> requests_{false};
  std::atomic<bool> kick_pending_{false};
  std::atomic<pthread_t> runner_thread_{};  // for lock-free self checks
  CurrentGuest record_;
  VcpuStats stats_;
  BusCache pio_cache_;   // runner thread only
  BusCache mmio_cache_;  // runner thread only

 public:
  // Snapshots (core/snapshot.h; core/vm_snapshot.cc): the backend's whole
  // vCPU state. Same access rule as the registers: hold a VcpuLock (the
  // vCPU is then at its loop top, its last exit completed) or call it
  // while no thread runs the vCPU.
  Status SaveState(StateWriter& out);
  Status LoadState(StateReader& in);
};

struct VmOptions {
  std::string name = "strata";
  uint32_t max_vcpus = 1;  // fixed for the VM's life; <= host limit
  CpuTopology topology;    // sockets/clusters/cores/threads (MI)
  md::MachineOptions machine;
  // What backs guest RAM (core/guest_memory.h): anonymous memory with
  // transparent huge pages (default) or one memfd per segment.
  GuestMemory::Backing memory_backing = GuestMemory::Backing::kAnonymous;
  // Where this VM logs; null = the process logger (core/log.h).
  std::shared_ptr<spdlog::logger> logger;
};

// Arch exit handlers: one per md::ArchExitReason. Return false to stop the
// VM (after calling Vm::RequestStop with a reason).
using ArchExitHandler = std::function<bool(Vcpu&, md::ArchExit&)>;

class Vm {
 public:
  // Creates a VM on a backend (internal: embedders call CreateKvmVm in
  // core/vmmapi.h). Fails with kOutOfRange if max_vcpus is 0 or above the
  // host's limit, kInvalidArgument for a bad topology.
  static Result<std::unique_ptr<Vm>> Create(
      const VmOptions& opts, std::unique_ptr<VmBackend> backend);
  // Shutdown(), then frees everything.
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  const VmOptions& options() const { return opts_; }
  const std::string& name() const { return opts_.name; }
  uint32_t max_vcpus() const { return opts_.max_vcpus; }
  const CpuTopology& topology() const { return opts_.topology; }
  // options().machine with the host defaults resolved (VmBackend).
  const md::MachineOptions& machine_options() const;
  spdlog::logger& log() const { return *logger_; }

  // Lazily created vCPUs.
  Vcpu* vcpu(uint32_t id) const;  // nullptr if absent or id out of range
  Result<Vcpu*> CreateVcpu(uint32_t id);  // idempotent
  uint32_t vcpu_count() const;            // created so far

  // Guest memory. The map changes only through AddMemory/RemoveMemory,
  // which take the VM write lock themselves. memory() gives the contents:
  // from vCPU context freely; from other threads hold a VmReadLock, or use
  // ReadMemory/WriteMemory, which take it.
  GuestMemory& memory() { return memory_; }
  const GuestMemory& memory() const { return memory_; }
  Result<const MemorySegment*> AddMemory(std::string name, uint64_t gpa,
                                         uint64_t size);
  Status RemoveMemory(uint64_t gpa);
  Status ReadMemory(uint64_t gpa, void* dst, uint64_t len);
  Status WriteMemory(uint64_t gpa, const void* src, uint64_t len);

  Bus& pio_bus() { return pio_bus_; }
  Bus& mmio_bus() { return mmio_bus_; }

  // Interrupts, from any thread (take the VM read lock). SetIrq drives the
  // attached IrqController's input if there is one, else the hypervisor's.
  Status SetIrq(const md::IrqPin& pin, bool level);
  // Attaches the user-space interrupt controller that owns the pins (kBusy
  // once a vCPU has run; null detaches).
  Status SetIrqController(std::shared_ptr<IrqController> controller);
  Status SignalMsi(const md::MsiMessage& msi);
  // An eventfd that raises pin (level: with a resample fd, see IrqFd) or
  // sends msi, without a VMM call (KVM_IRQFD). kUnsupported without an
  // in-kernel interrupt controller.
  Result<std::unique_ptr<IrqFd>> AddIrqFd(const md::IrqPin& pin,
                                          bool level = false);
  Result<std::unique_ptr<IrqFd>> AddMsiFd(const md::MsiMessage& msi);
  // An eventfd that asserts a Hyper-V SynIC SINT (core/irq.h HvSint;
  // KVM_IRQ_ROUTING_HV_SINT), for a VM whose hypervisor emulates the SynIC
  // (kUnsupported otherwise). With `ack`, the IrqFd's resample_fd() is
  // signalled whenever the guest acknowledges that SINT — an EOI of its
  // vector or a write of the VP's end-of-message register (TLFS, "Message
  // Buffer Management") — which KVM reports only through a resampling
  // irqfd, i.e. with its in-kernel IOAPIC (amd64 x86.irqchip=kernel).
  Result<std::unique_ptr<IrqFd>> AddHvSintFd(const HvSint& sint,
                                             bool ack = false);
  // For an interrupt controller the VMM emulates whose outputs are MSIs
  // (amd64 with x86.irqchip=split: the IOAPIC in user space, the LAPICs in
  // KVM): records the MSI pin currently sends, or none (nullopt: masked).
  // The controller still delivers with SignalMsi; the hypervisor reads the
  // routes to learn which EOIs concern the controller (on amd64 the
  // level-triggered vectors, whose EOIs then exit as
  // md::ArchExitReason::kIoapicEoi). Unchanged routes cost nothing.
  // kUnsupported if the VM's controller is the hypervisor's.
  Status SetPinMsiRoute(const md::IrqPin& pin,
                        const std::optional<md::MsiMessage>& msi);

  // Installs the handler for one arch exit reason. kBusy once any vCPU has
  // run (the table is read without a lock afterwards).
  Status SetArchExitHandler(md::ArchExitReason r, ArchExitHandler h);

  // Stop: first status wins; every vCPU's Run() returns.
  void RequestStop(ExitStatus status);
  bool stop_requested() const {
    return stop_requested_.load(std::memory_order_acquire);
  }
  std::optional<ExitStatus> exit_status() const;
  // Requests a stop (VmmError "VM shut down") if none was requested and
  // vCPUs are running, waits until every Run() has returned, then asks every
  // driver hold to let go (core/driver.h) and waits until all are released.
  // kBusy from one of this VM's vCPU threads (it would wait for itself).
  Status Shutdown();

  const VmStats& stats() const { return stats_; }
  // Per-vCPU exit counts, kick and mailbox counters, unclaimed accesses.
  std::string DumpStats() const;

  // Called by every VM write lock, after all vCPUs are quiesced and before
  // the map lock is taken, so that holders of guest-memory leases can drop
  // them (see vmm_drv in illumos, and core/driver.h, which builds on this).
  // Safe from exit handlers: registration never waits for a writer's
  // vCPUs. Removal waits for a revocation in progress, so a callback is
  // never running after RemoveRevokeCallback returns.
  using RevokeCallback = std::function<void()>;
  uint64_t AddRevokeCallback(RevokeCallback cb);
  void RemoveRevokeCallback(uint64_t id);

 private:
  friend class Vcpu;
  friend class VmReadLock;
  friend class VmWriteLock;
  friend class DriverHold;
  friend class Lease;
  Vm(const VmOptions& opts, std::unique_ptr<VmBackend> backend);
  // An irqfd on `gsi` (with a resample fd if asked), assigned; on failure
  // the route is removed if the irqfd was to own it. `what` names the
  // interrupt in errors.
  static Result<std::unique_ptr<IrqFd>> NewIrqFd(
      std::shared_ptr<IrqFdBackend> be, uint32_t gsi, bool resample,
      bool owns_route, std::string_view what);
  void DrainCoalesced();
  // Lease renewal (core/driver.h). True while a writer is between revoking
  // the leases and finishing its map change: a lease translated then would
  // keep a span of the map that is about to change. Checks that the caller
  // is not that writer (it would wait for itself).
  bool LeaseRenewalBlocked();
  void WaitForLeaseRenewal();  // until LeaseRenewalBlocked() is false

  VmOptions opts_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<VmBackend> backend_;
  std::atomic<bool> has_coalesced_{false};  // a zone was ever registered
  std::unique_ptr<BusAccelerator> accel_;   // the buses' view of backend_
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

  std::vector<ArchExitHandler> arch_handlers_;  // fixed once started_
  std::shared_ptr<IrqController> irq_controller_;  // fixed once started_
  std::atomic<bool> started_{false};            // a vCPU has run

  std::mutex revoke_mutex_;                      // not the writer mutex
  // Held only for a flag check or update, never while waiting for anything
  // else, so Lease::Begin may take it inside its access mutex.
  std::mutex lease_gate_mutex_;
  std::condition_variable lease_gate_cv_;
  bool leases_gated_ = false;                    // lease_gate_mutex_
  pthread_t lease_gate_writer_{};                // lease_gate_mutex_
  uint64_t next_revoke_id_ = 1;                  // revoke_mutex_
  std::vector<std::pair<uint64_t, std::shared_ptr<RevokeCallback>>>
      revoke_callbacks_;                         // revoke_mutex_

  std::atomic<bool> stop_requested_{false};
  mutable std::mutex stop_mutex_;
  std::optional<ExitStatus> exit_status_;  // stop_mutex_

  std::mutex runners_mutex_;
  std::condition_variable runners_cv_;
  uint32_t runners_ = 0;  // runners_mutex_: threads inside Vcpu::Run

  std::mutex holds_mutex_;
  std::condition_variable holds_cv_;
  std::vector<DriverHold*> holds_;  // holds_mutex_ (core/driver.h)
  bool shutting_down_ = false;      // holds_mutex_

  std::mutex coalesced_mutex_;

  VmStats stats_;

 public:
  // Snapshots (core/snapshot.h; core/vm_snapshot.cc), with every vCPU held
  // (VcpuLock) or before any has run: the hypervisor's VM-wide state
  // (VmBackend::PrepareSave, SaveState, LoadState).
  Status PrepareSnapshot();
  Status SaveBackendState(StateWriter& out);
  Status LoadBackendState(StateReader& in);
};

// Freezes one vCPU at its loop top for the lifetime of the object (lock
// class 2). From vCPU context only the calling vCPU itself may be locked.
class VcpuLock {
 public:
  explicit VcpuLock(Vcpu& v);
  ~VcpuLock();
  VcpuLock(const VcpuLock&) = delete;
  VcpuLock& operator=(const VcpuLock&) = delete;

 private:
  Vcpu& v_;
};

// Shared map lock (lock class 3).
class VmReadLock {
 public:
  explicit VmReadLock(Vm& vm);
  ~VmReadLock();
  VmReadLock(const VmReadLock&) = delete;
  VmReadLock& operator=(const VmReadLock&) = delete;

 private:
  Vm& vm_;
};

// Exclusive VM lock: every vCPU quiesced, then the map lock (lock class 1).
class VmWriteLock {
 public:
  explicit VmWriteLock(Vm& vm);
  ~VmWriteLock();
  VmWriteLock(const VmWriteLock&) = delete;
  VmWriteLock& operator=(const VmWriteLock&) = delete;

 private:
  Vm& vm_;
  std::vector<Vcpu*> held_;
};

}  // namespace strata
