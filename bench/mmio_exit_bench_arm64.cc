// strata — MMIO-exit round-trip benchmark on arm64.
//
// The same EL1 guest loop (`str w0, [x1]; add w0, w0, #1; b` with x1 at an
// address outside RAM, TestProgram::kPioLoop) is driven twice in one run:
// by a raw KVM_RUN loop written directly against /dev/kvm (the baseline:
// the least a VMM can do per exit — a vGIC like strata's, the vCPU
// initialised with the preferred target, PC set through ONE_REG), and by
// strata (Vcpu::Run → exit decode → Bus → IoDevice) on the same devices
// (a vGICv3, or a vGICv2 on a host that has only that; no PMU, no ITS).
// Trials alternate to
// spread host noise over both; the best and median trial of each are
// reported, with the user-space CPU time per exit (the VMM's own work).
// Runs where an arm64 KVM is: in the nested EL2 testbeds
// (tests/nested/el2_cases.sh runs it with a few trials).
//
//   mmio_exit_bench_arm64 [--exits N] [--trials T]
#include <asm/kvm.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/exit_bench.h"
#include "core/vmmapi.h"
#include "machine/test_programs.h"

namespace {

using strata::bench::CountingDevice;
using strata::bench::TimeTrial;
using strata::bench::Trial;
namespace t = strata::md::testing;

constexpr uint64_t kRamSize = 1 << 20;
constexpr uint64_t kCode = 0x1000;
// The bytes of TestProgram::kPioLoop (arch/arm64/testing/test_programs.cc).
constexpr uint32_t kLoop[] = {0xd2a14001, 0x52800000, 0xb9000020, 0x11000400,
                              0x17fffffe};
static_assert(t::kTestPioPort == 0x0a000000);

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(2);
}

void SetOne(int vcpu, uint64_t id, uint64_t v) {
  kvm_one_reg r{id, reinterpret_cast<uint64_t>(&v)};
  if (ioctl(vcpu, KVM_SET_ONE_REG, &r) < 0) Die("KVM_SET_ONE_REG");
}

constexpr uint64_t CoreReg(size_t offset) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
         (offset / sizeof(uint32_t));
}

void SetAttr(int fd, uint32_t group, uint64_t attr, const void* v) {
  kvm_device_attr a{0, group, attr, reinterpret_cast<uint64_t>(v)};
  if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) Die("KVM_SET_DEVICE_ATTR");
}

// The vGIC both VMs get: v3 where the host's KVM offers it, else v2
// (KVM_CREATE_DEVICE_TEST creates nothing).
uint32_t BenchGicVersion() {
  static const uint32_t version = [] {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) Die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) Die("KVM_CREATE_VM");
    kvm_create_device test{KVM_DEV_TYPE_ARM_VGIC_V3, 0,
                           KVM_CREATE_DEVICE_TEST};
    const uint32_t v = ioctl(vm, KVM_CREATE_DEVICE, &test) == 0 ? 3 : 2;
    close(vm);
    close(kvm);
    return v;
  }();
  return version;
}

// Baseline: the guest under a bare KVM_RUN loop.
Trial RawTrial(uint64_t exits) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) Die("/dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) Die("KVM_CREATE_VM");
  void* ram = mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (ram == MAP_FAILED) Die("mmap");
  std::memcpy(static_cast<uint8_t*>(ram) + kCode, kLoop, sizeof(kLoop));
  kvm_userspace_memory_region region{0, 0, 0, kRamSize,
                                     reinterpret_cast<uint64_t>(ram)};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) Die("memory");
  // The virt machine's addresses (arch/arm64/platform/virt_layout.h).
  const uint64_t dist = 0x08000000, redist = 0x080a0000, cpu = 0x08010000;
  const bool v3 = BenchGicVersion() == 3;
  kvm_create_device gic{v3 ? KVM_DEV_TYPE_ARM_VGIC_V3 : KVM_DEV_TYPE_ARM_VGIC_V2,
                        0, 0};
  if (ioctl(vm, KVM_CREATE_DEVICE, &gic) < 0) Die("vGIC");
  SetAttr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
          v3 ? KVM_VGIC_V3_ADDR_TYPE_DIST : KVM_VGIC_V2_ADDR_TYPE_DIST, &dist);
  SetAttr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
          v3 ? KVM_VGIC_V3_ADDR_TYPE_REDIST : KVM_VGIC_V2_ADDR_TYPE_CPU,
          v3 ? &redist : &cpu);
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) Die("KVM_CREATE_VCPU");
  kvm_vcpu_init init{};
  if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) Die("PREFERRED_TARGET");
  init.features[0] = 1u << KVM_ARM_VCPU_PSCI_0_2;
  if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0) Die("KVM_ARM_VCPU_INIT");
  SetAttr(gic.fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT,
          nullptr);
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  auto* run = static_cast<kvm_run*>(
      mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  if (run == MAP_FAILED) Die("mmap kvm_run");
  SetOne(vcpu, CoreReg(offsetof(kvm_regs, regs.pc)), kCode);
  SetOne(vcpu, CoreReg(offsetof(kvm_regs, regs.pstate)),
         strata::md::kPstateModeEl1h | strata::md::kPstateDaifMask);
  uint64_t n = 0, sum = 0;
  const Trial trial = TimeTrial(exits, [&] {
    while (n < exits) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) Die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_MMIO ||
          run->mmio.phys_addr != t::kTestPioPort) {
        std::fprintf(stderr, "raw: unexpected exit %u\n", run->exit_reason);
        std::exit(2);
      }
      sum += run->mmio.data[0];
      ++n;
    }
  });
  (void)sum;
  munmap(run, run_size);
  close(vcpu);
  close(gic.fd);
  munmap(ram, kRamSize);
  close(vm);
  close(kvm);
  return trial;
}

// The same guest under strata's run loop, bus and device dispatch.
Trial StrataTrial(uint64_t exits) {
  strata::VmOptions o;
  o.max_vcpus = 1;
  // The raw VM's devices: the same vGIC, no PMU or ITS (the exit path is
  // measured, not the guest's configuration).
  o.machine.gic_version = BenchGicVersion();
  o.machine.its = false;
  o.machine.pmu = false;
  auto vm = strata::CreateKvmVm(o);
  if (!vm) {
    std::fprintf(stderr, "strata: %s\n", vm.error().message().c_str());
    std::exit(2);
  }
  if (!(*vm)->AddMemory("ram", 0, kRamSize)) std::exit(2);
  auto dev = std::make_shared<CountingDevice>(**vm, exits, "bench-mmio");
  if (!(*vm)->mmio_bus().Register(t::kTestPioPort, 4, dev)) std::exit(2);
  auto v = (*vm)->CreateVcpu(0);
  if (!v) std::exit(2);
  auto s = t::LoadTestProgram(**vm, **v, t::TestProgram::kPioLoop);
  if (!s) {
    std::fprintf(stderr, "strata: %s\n", s.error().message().c_str());
    std::exit(2);
  }
  strata::Status r;
  const Trial trial = TimeTrial(exits, [&] { r = (*v)->Run(); });
  if (!r || dev->count_ != exits) {
    std::fprintf(stderr, "strata: run failed%s%s\n", r ? "" : ": ",
                 r ? "" : r.error().message().c_str());
    std::exit(2);
  }
  return trial;
}

}  // namespace

int main(int argc, char** argv) {
  namespace eb = strata::bench;
  const eb::ExitBenchArgs args = eb::ParseExitBenchArgs(
      argc, argv, {.exits = 20000, .trials = 11});
  const eb::ExitBenchResult r = eb::RunExitTrials(args, RawTrial, StrataTrial);
  const std::string title =
      "MMIO exit round trip (arm64, vGICv" + std::to_string(BenchGicVersion()) + ")";
  eb::PrintExitBenchReport(title.c_str(), "<= 1.05x", args, r);
  std::printf("  user-space CPU   : raw %.3f, strata %.3f us/exit (median)\n",
              r.raw_user_median, r.strata_user_median);
  return 0;
}
