// strata — the interface between the MI core and a hypervisor backend.
//
// Internal header: embedders use core/vmmapi.h. A backend provides VMs and
// vCPUs; on Linux it is core/kvm/ plus the architecture's kvm_machdep.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/bus.h"
#include "core/exit.h"
#include "core/guest_memory.h"
#include "core/irq.h"
#include "core/result.h"
#include "core/snapshot.h"
#include "core/topology.h"
#include "machine/vmmapi_machdep.h"

namespace strata {

class VcpuBackend {
 public:
  virtual ~VcpuBackend() = default;

  // Enters the guest once. On return *exit describes why it left; a kick
  // returns ExitKind::kNone. Errors are host failures, not guest behaviour.
  virtual Status Run(VmExit* exit) = 0;

  // True if the last exit is only finished by the next Run(): KVM completes
  // a port or MMIO read (and MSR and hypercall exits) on re-entry (the KVM
  // API doc, "KVM_RUN"). The MI loop then re-enters once with
  // immediate_exit set before anyone else may look at the vCPU.
  virtual bool ExitNeedsCompletion() const = 0;

  // Makes the next (or current) Run() return promptly. Safe to call from any
  // thread: it only stores a flag. Both are sequentially consistent (the
  // clear is a full barrier), which the kick protocol relies on.
  virtual void RequestImmediateExit() = 0;
  virtual void ClearImmediateExit() = 0;

  // Register access. Groups are fetched on demand and written back before
  // the next Run() only if dirtied.
  virtual Result<uint64_t> GetRegister(md::Reg r) = 0;
  virtual Status SetRegister(md::Reg r, uint64_t v) = 0;
  virtual Result<md::VcpuState> GetState() = 0;
  virtual Status SetState(const md::VcpuState& s) = 0;
  virtual Result<md::FpuState> GetFpu() = 0;
  virtual Status SetFpu(const md::FpuState& f) = 0;
  virtual Result<uint64_t> GetSysReg(uint64_t id) = 0;
  virtual Status SetSysReg(uint64_t id, uint64_t v) = 0;

  // Runnable, or waiting for a startup IPI / PSCI CPU_ON.
  virtual Status SetRunnable(bool runnable) = 0;

  // Architectural reset (SDM Vol. 3 §9.1 / ARM ARM D1.9).
  virtual Status Reset() = 0;

  // A human-readable register dump for diagnostics.
  virtual std::string DumpRegisters() = 0;

  // Snapshots (core/snapshot.h): every register and the run state, with
  // the vCPU frozen (its last exit completed); LoadState before the vCPU
  // of a restored VM first runs. kUnsupported where not implemented.
  virtual Status SaveState(StateWriter& out) {
    (void)out;
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported by this vCPU backend");
  }
  virtual Status LoadState(StateReader& in) {
    (void)in;
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported by this vCPU backend");
  }
};

// One write the coalesced-MMIO ring held back (see Bus::AddCoalescedZone).
struct CoalescedWrite {
  BusKind bus = BusKind::kMmio;
  uint64_t addr = 0;
  uint32_t size = 0;
  uint64_t value = 0;
};

class VmBackend : public BusAccelerator {
 public:
  // Hard upper bound on vCPUs for this host (KVM_CAP_MAX_VCPUS).
  virtual uint32_t HostMaxVcpus() const = 0;

  virtual Status MapMemory(const MemorySegment& seg) = 0;
  virtual Status UnmapMemory(const MemorySegment& seg) = 0;
  virtual Result<std::unique_ptr<VcpuBackend>> CreateVcpu(uint32_t id) = 0;

  // Interrupt delivery (callable from any thread).
  virtual Status SetIrq(const md::IrqPin& pin, bool level) = 0;
  virtual Status SignalMsi(const md::MsiMessage& msi) = 0;
  // Null if this VM cannot have irqfds (e.g. no in-kernel irqchip).
  virtual std::shared_ptr<IrqFdBackend> irqfds() = 0;

  // Takes the writes queued in the coalesced ring, oldest first. Callers
  // serialise (the VM holds a mutex).
  virtual void DrainCoalesced(
      const std::function<void(const CoalescedWrite&)>& replay) = 0;

  virtual std::string_view name() const = 0;

  // The machine options as the backend settled them: those the VM was
  // created with, with every "host default" resolved against the host
  // (arm64: the host profile's GIC version, ITS and IPA size).
  virtual const md::MachineOptions& machine_options() const = 0;

  // Snapshots (core/snapshot.h), with every vCPU frozen. PrepareSave
  // writes what the hypervisor keeps in guest memory there (arm64: the
  // vGIC's pending and ITS tables), before the memory is saved; SaveState
  // is the VM-wide state (the in-kernel interrupt controller). LoadState
  // runs after guest memory and every vCPU's state are loaded, before any
  // vCPU runs. kUnsupported where not implemented.
  virtual Status PrepareSave() {
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported by this backend");
  }
  virtual Status SaveState(StateWriter& out) {
    (void)out;
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported by this backend");
  }
  virtual Status LoadState(StateReader& in) {
    (void)in;
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported by this backend");
  }
};

}  // namespace strata
