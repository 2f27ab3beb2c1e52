// strata — amd64 half of the KVM backend (internal header).
//
// core/kvm/kvm.cc drives these classes; arch/arm64/include/machine/
// kvm_machdep.h declares the same names for ARMv8. Implementation:
// arch/amd64/kvm/kvm_amd64.cc.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/exit.h"
#include "core/result.h"
#include "core/snapshot.h"
#include "core/topology.h"
#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

namespace strata::md {

class KvmVcpuArch;

// Per-VM architecture state: the in-kernel (or split) irqchip and PIT, the CPUID table
// KVM supports, and the vendor policy that shapes each vCPU's CPUID.
class KvmVmArch {
 public:
  // The `type` argument of KVM_CREATE_VM (0 on amd64).
  static Result<unsigned long> VmType(int sys_fd, const MachineOptions& opts);
  static Result<std::unique_ptr<KvmVmArch>> Create(
      int sys_fd, int vm_fd, const MachineOptions& opts,
      const CpuTopology& topology, uint32_t max_vcpus);
  ~KvmVmArch();

  // The KVM vCPU id for vCPU index i: its initial APIC id, which follows
  // the CPUID topology (so it is not always i).
  unsigned long KvmVcpuId(uint32_t index) const;
  Result<std::unique_ptr<KvmVcpuArch>> CreateVcpu(int vcpu_fd, uint32_t index);

  const MachineOptions& options() const { return opts_; }
  // "GenuineIntel" / "AuthenticAMD" as the guest sees it.
  std::string_view guest_vendor() const;

  // Interrupt routing: the MD half of core/irq.h for KVM. GSIs 0–23 are the
  // in-kernel IOAPIC's pins (0–15 also the PIC's), or with the split
  // irqchip the routes reserved for the user-space IOAPIC's pins; MSI
  // routes use GSIs from 24 up.
  // Both modes have in-kernel LAPICs, hence MSIs, GSI routing and irqfds.
  bool has_irqchip() const { return true; }
  // KVM_IRQ_LINE .irq; refused with the split irqchip (the pins are the
  // user-space IOAPIC's).
  Result<uint32_t> IrqLineArg(const IrqPin& pin) const;
  Result<uint32_t> IrqFdGsi(const IrqPin& pin) const;
  // Split irqchip only: the reserved GSI whose MSI route mirrors pin's
  // redirection entry (KVM scans those routes for the vectors whose EOIs
  // exit to user space).
  Result<uint32_t> SplitPinGsi(const IrqPin& pin) const;
  Status FillMsi(const MsiMessage& msi, kvm_msi* out) const;
  Status FillMsiRoute(const MsiMessage& msi, kvm_irq_routing_entry* e) const;
  // The pin routes KVM installs by default (irq_comm.c), which a
  // KVM_SET_GSI_ROUTING table must repeat.
  std::vector<kvm_irq_routing_entry> DefaultRoutes() const;
  uint32_t FirstMsiGsi() const { return kIrqPinCount; }
  uint32_t MaxGsi() const { return max_gsi_; }

  // Snapshots (core/snapshot.h): not on amd64 yet.
  Status PrepareSave() { return NoSnapshots(); }
  Status SaveState(StateWriter&) { return NoSnapshots(); }
  Status LoadState(StateReader&) { return NoSnapshots(); }
  static Error NoSnapshots() {
    return MakeError(Errc::kUnsupported,
                     "snapshots are not supported on amd64 yet");
  }

  struct Impl;

 private:
  KvmVmArch(int sys_fd, int vm_fd, const MachineOptions& opts,
            uint32_t max_vcpus);
  // x86.hyperv: the features KVM offers, checked and settled into the
  // CPUID policy and opts_.hyperv; then each vCPU's SynIC, VP index and
  // CPUID enforcement.
  Status SetUpHyperv(int sys_fd);
  Status SetUpHypervVcpu(int vcpu_fd, uint32_t index);
  int sys_fd_;
  int vm_fd_;
  MachineOptions opts_;
  uint32_t max_vcpus_;
  uint32_t max_gsi_ = 0;  // KVM_CAP_IRQ_ROUTING
  std::unique_ptr<Impl> impl_;
};

// Per-vCPU register cache. Groups (GPRs via KVM_GET_REGS, the rest via
// KVM_GET_SREGS) are fetched on first use after an exit and written back
// before the next entry only when dirtied.
class KvmVcpuArch {
 public:
  KvmVcpuArch(int vcpu_fd, uint32_t index, uint32_t cpuid_1_eax,
              bool has_xsave);
  ~KvmVcpuArch();

  // Before KVM_RUN: the dirty groups, written back (inline: nothing is
  // dirty on almost every exit).
  Status Flush() {
    if (!regs_dirty_ && !sregs_dirty_) return Ok();
    return WriteBack();
  }
  // After KVM_RUN.
  void Invalidate() { regs_valid_ = sregs_valid_ = false; }
  // Arch exits; false if the reason is not one we know.
  bool DecodeExit(kvm_run* run, VmExit* exit);
  // True for the arch exits KVM completes on the next KVM_RUN (MSR
  // accesses, hypercalls).
  bool ExitNeedsCompletion(const kvm_run* run) const;

  Result<uint64_t> GetRegister(Reg r);
  Status SetRegister(Reg r, uint64_t v);
  Result<VcpuState> GetState();
  Status SetState(const VcpuState& s);
  Result<FpuState> GetFpu();
  Status SetFpu(const FpuState& f);
  Result<uint64_t> GetSysReg(uint64_t msr);
  Status SetSysReg(uint64_t msr, uint64_t v);
  Status Reset();  // SDM Vol. 3 §9.1.1, Table 9-1
  // KVM_MP_STATE_RUNNABLE, or UNINITIALIZED (wait-for-SIPI).
  Status SetRunnable(bool runnable);
  std::string DumpRegisters();
  // Snapshots: not on amd64 yet (KvmVmArch::NoSnapshots).
  Status SaveState(StateWriter&) { return KvmVmArch::NoSnapshots(); }
  Status LoadState(StateReader&) { return KvmVmArch::NoSnapshots(); }

 private:
  Status LoadRegs();
  Status LoadSregs();
  Status WriteBack();
  int fd_;
  uint32_t index_;
  uint32_t cpuid_1_eax_;  // EDX after reset holds family/model/stepping
  bool has_xsave_;        // KVM_{GET,SET}_XSAVE and XCRS usable
  kvm_regs regs_{};
  kvm_sregs sregs_{};
  bool regs_valid_ = false, regs_dirty_ = false;
  bool sregs_valid_ = false, sregs_dirty_ = false;
};

}  // namespace strata::md
