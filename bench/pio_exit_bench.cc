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
//   pio_exit_bench --floor-inl [--exits N] [--trials T]
//
// --floor-inl measures only the raw loop, with a 4-byte `in eax, dx` of a
// port nobody claims (KVM completes the read on re-entry, as for
// kvm-unit-tests' inl_from_qemu), and prints it in µs and TSC cycles per
// exit: the physical floor bench/kut_exit_cost.py sets beside KUT's
// vmexit figures.
#include <fcntl.h>
#include <x86intrin.h>
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
// cli; mov dx, 0x80; 1: in eax, dx (66 ed); jmp 1b.
constexpr uint8_t kInlLoop[] = {0xfa, 0xba, 0x80, 0x00, 0x66, 0xed, 0xeb, 0xfc};

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(2);
}

// Baseline: the guest under a bare KVM_RUN loop (`inl`: kInlLoop, else
// kLoop). *cycles, if given, gets the TSC cycles per exit.
Trial RawTrial(uint64_t exits, bool inl = false, double* cycles = nullptr) {
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
  if (inl) {
    std::memcpy(static_cast<uint8_t*>(ram) + kCode, kInlLoop, sizeof(kInlLoop));
  } else {
    std::memcpy(static_cast<uint8_t*>(ram) + kCode, kLoop, sizeof(kLoop));
  }
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
  const uint64_t tsc0 = __rdtsc();
  const Trial trial = TimeTrial(exits, [&] {
    while (n < exits) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) Die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_IO || run->io.port != kPort ||
          run->io.direction !=
              (inl ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT)) {
        std::fprintf(stderr, "raw: unexpected exit %u\n", run->exit_reason);
        std::exit(2);
      }
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      if (inl) {
        std::memset(data, 0xff, 4);  // what an unclaimed port reads
      } else {
        sum += *data;
      }
      ++n;
    }
  });
  if (cycles != nullptr) {
    *cycles = static_cast<double>(__rdtsc() - tsc0) / exits;
  }
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
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) != "--floor-inl") continue;
    const eb::ExitBenchArgs args =
        eb::ParseExitBenchArgs(argc - 1, argv + 1, {.exits = 20000, .trials = 5});
    RawTrial(1000, true);  // warm up
    std::vector<double> us, cyc;
    for (int t = 0; t < args.trials; ++t) {
      double c = 0;
      us.push_back(RawTrial(args.exits, true, &c).us_per_exit);
      cyc.push_back(c);
    }
    std::printf("raw inl floor: median %.3f us/exit, %.0f cycles/exit "
                "(%llu exits x %d trials)\n",
                eb::Median(us), eb::Median(cyc),
                static_cast<unsigned long long>(args.exits), args.trials);
    return 0;
  }
  const eb::ExitBenchArgs args = eb::ParseExitBenchArgs(
      argc, argv, {.exits = 20000, .trials = 21});
  const eb::ExitBenchResult r = eb::RunExitTrials(
      args, [](uint64_t e) { return RawTrial(e); }, StrataTrial);
  eb::PrintExitBenchReport("PIO exit round trip", "<= 1.05x", args, r);
  std::printf("  strata overhead  : %.3f us/exit (median)\n",
              r.strata_median - r.raw_median);
  std::printf("  user-space CPU   : raw %.3f, strata %.3f us/exit (median; "
              "the VMM's own work per exit)\n",
              r.raw_user_median, r.strata_user_median);
  return 0;
}
