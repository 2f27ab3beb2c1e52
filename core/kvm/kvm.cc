#include "core/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <variant>

#include "core/kvm/kvm_abi.h"
#include "core/log.h"

namespace strata::kvm {

namespace {

int Ioctl(int fd, unsigned long req, unsigned long arg = 0) {
  return IoctlRetry(fd, req, reinterpret_cast<const void*>(arg));
}

}  // namespace

// ----------------------------------------------------------- KvmSystem ----

Result<std::shared_ptr<KvmSystem>> KvmSystem::Open(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    Error e = SysError("opening {}", path);
    return Error(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                 e.message() + " (is the kvm module loaded and do you have "
                               "access to the device?)",
                 e.sys_errno());
  }
  int version = ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return MakeError(Errc::kUnsupported,
                     "{}: KVM API version {} (strata needs {})", path, version,
                     KVM_API_VERSION);
  }
  int run_size = ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return SysError("KVM_GET_VCPU_MMAP_SIZE");
  // KVM_CAP_MAX_VCPUS is the hard limit; older kernels only report the
  // recommended count (KVM_CAP_NR_VCPUS), and 4 if neither.
  int max = ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (max <= 0) max = 4;
  return std::shared_ptr<KvmSystem>(
      new KvmSystem(std::move(fd), static_cast<size_t>(run_size),
                    static_cast<uint32_t>(max)));
}

int KvmSystem::CheckExtension(long cap) const {
  int r = ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

// ------------------------------------------------------- KvmIrqRouting ----

KvmIrqRouting::KvmIrqRouting(int vm_fd, md::KvmVmArch* arch)
    : vm_fd_(fcntl(vm_fd, F_DUPFD_CLOEXEC, 0)), arch_(arch) {}

void KvmIrqRouting::Detach() {
  std::lock_guard lk(mu_);
  arch_ = nullptr;
}

Status KvmIrqRouting::AssignIrqFd(uint32_t gsi, int fd, int resample_fd,
                                  bool assign) {
  kvm_irqfd f{};
  f.fd = static_cast<uint32_t>(fd);
  f.gsi = gsi;
  if (!assign) f.flags |= KVM_IRQFD_FLAG_DEASSIGN;
  if (resample_fd >= 0 && assign) {
    f.flags |= KVM_IRQFD_FLAG_RESAMPLE;
    f.resamplefd = static_cast<uint32_t>(resample_fd);
  }
  if (Ioctl(vm_fd_.get(), KVM_IRQFD, reinterpret_cast<unsigned long>(&f)) < 0) {
    return SysError("KVM_IRQFD {} GSI {}", assign ? "assign" : "deassign", gsi);
  }
  return Ok();
}

Result<uint32_t> KvmIrqRouting::PinGsi(const md::IrqPin& pin) {
  std::lock_guard lk(mu_);
  if (arch_ == nullptr) return MakeError(Errc::kBusy, "the VM is gone");
  return arch_->IrqFdGsi(pin);
}

Status KvmIrqRouting::FillRoute(const IrqRoute& route,
                                kvm_irq_routing_entry* e) {
  if (const auto* msi = std::get_if<md::MsiMessage>(&route)) {
    return arch_->FillMsiRoute(*msi, e);
  }
  const HvSint& sint = std::get<HvSint>(route);
  // KVM routes SINTs only where it emulates the SynIC (x86; KVM API doc,
  // "KVM_CAP_HYPERV_SYNIC"), and takes the VP index and SINT as given:
  // an out-of-range SINT would only never fire, so refuse it here.
  if (ioctl(vm_fd_.get(), KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "this host's KVM has no Hyper-V SynIC "
                     "(KVM_CAP_HYPERV_SYNIC), so no route to SINT {} of VP {}",
                     sint.sint, sint.vp_index);
  }
  if (sint.sint >= kHvSintCount) {
    return MakeError(Errc::kOutOfRange,
                     "SINT {} of VP {}: a SynIC has SINTs 0-{}", sint.sint,
                     sint.vp_index, kHvSintCount - 1);
  }
  e->type = KVM_IRQ_ROUTING_HV_SINT;
  e->u.hv_sint.vcpu = sint.vp_index;
  e->u.hv_sint.sint = sint.sint;
  return Ok();
}

Result<uint32_t> KvmIrqRouting::AddRoute(const IrqRoute& route) {
  std::lock_guard lk(mu_);
  if (arch_ == nullptr) return MakeError(Errc::kBusy, "the VM is gone");
  uint32_t gsi = arch_->FirstMsiGsi();
  while (routes_.count(gsi) != 0) ++gsi;
  if (gsi >= arch_->MaxGsi()) {
    return MakeError(Errc::kOutOfRange,
                     "no free GSI for an interrupt route (KVM allows {} "
                     "routes)",
                     arch_->MaxGsi());
  }
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  STRATA_TRY(FillRoute(route, &e));
  routes_[gsi] = e;
  Status s = Commit();
  if (!s) {
    routes_.erase(gsi);
    return std::move(s).error();
  }
  return gsi;
}

Status KvmIrqRouting::RemoveRoute(uint32_t gsi) {
  std::lock_guard lk(mu_);
  if (routes_.erase(gsi) == 0) {
    return MakeError(Errc::kNotFound, "no interrupt route on GSI {}", gsi);
  }
  if (arch_ == nullptr) return Ok();
  return Commit();
}

Status KvmIrqRouting::SetPinMsiRoute(const md::IrqPin& pin,
                                     const std::optional<md::MsiMessage>& msi) {
  std::lock_guard lk(mu_);
  if (arch_ == nullptr) return MakeError(Errc::kBusy, "the VM is gone");
  uint32_t gsi = STRATA_TRY(arch_->SplitPinGsi(pin));
  std::optional<kvm_irq_routing_entry> old;
  if (auto it = pin_routes_.find(gsi); it != pin_routes_.end()) old = it->second;
  if (msi) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    STRATA_TRY(arch_->FillMsiRoute(*msi, &e));
    // A whole-table commit is an RCU grace period in KVM: skip it when
    // nothing changes (the entries are zero-initialised, so memcmp is exact).
    if (old && std::memcmp(&*old, &e, sizeof(e)) == 0) return Ok();
    pin_routes_[gsi] = e;
  } else {
    if (!old) return Ok();
    pin_routes_.erase(gsi);
  }
  Status s = Commit();
  if (!s) {
    if (old) {
      pin_routes_[gsi] = *old;
    } else {
      pin_routes_.erase(gsi);
    }
    return std::move(s).error().Wrap(
        fmt::format("routing {}", md::IrqPinName(pin)));
  }
  return Ok();
}

Status KvmIrqRouting::Commit() {
  // KVM_SET_GSI_ROUTING replaces the whole table, so the controller's pin
  // routes (what KVM sets up by default, or what a user-space controller
  // set) go in with ours.
  std::vector<kvm_irq_routing_entry> entries = arch_->DefaultRoutes();
  for (const auto& [gsi, e] : pin_routes_) entries.push_back(e);
  for (const auto& [gsi, e] : routes_) entries.push_back(e);
  CountedBuffer<kvm_irq_routing_entry> table(
      static_cast<uint32_t>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) table.entries()[i] = entries[i];
  if (Ioctl(vm_fd_.get(), strata_kvm_set_gsi_routing,
            reinterpret_cast<unsigned long>(table.data())) < 0) {
    return SysError("KVM_SET_GSI_ROUTING with {} entries", entries.size());
  }
  return Ok();
}

// --------------------------------------------------------------- KvmVm ----

Result<std::unique_ptr<KvmVm>> KvmVm::Create(std::shared_ptr<KvmSystem> sys,
                                             const md::MachineOptions& opts,
                                             const CpuTopology& topology,
                                             uint32_t max_vcpus) {
  unsigned long type = STRATA_TRY(md::KvmVmArch::VmType(sys->fd(), opts));
  UniqueFd fd(Ioctl(sys->fd(), KVM_CREATE_VM, type));
  if (!fd) return SysError("KVM_CREATE_VM");
  const int vm_fd = fd.get();
  std::unique_ptr<KvmVm> vm(new KvmVm(sys, std::move(fd)));
  vm->arch_ = STRATA_TRY(
      md::KvmVmArch::Create(sys->fd(), vm_fd, opts, topology, max_vcpus));
  if (vm->arch_->has_irqchip() &&
      sys->CheckExtension(KVM_CAP_IRQ_ROUTING) > 0 &&
      sys->CheckExtension(KVM_CAP_IRQFD) > 0) {
    vm->routing_ = std::make_shared<KvmIrqRouting>(vm_fd, vm->arch_.get());
  }
  int page = sys->CheckExtension(KVM_CAP_COALESCED_MMIO);
  vm->ring_page_ = page > 0 ? static_cast<uint32_t>(page) : 0;
  return vm;
}

KvmVm::~KvmVm() {
  if (routing_) routing_->Detach();
  arch_.reset();
}

Status KvmVm::MapMemory(const MemorySegment& seg) {
  kvm_userspace_memory_region r{};
  r.slot = seg.slot;
  r.flags = 0;
  r.guest_phys_addr = seg.gpa;
  r.memory_size = seg.size;
  r.userspace_addr = reinterpret_cast<uint64_t>(seg.host);
  if (Ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION,
            reinterpret_cast<unsigned long>(&r)) < 0) {
    return SysError("KVM_SET_USER_MEMORY_REGION for segment '{}' [{:#x}, "
                    "{:#x})", seg.name, seg.gpa, seg.end());
  }
  return Ok();
}

Status KvmVm::UnmapMemory(const MemorySegment& seg) {
  kvm_userspace_memory_region r{};
  r.slot = seg.slot;
  r.guest_phys_addr = seg.gpa;
  r.memory_size = 0;  // deletes the slot (KVM API doc)
  if (Ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION,
            reinterpret_cast<unsigned long>(&r)) < 0) {
    return SysError("deleting KVM memory slot {} of segment '{}'", seg.slot,
                    seg.name);
  }
  return Ok();
}

Result<std::unique_ptr<VcpuBackend>> KvmVm::CreateVcpu(uint32_t id) {
  unsigned long kvm_id = arch_->KvmVcpuId(id);
  UniqueFd fd(Ioctl(fd_.get(), KVM_CREATE_VCPU, kvm_id));
  if (!fd) return SysError("KVM_CREATE_VCPU {}", kvm_id);
  void* p = mmap(nullptr, sys_->run_size(), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return SysError("mapping the kvm_run area of vCPU {}", id);
  }
  const int vcpu_fd = fd.get();
  std::unique_ptr<KvmVcpu> v(
      new KvmVcpu(std::move(fd), static_cast<kvm_run*>(p), sys_->run_size()));
  v->arch_ = STRATA_TRY(arch_->CreateVcpu(vcpu_fd, id));
  // Every vCPU maps the same per-VM ring; the first mapping is kept. It
  // lives as long as that vCPU, i.e. as long as the VM.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (ring_page_ != 0 && (ring_page_ + 1) * page <= sys_->run_size()) {
    uint8_t* expected = nullptr;
    ring_.compare_exchange_strong(
        expected, static_cast<uint8_t*>(p) + ring_page_ * page);
  }
  return std::unique_ptr<VcpuBackend>(std::move(v));
}

Status KvmVm::SetIrq(const md::IrqPin& pin, bool level) {
  kvm_irq_level irq{};
  irq.irq = STRATA_TRY(arch_->IrqLineArg(pin));
  irq.level = level ? 1 : 0;
  if (Ioctl(fd_.get(), KVM_IRQ_LINE, reinterpret_cast<unsigned long>(&irq)) < 0) {
    return SysError("KVM_IRQ_LINE {} level {}", md::IrqPinName(pin), level);
  }
  return Ok();
}

Status KvmVm::SignalMsi(const md::MsiMessage& msi) {
  kvm_msi m{};
  STRATA_TRY(arch_->FillMsi(msi, &m));
  int r = Ioctl(fd_.get(), KVM_SIGNAL_MSI, reinterpret_cast<unsigned long>(&m));
  if (r < 0) return SysError("KVM_SIGNAL_MSI {:#x}/{:#x}", msi.address, msi.data);
  return Ok();  // r == 0 means the guest blocked it, which is not an error
}

std::shared_ptr<IrqFdBackend> KvmVm::irqfds() { return routing_; }

Status KvmVm::AssignIoEventFd(BusKind kind, uint64_t addr, uint32_t size,
                              std::optional<uint64_t> datamatch, int fd,
                              bool assign) {
  kvm_ioeventfd e{};
  e.addr = addr;
  e.len = size;
  e.fd = fd;
  if (kind == BusKind::kPio) e.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    e.datamatch = *datamatch;
  }
  if (!assign) e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (Ioctl(fd_.get(), KVM_IOEVENTFD, reinterpret_cast<unsigned long>(&e)) < 0) {
    return SysError("KVM_IOEVENTFD {} {} {:#x}/{}", assign ? "assign" : "deassign",
                    BusKindName(kind), addr, size);
  }
  return Ok();
}

Status KvmVm::SetCoalescedZone(BusKind kind, uint64_t addr, uint64_t size,
                               bool add) {
  if (ring_page_ == 0) {
    return MakeError(Errc::kUnsupported,
                     "this host's KVM has no coalesced MMIO");
  }
  if (kind == BusKind::kPio && sys_->CheckExtension(KVM_CAP_COALESCED_PIO) <= 0) {
    return MakeError(Errc::kUnsupported,
                     "this host's KVM has no coalesced port I/O");
  }
  if (size > UINT32_MAX) {
    return MakeError(Errc::kOutOfRange, "coalesced zone of {:#x} bytes is too "
                     "large (KVM takes 32 bits)", size);
  }
  kvm_coalesced_mmio_zone z{};
  z.addr = addr;
  z.size = static_cast<uint32_t>(size);
  z.pio = kind == BusKind::kPio ? 1 : 0;
  unsigned long req =
      add ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO;
  if (Ioctl(fd_.get(), req, reinterpret_cast<unsigned long>(&z)) < 0) {
    return SysError("KVM_{}REGISTER_COALESCED_MMIO {:#x}+{:#x}", add ? "" : "UN",
                    addr, size);
  }
  return Ok();
}

void KvmVm::DrainCoalesced(
    const std::function<void(const CoalescedWrite&)>& replay) {
  uint8_t* ring = ring_.load(std::memory_order_acquire);
  if (ring == nullptr) return;
  // struct kvm_coalesced_mmio_ring: __u32 first, last; then the entries
  // (include/uapi/linux/kvm.h). KVM appends at `last`; we consume at
  // `first`.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uint32_t max = static_cast<uint32_t>(
      (page - 2 * sizeof(uint32_t)) / sizeof(kvm_coalesced_mmio));
  auto* first = reinterpret_cast<uint32_t*>(ring);
  auto* last = reinterpret_cast<uint32_t*>(ring + 4);
  auto* entries = reinterpret_cast<kvm_coalesced_mmio*>(ring + 8);
  uint32_t f = __atomic_load_n(first, __ATOMIC_RELAXED);
  while (f != __atomic_load_n(last, __ATOMIC_ACQUIRE)) {
    if (f >= max) break;  // corrupt index: the kernel never writes one
    const kvm_coalesced_mmio& e = entries[f];
    CoalescedWrite w;
    w.bus = e.pio ? BusKind::kPio : BusKind::kMmio;
    w.addr = e.phys_addr;
    w.size = std::min<uint32_t>(e.len, 8);
    std::memcpy(&w.value, e.data, w.size);
    f = (f + 1) % max;
    __atomic_store_n(first, f, __ATOMIC_RELEASE);
    replay(w);
  }
}

// ------------------------------------------------------------- KvmVcpu ----

KvmVcpu::~KvmVcpu() {
  arch_.reset();
  munmap(run_, run_size_);
}

void KvmVcpu::RequestImmediateExit() {
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void KvmVcpu::ClearImmediateExit() {
  // When set, cleared with a full barrier: the run loop's look at its
  // requests must not pass it. When already clear there is no store for a
  // poster's RequestImmediateExit to be lost against, so a load suffices
  // (the common case, no locked instruction).
  if (__atomic_load_n(&run_->immediate_exit, __ATOMIC_RELAXED) != 0) {
    (void)__atomic_exchange_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
  }
}

namespace {

InternalErrorExit::Kind InternalKind(uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION: return InternalErrorExit::Kind::kEmulation;
    case KVM_INTERNAL_ERROR_SIMUL_EX: return InternalErrorExit::Kind::kSimultaneousFault;
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return InternalErrorExit::Kind::kDeliveryEvent;
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
      return InternalErrorExit::Kind::kUnexpectedExit;
    default: return InternalErrorExit::Kind::kOther;
  }
}

}  // namespace

Status KvmVcpu::Run(VmExit* exit) {
  STRATA_TRY(arch_->Flush());
  int r = ioctl(fd_.get(), KVM_RUN, 0);
  arch_->Invalidate();  // inline: errno is intact below
  // Only the fields of the kind decoded below are meaningful; the rest of
  // the record is not cleared (this is the hot path).
  exit->kind = ExitKind::kNone;
  exit->raw_reason = 0;
  needs_completion_ = false;
  if (r < 0) {
    if (errno == EINTR || errno == EAGAIN) return Ok();  // kicked
    return SysError("KVM_RUN");
  }
  exit->raw_reason = run_->exit_reason;
  switch (run_->exit_reason) {
    case KVM_EXIT_IO:
      exit->kind = ExitKind::kIo;
      exit->io.port = run_->io.port;
      exit->io.size = run_->io.size;
      exit->io.write = run_->io.direction == KVM_EXIT_IO_OUT;
      exit->io.count = run_->io.count;
      exit->io.data = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
      if (run_->io.data_offset + static_cast<uint64_t>(run_->io.count) *
                                     run_->io.size > run_size_) {
        return MakeError(Errc::kInternal, "KVM_EXIT_IO data outside kvm_run");
      }
      // Both directions: KVM advances RIP (and, for IN, writes RAX) only
      // when user space re-enters.
      needs_completion_ = true;
      return Ok();
    case KVM_EXIT_MMIO:
      exit->kind = ExitKind::kMmio;
      exit->mmio.gpa = run_->mmio.phys_addr;
      exit->mmio.size = static_cast<uint8_t>(run_->mmio.len);
      exit->mmio.write = run_->mmio.is_write != 0;
      exit->mmio.data = run_->mmio.data;
      needs_completion_ = true;
      return Ok();
    case KVM_EXIT_INTR:
      return Ok();
    case KVM_EXIT_HLT:
      exit->kind = ExitKind::kHalt;
      return Ok();
    case KVM_EXIT_SHUTDOWN:
      exit->kind = ExitKind::kShutdown;
      return Ok();
    case KVM_EXIT_SYSTEM_EVENT:
      exit->kind = ExitKind::kSystemEvent;
      switch (run_->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: exit->event = SystemEvent::kPowerOff; break;
        case KVM_SYSTEM_EVENT_RESET: exit->event = SystemEvent::kReset; break;
        case KVM_SYSTEM_EVENT_CRASH: exit->event = SystemEvent::kCrash; break;
        default: exit->event = SystemEvent::kOther; break;
      }
      return Ok();
    case KVM_EXIT_FAIL_ENTRY:
      exit->kind = ExitKind::kFailEntry;
      exit->fail_entry.hardware_reason =
          run_->fail_entry.hardware_entry_failure_reason;
      exit->fail_entry.host_cpu = run_->fail_entry.cpu;
      return Ok();
    case KVM_EXIT_INTERNAL_ERROR: {
      exit->kind = ExitKind::kInternalError;
      InternalErrorExit& ie = exit->internal;
      ie.suberror = run_->internal.suberror;
      ie.kind = InternalKind(ie.suberror);
      ie.ndata = std::min<uint32_t>(run_->internal.ndata, 16);
      for (uint32_t i = 0; i < ie.ndata; ++i) ie.data[i] = run_->internal.data[i];
      return Ok();
    }
    default:
      if (!arch_->DecodeExit(run_, exit)) {
        exit->kind = ExitKind::kUnknown;
      } else {
        needs_completion_ = arch_->ExitNeedsCompletion(run_);
      }
      return Ok();
  }
}

}  // namespace strata::kvm
