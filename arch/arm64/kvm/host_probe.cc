#include "arch/arm64/kvm/host_probe.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>

#include "core/unique_fd.h"

namespace strata::arm64 {

namespace {

constexpr const char* kMidrPath =
    "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1";
constexpr const char* kCmdlinePath = "/proc/cmdline";

// A small text file's contents (sysfs and procfs files are one read).
std::optional<std::string> ReadSmallFile(const char* path) {
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<int> CheckExtension(int kvm_sys_fd, long cap, const char* name) {
  const int r = ioctl(kvm_sys_fd, KVM_CHECK_EXTENSION, cap);
  if (r < 0) return SysError("KVM_CHECK_EXTENSION({})", name);
  return r;
}

bool CanCreateDevice(int vm_fd, uint32_t type) {
  struct kvm_create_device cd = {};
  cd.type = type;
  cd.flags = KVM_CREATE_DEVICE_TEST;
  return ioctl(vm_fd, KVM_CREATE_DEVICE, &cd) == 0;
}

std::optional<uint64_t> GetOneReg(int vcpu_fd, uint64_t id) {
  uint64_t value = 0;
  struct kvm_one_reg reg = {};
  reg.id = id;
  reg.addr = reinterpret_cast<uint64_t>(&value);
  if (ioctl(vcpu_fd, KVM_GET_ONE_REG, &reg) != 0) return std::nullopt;
  return value;
}

}  // namespace

Result<HostFacts> ProbeHostFacts(int kvm_sys_fd) {
  HostFacts f;
  f.max_ipa_bits = static_cast<uint32_t>(STRATA_TRY(
      CheckExtension(kvm_sys_fd, KVM_CAP_ARM_VM_IPA_SIZE,
                     "KVM_CAP_ARM_VM_IPA_SIZE")));
  f.pmu_v3 = STRATA_TRY(CheckExtension(kvm_sys_fd, KVM_CAP_ARM_PMU_V3,
                                       "KVM_CAP_ARM_PMU_V3")) > 0;
  f.psci_0_2 = STRATA_TRY(CheckExtension(kvm_sys_fd, KVM_CAP_ARM_PSCI_0_2,
                                         "KVM_CAP_ARM_PSCI_0_2")) > 0;
  f.nisv_to_user = STRATA_TRY(CheckExtension(
                       kvm_sys_fd, KVM_CAP_ARM_NISV_TO_USER,
                       "KVM_CAP_ARM_NISV_TO_USER")) > 0;

  std::optional<uint64_t> midr;
  if (auto text = ReadSmallFile(kMidrPath)) {
    if (auto v = ParseMidrText(*text)) midr = *v;
  }

  UniqueFd vm(ioctl(kvm_sys_fd, KVM_CREATE_VM, 0));
  if (!vm) return SysError("KVM_CREATE_VM (probing the host)");
  f.vgic_v2 = CanCreateDevice(vm.get(), KVM_DEV_TYPE_ARM_VGIC_V2);
  f.vgic_v3 = CanCreateDevice(vm.get(), KVM_DEV_TYPE_ARM_VGIC_V3);
  f.vgic_its = CanCreateDevice(vm.get(), KVM_DEV_TYPE_ARM_VGIC_ITS);

  {
    UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
    struct kvm_vcpu_init init = {};
    if (vcpu &&
        ioctl(vm.get(), KVM_ARM_PREFERRED_TARGET, &init) == 0 &&
        ioctl(vcpu.get(), KVM_ARM_VCPU_INIT, &init) == 0) {
      f.id_aa64mmfr1 = GetOneReg(vcpu.get(), ARM64_SYS_REG(3, 0, 0, 7, 1));
      if (!midr) midr = GetOneReg(vcpu.get(), ARM64_SYS_REG(3, 0, 0, 0, 0));
    }
  }
  if (!midr) {
    return MakeError(Errc::kIo,
                     "cannot read MIDR_EL1: neither {} nor a probing vCPU "
                     "gave it",
                     kMidrPath);
  }
  f.midr = *midr;

  if (auto cmdline = ReadSmallFile(kCmdlinePath)) {
    f.kvm_arm_mode = CmdlineValue(*cmdline, "kvm-arm.mode");
    const bool forced_nvhe =
        (f.kvm_arm_mode &&
         (*f.kvm_arm_mode == "nvhe" || *f.kvm_arm_mode == "protected")) ||
        CmdlineValue(*cmdline, "id_aa64mmfr1.vh") == "0";
    if (forced_nvhe) f.vhe = false;
  }
  return f;
}

}  // namespace strata::arm64
