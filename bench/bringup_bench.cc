// strata — VM creation and vCPU bring-up time against the vCPU count.
//
// For each count N (default 1, 64, 256, 1024) and each trial, in one run:
//   raw     the floor for creating N vCPUs: KVM_CREATE_VM, the in-kernel
//           irqchip, N × (KVM_CREATE_VCPU + mmap of kvm_run), then close —
//           what any KVM VMM must do, written directly against /dev/kvm;
//   create  strata's Machine::Create for the pc machine with N vCPUs (VM,
//           memory, devices, N vCPUs with their CPUID and registers, the
//           guest loaded);
//   up      Start → exit: N vCPU threads started, the smp guest's BSP
//           brings up every AP (broadcast INIT/SIPI; x2APIC past 255),
//           each checks in by its APIC id, and the guest exits through
//           isa-debug-exit with success only if all N did.
// Prints the median of each, the total per vCPU, and the cost of each
// further vCPU between successive counts (which should stay flat).
//
//   bringup_bench --guest PATH/smp.elf [--counts 1,64,256,1024] [--trials T]
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/machine.h"

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bringup_bench: %s\n", what.c_str());
  std::exit(2);
}

// The floor: a VM with N vCPUs, created and destroyed with bare ioctls.
double RawCreateMs(uint32_t n) {
  const auto t0 = Clock::now();
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) Die("open /dev/kvm: " + std::string(strerror(errno)));
  const int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) Die("KVM_CREATE_VM: " + std::string(strerror(errno)));
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) Die("KVM_CREATE_IRQCHIP");
  std::vector<int> fds;
  std::vector<void*> runs;
  for (uint32_t i = 0; i < n; ++i) {
    int fd = ioctl(vm, KVM_CREATE_VCPU, static_cast<unsigned long>(i));
    if (fd < 0) Die("KVM_CREATE_VCPU " + std::to_string(i) + ": " + strerror(errno));
    void* run = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) Die("mmap kvm_run");
    fds.push_back(fd);
    runs.push_back(run);
  }
  for (uint32_t i = 0; i < n; ++i) {
    munmap(runs[i], run_size);
    close(fds[i]);
  }
  close(vm);
  close(kvm);
  return MsSince(t0);
}

struct Sample {
  double raw_ms, create_ms, up_ms;
};

Sample StrataTrial(const std::string& guest, uint32_t n) {
  Sample s{};
  s.raw_ms = RawCreateMs(n);
  strata::Config c;
  auto set = [&](const char* k, const std::string& v) {
    if (auto st = c.Set(k, v); !st) Die(st.error().message());
  };
  set("kernel.path", guest);
  set("kernel.cmdline", "broadcast");
  set("com1.backend", "none");
  set("cpus", std::to_string(n));
  auto t0 = Clock::now();
  auto m = strata::Machine::Create(c);
  if (!m) Die("Machine::Create: " + m.error().message());
  s.create_ms = MsSince(t0);
  t0 = Clock::now();
  const strata::ExitStatus st = (*m)->Run();
  s.up_ms = MsSince(t0);
  // smp.elf: debug-exit value 0 (status 1) only if all N checked in.
  if (st.why != strata::ExitStatus::Why::kGuestExit || st.code != 1) {
    Die("the smp guest did not bring up " + std::to_string(n) +
        " vCPUs (exit status " + std::to_string(st.code) + ": " + st.message +
        ")");
  }
  m->reset();
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string guest;
  std::vector<uint32_t> counts = {1, 64, 256, 1024};
  int trials = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--guest" && i + 1 < argc) {
      guest = argv[++i];
    } else if (a == "--trials" && i + 1 < argc) {
      trials = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--counts" && i + 1 < argc) {
      counts.clear();
      std::string list = argv[++i];
      for (size_t p = 0; p < list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        const long v = std::atol(list.substr(p, q - p).c_str());
        if (v < 1) Die("bad --counts entry '" + list.substr(p, q - p) + "'");
        counts.push_back(static_cast<uint32_t>(v));
        p = q + 1;
      }
    } else {
      Die("usage: bringup_bench --guest smp.elf [--counts 1,64,256,1024] "
          "[--trials T]");
    }
  }
  if (guest.empty()) Die("--guest PATH (tests/guests/amd64/smp.elf) is required");

  std::printf("%6s %10s %10s %10s %10s %12s %14s\n", "vcpus", "raw ms",
              "create ms", "up ms", "total ms", "µs/vcpu", "µs/added vcpu");
  double prev_total = 0;
  uint32_t prev_n = 0;
  for (uint32_t n : counts) {
    std::vector<double> raw, create, up;
    for (int t = 0; t < trials; ++t) {
      const Sample s = StrataTrial(guest, n);
      raw.push_back(s.raw_ms);
      create.push_back(s.create_ms);
      up.push_back(s.up_ms);
    }
    const double total = Median(create) + Median(up);
    std::printf("%6u %10.1f %10.1f %10.1f %10.1f %12.1f", n, Median(raw),
                Median(create), Median(up), total, total * 1000 / n);
    if (prev_n != 0 && n > prev_n) {
      std::printf(" %14.1f", (total - prev_total) * 1000 / (n - prev_n));
    }
    std::printf("\n");
    prev_total = total;
    prev_n = n;
  }
  return 0;
}
