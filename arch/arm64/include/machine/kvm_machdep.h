// strata — arm64 half of the KVM backend (internal header).
//
// The same classes as arch/amd64/include/machine/kvm_machdep.h: the MI
// backend (core/kvm/kvm.cc) compiles against either. Implementation:
// arch/arm64/kvm/kvm_arm64.cc — KVM_ARM_VCPU_INIT with the host's preferred
// target and PSCI 0.2, the in-kernel vGIC (v3 with redistributors and an
// optional ITS, or v2), PMUv3, KVM_{GET,SET}_ONE_REG register access.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/exit.h"
#include "core/result.h"
#include "core/snapshot.h"
#include "core/topology.h"
#include "core/unique_fd.h"
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

  // Once, before the first vCPU enters: KVM_DEV_ARM_VGIC_CTRL_INIT (every
  // vCPU exists by then; KVM refuses new vCPUs after it). Any thread.
  Status FinalizeIrqchip();

  // Snapshots (core/snapshot.h; arch/arm64/kvm/snapshot_arm64.cc): the
  // vGICv3 distributor, redistributors, CPU interfaces, line levels and
  // the ITS. PrepareSave writes the LPI pending and ITS tables into guest
  // memory; LoadState follows the kernel's restore order.
  Status PrepareSave();
  Status SaveState(StateWriter& out);
  Status LoadState(StateReader& in);

 private:
  friend class KvmVcpuArch;
  struct VcpuRef {
    int fd;
    uint32_t index;
  };
  Result<uint64_t> VcpuMpidr(const VcpuRef& v) const;
  Status SaveGic(StateWriter& out);
  Status LoadGic(StateReader& in);
  Status SaveIts(StateWriter& out);
  Status LoadIts(StateReader& in);
  std::vector<VcpuRef> vcpu_refs_;  // every vCPU created, in order
  KvmVmArch(int sys_fd, int vm_fd, const MachineOptions& opts,
            uint32_t max_vcpus);
  Status ResolveAuto();  // the "auto" options, from the host
  Status CreateGic();
  int sys_fd_;
  int vm_fd_;
  MachineOptions opts_;
  uint32_t max_vcpus_;
  uint32_t max_gsi_ = 0;
  UniqueFd gic_fd_;
  UniqueFd its_fd_;
  bool pmu_ = false;         // KVM_CAP_ARM_PMU_V3 and opts.pmu
  kvm_vcpu_init init_{};     // KVM_ARM_PREFERRED_TARGET
  std::once_flag finalize_once_;
  Status finalize_status_ = Ok();
};

// Per-vCPU register cache: each core register (ONE_REG) is fetched on
// first use after an exit and written back before the next entry only if
// dirtied; an MMIO exit that needs no register costs no extra ioctl.
class KvmVcpuArch {
 public:
  KvmVcpuArch(KvmVmArch* vm, int vcpu_fd, uint32_t index,
              const kvm_vcpu_init& init, bool pmu);
  ~KvmVcpuArch();
  // Before KVM_RUN: the first entry's setup, then the dirty registers
  // (inline: neither is due on almost every exit).
  Status Flush() {
    if (entered_ && dirty_ == 0) return Ok();
    if (Status s = InitOnce(); !s) return s;
    return WriteBack();
  }
  void Invalidate() { valid_ = 0; }  // after KVM_RUN
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
  // Snapshots: every register KVM_GET_REG_LIST names (core, FP/SIMD,
  // system registers with the debug and timer registers, firmware
  // pseudo-registers), the MP state and the pending vCPU events.
  Status SaveState(StateWriter& out);
  Status LoadState(StateReader& in);

 private:
  static constexpr size_t kRegs = static_cast<size_t>(Reg::kCount);
  Status Init();
  // Before the first entry (or a restore): the vGIC's CTRL_INIT and the
  // PMU's (vcpu.rst: the PMU's interrupt needs an initialised vGIC).
  Status InitOnce();
  Status WriteBack();  // the dirty cached core registers
  Result<std::vector<uint64_t>> RegList();
  Result<uint64_t> GetOne(uint64_t id);
  Status SetOne(uint64_t id, uint64_t v);
  KvmVmArch* vm_;
  int fd_;
  uint32_t index_;
  kvm_vcpu_init init_;
  bool pmu_;
  bool entered_ = false;  // FinalizeIrqchip and the PMU done
  uint64_t regs_[kRegs] = {};
  uint64_t valid_ = 0, dirty_ = 0;  // bit per Reg
  static_assert(kRegs <= 64);
};

}  // namespace strata::md
