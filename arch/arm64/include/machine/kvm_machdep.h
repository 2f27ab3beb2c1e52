// strata — arm64 half of the KVM backend (internal header).
//
// The same classes as arch/amd64/include/machine/kvm_machdep.h: the MI
// backend (core/kvm/kvm.cc) compiles against either. The implementation —
// KVM_ARM_VCPU_INIT with PSCI 0.2, the vGIC device, KVM_{GET,SET}_ONE_REG
// register access — arrives with the arm64 backend issue.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/exit.h"
#include "core/result.h"
#include "core/topology.h"
#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

namespace strata::md {

class KvmVcpuArch;

class KvmVmArch {
 public:
  // KVM_VM_TYPE_ARM_IPA_SIZE(ipa_bits), checked against the host.
  static Result<unsigned long> VmType(int sys_fd, const MachineOptions& opts);
  static Result<std::unique_ptr<KvmVmArch>> Create(
      int sys_fd, int vm_fd, const MachineOptions& opts,
      const CpuTopology& topology, uint32_t max_vcpus);
  ~KvmVmArch();
  // vCPU index i is KVM vCPU id i; its MPIDR follows the topology.
  unsigned long KvmVcpuId(uint32_t index) const;
  Result<std::unique_ptr<KvmVcpuArch>> CreateVcpu(int vcpu_fd, uint32_t index);
  const MachineOptions& options() const { return opts_; }

  // Interrupt routing (the MD half of core/irq.h for KVM): KVM_IRQ_LINE
  // takes type << 24 | vcpu << 16 | intid (SPI: type 1, PPI: type 2); an
  // irqfd or a GSI route names SPI n as GSI n - 32 (vgic-irqfd.c); MSIs
  // carry KVM_MSI_VALID_DEVID for the ITS.
  bool has_irqchip() const;
  Result<uint32_t> IrqLineArg(const IrqPin& pin) const;
  Result<uint32_t> IrqFdGsi(const IrqPin& pin) const;
  // The GSI of a pin of a VMM-emulated controller whose routes KVM must
  // know (amd64's split irqchip); arm64's vGIC is always KVM's: kUnsupported.
  Result<uint32_t> SplitPinGsi(const IrqPin& pin) const;
  Status FillMsi(const MsiMessage& msi, kvm_msi* out) const;
  Status FillMsiRoute(const MsiMessage& msi, kvm_irq_routing_entry* e) const;
  std::vector<kvm_irq_routing_entry> DefaultRoutes() const;
  uint32_t FirstMsiGsi() const;
  uint32_t MaxGsi() const;

 private:
  MachineOptions opts_;
};

class KvmVcpuArch {
 public:
  ~KvmVcpuArch();
  Status Flush();
  void Invalidate();
  bool DecodeExit(kvm_run* run, VmExit* exit);
  bool ExitNeedsCompletion(const kvm_run* run) const;
  Result<uint64_t> GetRegister(Reg r);
  Status SetRegister(Reg r, uint64_t v);
  Result<VcpuState> GetState();
  Status SetState(const VcpuState& s);
  Result<FpuState> GetFpu();
  Status SetFpu(const FpuState& f);
  Result<uint64_t> GetSysReg(uint64_t id);
  Status SetSysReg(uint64_t id, uint64_t v);
  Status Reset();                      // KVM_ARM_VCPU_INIT again
  Status SetRunnable(bool runnable);   // KVM_MP_STATE_RUNNABLE / STOPPED
  std::string DumpRegisters();
};

}  // namespace strata::md
