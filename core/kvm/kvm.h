// strata — the Linux KVM backend, machine-independent half.
//
// KvmSystem owns /dev/kvm; KvmVm and KvmVcpu implement core/backend.h with
// the ioctls every architecture shares (memory slots, vCPU creation, the
// kvm_run area, KVM_RUN, irq lines, MSIs, GSI routing, irqfd, ioeventfd,
// coalesced MMIO) and decode the common exits. All architecture-specific
// state — registers, CPUID/system-register policy, interrupt controllers,
// the encoding of interrupt pins, arch exits — lives in md::KvmVmArch and
// md::KvmVcpuArch from <machine/kvm_machdep.h>.
//
// Internal header: embedders use core/vmmapi.h (strata::CreateKvmVm).
#pragma once

#include <linux/kvm.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "machine/kvm_machdep.h"

namespace strata::kvm {

class KvmSystem {
 public:
  static Result<std::shared_ptr<KvmSystem>> Open(
      const std::string& path = "/dev/kvm");
  KvmSystem(const KvmSystem&) = delete;
  KvmSystem& operator=(const KvmSystem&) = delete;

  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION on /dev/kvm (0 = absent).
  int CheckExtension(long cap) const;
  size_t run_size() const { return run_size_; }
  uint32_t max_vcpus() const { return max_vcpus_; }

 private:
  KvmSystem(UniqueFd fd, size_t run_size, uint32_t max_vcpus)
      : fd_(std::move(fd)), run_size_(run_size), max_vcpus_(max_vcpus) {}
  UniqueFd fd_;
  size_t run_size_;
  uint32_t max_vcpus_;
};

class KvmVcpu;

// The VM's GSI routing table and irqfds (shared with IrqFd objects, which
// may outlive the VM briefly; it keeps its own reference to the VM file).
class KvmIrqRouting final : public IrqFdBackend {
 public:
  KvmIrqRouting(int vm_fd, md::KvmVmArch* arch);

  Status AssignIrqFd(uint32_t gsi, int fd, int resample_fd,
                     bool assign) override;
  Result<uint32_t> AddRoute(const IrqRoute& route) override;
  Status RemoveRoute(uint32_t gsi) override;
  Result<uint32_t> PinGsi(const md::IrqPin& pin) override;
  Status SetPinMsiRoute(const md::IrqPin& pin,
                        const std::optional<md::MsiMessage>& msi) override;

  // Called by ~KvmVm: the arch state goes away; later calls fail cleanly.
  void Detach();

 private:
  // KVM_SET_GSI_ROUTING with the defaults + pin_routes_ + routes_.
  Status Commit();
  // The KVM entry for a route (mu_ held, arch_ set).
  Status FillRoute(const IrqRoute& route, kvm_irq_routing_entry* e);
  std::mutex mu_;
  UniqueFd vm_fd_;                                   // a dup
  md::KvmVmArch* arch_;                              // mu_; null after Detach
  // mu_, by GSI: the routes AddRoute allocated (MSIs, SynIC SINTs).
  std::map<uint32_t, kvm_irq_routing_entry> routes_;
  // mu_, by GSI: a user-space interrupt controller's pins (SetPinMsiRoute).
  std::map<uint32_t, kvm_irq_routing_entry> pin_routes_;
};

class KvmVm final : public VmBackend {
 public:
  static Result<std::unique_ptr<KvmVm>> Create(
      std::shared_ptr<KvmSystem> sys, const md::MachineOptions& opts,
      const CpuTopology& topology, uint32_t max_vcpus);
  ~KvmVm() override;

  uint32_t HostMaxVcpus() const override { return sys_->max_vcpus(); }
  Status MapMemory(const MemorySegment& seg) override;
  Status UnmapMemory(const MemorySegment& seg) override;
  Result<std::unique_ptr<VcpuBackend>> CreateVcpu(uint32_t id) override;
  Status SetIrq(const md::IrqPin& pin, bool level) override;
  Status SignalMsi(const md::MsiMessage& msi) override;
  std::shared_ptr<IrqFdBackend> irqfds() override;
  void DrainCoalesced(
      const std::function<void(const CoalescedWrite&)>& replay) override;
  Status AssignIoEventFd(BusKind kind, uint64_t addr, uint32_t size,
                         std::optional<uint64_t> datamatch, int fd,
                         bool assign) override;
  Status SetCoalescedZone(BusKind kind, uint64_t addr, uint64_t size,
                          bool add) override;
  std::string_view name() const override { return "kvm"; }
  const md::MachineOptions& machine_options() const override {
    return arch_->options();
  }
  Status PrepareSave() override { return arch_->PrepareSave(); }
  Status SaveState(StateWriter& out) override { return arch_->SaveState(out); }
  Status LoadState(StateReader& in) override { return arch_->LoadState(in); }

  int fd() const { return fd_.get(); }
  KvmSystem& system() { return *sys_; }
  md::KvmVmArch& arch() { return *arch_; }

 private:
  KvmVm(std::shared_ptr<KvmSystem> sys, UniqueFd fd)
      : sys_(std::move(sys)), fd_(std::move(fd)) {}
  std::shared_ptr<KvmSystem> sys_;
  UniqueFd fd_;
  std::unique_ptr<md::KvmVmArch> arch_;
  std::shared_ptr<KvmIrqRouting> routing_;  // null without an irqchip
  // The coalesced ring, in the first vCPU's kvm_run mapping (null until a
  // vCPU exists or without KVM_CAP_COALESCED_MMIO).
  std::atomic<uint8_t*> ring_{nullptr};
  uint32_t ring_page_ = 0;  // KVM_CAP_COALESCED_MMIO: page offset in kvm_run
};

class KvmVcpu final : public VcpuBackend {
 public:
  ~KvmVcpu() override;

  Status Run(VmExit* exit) override;
  bool ExitNeedsCompletion() const override { return needs_completion_; }
  void RequestImmediateExit() override;
  void ClearImmediateExit() override;

  Result<uint64_t> GetRegister(md::Reg r) override { return arch_->GetRegister(r); }
  Status SetRegister(md::Reg r, uint64_t v) override { return arch_->SetRegister(r, v); }
  Result<md::VcpuState> GetState() override { return arch_->GetState(); }
  Status SetState(const md::VcpuState& s) override { return arch_->SetState(s); }
  Result<md::FpuState> GetFpu() override { return arch_->GetFpu(); }
  Status SetFpu(const md::FpuState& f) override { return arch_->SetFpu(f); }
  Result<uint64_t> GetSysReg(uint64_t id) override { return arch_->GetSysReg(id); }
  Status SetSysReg(uint64_t id, uint64_t v) override { return arch_->SetSysReg(id, v); }
  Status Reset() override { return arch_->Reset(); }
  Status SetRunnable(bool runnable) override { return arch_->SetRunnable(runnable); }
  std::string DumpRegisters() override { return arch_->DumpRegisters(); }
  Status SaveState(StateWriter& out) override { return arch_->SaveState(out); }
  Status LoadState(StateReader& in) override { return arch_->LoadState(in); }

  int fd() const { return fd_.get(); }
  kvm_run* run() { return run_; }
  md::KvmVcpuArch& arch() { return *arch_; }

 private:
  friend class KvmVm;
  KvmVcpu(UniqueFd fd, kvm_run* run, size_t run_size)
      : fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  UniqueFd fd_;
  kvm_run* run_;
  size_t run_size_;
  bool needs_completion_ = false;
  std::unique_ptr<md::KvmVcpuArch> arch_;
};

}  // namespace strata::kvm
