// strata — amd64 KVM backend: VM setup (in-kernel or split irqchip, PIT,
// CPUID policy) and the vCPU register cache.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <cpuid.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "arch/amd64/cpu_models.h"
#include "arch/amd64/cpuid.h"
#include "arch/amd64/hyperv/hyperv_cpuid.h"
#include "arch/amd64/kvm/kvm_ioctls_amd64.h"
#include "core/kvm/kvm_abi.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "machine/kvm_machdep.h"

namespace strata::md {

namespace {

int Ioctl(int fd, unsigned long req, const void* arg) {
  return kvm::IoctlRetry(fd, req, arg);
}

// Guest-physical pages KVM needs for VMX real-mode emulation on Intel hosts
// (a TSS and an identity-mapped page table). They sit just below the BIOS
// area at the top of 4 GiB, inside the MMIO hole where RAM never goes.
constexpr uint64_t kTssAddr = 0xfffbd000;
constexpr uint64_t kIdentityMapAddr = 0xfffbc000;

// KVM_GET_SUPPORTED_CPUID wants a buffer big enough; grow until it fits.
Result<std::vector<amd64::CpuidEntry>> GetSupportedCpuid(int sys_fd) {
  for (uint32_t n = 128; n <= 4096; n *= 2) {
    kvm::CountedBuffer<kvm_cpuid_entry2> c(n);
    if (Ioctl(sys_fd, strata_kvm_get_supported_cpuid, c.data()) < 0) {
      if (errno == E2BIG) continue;
      return SysError("KVM_GET_SUPPORTED_CPUID");
    }
    std::vector<amd64::CpuidEntry> out;
    for (uint32_t i = 0; i < c.count(); ++i) {
      const kvm_cpuid_entry2& e = c.entries()[i];
      out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
    }
    return out;
  }
  return MakeError(Errc::kUnsupported, "KVM_GET_SUPPORTED_CPUID: table too big");
}

// The host processor's brand string (CPUID 8000_0002-4 executed here, in
// the VMM), whitespace-trimmed; "" where the host has none.
std::string HostBrandString() {
  unsigned int max = 0, unused = 0;
  if (__get_cpuid(0x80000000, &max, &unused, &unused, &unused) == 0 ||
      max < 0x80000004) {
    return "";
  }
  std::vector<amd64::CpuidEntry> leaves;
  for (unsigned int f = 0x80000002; f <= 0x80000004; ++f) {
    amd64::CpuidEntry e;
    e.function = f;
    __get_cpuid(f, &e.eax, &e.ebx, &e.ecx, &e.edx);
    leaves.push_back(e);
  }
  std::string b = amd64::BrandString(leaves);
  const size_t first = b.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return b.substr(first, b.find_last_not_of(' ') - first + 1);
}

// KVM_GET_SUPPORTED_HV_CPUID on `fd` (/dev/kvm or a vCPU), growing the
// buffer while KVM says E2BIG (it does not say how big: KVM API doc).
Result<std::vector<amd64::CpuidEntry>> QueryHvCpuid(int fd) {
  for (uint32_t n = 16; n <= 1024; n *= 2) {
    kvm::CountedBuffer<kvm_cpuid_entry2> c(n);
    std::memset(c.entries(), 0, n * sizeof(kvm_cpuid_entry2));
    if (Ioctl(fd, strata_kvm_get_supported_hv_cpuid, c.data()) < 0) {
      if (errno == E2BIG) continue;
      return SysError("KVM_GET_SUPPORTED_HV_CPUID");
    }
    std::vector<amd64::CpuidEntry> out;
    for (uint32_t i = 0; i < c.count() && i < n; ++i) {
      const kvm_cpuid_entry2& e = c.entries()[i];
      out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
    }
    return out;
  }
  return MakeError(Errc::kUnsupported,
                   "KVM_GET_SUPPORTED_HV_CPUID: table too big");
}

// The Hyper-V features KVM can offer: the system ioctl
// (KVM_CAP_SYS_HYPERV_CPUID, Linux 5.11+), else the vCPU ioctl
// (KVM_CAP_HYPERV_CPUID) on a vCPU of a scratch VM with the same kind of
// irqchip (the answer depends on the in-kernel LAPIC), so the VM's own
// vCPU ids stay untouched.
Result<std::vector<amd64::CpuidEntry>> GetSupportedHvCpuid(int sys_fd,
                                                           IrqchipMode mode) {
  if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID) > 0) {
    return QueryHvCpuid(sys_fd);
  }
  if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_CPUID) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "x86.hyperv: Hyper-V enlightenments are not supported by "
                     "KVM on this host (no KVM_CAP_HYPERV_CPUID)");
  }
  UniqueFd vm(ioctl(sys_fd, KVM_CREATE_VM, 0ul));
  if (!vm) return SysError("KVM_CREATE_VM (scratch VM for Hyper-V CPUID)");
  if (mode == IrqchipMode::kKernel) {
    if (ioctl(vm.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
      return SysError("KVM_CREATE_IRQCHIP (scratch VM for Hyper-V CPUID)");
    }
  } else {
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_SPLIT_IRQCHIP;
    cap.args[0] = kIrqPinCount;
    if (Ioctl(vm.get(), KVM_ENABLE_CAP, &cap) < 0) {
      return SysError("KVM_CAP_SPLIT_IRQCHIP (scratch VM for Hyper-V CPUID)");
    }
  }
  UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0ul));
  if (!vcpu) {
    return SysError("KVM_CREATE_VCPU (scratch VM for Hyper-V CPUID)");
  }
  return QueryHvCpuid(vcpu.get());
}

// Enables a vCPU capability (KVM_ENABLE_CAP on the vCPU fd).
Status EnableVcpuCap(int vcpu_fd, uint32_t cap, uint64_t arg0,
                     const char* name, uint32_t index) {
  kvm_enable_cap c{};
  c.cap = cap;
  c.args[0] = arg0;
  if (Ioctl(vcpu_fd, KVM_ENABLE_CAP, &c) < 0) {
    return SysError("enabling {} on vCPU {}", name, index);
  }
  return Ok();
}

void ToKvm(const Segment& s, kvm_segment* k) {
  k->base = s.base;
  k->limit = s.limit;
  k->selector = s.selector;
  k->type = s.type;
  k->present = s.present;
  k->dpl = s.dpl;
  k->db = s.db;
  k->s = s.s;
  k->l = s.l;
  k->g = s.g;
  k->avl = s.avl;
  k->unusable = s.unusable;
}

Segment FromKvm(const kvm_segment& k) {
  Segment s;
  s.base = k.base;
  s.limit = k.limit;
  s.selector = k.selector;
  s.type = k.type;
  s.present = k.present;
  s.dpl = k.dpl;
  s.db = k.db;
  s.s = k.s;
  s.l = k.l;
  s.g = k.g;
  s.avl = k.avl;
  s.unusable = k.unusable;
  return s;
}

// KVM_X86_SET_MSR_FILTER denying `UnenumeratedSpeculationMsrs(guest)`, read
// and write: with KVM_MSR_EXIT_REASON_FILTER not enabled, KVM answers a
// filtered access with #GP itself. A host without the capability is left as
// it is (its KVM's own checks apply).
Status FilterSpeculationMsrs(int sys_fd, int vm_fd,
                             std::span<const amd64::CpuidEntry> guest) {
  const std::vector<uint32_t> deny = amd64::UnenumeratedSpeculationMsrs(guest);
  if (deny.empty() ||
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0) {
    return Ok();
  }
  kvm_msr_filter filter{};
  filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
  uint8_t bitmaps[KVM_MSR_FILTER_MAX_RANGES] = {};  // bit 0 clear: deny
  for (size_t i = 0; i < deny.size() && i < KVM_MSR_FILTER_MAX_RANGES; ++i) {
    kvm_msr_filter_range& r = filter.ranges[i];
    r.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
    r.nmsrs = 1;
    r.base = deny[i];
    r.bitmap = &bitmaps[i];
  }
  if (Ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
    return SysError("KVM_X86_SET_MSR_FILTER");
  }
  return Ok();
}

}  // namespace

struct KvmVmArch::Impl {
  std::vector<amd64::CpuidEntry> supported;
  amd64::CpuidOptions cpuid;
  bool has_xsave = false;  // KVM_CAP_XSAVE and KVM_CAP_XCRS
  // x86.hyperv, settled: the features (none: off) and how KVM sets up
  // each vCPU for them.
  amd64::hyperv::FeatureSet hyperv;
  bool hv_vp_index_settable = false;  // KVM_CAP_HYPERV_VP_INDEX
  bool hv_enforce_cpuid = false;      // KVM_CAP_HYPERV_ENFORCE_CPUID
};

namespace {

bool HasFeature(const amd64::hyperv::FeatureSet& s,
                amd64::hyperv::Feature f) {
  return s[static_cast<size_t>(f)];
}

}  // namespace

Status KvmVmArch::SetUpHyperv(int sys_fd) {
  namespace hv = amd64::hyperv;
  const hv::Request request =
      STRATA_TRY(hv::ParseRequest(opts_.hyperv));
  if (!request.enabled) return Ok();
  if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "x86.hyperv: Hyper-V enlightenments are not supported by "
                     "KVM on this host (no KVM_CAP_HYPERV)");
  }
  const std::vector<amd64::CpuidEntry> host =
      STRATA_TRY(GetSupportedHvCpuid(sys_fd, opts_.irqchip));
  const hv::FeatureSet features = STRATA_TRY(hv::Resolve(request, host));
  // The SynIC is KVM's once a vCPU enables it; version 2 of the capability
  // leaves the guest's message and event pages alone (the VMM writes them:
  // KVM API doc, "KVM_CAP_HYPERV_SYNIC2").
  if (HasFeature(features, hv::Feature::kSynic) &&
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC2) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "x86.hyperv: the Hyper-V {} is not supported by KVM on "
                     "this host (no KVM_CAP_HYPERV_SYNIC2)",
                     hv::FeatureDescription(hv::Feature::kSynic));
  }
  impl_->cpuid.hyperv_leaves = STRATA_TRY_CTX(
      hv::BuildLeaves(host, features, opts_.hyperv_vendor_id,
                      request.passthrough),
      "x86.hyperv");
  impl_->hyperv = features;
  impl_->hv_vp_index_settable =
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_VP_INDEX) > 0;
  impl_->hv_enforce_cpuid =
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_ENFORCE_CPUID) > 0;
  opts_.hyperv = hv::FormatFeatures(features);
  Log().debug("x86.hyperv: {} (vendor id '{}'; VP index {}; CPUID {})",
              opts_.hyperv, opts_.hyperv_vendor_id,
              impl_->hv_vp_index_settable ? "set by strata" : "KVM's own",
              impl_->hv_enforce_cpuid ? "enforced by KVM" : "not enforced");
  return Ok();
}

Status KvmVmArch::SetUpHypervVcpu(int vcpu_fd, uint32_t index) {
  namespace hv = amd64::hyperv;
  if (impl_->hyperv.none()) return Ok();
  // KVM gives the guest exactly the Hyper-V MSRs and hypercalls its CPUID
  // offers (otherwise it allows every one it implements).
  if (impl_->hv_enforce_cpuid) {
    STRATA_TRY(EnableVcpuCap(vcpu_fd, KVM_CAP_HYPERV_ENFORCE_CPUID, 1,
                             "KVM_CAP_HYPERV_ENFORCE_CPUID", index));
  }
  if (HasFeature(impl_->hyperv, hv::Feature::kSynic)) {
    STRATA_TRY(EnableVcpuCap(vcpu_fd, KVM_CAP_HYPERV_SYNIC2, 0,
                             "KVM_CAP_HYPERV_SYNIC2", index));
  }
  // The VP index is the vCPU index (TLFS, "Virtual Processor Index": the
  // guest reads it from HV_X64_MSR_VP_INDEX; SynIC routes and hypercalls
  // name VPs by it). KVM's default is the order of creation, which a
  // lazily created VM need not follow.
  constexpr uint32_t kMsrVpIndex = 0x40000002;
  kvm::CountedBuffer<kvm_msr_entry> m(1);
  m.entries()[0] = kvm_msr_entry{};
  m.entries()[0].index = kMsrVpIndex;
  m.entries()[0].data = index;
  if (impl_->hv_vp_index_settable) {
    if (Ioctl(vcpu_fd, strata_kvm_set_msrs, m.data()) != 1) {
      return SysError("setting the Hyper-V VP index of vCPU {}", index);
    }
    return Ok();
  }
  if (Ioctl(vcpu_fd, strata_kvm_get_msrs, m.data()) != 1) {
    return SysError("reading the Hyper-V VP index of vCPU {}", index);
  }
  if (m.entries()[0].data != index) {
    return MakeError(Errc::kUnsupported,
                     "x86.hyperv: KVM gave vCPU {} VP index {} and cannot "
                     "set it (no KVM_CAP_HYPERV_VP_INDEX); create the vCPUs "
                     "in order",
                     index, m.entries()[0].data);
  }
  return Ok();
}

namespace {

// x86.cpu_pm: the guest's HLT, PAUSE, MWAIT and C-state entries stay in
// guest mode (KVM API doc, KVM_CAP_X86_DISABLE_EXITS), the ones this KVM
// offers (MWAIT only where the host's MWAIT is usable in a guest), as
// QEMU's cpu-pm=on takes them. Must precede KVM_CREATE_VCPU.
Status DisableIdleExits(int sys_fd, int vm_fd) {
  const int offered =
      ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS);
  constexpr int kWanted = KVM_X86_DISABLE_EXITS_HLT |
                          KVM_X86_DISABLE_EXITS_PAUSE |
                          KVM_X86_DISABLE_EXITS_MWAIT |
                          KVM_X86_DISABLE_EXITS_CSTATE;
  if (offered <= 0 || (offered & kWanted) == 0) {
    return MakeError(Errc::kUnsupported,
                     "x86.cpu_pm: this host's KVM cannot leave HLT, PAUSE or "
                     "MWAIT to the guest (no KVM_CAP_X86_DISABLE_EXITS)");
  }
  kvm_enable_cap cap{};
  cap.cap = KVM_CAP_X86_DISABLE_EXITS;
  cap.args[0] = static_cast<uint64_t>(offered & kWanted);
  if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
    return SysError("enabling KVM_CAP_X86_DISABLE_EXITS ({:#x})", cap.args[0]);
  }
  Log().info("x86.cpu_pm: no exits for{}{}{}{}",
             (cap.args[0] & KVM_X86_DISABLE_EXITS_HLT) ? " HLT" : "",
             (cap.args[0] & KVM_X86_DISABLE_EXITS_PAUSE) ? " PAUSE" : "",
             (cap.args[0] & KVM_X86_DISABLE_EXITS_MWAIT) ? " MWAIT" : "",
             (cap.args[0] & KVM_X86_DISABLE_EXITS_CSTATE) ? " C-states" : "");
  return Ok();
}

}  // namespace

Result<unsigned long> KvmVmArch::VmType(int, const MachineOptions&) {
  return 0ul;
}

KvmVmArch::KvmVmArch(int sys_fd, int vm_fd, const MachineOptions& opts,
                     uint32_t max_vcpus)
    : sys_fd_(sys_fd), vm_fd_(vm_fd), opts_(opts), max_vcpus_(max_vcpus),
      impl_(std::make_unique<Impl>()) {}

KvmVmArch::~KvmVmArch() = default;

Result<std::unique_ptr<KvmVmArch>> KvmVmArch::Create(
    int sys_fd, int vm_fd, const MachineOptions& opts,
    const CpuTopology& topology, uint32_t max_vcpus) {
  if (topology.clusters != 1) {
    return MakeError(Errc::kInvalidArgument,
                     "amd64 has no cluster level in its CPU topology (got {} "
                     "clusters); use sockets, cores and threads",
                     topology.clusters);
  }
  std::unique_ptr<KvmVmArch> a(new KvmVmArch(sys_fd, vm_fd, opts, max_vcpus));
  int routes = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
  a->max_gsi_ = routes > 0 ? static_cast<uint32_t>(routes) : 0;
  if (ioctl(vm_fd, KVM_SET_TSS_ADDR, kTssAddr) < 0) {
    return SysError("KVM_SET_TSS_ADDR");
  }
  uint64_t idmap = kIdentityMapAddr;
  if (Ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
    return SysError("KVM_SET_IDENTITY_MAP_ADDR");
  }
  switch (opts.irqchip) {
    case IrqchipMode::kKernel: {
      // In-kernel PIC + IOAPIC + LAPICs, and the i8254 PIT on GSI 0.
      if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        return SysError("KVM_CREATE_IRQCHIP");
      }
      if (opts.pit) {  // x86.pit=false: a PC without an i8254
        kvm_pit_config pit{};
        if (Ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
          return SysError("KVM_CREATE_PIT2");
        }
      }
      break;
    }
    case IrqchipMode::kSplit: {
      // LAPICs only; must precede KVM_CREATE_VCPU. args[0] reserves GSIs
      // 0..23 for the user-space IOAPIC's routes: KVM derives the vectors
      // whose EOIs exit (KVM_EXIT_IOAPIC_EOI) from the level-triggered MSI
      // routes on them (KVM API doc, "KVM_CAP_SPLIT_IRQCHIP";
      // arch/x86/kvm/irq_comm.c, kvm_scan_ioapic_routes).
      if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) <= 0) {
        return MakeError(Errc::kUnsupported,
                         "x86.irqchip=split: this host's KVM has no "
                         "KVM_CAP_SPLIT_IRQCHIP (use x86.irqchip=kernel)");
      }
      kvm_enable_cap cap{};
      cap.cap = KVM_CAP_SPLIT_IRQCHIP;
      cap.args[0] = kIrqPinCount;
      if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
        return SysError("enabling KVM_CAP_SPLIT_IRQCHIP with {} IOAPIC routes",
                        kIrqPinCount);
      }
      break;
    }
  }
  if (opts.cpu_pm) STRATA_TRY(DisableIdleExits(sys_fd, vm_fd));
  // Unknown MSRs exit to user space, where the arch handler table decides
  // (by default: #GP, logged once) — SDM Vol. 4 lists what exists.
  if (ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) > 0) {
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
    cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN;
    if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
      return SysError("enabling KVM_CAP_X86_USER_SPACE_MSR");
    }
  }
  a->impl_->has_xsave = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 &&
                        ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
  a->impl_->supported = STRATA_TRY(GetSupportedCpuid(sys_fd));
  amd64::CpuidOptions& c = a->impl_->cpuid;
  const amd64::CpuVendor host_vendor =
      amd64::VendorFromCpuid(a->impl_->supported);
  if (!opts.cpu_model.empty() && opts.cpu_model != "host") {
    c.model = amd64::FindCpuModel(opts.cpu_model);
    if (c.model == nullptr) {
      return MakeError(Errc::kInvalidArgument,
                       "x86.cpu_model '{}' is not a known model: host, {}",
                       opts.cpu_model, fmt::join(amd64::CpuModelNames(), ", "));
    }
    // As QEMU does: the model's bits KVM lacks are dropped, with a warning.
    std::vector<amd64::CpuidEntry> scratch = a->impl_->supported;
    for (const std::string& bit : amd64::ApplyCpuModel(scratch, *c.model)) {
      Log().warn("CPU model {}: KVM on this host lacks {}, dropped",
                 opts.cpu_model, bit);
    }
  }
  if (opts.cpu_vendor == "host" || opts.cpu_vendor.empty()) {
    c.vendor = c.model != nullptr ? c.model->vendor : host_vendor;
  } else {
    c.vendor = STRATA_TRY_CTX(amd64::ParseVendor(opts.cpu_vendor),
                              "x86.cpu_vendor");
  }
  // KVM leaves the brand string to the VMM: the host's when the guest has
  // the host's vendor (QEMU's -cpu host does the same), else a name that
  // does not claim another vendor's part.
  if (c.model == nullptr && amd64::BrandString(a->impl_->supported).empty()) {
    c.brand = c.vendor == host_vendor ? HostBrandString() : std::string();
    if (c.brand.empty()) {
      c.brand = fmt::format("strata virtual {} CPU",
                            c.vendor == amd64::CpuVendor::kAmd ? "AMD" : "Intel");
    }
  }
  c.topo = {topology.sockets, topology.cores, topology.threads};
  c.hypervisor_bit = opts.hypervisor_bit;
  c.x2apic = opts.x2apic;
  c.tsc_deadline = opts.tsc_deadline;  // both modes have KVM's LAPIC timer
  c.features = STRATA_TRY_CTX(amd64::ParseCpuFeatures(opts.cpu_features),
                              "x86.cpu_features");
  if (opts.drop_missing_features) {
    for (const std::string& name :
         amd64::MissingFeatures(a->impl_->supported, c.features)) {
      Log().warn("CPU feature +{}: KVM on this host lacks it, dropped "
                 "(x86.cpu_features_missing=drop)",
                 name);
      std::erase_if(c.features, [&](const amd64::CpuFeatureOverride& o) {
        return o.on && o.name == name;
      });
    }
  }
  c.max_vcpus = max_vcpus;
  STRATA_TRY(a->SetUpHyperv(sys_fd));
  // Validate the whole configuration once, up front.
  const std::vector<amd64::CpuidEntry> guest = STRATA_TRY_CTX(
      amd64::BuildGuestCpuid(a->impl_->supported, c, 0),
      "building the guest CPUID (x86.cpu_vendor, x86.x2apic, "
      "x86.cpu_features, the topology)");
  // Every vCPU has the same features (only topology fields differ), so one
  // VM-wide filter makes the speculation MSRs #GP as the guest's CPUID says
  // (cpuid.h), on hosts whose KVM would let them through.
  STRATA_TRY(FilterSpeculationMsrs(sys_fd, vm_fd, guest));
  return a;
}

namespace {

// The GSI of an IOAPIC input, which is its pin number (0..23).
Result<uint32_t> CheckIoapicPin(const IrqPin& pin) {
  if (pin.gsi >= kIrqPinCount) {
    return MakeError(Errc::kOutOfRange, "{} is not an IOAPIC input (0..{})",
                     IrqPinName(pin), kIrqPinCount - 1);
  }
  return pin.gsi;
}

}  // namespace

Result<uint32_t> KvmVmArch::IrqLineArg(const IrqPin& pin) const {
  if (opts_.irqchip == IrqchipMode::kSplit) {
    // KVM would take the GSI, but only through whatever route the VMM put
    // there: it would bypass the IOAPIC's mask and remote IRR.
    return MakeError(Errc::kUnsupported,
                     "{}: with x86.irqchip=split the IOAPIC is in the VMM; "
                     "raise its pins through it (devices/ioapic.h), not "
                     "through KVM",
                     IrqPinName(pin));
  }
  return CheckIoapicPin(pin);
}

Result<uint32_t> KvmVmArch::IrqFdGsi(const IrqPin& pin) const {
  return IrqLineArg(pin);
}

Result<uint32_t> KvmVmArch::SplitPinGsi(const IrqPin& pin) const {
  if (opts_.irqchip != IrqchipMode::kSplit) {
    return MakeError(Errc::kUnsupported,
                     "{}: pin routes are for a user-space IOAPIC "
                     "(x86.irqchip=split); this VM's IOAPIC is KVM's",
                     IrqPinName(pin));
  }
  // The IOAPIC's pin n owns GSI n, one of the routes reserved by
  // KVM_CAP_SPLIT_IRQCHIP.
  return CheckIoapicPin(pin);
}

Status KvmVmArch::FillMsi(const MsiMessage& msi, kvm_msi* out) const {
  // SDM Vol. 3 §11.11.1: the address must lie in the 0xFEEx_xxxx window.
  if ((msi.address & 0xfff00000u) != 0xfee00000u || (msi.address >> 32) > 0xffffff) {
    return MakeError(Errc::kInvalidArgument,
                     "MSI address {:#x} is outside the 0xfee00000 window "
                     "(SDM Vol. 3 §11.11.1)",
                     msi.address);
  }
  *out = kvm_msi{};
  out->address_lo = static_cast<uint32_t>(msi.address);
  // Bits 63:40 of the address would be the extended destination id;
  // KVM takes address_hi as given (x2APIC ids > 255 with
  // KVM_CAP_X2APIC_API's extended format).
  out->address_hi = static_cast<uint32_t>(msi.address >> 32);
  out->data = msi.data;
  return Ok();
}

Status KvmVmArch::FillMsiRoute(const MsiMessage& msi,
                               kvm_irq_routing_entry* e) const {
  kvm_msi m;
  STRATA_TRY(FillMsi(msi, &m));
  e->type = KVM_IRQ_ROUTING_MSI;
  e->u.msi.address_lo = m.address_lo;
  e->u.msi.address_hi = m.address_hi;
  e->u.msi.data = m.data;
  return Ok();
}

std::vector<kvm_irq_routing_entry> KvmVmArch::DefaultRoutes() const {
  // arch/x86/kvm/irq_comm.c, default_routing[]: GSI n -> IOAPIC pin n for
  // n < 24, and for n < 16 also the 8259 pair (master n, or slave n - 8).
  std::vector<kvm_irq_routing_entry> out;
  // Split: KVM starts with an empty table (kvm_setup_empty_irq_routing);
  // GSIs 0..23 carry only the routes the user-space IOAPIC sets.
  if (opts_.irqchip != IrqchipMode::kKernel) return out;
  for (uint32_t gsi = 0; gsi < kIrqPinCount; ++gsi) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    e.u.irqchip.pin = gsi;
    out.push_back(e);
    if (gsi < 16) {
      e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      e.u.irqchip.pin = gsi % 8;
      out.push_back(e);
    }
  }
  return out;
}

std::string_view KvmVmArch::guest_vendor() const {
  return impl_->cpuid.vendor == amd64::CpuVendor::kAmd ? "AuthenticAMD"
                                                       : "GenuineIntel";
}

unsigned long KvmVmArch::KvmVcpuId(uint32_t index) const {
  return amd64::ApicIdFor(impl_->cpuid.topo, index);
}

Result<std::unique_ptr<KvmVcpuArch>> KvmVmArch::CreateVcpu(int vcpu_fd,
                                                           uint32_t index) {
  std::vector<amd64::CpuidEntry> leaves = STRATA_TRY(
      amd64::BuildGuestCpuid(impl_->supported, impl_->cpuid, index));
  kvm::CountedBuffer<kvm_cpuid_entry2> c(static_cast<uint32_t>(leaves.size()));
  uint32_t leaf1_eax = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    kvm_cpuid_entry2& e = c.entries()[i];
    e = kvm_cpuid_entry2{};
    e.function = leaves[i].function;
    e.index = leaves[i].index;
    e.flags = leaves[i].flags;
    e.eax = leaves[i].eax;
    e.ebx = leaves[i].ebx;
    e.ecx = leaves[i].ecx;
    e.edx = leaves[i].edx;
    if (e.function == 1) leaf1_eax = e.eax;
  }
  if (Ioctl(vcpu_fd, strata_kvm_set_cpuid2, c.data()) < 0) {
    return SysError("KVM_SET_CPUID2 for vCPU {}", index);
  }
  STRATA_TRY(SetUpHypervVcpu(vcpu_fd, index));
  auto v = std::make_unique<KvmVcpuArch>(vcpu_fd, index, leaf1_eax,
                                         impl_->has_xsave);
  STRATA_TRY(v->Reset());
  return v;
}

// --------------------------------------------------------- KvmVcpuArch ----

KvmVcpuArch::KvmVcpuArch(int vcpu_fd, uint32_t index, uint32_t cpuid_1_eax,
                         bool has_xsave)
    : fd_(vcpu_fd), index_(index), cpuid_1_eax_(cpuid_1_eax),
      has_xsave_(has_xsave) {}

KvmVcpuArch::~KvmVcpuArch() = default;

Status KvmVcpuArch::LoadRegs() {
  if (regs_valid_) return Ok();
  if (Ioctl(fd_, KVM_GET_REGS, &regs_) < 0) return SysError("KVM_GET_REGS");
  regs_valid_ = true;
  return Ok();
}

Status KvmVcpuArch::LoadSregs() {
  if (sregs_valid_) return Ok();
  if (Ioctl(fd_, KVM_GET_SREGS, &sregs_) < 0) return SysError("KVM_GET_SREGS");
  sregs_valid_ = true;
  return Ok();
}

Status KvmVcpuArch::WriteBack() {
  if (sregs_dirty_) {
    if (Ioctl(fd_, KVM_SET_SREGS, &sregs_) < 0) return SysError("KVM_SET_SREGS");
    sregs_dirty_ = false;
  }
  if (regs_dirty_) {
    if (Ioctl(fd_, KVM_SET_REGS, &regs_) < 0) return SysError("KVM_SET_REGS");
    regs_dirty_ = false;
  }
  return Ok();
}

namespace {
uint64_t* GprSlot(kvm_regs& r, Reg reg) {
  switch (reg) {
    case Reg::kRax: return reinterpret_cast<uint64_t*>(&r.rax);
    case Reg::kRbx: return reinterpret_cast<uint64_t*>(&r.rbx);
    case Reg::kRcx: return reinterpret_cast<uint64_t*>(&r.rcx);
    case Reg::kRdx: return reinterpret_cast<uint64_t*>(&r.rdx);
    case Reg::kRsi: return reinterpret_cast<uint64_t*>(&r.rsi);
    case Reg::kRdi: return reinterpret_cast<uint64_t*>(&r.rdi);
    case Reg::kRbp: return reinterpret_cast<uint64_t*>(&r.rbp);
    case Reg::kRsp: return reinterpret_cast<uint64_t*>(&r.rsp);
    case Reg::kR8: return reinterpret_cast<uint64_t*>(&r.r8);
    case Reg::kR9: return reinterpret_cast<uint64_t*>(&r.r9);
    case Reg::kR10: return reinterpret_cast<uint64_t*>(&r.r10);
    case Reg::kR11: return reinterpret_cast<uint64_t*>(&r.r11);
    case Reg::kR12: return reinterpret_cast<uint64_t*>(&r.r12);
    case Reg::kR13: return reinterpret_cast<uint64_t*>(&r.r13);
    case Reg::kR14: return reinterpret_cast<uint64_t*>(&r.r14);
    case Reg::kR15: return reinterpret_cast<uint64_t*>(&r.r15);
    case Reg::kRip: return reinterpret_cast<uint64_t*>(&r.rip);
    case Reg::kRflags: return reinterpret_cast<uint64_t*>(&r.rflags);
    default: return nullptr;
  }
}

uint64_t* SregSlot(kvm_sregs& s, Reg reg) {
  switch (reg) {
    case Reg::kCr0: return reinterpret_cast<uint64_t*>(&s.cr0);
    case Reg::kCr2: return reinterpret_cast<uint64_t*>(&s.cr2);
    case Reg::kCr3: return reinterpret_cast<uint64_t*>(&s.cr3);
    case Reg::kCr4: return reinterpret_cast<uint64_t*>(&s.cr4);
    case Reg::kCr8: return reinterpret_cast<uint64_t*>(&s.cr8);
    case Reg::kEfer: return reinterpret_cast<uint64_t*>(&s.efer);
    default: return nullptr;
  }
}
}  // namespace

Result<uint64_t> KvmVcpuArch::GetRegister(Reg r) {
  if (GprSlot(regs_, r) != nullptr) {
    STRATA_TRY(LoadRegs());
    return *GprSlot(regs_, r);
  }
  if (SregSlot(sregs_, r) != nullptr) {
    STRATA_TRY(LoadSregs());
    return *SregSlot(sregs_, r);
  }
  return MakeError(Errc::kInvalidArgument, "no amd64 register number {}",
                   static_cast<int>(r));
}

Status KvmVcpuArch::SetRegister(Reg r, uint64_t v) {
  if (uint64_t* p = GprSlot(regs_, r)) {
    STRATA_TRY(LoadRegs());
    *p = v;
    regs_dirty_ = true;
    return Ok();
  }
  if (uint64_t* p = SregSlot(sregs_, r)) {
    STRATA_TRY(LoadSregs());
    *p = v;
    sregs_dirty_ = true;
    return Ok();
  }
  return MakeError(Errc::kInvalidArgument, "no amd64 register number {}",
                   static_cast<int>(r));
}

Result<VcpuState> KvmVcpuArch::GetState() {
  STRATA_TRY(LoadSregs());
  VcpuState s;
  s.cs = FromKvm(sregs_.cs);
  s.ds = FromKvm(sregs_.ds);
  s.es = FromKvm(sregs_.es);
  s.fs = FromKvm(sregs_.fs);
  s.gs = FromKvm(sregs_.gs);
  s.ss = FromKvm(sregs_.ss);
  s.tr = FromKvm(sregs_.tr);
  s.ldt = FromKvm(sregs_.ldt);
  s.gdt = {sregs_.gdt.base, sregs_.gdt.limit};
  s.idt = {sregs_.idt.base, sregs_.idt.limit};
  s.cr0 = sregs_.cr0;
  s.cr2 = sregs_.cr2;
  s.cr3 = sregs_.cr3;
  s.cr4 = sregs_.cr4;
  s.cr8 = sregs_.cr8;
  s.efer = sregs_.efer;
  s.apic_base = sregs_.apic_base;
  return s;
}

Status KvmVcpuArch::SetState(const VcpuState& s) {
  STRATA_TRY(LoadSregs());
  ToKvm(s.cs, &sregs_.cs);
  ToKvm(s.ds, &sregs_.ds);
  ToKvm(s.es, &sregs_.es);
  ToKvm(s.fs, &sregs_.fs);
  ToKvm(s.gs, &sregs_.gs);
  ToKvm(s.ss, &sregs_.ss);
  ToKvm(s.tr, &sregs_.tr);
  ToKvm(s.ldt, &sregs_.ldt);
  sregs_.gdt.base = s.gdt.base;
  sregs_.gdt.limit = s.gdt.limit;
  sregs_.idt.base = s.idt.base;
  sregs_.idt.limit = s.idt.limit;
  sregs_.cr0 = s.cr0;
  sregs_.cr2 = s.cr2;
  sregs_.cr3 = s.cr3;
  sregs_.cr4 = s.cr4;
  sregs_.cr8 = s.cr8;
  sregs_.efer = s.efer;
  sregs_.apic_base = s.apic_base;
  sregs_dirty_ = true;
  return Ok();
}

Result<FpuState> KvmVcpuArch::GetFpu() {
  kvm_fpu k{};
  if (Ioctl(fd_, KVM_GET_FPU, &k) < 0) return SysError("KVM_GET_FPU");
  FpuState f;
  std::memcpy(f.fpr, k.fpr, sizeof(f.fpr));
  f.fcw = k.fcw;
  f.fsw = k.fsw;
  f.ftwx = k.ftwx;
  f.last_opcode = k.last_opcode;
  f.last_ip = k.last_ip;
  f.last_dp = k.last_dp;
  std::memcpy(f.xmm, k.xmm, sizeof(f.xmm));
  f.mxcsr = k.mxcsr;
  if (has_xsave_) {
    if (Ioctl(fd_, strata_kvm_get_xsave, f.xsave) < 0) {
      return SysError("KVM_GET_XSAVE");
    }
    kvm_xcrs xcrs{};
    if (Ioctl(fd_, KVM_GET_XCRS, &xcrs) < 0) return SysError("KVM_GET_XCRS");
    for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i) {
      if (xcrs.xcrs[i].xcr == 0) f.xcr0 = xcrs.xcrs[i].value;
    }
    f.has_xsave = true;
  }
  return f;
}

Status KvmVcpuArch::SetFpu(const FpuState& f) {
  kvm_fpu k{};
  std::memcpy(k.fpr, f.fpr, sizeof(f.fpr));
  k.fcw = f.fcw;
  k.fsw = f.fsw;
  k.ftwx = f.ftwx;
  k.last_opcode = f.last_opcode;
  k.last_ip = f.last_ip;
  k.last_dp = f.last_dp;
  std::memcpy(k.xmm, f.xmm, sizeof(f.xmm));
  k.mxcsr = f.mxcsr;
  if (!f.has_xsave || !has_xsave_) {
    if (Ioctl(fd_, KVM_SET_FPU, &k) < 0) return SysError("KVM_SET_FPU");
    return Ok();
  }
  // Legacy region of the XSAVE image (SDM Vol. 1 Table 10-2).
  uint32_t area[1024];
  std::memcpy(area, f.xsave, sizeof(area));
  auto* b = reinterpret_cast<uint8_t*>(area);
  std::memcpy(b + 0, &f.fcw, 2);
  std::memcpy(b + 2, &f.fsw, 2);
  b[4] = f.ftwx;
  std::memcpy(b + 6, &f.last_opcode, 2);
  std::memcpy(b + 8, &f.last_ip, 8);
  std::memcpy(b + 16, &f.last_dp, 8);
  std::memcpy(b + 24, &f.mxcsr, 4);
  std::memcpy(b + 32, f.fpr, sizeof(f.fpr));
  std::memcpy(b + 160, f.xmm, sizeof(f.xmm));
  // XSTATE_BV (XSAVE header, offset 512): x87 and SSE are now explicitly
  // given; a clear bit would make XRSTOR load their init state instead
  // (SDM Vol. 1 §13.8.1).
  uint64_t xstate_bv;
  std::memcpy(&xstate_bv, b + 512, 8);
  xstate_bv |= 0x3;
  std::memcpy(b + 512, &xstate_bv, 8);
  kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1;
  xcrs.xcrs[0].xcr = 0;
  xcrs.xcrs[0].value = f.xcr0;
  if (Ioctl(fd_, KVM_SET_XCRS, &xcrs) < 0) {
    return SysError("KVM_SET_XCRS (XCR0={:#x})", f.xcr0);
  }
  if (Ioctl(fd_, strata_kvm_set_xsave, area) < 0) return SysError("KVM_SET_XSAVE");
  return Ok();
}

Result<uint64_t> KvmVcpuArch::GetSysReg(uint64_t msr) {
  kvm::CountedBuffer<kvm_msr_entry> m(1);
  m.entries()[0] = kvm_msr_entry{};
  m.entries()[0].index = static_cast<uint32_t>(msr);
  int r = Ioctl(fd_, strata_kvm_get_msrs, m.data());
  if (r < 0) return SysError("KVM_GET_MSRS {:#x}", msr);
  if (r != 1) {
    return MakeError(Errc::kUnsupported, "MSR {:#x} is not readable on this "
                     "vCPU (KVM does not support it)", msr);
  }
  return static_cast<uint64_t>(m.entries()[0].data);
}

Status KvmVcpuArch::SetSysReg(uint64_t msr, uint64_t v) {
  kvm::CountedBuffer<kvm_msr_entry> m(1);
  m.entries()[0] = kvm_msr_entry{};
  m.entries()[0].index = static_cast<uint32_t>(msr);
  m.entries()[0].data = v;
  int r = Ioctl(fd_, strata_kvm_set_msrs, m.data());
  if (r < 0) return SysError("KVM_SET_MSRS {:#x}", msr);
  if (r != 1) {
    return MakeError(Errc::kInvalidArgument,
                     "MSR {:#x} rejected value {:#x}", msr, v);
  }
  return Ok();
}

Status KvmVcpuArch::Reset() {
  // SDM Vol. 3 §9.1.1, Table 9-1 "IA-32 and Intel 64 Processor States
  // Following Power-up, Reset, or INIT".
  STRATA_TRY(LoadRegs());
  STRATA_TRY(LoadSregs());
  std::memset(&regs_, 0, sizeof(regs_));
  regs_.rflags = kRflagsReserved1;
  regs_.rip = 0xfff0;
  regs_.rdx = cpuid_1_eax_;  // family/model/stepping
  regs_dirty_ = true;

  auto seg = [](kvm_segment* s, uint16_t sel, uint64_t base, uint8_t type,
                uint8_t is_code_data) {
    *s = kvm_segment{};
    s->selector = sel;
    s->base = base;
    s->limit = 0xffff;
    s->type = type;
    s->present = 1;
    s->s = is_code_data;
  };
  seg(&sregs_.cs, 0xf000, 0xffff0000, 0xb, 1);  // execute/read, accessed
  seg(&sregs_.ds, 0, 0, 0x3, 1);                 // read/write, accessed
  seg(&sregs_.es, 0, 0, 0x3, 1);
  seg(&sregs_.fs, 0, 0, 0x3, 1);
  seg(&sregs_.gs, 0, 0, 0x3, 1);
  seg(&sregs_.ss, 0, 0, 0x3, 1);
  seg(&sregs_.ldt, 0, 0, 0x2, 0);                // LDT
  seg(&sregs_.tr, 0, 0, 0xb, 0);                 // busy 32-bit TSS (VMX)
  sregs_.gdt.base = 0;
  sregs_.gdt.limit = 0xffff;
  sregs_.idt.base = 0;
  sregs_.idt.limit = 0xffff;
  sregs_.cr0 = kCr0Cd | kCr0Nw | kCr0Et;  // 0x60000010
  sregs_.cr2 = sregs_.cr3 = sregs_.cr4 = sregs_.cr8 = 0;
  sregs_.efer = 0;
  // APIC enabled at its default base; BSP flag on vCPU 0 (SDM §10.4.4).
  sregs_.apic_base = 0xfee00000ull | (1ull << 11) | (index_ == 0 ? 1ull << 8 : 0);
  std::memset(sregs_.interrupt_bitmap, 0, sizeof(sregs_.interrupt_bitmap));
  sregs_dirty_ = true;

  FpuState f;  // has_xsave = false: KVM_SET_FPU, other XSAVE state kept
  f.fcw = 0x40;  // x87 control word after RESET (Table 9-1); MXCSR 0x1f80
  STRATA_TRY(SetFpu(f));
  return Flush();
}

Status KvmVcpuArch::SetRunnable(bool runnable) {
  kvm_mp_state mp{};
  mp.mp_state = runnable ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED;
  if (Ioctl(fd_, KVM_SET_MP_STATE, &mp) < 0) return SysError("KVM_SET_MP_STATE");
  return Ok();
}

std::string KvmVcpuArch::DumpRegisters() {
  Status a = LoadRegs();
  Status b = LoadSregs();
  if (!a || !b) return "(registers unavailable)";
  const kvm_regs& r = regs_;
  const kvm_sregs& s = sregs_;
  return fmt::format(
      "  rip={:#018x} rflags={:#010x}\n"
      "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n"
      "  rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}\n"
      "  r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}\n"
      "  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n"
      "  cs={:#06x} base={:#x} l={} db={}  ss={:#06x}  ds={:#06x}\n"
      "  cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}\n"
      "  gdt={:#x}/{:#x} idt={:#x}/{:#x}",
      r.rip, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
      r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector,
      s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.ds.selector, s.cr0, s.cr2,
      s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

bool KvmVcpuArch::ExitNeedsCompletion(const kvm_run* run) const {
  // KVM_EXIT_X86_RDMSR/WRMSR, KVM_EXIT_HYPERCALL and a Hyper-V hypercall
  // finish (RAX:RDX, #GP, RIP) on the next KVM_RUN (KVM API doc, "KVM_RUN",
  // "KVM_EXIT_HYPERV"); a SynIC exit reports an MSR write already done.
  return run->exit_reason == KVM_EXIT_X86_RDMSR ||
         run->exit_reason == KVM_EXIT_X86_WRMSR ||
         run->exit_reason == KVM_EXIT_HYPERCALL ||
         (run->exit_reason == KVM_EXIT_HYPERV &&
          run->hyperv.type == KVM_EXIT_HYPERV_HCALL);
}

bool KvmVcpuArch::DecodeExit(kvm_run* run, VmExit* exit) {
  ArchExit& a = exit->arch;
  switch (run->exit_reason) {
    case KVM_EXIT_X86_RDMSR:
    case KVM_EXIT_X86_WRMSR:
      a.reason = run->exit_reason == KVM_EXIT_X86_RDMSR ? ArchExitReason::kRdmsr
                                                        : ArchExitReason::kWrmsr;
      a.msr_index = run->msr.index;
      a.msr_data = run->msr.data;
      a.msr_error = &run->msr.error;
      a.msr_reply = reinterpret_cast<uint64_t*>(&run->msr.data);
      break;
    case KVM_EXIT_HYPERCALL:
      a.reason = ArchExitReason::kHypercall;
      a.hypercall_nr = run->hypercall.nr;
      for (int i = 0; i < 6; ++i) a.hypercall_args[i] = run->hypercall.args[i];
      a.hypercall_ret = reinterpret_cast<uint64_t*>(&run->hypercall.ret);
      break;
    case KVM_EXIT_DEBUG:
      a.reason = ArchExitReason::kDebug;
      a.debug_pc = run->debug.arch.pc;
      a.debug_exception = run->debug.arch.exception;
      break;
    case KVM_EXIT_TPR_ACCESS:
      a.reason = ArchExitReason::kTprAccess;
      break;
    case KVM_EXIT_SET_TPR:
      a.reason = ArchExitReason::kSetTpr;
      break;
    case KVM_EXIT_HYPERV:
      switch (run->hyperv.type) {
        case KVM_EXIT_HYPERV_SYNIC:
          a.reason = ArchExitReason::kHypervSynic;
          a.hv_msr = run->hyperv.u.synic.msr;
          a.hv_control = run->hyperv.u.synic.control;
          a.hv_evt_page = run->hyperv.u.synic.evt_page;
          a.hv_msg_page = run->hyperv.u.synic.msg_page;
          break;
        case KVM_EXIT_HYPERV_HCALL:
          a.reason = ArchExitReason::kHypervHcall;
          a.hv_input = run->hyperv.u.hcall.input;
          a.hv_params[0] = run->hyperv.u.hcall.params[0];
          a.hv_params[1] = run->hyperv.u.hcall.params[1];
          a.hv_result =
              reinterpret_cast<uint64_t*>(&run->hyperv.u.hcall.result);
          break;
        default:
          // KVM_EXIT_HYPERV_SYNDBG: strata offers no debugger channel.
          return false;
      }
      break;
    case KVM_EXIT_IOAPIC_EOI:
      // The LAPIC has already retired the vector; this only tells the
      // user-space IOAPIC, so nothing is completed on re-entry.
      a.reason = ArchExitReason::kIoapicEoi;
      a.eoi_vector = run->eoi.vector;
      break;
    default:
      return false;
  }
  exit->kind = ExitKind::kArch;
  return true;
}

}  // namespace strata::md
