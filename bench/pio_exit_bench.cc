// strata — PIO-exit round-trip benchmark.
//
// The same real-mode guest loop (`out 0x80, al; inc ax; jmp`) is driven
// twice in one run: by a raw KVM_RUN loop written directly against
// /dev/kvm (the baseline: the least a VMM can do per exit), and by strata
// (Vcpu::Run → exit decode → Bus → IoDevice). Both VMs have the in-kernel
// irqchip and PIT, as bhyverun's do. Prints µs per exit for each, the
// ratio, and strata's overhead per exit. Trials alternate to spread host
// noise over both sides; the best and median trial of each are reported,
// with the user-space CPU time per exit (the VMM's own work).
//
//   pio_exit_bench [--exits N] [--trials T]
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "bench/exit_bench.h"
#include "core/vmmapi.h"
#include "machine/test_programs.h"

namespace {

using strata::bench::CountingDevice;
using strata::bench::TimeTrial;
using strata::bench::Trial;

constexpr uint16_t kPort = 0x80;
constexpr uint64_t kCode = 0x1000;
// out 0x80, al; inc ax; jmp out — the same bytes as TestProgram::kPioLoop.
constexpr uint8_t kLoop[] = {0xfa, 0x31, 0xc0, 0xe6, 0x80, 0x40, 0xeb, 0xfb};

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(2);
}

// Baseline: the guest under a bare KVM_RUN loop.
Trial RawTrial(uint64_t exits) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) Die("/dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) Die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) Die("KVM_SET_TSS_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) Die("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) Die("KVM_CREATE_PIT2");
  size_t ram_size = 1 << 20;
  void* ram = mmap(nullptr, ram_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  std::memcpy(static_cast<uint8_t*>(ram) + kCode, kLoop, sizeof(kLoop));
  kvm_userspace_memory_region region{0, 0, 0, ram_size,
                                     reinterpret_cast<uint64_t>(ram)};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) Die("memory");
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) Die("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  auto* run = static_cast<kvm_run*>(
      mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  kvm_sregs sregs;
  ioctl(vcpu, KVM_GET_SREGS, &sregs);
  sregs.cs.selector = 0;
  sregs.cs.base = 0;
  ioctl(vcpu, KVM_SET_SREGS, &sregs);
  kvm_regs regs{};
  regs.rip = kCode;
  regs.rflags = 2;
  ioctl(vcpu, KVM_SET_REGS, &regs);

  uint64_t n = 0, sum = 0;
  const Trial trial = TimeTrial(exits, [&] {
    while (n < exits) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) Die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_IO || run->io.port != kPort) {
        std::fprintf(stderr, "raw: unexpected exit %u\n", run->exit_reason);
        std::exit(2);
      }
      sum += reinterpret_cast<uint8_t*>(run)[run->io.data_offset];
      ++n;
    }
  });
  (void)sum;
  munmap(run, run_size);
  close(vcpu);
  munmap(ram, ram_size);
  close(vm);
  close(kvm);
  return trial;
}

// The same guest under strata's run loop, bus and device dispatch.
Trial StrataTrial(uint64_t exits) {
  strata::VmOptions o;
  o.max_vcpus = 1;
  auto vm = strata::CreateKvmVm(o);
  if (!vm) {
    std::fprintf(stderr, "strata: %s\n", vm.error().message().c_str());
    std::exit(2);
  }
  if (!(*vm)->AddMemory("ram", 0, 1 << 20)) std::exit(2);
  auto dev = std::make_shared<CountingDevice>(**vm, exits, "bench-port");
  if (!(*vm)->pio_bus().Register(kPort, 1, dev)) std::exit(2);
  auto v = (*vm)->CreateVcpu(0);
  if (!v) std::exit(2);
  auto s = strata::md::testing::LoadTestProgram(
      **vm, **v, strata::md::testing::TestProgram::kPioLoop);
  if (!s) std::exit(2);
  strata::Status r;
  const Trial trial = TimeTrial(exits, [&] { r = (*v)->Run(); });
  if (!r || dev->count_ != exits) {
    std::fprintf(stderr, "strata: run failed\n");
    std::exit(2);
  }
  return trial;
}

}  // namespace

int main(int argc, char** argv) {
  // The host is noisy: medians need many alternating trials.
  namespace eb = strata::bench;
  const eb::ExitBenchArgs args = eb::ParseExitBenchArgs(
      argc, argv, {.exits = 20000, .trials = 21});
  const eb::ExitBenchResult r = eb::RunExitTrials(args, RawTrial, StrataTrial);
  eb::PrintExitBenchReport("PIO exit round trip", "<= 1.05x", args, r);
  std::printf("  strata overhead  : %.3f us/exit (median)\n",
              r.strata_median - r.raw_median);
  std::printf("  user-space CPU   : raw %.3f, strata %.3f us/exit (median; "
              "the VMM's own work per exit)\n",
              r.raw_user_median, r.strata_user_median);
  return 0;
}
