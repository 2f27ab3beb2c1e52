// strata — the Linux KVM backend, machine-independent half.
//
// KvmSystem owns /dev/kvm; KvmVm and KvmVcpu implement core/backend.h with
// the ioctls every architecture shares (memory slots, vCPU creation, the
// kvm_run area, KVM_RUN, irq lines, MSIs) and decode the common exits. All
// architecture-specific state — registers, CPUID/system-register policy,
// interrupt controllers, arch exits — lives in md::KvmVmArch and
// md::KvmVcpuArch from <machine/kvm_machdep.h>.
//
// Internal header: embedders use core/vmmapi.h (strata::CreateKvmVm).
#pragma once

#include <linux/kvm.h>

#include <memory>
#include <string>

#include "core/backend.h"
#include "core/result.h"
#include "machine/kvm_machdep.h"

namespace strata::kvm {

class KvmSystem {
 public:
  static Result<std::shared_ptr<KvmSystem>> Open(
      const std::string& path = "/dev/kvm");
  ~KvmSystem();
  KvmSystem(const KvmSystem&) = delete;
  KvmSystem& operator=(const KvmSystem&) = delete;

  int fd() const { return fd_; }
  // KVM_CHECK_EXTENSION on /dev/kvm (0 = absent).
  int CheckExtension(long cap) const;
  size_t run_size() const { return run_size_; }
  uint32_t max_vcpus() const { return max_vcpus_; }

 private:
  KvmSystem(int fd, size_t run_size, uint32_t max_vcpus)
      : fd_(fd), run_size_(run_size), max_vcpus_(max_vcpus) {}
  int fd_;
  size_t run_size_;
  uint32_t max_vcpus_;
};

class KvmVcpu;

class KvmVm final : public VmBackend {
 public:
  static Result<std::unique_ptr<KvmVm>> Create(
      std::shared_ptr<KvmSystem> sys, const md::MachineOptions& opts,
      uint32_t max_vcpus);
  ~KvmVm() override;

  uint32_t HostMaxVcpus() const override { return sys_->max_vcpus(); }
  Status MapMemory(const MemorySegment& seg) override;
  Result<std::unique_ptr<VcpuBackend>> CreateVcpu(uint32_t id) override;
  Status SetIrqLine(uint32_t gsi, bool level) override;
  Status SignalMsi(uint64_t address, uint32_t data) override;
  std::string_view name() const override { return "kvm"; }

  int fd() const { return fd_; }
  KvmSystem& system() { return *sys_; }
  md::KvmVmArch& arch() { return *arch_; }

 private:
  KvmVm(std::shared_ptr<KvmSystem> sys, int fd) : sys_(std::move(sys)), fd_(fd) {}
  std::shared_ptr<KvmSystem> sys_;
  int fd_;
  std::unique_ptr<md::KvmVmArch> arch_;
};

class KvmVcpu final : public VcpuBackend {
 public:
  ~KvmVcpu() override;

  Status Run(VmExit* exit) override;
  void RequestImmediateExit() override;
  void ClearImmediateExit() override;
  Status SetGuestSignalMask(const sigset_t& mask) override;

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

  int fd() const { return fd_; }
  kvm_run* run() { return run_; }
  md::KvmVcpuArch& arch() { return *arch_; }

 private:
  friend class KvmVm;
  KvmVcpu(int fd, kvm_run* run, size_t run_size)
      : fd_(fd), run_(run), run_size_(run_size) {}
  int fd_;
  kvm_run* run_;
  size_t run_size_;
  std::unique_ptr<md::KvmVcpuArch> arch_;
};

}  // namespace strata::kvm
