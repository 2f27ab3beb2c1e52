// strata — arm64 half of the KVM backend (ARMv8 EL2 hosts, nVHE and VHE).
//
// References: the KVM API document (Documentation/virt/kvm/api.rst:
// KVM_ARM_VCPU_INIT, KVM_{GET,SET}_ONE_REG, KVM_ARM_PREFERRED_TARGET,
// KVM_EXIT_ARM_NISV) and its device pages (devices/arm-vgic-v3.rst,
// arm-vgic.rst, arm-vgic-its.rst, vcpu.rst for the PMUv3 attributes).
#include <asm/kvm.h>
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "arch/arm64/kvm/host_probe.h"
#include "arch/arm64/kvm/irq_routing.h"
#include "arch/arm64/profile.h"
#include "core/log.h"
#include "core/kvm/kvm_abi.h"
#include "machine/kvm_machdep.h"

namespace strata::md {

namespace {

int Ioctl(int fd, unsigned long req, const void* arg) {
  return kvm::IoctlRetry(fd, req, arg);
}

constexpr uint64_t kCoreReg = KVM_REG_ARM64 | KVM_REG_ARM_CORE;

constexpr uint64_t CoreId(size_t offset, uint64_t size) {
  return kCoreReg | size | (offset / sizeof(uint32_t));
}

// The ONE_REG id of a core register (struct kvm_regs offsets).
uint64_t CoreRegId(Reg r) {
  const auto i = static_cast<size_t>(r);
  if (i <= static_cast<size_t>(Reg::kX30)) {
    return CoreId(offsetof(kvm_regs, regs.regs) + i * 8, KVM_REG_SIZE_U64);
  }
  switch (r) {
    case Reg::kSp: return CoreId(offsetof(kvm_regs, regs.sp), KVM_REG_SIZE_U64);
    case Reg::kPc: return CoreId(offsetof(kvm_regs, regs.pc), KVM_REG_SIZE_U64);
    case Reg::kPstate:
      return CoreId(offsetof(kvm_regs, regs.pstate), KVM_REG_SIZE_U64);
    case Reg::kSpEl1: return CoreId(offsetof(kvm_regs, sp_el1), KVM_REG_SIZE_U64);
    case Reg::kElrEl1:
      return CoreId(offsetof(kvm_regs, elr_el1), KVM_REG_SIZE_U64);
    case Reg::kSpsrEl1:
      return CoreId(offsetof(kvm_regs, spsr) + KVM_SPSR_EL1 * 8,
                    KVM_REG_SIZE_U64);
    default: return 0;
  }
}

// SysRegId() packs (op0, op1, CRn, CRm, op2) as KVM's ARM64_SYS_REG does.
constexpr uint64_t SysRegOneRegId(uint64_t id) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | id;
}

Status SetDeviceAttr(int dev_fd, uint32_t group, uint64_t attr,
                     const void* value, std::string_view what) {
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(value);
  if (Ioctl(dev_fd, KVM_SET_DEVICE_ATTR, &a) < 0) return SysError("{}", what);
  return Ok();
}

Result<UniqueFd> CreateDevice(int vm_fd, uint32_t type, std::string_view what) {
  kvm_create_device d{};
  d.type = type;
  if (Ioctl(vm_fd, KVM_CREATE_DEVICE, &d) < 0) {
    return SysError("KVM_CREATE_DEVICE {}", what);
  }
  return UniqueFd(static_cast<int>(d.fd));
}

}  // namespace

// ----------------------------------------------------------- KvmVmArch ----

Result<unsigned long> KvmVmArch::VmType(int sys_fd, const MachineOptions& opts) {
  if (opts.ipa_bits == 0) return 0ul;  // KVM's default: 40 bits
  const int max = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
  if (max <= 0) {
    return MakeError(Errc::kUnsupported,
                     "arm64.ipa_bits={}: this host's KVM has a fixed 40-bit "
                     "IPA space (no KVM_CAP_ARM_VM_IPA_SIZE)",
                     opts.ipa_bits);
  }
  if (opts.ipa_bits < 32 || opts.ipa_bits > static_cast<uint32_t>(max)) {
    return MakeError(Errc::kOutOfRange,
                     "arm64.ipa_bits={}: this host supports 32..{}",
                     opts.ipa_bits, max);
  }
  return static_cast<unsigned long>(KVM_VM_TYPE_ARM_IPA_SIZE(opts.ipa_bits));
}

KvmVmArch::KvmVmArch(int sys_fd, int vm_fd, const MachineOptions& opts,
                     uint32_t max_vcpus)
    : sys_fd_(sys_fd), vm_fd_(vm_fd), opts_(opts), max_vcpus_(max_vcpus) {}

KvmVmArch::~KvmVmArch() = default;

Result<std::unique_ptr<KvmVmArch>> KvmVmArch::Create(
    int sys_fd, int vm_fd, const MachineOptions& opts,
    const CpuTopology& topology, uint32_t max_vcpus) {
  (void)topology;  // MPIDRs are KVM's (Aff0 = index % 16, Aff1 = index / 16)
  std::unique_ptr<KvmVmArch> a(new KvmVmArch(sys_fd, vm_fd, opts, max_vcpus));
  const int routes = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
  a->max_gsi_ = routes > 0 ? static_cast<uint32_t>(routes) : 0;
  if (!opts.psci_0_2 ||
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "arm64: strata needs KVM's in-kernel PSCI 0.2 "
                     "(KVM_CAP_ARM_PSCI_0_2) to start and stop vCPUs");
  }
  a->pmu_ = opts.pmu &&
            ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PMU_V3) > 0;
  if (Ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &a->init_) < 0) {
    return SysError("KVM_ARM_PREFERRED_TARGET");
  }
  // An MMIO access KVM cannot decode exits to us (and stops the VM with a
  // diagnostic) instead of failing KVM_RUN with ENOSYS.
  if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_NISV_TO_USER) > 0) {
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_ARM_NISV_TO_USER;
    if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
      return SysError("enabling KVM_CAP_ARM_NISV_TO_USER");
    }
  }
  // MTE: before any vCPU exists (api.rst, KVM_CAP_ARM_MTE); guest RAM must
  // then be MTE-capable memory (anonymous or memfd mappings are).
  if (opts.mte) {
    if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_MTE) <= 0) {
      return MakeError(Errc::kUnsupported,
                       "arm64.mte=true: the Memory Tagging Extension is not "
                       "supported by KVM on this host (KVM_CAP_ARM_MTE)");
    }
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_ARM_MTE;
    if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
      return SysError("enabling KVM_CAP_ARM_MTE");
    }
  }
  STRATA_TRY(a->ResolveAuto());
  STRATA_TRY(a->CreateGic());
  return a;
}

Status KvmVmArch::ResolveAuto() {
  // The host profile (arch/arm64/profile.h) decides what "auto" means.
  const ::strata::arm64::HostFacts facts = STRATA_TRY_CTX(
      ::strata::arm64::ProbeHostFacts(sys_fd_), "probing the host's KVM");
  ::strata::arm64::Profile p = STRATA_TRY(::strata::arm64::ResolveProfile(
      facts, opts_.profile, opts_.gic_version));
  Log().info("arm64: host profile {}{}: {}", p.name,
             opts_.profile != "auto" ? " (forced)" : "", p.reason);
  for (const ::strata::arm64::Workaround& w : p.workarounds) {
    Log().info("arm64: profile {}: {}: {}", p.name, w.name, w.reason);
  }
  opts_.profile = p.name;
  opts_.gic_version = p.gic_version;
  if (!opts_.its) {
    opts_.its = p.its;
  } else if (*opts_.its && !p.its) {
    return MakeError(Errc::kUnsupported,
                     "arm64.its=true: the {} profile on this host has no "
                     "vGICv3 ITS",
                     p.name);
  }
  if (opts_.ipa_bits > p.ipa_bits) {
    return MakeError(Errc::kUnsupported,
                     "arm64.ipa_bits={}: this host's KVM gives at most {}",
                     opts_.ipa_bits, p.ipa_bits);
  }
  pmu_ = pmu_ && p.pmu;
  return Ok();
}

Status KvmVmArch::CreateGic() {
  if (opts_.gic_spis == 0 || opts_.gic_spis % 32 != 0 ||
      opts_.gic_spis > kGicMaxIntid + 1 - kGicFirstSpi) {
    return MakeError(Errc::kOutOfRange,
                     "arm64: {} SPIs: the vGIC takes a multiple of 32 up to {}",
                     opts_.gic_spis, 992);
  }
  const uint32_t nr_irqs = opts_.gic_spis + kGicFirstSpi;
  switch (opts_.gic_version) {
    case 3: {
      const uint64_t need = uint64_t{max_vcpus_} * kGicRedistStride;
      if (need > opts_.gic_redist_size) {
        return MakeError(Errc::kOutOfRange,
                         "arm64: {} vCPUs need {:#x} bytes of GICv3 "
                         "redistributors; the machine has room for {}",
                         max_vcpus_, need,
                         opts_.gic_redist_size / kGicRedistStride);
      }
      gic_fd_ = STRATA_TRY(CreateDevice(vm_fd_, KVM_DEV_TYPE_ARM_VGIC_V3,
                                        "vGICv3 (does the host have a GICv3?)"));
      const uint64_t dist = opts_.gic_dist_base, redist = opts_.gic_redist_base;
      STRATA_TRY(SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                               KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
                               "placing the vGICv3 distributor"));
      STRATA_TRY(SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                               KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
                               "placing the vGICv3 redistributors"));
      break;
    }
    case 2: {
      gic_fd_ = STRATA_TRY(CreateDevice(
          vm_fd_, KVM_DEV_TYPE_ARM_VGIC_V2,
          "vGICv2 (this host's GIC has no GICv2 compatibility; use "
          "arm64.gic_version=3)"));
      const uint64_t dist = opts_.gic_dist_base, cpu = opts_.gic_cpu_base;
      STRATA_TRY(SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                               KVM_VGIC_V2_ADDR_TYPE_DIST, &dist,
                               "placing the vGICv2 distributor"));
      STRATA_TRY(SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                               KVM_VGIC_V2_ADDR_TYPE_CPU, &cpu,
                               "placing the vGICv2 CPU interface"));
      break;
    }
    default:
      return MakeError(Errc::kInvalidArgument,
                       "arm64.gic_version={}: 2 or 3", opts_.gic_version);
  }
  STRATA_TRY(SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs,
                           "setting the vGIC's interrupt count"));
  if (opts_.its.value_or(false)) {
    if (opts_.gic_version != 3) {
      return MakeError(Errc::kInvalidArgument,
                       "arm64: an ITS needs GICv3 (arm64.gic_version=3)");
    }
    its_fd_ = STRATA_TRY(CreateDevice(vm_fd_, KVM_DEV_TYPE_ARM_VGIC_ITS,
                                      "vGICv3 ITS"));
    const uint64_t its = opts_.gic_its_base;
    STRATA_TRY(SetDeviceAttr(its_fd_.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                             KVM_VGIC_ITS_ADDR_TYPE, &its, "placing the ITS"));
    STRATA_TRY(SetDeviceAttr(its_fd_.get(), KVM_DEV_ARM_VGIC_GRP_CTRL,
                             KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr,
                             "initialising the ITS"));
  }
  return Ok();
}

Status KvmVmArch::FinalizeIrqchip() {
  std::call_once(finalize_once_, [this] {
    finalize_status_ = SetDeviceAttr(gic_fd_.get(), KVM_DEV_ARM_VGIC_GRP_CTRL,
                                     KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr,
                                     "initialising the vGIC");
  });
  return finalize_status_;
}

bool KvmVmArch::has_irqchip() const { return true; }

Result<uint32_t> KvmVmArch::IrqLineArg(const IrqPin& pin) const {
  return arm64::IrqLineValue(pin, opts_.gic_spis);
}

Result<uint32_t> KvmVmArch::IrqFdGsi(const IrqPin& pin) const {
  return arm64::SpiGsi(pin, opts_.gic_spis);
}

Result<uint32_t> KvmVmArch::SplitPinGsi(const IrqPin& pin) const {
  return MakeError(Errc::kUnsupported,
                   "{}: arm64's vGIC is KVM's; there is no user-space "
                   "interrupt controller to route",
                   IrqPinName(pin));
}

Status KvmVmArch::FillMsi(const MsiMessage& msi, kvm_msi* out) const {
  if (!its_fd_) {
    return MakeError(Errc::kUnsupported,
                     "an MSI to {:#x}: this VM's GIC has no ITS", msi.address);
  }
  return arm64::FillMsi(msi, out);
}

Status KvmVmArch::FillMsiRoute(const MsiMessage& msi,
                               kvm_irq_routing_entry* e) const {
  if (!its_fd_) {
    return MakeError(Errc::kUnsupported,
                     "an MSI route to {:#x}: this VM's GIC has no ITS",
                     msi.address);
  }
  return arm64::FillMsiRoute(msi, e);
}

std::vector<kvm_irq_routing_entry> KvmVmArch::DefaultRoutes() const {
  return arm64::DefaultRoutes(opts_.gic_spis);
}

uint32_t KvmVmArch::FirstMsiGsi() const { return opts_.gic_spis; }
uint32_t KvmVmArch::MaxGsi() const { return max_gsi_; }

unsigned long KvmVmArch::KvmVcpuId(uint32_t index) const { return index; }

Result<std::unique_ptr<KvmVcpuArch>> KvmVmArch::CreateVcpu(int vcpu_fd,
                                                           uint32_t index) {
  kvm_vcpu_init init = init_;
  std::memset(init.features, 0, sizeof(init.features));
  init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
  // Secondaries start powered off; the guest starts them with CPU_ON.
  if (index != 0) init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
  if (pmu_) init.features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
  auto v = std::make_unique<KvmVcpuArch>(this, vcpu_fd, index, init, pmu_);
  STRATA_TRY(v->Reset());
  vcpu_refs_.push_back({vcpu_fd, index});
  return v;
}

// --------------------------------------------------------- KvmVcpuArch ----

KvmVcpuArch::KvmVcpuArch(KvmVmArch* vm, int vcpu_fd, uint32_t index,
                         const kvm_vcpu_init& init, bool pmu)
    : vm_(vm), fd_(vcpu_fd), index_(index), init_(init), pmu_(pmu) {}

KvmVcpuArch::~KvmVcpuArch() = default;

Result<uint64_t> KvmVcpuArch::GetOne(uint64_t id) {
  uint64_t v = 0;
  kvm_one_reg r{id, reinterpret_cast<uint64_t>(&v)};
  if (Ioctl(fd_, KVM_GET_ONE_REG, &r) < 0) {
    return SysError("KVM_GET_ONE_REG {:#x} on vCPU {}", id, index_);
  }
  return v;
}

Status KvmVcpuArch::SetOne(uint64_t id, uint64_t v) {
  kvm_one_reg r{id, reinterpret_cast<uint64_t>(&v)};
  if (Ioctl(fd_, KVM_SET_ONE_REG, &r) < 0) {
    return SysError("KVM_SET_ONE_REG {:#x} = {:#x} on vCPU {}", id, v, index_);
  }
  return Ok();
}

Status KvmVcpuArch::WriteBack() {
  if (dirty_ == 0) return Ok();
  for (size_t i = 0; i < kRegs; ++i) {
    if ((dirty_ & (uint64_t{1} << i)) == 0) continue;
    STRATA_TRY(SetOne(CoreRegId(static_cast<Reg>(i)), regs_[i]));
  }
  dirty_ = 0;
  return Ok();
}

Status KvmVcpuArch::InitOnce() {
  if (!entered_) {
    // Every vCPU exists before any enters (core/machine.cc), so the vGIC
    // can be initialised now; the PMU's interrupt needs it (vcpu.rst).
    STRATA_TRY(vm_->FinalizeIrqchip());
    if (pmu_) {
      const int ppi = static_cast<int>(vm_->options().pmu_ppi);
      STRATA_TRY(SetDeviceAttr(fd_, KVM_ARM_VCPU_PMU_V3_CTRL,
                               KVM_ARM_VCPU_PMU_V3_IRQ, &ppi,
                               "setting the PMU interrupt"));
      STRATA_TRY(SetDeviceAttr(fd_, KVM_ARM_VCPU_PMU_V3_CTRL,
                               KVM_ARM_VCPU_PMU_V3_INIT, nullptr,
                               "initialising the PMU"));
    }
    entered_ = true;
  }
  return Ok();
}

Result<uint64_t> KvmVcpuArch::GetRegister(Reg r) {
  const auto i = static_cast<size_t>(r);
  if (i >= kRegs) {
    return MakeError(Errc::kInvalidArgument, "no arm64 register number {}", i);
  }
  const uint64_t bit = uint64_t{1} << i;
  if ((valid_ & bit) == 0) {
    regs_[i] = STRATA_TRY(GetOne(CoreRegId(r)));
    valid_ |= bit;
  }
  return regs_[i];
}

Status KvmVcpuArch::SetRegister(Reg r, uint64_t v) {
  const auto i = static_cast<size_t>(r);
  if (i >= kRegs) {
    return MakeError(Errc::kInvalidArgument, "no arm64 register number {}", i);
  }
  regs_[i] = v;
  valid_ |= uint64_t{1} << i;
  dirty_ |= uint64_t{1} << i;
  return Ok();
}

namespace {

// VcpuState's system registers, by field.
struct SysRegField {
  uint64_t VcpuState::*field;
  uint64_t id;
};
constexpr SysRegField kStateSysRegs[] = {
    {&VcpuState::sctlr_el1, kSysRegSctlrEl1},
    {&VcpuState::tcr_el1, kSysRegTcrEl1},
    {&VcpuState::ttbr0_el1, kSysRegTtbr0El1},
    {&VcpuState::ttbr1_el1, kSysRegTtbr1El1},
    {&VcpuState::mair_el1, kSysRegMairEl1},
    {&VcpuState::vbar_el1, kSysRegVbarEl1},
    {&VcpuState::esr_el1, kSysRegEsrEl1},
    {&VcpuState::far_el1, kSysRegFarEl1},
    {&VcpuState::cpacr_el1, kSysRegCpacrEl1},
    {&VcpuState::contextidr_el1, kSysRegContextidrEl1},
    {&VcpuState::tpidr_el1, kSysRegTpidrEl1},
    {&VcpuState::cntkctl_el1, kSysRegCntkctlEl1},
    {&VcpuState::mpidr_el1, kSysRegMpidrEl1},
};

}  // namespace

Result<VcpuState> KvmVcpuArch::GetState() {
  VcpuState s;
  s.sp_el1 = STRATA_TRY(GetRegister(Reg::kSpEl1));
  s.elr_el1 = STRATA_TRY(GetRegister(Reg::kElrEl1));
  s.spsr_el1 = STRATA_TRY(GetRegister(Reg::kSpsrEl1));
  for (const SysRegField& f : kStateSysRegs) {
    s.*f.field = STRATA_TRY(GetOne(SysRegOneRegId(f.id)));
  }
  return s;
}

Status KvmVcpuArch::SetState(const VcpuState& s) {
  STRATA_TRY(SetRegister(Reg::kSpEl1, s.sp_el1));
  STRATA_TRY(SetRegister(Reg::kElrEl1, s.elr_el1));
  STRATA_TRY(SetRegister(Reg::kSpsrEl1, s.spsr_el1));
  for (const SysRegField& f : kStateSysRegs) {
    STRATA_TRY(SetOne(SysRegOneRegId(f.id), s.*f.field));
  }
  return Ok();
}

Result<FpuState> KvmVcpuArch::GetFpu() {
  FpuState f;
  for (size_t i = 0; i < 32; ++i) {
    kvm_one_reg r{CoreId(offsetof(kvm_regs, fp_regs.vregs) + i * 16,
                         KVM_REG_SIZE_U128),
                  reinterpret_cast<uint64_t>(&f.v[i][0])};
    if (Ioctl(fd_, KVM_GET_ONE_REG, &r) < 0) return SysError("reading V{}", i);
  }
  kvm_one_reg sr{CoreId(offsetof(kvm_regs, fp_regs.fpsr), KVM_REG_SIZE_U32),
                 reinterpret_cast<uint64_t>(&f.fpsr)};
  kvm_one_reg cr{CoreId(offsetof(kvm_regs, fp_regs.fpcr), KVM_REG_SIZE_U32),
                 reinterpret_cast<uint64_t>(&f.fpcr)};
  if (Ioctl(fd_, KVM_GET_ONE_REG, &sr) < 0) return SysError("reading FPSR");
  if (Ioctl(fd_, KVM_GET_ONE_REG, &cr) < 0) return SysError("reading FPCR");
  return f;
}

Status KvmVcpuArch::SetFpu(const FpuState& in) {
  FpuState f = in;
  for (size_t i = 0; i < 32; ++i) {
    kvm_one_reg r{CoreId(offsetof(kvm_regs, fp_regs.vregs) + i * 16,
                         KVM_REG_SIZE_U128),
                  reinterpret_cast<uint64_t>(&f.v[i][0])};
    if (Ioctl(fd_, KVM_SET_ONE_REG, &r) < 0) return SysError("writing V{}", i);
  }
  kvm_one_reg sr{CoreId(offsetof(kvm_regs, fp_regs.fpsr), KVM_REG_SIZE_U32),
                 reinterpret_cast<uint64_t>(&f.fpsr)};
  kvm_one_reg cr{CoreId(offsetof(kvm_regs, fp_regs.fpcr), KVM_REG_SIZE_U32),
                 reinterpret_cast<uint64_t>(&f.fpcr)};
  if (Ioctl(fd_, KVM_SET_ONE_REG, &sr) < 0) return SysError("writing FPSR");
  if (Ioctl(fd_, KVM_SET_ONE_REG, &cr) < 0) return SysError("writing FPCR");
  return Ok();
}

Result<uint64_t> KvmVcpuArch::GetSysReg(uint64_t id) {
  if (id >> 16 != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "{:#x} is not an AArch64 system register encoding "
                     "(SysRegId)", id);
  }
  return GetOne(SysRegOneRegId(id));
}

Status KvmVcpuArch::SetSysReg(uint64_t id, uint64_t v) {
  if (id >> 16 != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "{:#x} is not an AArch64 system register encoding "
                     "(SysRegId)", id);
  }
  return SetOne(SysRegOneRegId(id), v);
}

Status KvmVcpuArch::Reset() {
  // KVM_ARM_VCPU_INIT resets the vCPU to its architected reset state (the
  // API doc: "can be called multiple times"), powered off if it is a
  // secondary, in EL1h with interrupts masked.
  if (Ioctl(fd_, KVM_ARM_VCPU_INIT, &init_) < 0) {
    return SysError("KVM_ARM_VCPU_INIT (target {}) for vCPU {}", init_.target,
                    index_);
  }
  valid_ = dirty_ = 0;
  return Ok();
}

Status KvmVcpuArch::SetRunnable(bool runnable) {
  kvm_mp_state mp{};
  mp.mp_state = runnable ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_STOPPED;
  if (Ioctl(fd_, KVM_SET_MP_STATE, &mp) < 0) return SysError("KVM_SET_MP_STATE");
  return Ok();
}

std::string KvmVcpuArch::DumpRegisters() {
  uint64_t r[kRegs];
  for (size_t i = 0; i < kRegs; ++i) {
    Result<uint64_t> v = GetRegister(static_cast<Reg>(i));
    if (!v) return "(registers unavailable)";
    r[i] = *v;
  }
  std::string out = fmt::format("  pc={:#018x} pstate={:#010x} sp_el0={:#018x}",
                                r[static_cast<size_t>(Reg::kPc)],
                                r[static_cast<size_t>(Reg::kPstate)],
                                r[static_cast<size_t>(Reg::kSp)]);
  for (size_t i = 0; i <= 30; ++i) {
    out += fmt::format("{}x{:<2}={:#018x}", i % 4 == 0 ? "\n  " : " ", i, r[i]);
  }
  out += fmt::format("\n  sp_el1={:#x} elr_el1={:#x} spsr_el1={:#x}",
                     r[static_cast<size_t>(Reg::kSpEl1)],
                     r[static_cast<size_t>(Reg::kElrEl1)],
                     r[static_cast<size_t>(Reg::kSpsrEl1)]);
  auto sys = [this](uint64_t id) -> std::string {
    Result<uint64_t> v = GetOne(SysRegOneRegId(id));
    return v ? fmt::format("{:#x}", *v) : std::string("?");
  };
  out += fmt::format("\n  esr_el1={} far_el1={} sctlr_el1={} vbar_el1={} "
                     "mpidr_el1={}",
                     sys(kSysRegEsrEl1), sys(kSysRegFarEl1),
                     sys(kSysRegSctlrEl1), sys(kSysRegVbarEl1),
                     sys(kSysRegMpidrEl1));
  return out;
}

bool KvmVcpuArch::ExitNeedsCompletion(const kvm_run* run) const {
  return run->exit_reason == KVM_EXIT_HYPERCALL;
}

bool KvmVcpuArch::DecodeExit(kvm_run* run, VmExit* exit) {
  ArchExit& a = exit->arch;
  switch (run->exit_reason) {
    case KVM_EXIT_ARM_NISV:
      a.reason = ArchExitReason::kDataAbortNoSyndrome;
      a.nisv_esr_iss = run->arm_nisv.esr_iss;
      a.nisv_fault_ipa = run->arm_nisv.fault_ipa;
      break;
    case KVM_EXIT_HYPERCALL:
      a.reason = ArchExitReason::kHypercall;
      a.hypercall_nr = run->hypercall.nr;
      for (int i = 0; i < 6; ++i) a.hypercall_args[i] = run->hypercall.args[i];
      a.hypercall_ret = reinterpret_cast<uint64_t*>(&run->hypercall.ret);
      break;
    case KVM_EXIT_DEBUG:
      a.reason = ArchExitReason::kDebug;
      a.debug_pc = run->debug.arch.far;
      a.debug_esr = run->debug.arch.hsr;
      break;
    default:
      return false;
  }
  exit->kind = ExitKind::kArch;
  return true;
}

}  // namespace strata::md
