#include "core/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/kvm/kvm_abi.h"
#include "core/log.h"

namespace strata::kvm {

namespace {

// Retries an ioctl interrupted before it did anything.
int Ioctl(int fd, unsigned long req, unsigned long arg = 0) {
  int r;
  do {
    r = ioctl(fd, req, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

// ----------------------------------------------------------- KvmSystem ----

Result<std::shared_ptr<KvmSystem>> KvmSystem::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    Error e = SysError("opening {}", path);
    return Error(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                 e.message() + " (is the kvm module loaded and do you have "
                               "access to the device?)",
                 e.sys_errno());
  }
  int version = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    close(fd);
    return MakeError(Errc::kUnsupported,
                     "{}: KVM API version {} (strata needs {})", path, version,
                     KVM_API_VERSION);
  }
  int run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) {
    Error e = SysError("KVM_GET_VCPU_MMAP_SIZE");
    close(fd);
    return e;
  }
  // KVM_CAP_MAX_VCPUS is the hard limit; older kernels only report the
  // recommended count (KVM_CAP_NR_VCPUS), and 4 if neither.
  int max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (max <= 0) max = 4;
  return std::shared_ptr<KvmSystem>(
      new KvmSystem(fd, static_cast<size_t>(run_size),
                    static_cast<uint32_t>(max)));
}

KvmSystem::~KvmSystem() { close(fd_); }

int KvmSystem::CheckExtension(long cap) const {
  int r = ioctl(fd_, KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

// --------------------------------------------------------------- KvmVm ----

Result<std::unique_ptr<KvmVm>> KvmVm::Create(std::shared_ptr<KvmSystem> sys,
                                             const md::MachineOptions& opts,
                                             uint32_t max_vcpus) {
  unsigned long type = STRATA_TRY(md::KvmVmArch::VmType(sys->fd(), opts));
  int fd = Ioctl(sys->fd(), KVM_CREATE_VM, type);
  if (fd < 0) return SysError("KVM_CREATE_VM");
  std::unique_ptr<KvmVm> vm(new KvmVm(sys, fd));
  vm->arch_ = STRATA_TRY(md::KvmVmArch::Create(sys->fd(), fd, opts, max_vcpus));
  return vm;
}

KvmVm::~KvmVm() {
  arch_.reset();
  close(fd_);
}

Status KvmVm::MapMemory(const MemorySegment& seg) {
  kvm_userspace_memory_region r{};
  r.slot = seg.slot;
  r.flags = 0;
  r.guest_phys_addr = seg.gpa;
  r.memory_size = seg.size;
  r.userspace_addr = reinterpret_cast<uint64_t>(seg.host);
  if (Ioctl(fd_, KVM_SET_USER_MEMORY_REGION,
            reinterpret_cast<unsigned long>(&r)) < 0) {
    return SysError("KVM_SET_USER_MEMORY_REGION for segment '{}' [{:#x}, "
                    "{:#x})", seg.name, seg.gpa, seg.end());
  }
  return Ok();
}

Result<std::unique_ptr<VcpuBackend>> KvmVm::CreateVcpu(uint32_t id) {
  unsigned long kvm_id = arch_->KvmVcpuId(id);
  int fd = Ioctl(fd_, KVM_CREATE_VCPU, kvm_id);
  if (fd < 0) return SysError("KVM_CREATE_VCPU {}", kvm_id);
  void* p = mmap(nullptr, sys_->run_size(), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    Error e = SysError("mapping the kvm_run area of vCPU {}", id);
    close(fd);
    return e;
  }
  std::unique_ptr<KvmVcpu> v(
      new KvmVcpu(fd, static_cast<kvm_run*>(p), sys_->run_size()));
  v->arch_ = STRATA_TRY(arch_->CreateVcpu(fd, id));
  return std::unique_ptr<VcpuBackend>(std::move(v));
}

Status KvmVm::SetIrqLine(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (Ioctl(fd_, KVM_IRQ_LINE, reinterpret_cast<unsigned long>(&irq)) < 0) {
    return SysError("KVM_IRQ_LINE gsi {} level {}", gsi, level);
  }
  return Ok();
}

Status KvmVm::SignalMsi(uint64_t address, uint32_t data) {
  kvm_msi msi{};
  msi.address_lo = static_cast<uint32_t>(address);
  msi.address_hi = static_cast<uint32_t>(address >> 32);
  msi.data = data;
  int r = Ioctl(fd_, KVM_SIGNAL_MSI, reinterpret_cast<unsigned long>(&msi));
  if (r < 0) return SysError("KVM_SIGNAL_MSI {:#x}/{:#x}", address, data);
  return Ok();  // r == 0 means the guest blocked it, which is not an error
}

// ------------------------------------------------------------- KvmVcpu ----

KvmVcpu::~KvmVcpu() {
  arch_.reset();
  munmap(run_, run_size_);
  close(fd_);
}

void KvmVcpu::RequestImmediateExit() {
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_RELEASE);
}

void KvmVcpu::ClearImmediateExit() {
  __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_RELEASE);
}

Status KvmVcpu::SetGuestSignalMask(const sigset_t& mask) {
  // struct kvm_signal_mask: __u32 len, then the kernel's 8-byte sigset
  // (see kvm_abi.h for why the struct itself is not used).
  alignas(8) uint8_t buf[kSignalMaskSigsetOffset + 8];
  uint32_t len = 8;
  std::memcpy(buf, &len, 4);
  std::memcpy(buf + kSignalMaskSigsetOffset, &mask, 8);
  if (Ioctl(fd_, strata_kvm_set_signal_mask,
            reinterpret_cast<unsigned long>(buf)) < 0) {
    return SysError("KVM_SET_SIGNAL_MASK");
  }
  return Ok();
}

Status KvmVcpu::Run(VmExit* exit) {
  STRATA_TRY(arch_->Flush());
  int r = ioctl(fd_, KVM_RUN, 0);
  arch_->Invalidate();
  *exit = VmExit{};
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
      return Ok();
    case KVM_EXIT_MMIO:
      exit->kind = ExitKind::kMmio;
      exit->mmio.gpa = run_->mmio.phys_addr;
      exit->mmio.size = static_cast<uint8_t>(run_->mmio.len);
      exit->mmio.write = run_->mmio.is_write != 0;
      exit->mmio.data = run_->mmio.data;
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
    default:
      if (!arch_->DecodeExit(run_, exit)) exit->kind = ExitKind::kUnknown;
      return Ok();
  }
}

}  // namespace strata::kvm
