// Tests of the vCPU state machine, the three lock classes, lazy vCPU
// creation and kicks — on real KVM vCPUs running tiny guest programs.
// Run under ThreadSanitizer by the test command as well as normally.
#include "core/vm.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "machine/test_programs.h"
#include "core/vmmapi.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

using md::testing::LoadTestProgram;
using md::testing::TestProgram;
using namespace std::chrono_literals;

std::unique_ptr<Vm> MakeVm(uint32_t max_vcpus) {
  VmOptions o;
  o.max_vcpus = max_vcpus;
  auto vm = CreateKvmVm(o);
  EXPECT_TRUE(vm.has_value()) << vm.error().message();
  if (!vm) return nullptr;
  auto seg = (*vm)->AddMemory("ram", 0, md::testing::kTestRamSize);
  EXPECT_TRUE(seg.has_value()) << seg.error().message();
  return std::move(*vm);
}

Vcpu* MakeVcpu(Vm& vm, uint32_t id, TestProgram p) {
  auto v = vm.CreateVcpu(id);
  EXPECT_TRUE(v.has_value()) << v.error().message();
  Status s = LoadTestProgram(vm, **v, p);
  EXPECT_TRUE(s.has_value()) << s.error().message();
  return *v;
}

// Waits (bounded) for pred; returns whether it became true.
template <typename F>
bool WaitFor(F pred, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class Runner {
 public:
  explicit Runner(Vcpu* v) : t_([v, this] { status_ = v->Run(); }) {}
  ~Runner() { Join(); }
  void Join() {
    if (t_.joinable()) t_.join();
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
  std::thread t_;
};

TEST(VmTest, MaxVcpusIsBoundedByTheHost) {
  STRATA_REQUIRE_KVM();
  VmOptions o;
  o.max_vcpus = 0;
  EXPECT_FALSE(CreateKvmVm(o).has_value());
  auto host = HostMaxVcpus();
  ASSERT_TRUE(host.has_value());
  o.max_vcpus = *host + 1;
  auto r = CreateKvmVm(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("KVM_CAP_MAX_VCPUS"), std::string::npos);
  o.max_vcpus = *host;  // the whole host limit is fine; nothing is allocated
  auto big = CreateKvmVm(o);
  ASSERT_TRUE(big.has_value()) << big.error().message();
  EXPECT_EQ((*big)->vcpu_count(), 0u);
  EXPECT_EQ((*big)->vcpu(*host - 1), nullptr);
}

TEST(VmTest, VcpusAreCreatedLazilyAndIdempotently) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(64);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->vcpu(5), nullptr);
  EXPECT_EQ(vm->vcpu(64), nullptr);  // out of range is just absent
  auto a = vm->CreateVcpu(5);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  auto b = vm->CreateVcpu(5);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(vm->vcpu(5), *a);
  EXPECT_EQ(vm->vcpu_count(), 1u);
  auto bad = vm->CreateVcpu(64);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kOutOfRange);
  // Stopping a VM with absent vCPUs is fine.
  vm->RequestStop(ExitStatus::PowerOff());
}

// No compile-time limit: a VM with 300 vCPUs (APIC ids past 255, so the
// CPUID policy must describe x2APIC topology) creates them all and runs one
// of the high ones.
TEST(VmTest, ScalesPastTheXapicLimit) {
  STRATA_REQUIRE_KVM();
  constexpr uint32_t kVcpus = 300;
  auto vm = MakeVm(kVcpus);
  ASSERT_TRUE(vm);
  for (uint32_t i = 0; i < kVcpus; ++i) {
    auto v = vm->CreateVcpu(i);
    ASSERT_TRUE(v.has_value()) << "vCPU " << i << ": " << v.error().message();
  }
  EXPECT_EQ(vm->vcpu_count(), kVcpus);
  Vcpu* high = vm->vcpu(kVcpus - 1);
  ASSERT_TRUE(LoadTestProgram(*vm, *high, TestProgram::kHaltLoop).has_value());
  Runner r(high);
  ASSERT_TRUE(WaitFor([&] { return high->stats().entries.load() > 0; }));
  vm->RequestStop(ExitStatus::PowerOff());
  r.Join();
  EXPECT_TRUE(r.status().has_value());
}

TEST(VmTest, ConcurrentLazyCreationYieldsOneVcpuPerId) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(32);
  ASSERT_TRUE(vm);
  std::vector<std::thread> ts;
  std::vector<std::vector<Vcpu*>> seen(4, std::vector<Vcpu*>(32));
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (uint32_t i = 0; i < 32; ++i) {
        uint32_t id = (i * 7 + static_cast<uint32_t>(t) * 5) % 32;
        auto v = vm->CreateVcpu(id);
        seen[t][id] = v ? *v : nullptr;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(vm->vcpu_count(), 32u);
  for (uint32_t id = 0; id < 32; ++id) {
    ASSERT_NE(vm->vcpu(id), nullptr);
    for (int t = 0; t < 4; ++t) EXPECT_EQ(seen[t][id], vm->vcpu(id));
  }
}

TEST(VmTest, SecondRunnerIsRejected) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(1);
  ASSERT_TRUE(vm);
  Vcpu* v = MakeVcpu(*vm, 0, TestProgram::kHaltLoop);
  Runner r(v);
  ASSERT_TRUE(WaitFor([&] { return v->state() == VcpuState::kRunning; }));
  Status again = v->Run();
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), Errc::kBusy);
  vm->RequestStop(ExitStatus::PowerOff());
  r.Join();
  EXPECT_TRUE(r.status().has_value());
  EXPECT_EQ(v->state(), VcpuState::kIdle);
}

// Many kicker threads hammer many running vCPUs. Every kick must make its
// target pass through the top of its run loop afterwards (none lost).
TEST(VmTest, KickStormLosesNoKick) {
  STRATA_REQUIRE_KVM();
  constexpr uint32_t kVcpus = 8;
  constexpr int kKickers = 4;
  constexpr int kKicksEach = 150;
  auto vm = MakeVm(kVcpus);
  ASSERT_TRUE(vm);
  std::vector<std::unique_ptr<Runner>> runners;
  for (uint32_t i = 0; i < kVcpus; ++i) {
    Vcpu* v = MakeVcpu(*vm, i, i % 4 == 3 ? TestProgram::kSpinLoop
                                          : TestProgram::kHaltLoop);
    runners.push_back(std::make_unique<Runner>(v));
  }
  std::atomic<int> lost{0};
  std::vector<std::thread> kickers;
  for (int k = 0; k < kKickers; ++k) {
    kickers.emplace_back([&, k] {
      std::mt19937 rng(k);
      for (int n = 0; n < kKicksEach; ++n) {
        Vcpu* v = vm->vcpu(rng() % kVcpus);
        uint64_t before = v->stats().kicks.load();
        v->Kick();
        if (!WaitFor([&] { return v->stats().kicks.load() > before; })) {
          lost.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : kickers) t.join();
  EXPECT_EQ(lost.load(), 0);
  uint64_t total = 0;
  for (uint32_t i = 0; i < kVcpus; ++i) total += vm->vcpu(i)->stats().kicks;
  EXPECT_GT(total, 0u);
  EXPECT_LE(total, static_cast<uint64_t>(kKickers * kKicksEach));
  vm->RequestStop(ExitStatus::PowerOff());
  for (auto& r : runners) {
    r->Join();
    EXPECT_TRUE(r->status().has_value());
  }
}

// Host threads take turns running different vCPUs while only vCPU "a" of
// each pair is kicked. Stale kick signals follow the threads around; they
// must never be taken as kicks by the other vCPU.
TEST(VmTest, KicksNeverLandOnTheWrongVcpu) {
  STRATA_REQUIRE_KVM();
  constexpr uint32_t kPairs = 3;
  auto vm = MakeVm(2 * kPairs);
  ASSERT_TRUE(vm);
  std::vector<Vcpu*> kicked, quiet;
  for (uint32_t i = 0; i < kPairs; ++i) {
    kicked.push_back(MakeVcpu(*vm, 2 * i, TestProgram::kHaltLoop));
    quiet.push_back(MakeVcpu(*vm, 2 * i + 1, TestProgram::kHaltLoop));
  }
  std::atomic<bool> done{false};
  std::vector<std::thread> hosts;
  for (uint32_t i = 0; i < kPairs; ++i) {
    hosts.emplace_back([&, i] {
      // Alternate: run a, come back, run b, come back...
      for (int round = 0; !done.load(); ++round) {
        Vcpu* v = round % 2 == 0 ? kicked[i] : quiet[i];
        std::thread stopper([&, v] {
          std::this_thread::sleep_for(2ms);
          v->ReturnFromRun();
        });
        Status s = v->Run();
        stopper.join();
        ASSERT_TRUE(s.has_value()) << s.error().message();
      }
    });
  }
  std::vector<std::thread> kickers;
  for (int k = 0; k < 3; ++k) {
    kickers.emplace_back([&, k] {
      for (int n = 0; n < 400; ++n) kicked[(n + k) % kPairs]->Kick();
    });
  }
  for (auto& t : kickers) t.join();
  std::this_thread::sleep_for(50ms);
  done.store(true);
  for (auto& t : hosts) t.join();
  for (uint32_t i = 0; i < kPairs; ++i) {
    EXPECT_EQ(quiet[i]->stats().kicks.load(), 0u) << "vCPU " << quiet[i]->id();
    EXPECT_GT(kicked[i]->stats().kicks.load(), 0u);
  }
  vm->RequestStop(ExitStatus::PowerOff());
}

// The VM write lock freezes every vCPU while they run, repeatedly, while
// kicks fly; they all run again afterwards.
TEST(VmTest, WriteLockFreezesAllRunningVcpus) {
  STRATA_REQUIRE_KVM();
  constexpr uint32_t kVcpus = 6;
  auto vm = MakeVm(kVcpus);
  ASSERT_TRUE(vm);
  std::vector<std::unique_ptr<Runner>> runners;
  for (uint32_t i = 0; i < kVcpus; ++i) {
    Vcpu* v = MakeVcpu(*vm, i, i % 2 ? TestProgram::kSpinLoop
                                     : TestProgram::kHaltLoop);
    runners.push_back(std::make_unique<Runner>(v));
  }
  std::atomic<bool> done{false};
  std::thread kicker([&] {
    for (uint32_t n = 0; !done.load(); ++n) {
      vm->vcpu(n % kVcpus)->Kick();
      std::this_thread::sleep_for(100us);
    }
  });
  for (int round = 0; round < 20; ++round) {
    {
      VmWriteLock wl(*vm);
      for (uint32_t i = 0; i < kVcpus; ++i) {
        EXPECT_EQ(vm->vcpu(i)->state(), VcpuState::kFrozen) << "vCPU " << i;
      }
      uint64_t entries = 0;
      for (uint32_t i = 0; i < kVcpus; ++i) entries += vm->vcpu(i)->stats().entries;
      std::this_thread::sleep_for(1ms);
      uint64_t later = 0;
      for (uint32_t i = 0; i < kVcpus; ++i) later += vm->vcpu(i)->stats().entries;
      EXPECT_EQ(entries, later) << "a frozen vCPU entered the guest";
    }
    for (uint32_t i = 0; i < kVcpus; ++i) {
      Vcpu* v = vm->vcpu(i);
      EXPECT_TRUE(WaitFor([&] { return v->state() == VcpuState::kRunning; }))
          << "vCPU " << i << " did not resume";
    }
  }
  done.store(true);
  kicker.join();
  vm->RequestStop(ExitStatus::PowerOff());
}

TEST(VmTest, VcpuLockNestsAndWorksBeforeTheVcpuRuns) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(2);
  ASSERT_TRUE(vm);
  Vcpu* v = MakeVcpu(*vm, 0, TestProgram::kHaltLoop);
  std::unique_ptr<Runner> r;
  {
    VcpuLock outer(*v);
    EXPECT_EQ(v->state(), VcpuState::kFrozen);
    r = std::make_unique<Runner>(v);  // starts, but must wait
    {
      VcpuLock inner(*v);
      std::this_thread::sleep_for(5ms);
      EXPECT_EQ(v->state(), VcpuState::kFrozen);
    }
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(v->state(), VcpuState::kFrozen);
    EXPECT_EQ(v->stats().entries.load(), 0u);
    // Registers are safe to touch while frozen.
    ASSERT_TRUE(v->GetRegister(md::kRegPc).has_value());
  }
  EXPECT_TRUE(WaitFor([&] { return v->stats().entries.load() > 0; }));
  vm->RequestStop(ExitStatus::PowerOff());
}

// A vCPU created while a writer holds the VM is born frozen, so lazy
// creation cannot slip a running vCPU past the write lock.
TEST(VmTest, VcpuCreatedUnderTheWriteLockIsBornFrozen) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(4);
  ASSERT_TRUE(vm);
  MakeVcpu(*vm, 0, TestProgram::kHaltLoop);
  Vcpu* late = nullptr;
  std::unique_ptr<Runner> r;
  {
    VmWriteLock wl(*vm);
    std::thread creator([&] {
      auto v = vm->CreateVcpu(3);
      ASSERT_TRUE(v.has_value());
      late = *v;
    });
    creator.join();
    ASSERT_NE(late, nullptr);
    EXPECT_EQ(late->state(), VcpuState::kFrozen);
    ASSERT_TRUE(LoadTestProgram(*vm, *late, TestProgram::kHaltLoop).has_value());
    r = std::make_unique<Runner>(late);
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(late->stats().entries.load(), 0u);
  }
  EXPECT_TRUE(WaitFor([&] { return late->stats().entries.load() > 0; }));
  vm->RequestStop(ExitStatus::PowerOff());
}

// A device whose handler takes the VM write lock, hit by several vCPUs at
// once: exit handlers may lock their own VM, and racing writers from vCPU
// context do not deadlock.
class LockingDevice : public IoDevice {
 public:
  explicit LockingDevice(Vm& vm) : vm_(vm) {}
  uint64_t Read(const IoContext&, uint64_t, uint32_t) override { return 0; }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t) override {
    VmWriteLock wl(vm_);
    if (writes_.fetch_add(1) + 1 == 200) vm_.RequestStop(ExitStatus::PowerOff());
  }
  std::string_view name() const override { return "locking-device"; }
  std::atomic<int> writes_{0};

 private:
  Vm& vm_;
};

TEST(VmTest, ExitHandlersMayTakeTheWriteLock) {
  STRATA_REQUIRE_KVM();
  constexpr uint32_t kVcpus = 4;
  auto vm = MakeVm(kVcpus);
  ASSERT_TRUE(vm);
  auto dev = std::make_shared<LockingDevice>(*vm);
  ASSERT_TRUE(vm->pio_bus().Register(md::testing::kTestPioPort, 1, dev).has_value());
  std::vector<std::unique_ptr<Runner>> runners;
  for (uint32_t i = 0; i < kVcpus; ++i) {
    runners.push_back(
        std::make_unique<Runner>(MakeVcpu(*vm, i, TestProgram::kPioLoop)));
  }
  for (auto& r : runners) r->Join();
  EXPECT_GE(dev->writes_.load(), 200);
  ASSERT_TRUE(vm->exit_status().has_value());
  EXPECT_EQ(vm->exit_status()->why, ExitStatus::Why::kPowerOff);
  uint64_t io = 0;
  for (uint32_t i = 0; i < kVcpus; ++i) {
    io += vm->vcpu(i)->stats().exits[static_cast<size_t>(ExitKind::kIo)];
  }
  EXPECT_GE(io, 200u);
}

// Lease holders hear about every write lock, with all vCPUs frozen.
TEST(VmTest, RevokeCallbacksRunUnderTheWriteLock) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(2);
  ASSERT_TRUE(vm);
  Vcpu* v = MakeVcpu(*vm, 0, TestProgram::kSpinLoop);
  Runner r(v);
  ASSERT_TRUE(WaitFor([&] { return v->stats().entries.load() > 0; }));
  int calls = 0;
  VcpuState during = VcpuState::kRunning;
  vm->AddRevokeCallback([&] {
    ++calls;
    during = v->state();
  });
  auto seg = vm->AddMemory("extra", 0x10000000, 0x100000);
  ASSERT_TRUE(seg.has_value()) << seg.error().message();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(during, VcpuState::kFrozen);
  EXPECT_TRUE(vm->memory().IsRam(0x10000000));
  // An overlapping segment is refused and nothing changes.
  auto bad = vm->AddMemory("overlap", 0x10080000, 0x100000);
  EXPECT_FALSE(bad.has_value());
  EXPECT_FALSE(vm->memory().IsRam(0x10100000));
  vm->RequestStop(ExitStatus::PowerOff());
}

TEST(VmTest, TripleFaultStopsTheVmAsACrash) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(1);
  ASSERT_TRUE(vm);
  Runner r(MakeVcpu(*vm, 0, TestProgram::kTripleFault));
  r.Join();
  ASSERT_TRUE(vm->exit_status().has_value());
  EXPECT_EQ(vm->exit_status()->why, ExitStatus::Why::kGuestCrash);
  EXPECT_EQ(vm->exit_status()->code, ExitStatus::kExitGuestCrash);
}

TEST(VmTest, UnclaimedPioIsFatalWhenConfigured) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(1);
  ASSERT_TRUE(vm);
  vm->pio_bus().set_unclaimed_fatal(true);
  Runner r(MakeVcpu(*vm, 0, TestProgram::kPioLoop));
  r.Join();
  ASSERT_TRUE(vm->exit_status().has_value());
  EXPECT_EQ(vm->exit_status()->why, ExitStatus::Why::kVmmError);
  EXPECT_NE(vm->exit_status()->message.find("0x80"), std::string::npos)
      << vm->exit_status()->message;
}

TEST(VmTest, RegistersRoundTripThroughTheCache) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm(1);
  ASSERT_TRUE(vm);
  Vcpu* v = MakeVcpu(*vm, 0, TestProgram::kHaltLoop);
  ASSERT_TRUE(v->SetRegister(md::kRegSp, 0x7000).has_value());
  EXPECT_EQ(v->GetRegister(md::kRegSp).value_or(0), 0x7000u);
  auto bad = v->GetRegister(md::Reg::kCount);
  EXPECT_FALSE(bad.has_value());
  // The x87 control word after reset is 0x40 (SDM Vol. 3 Table 9-1).
  auto fpu = v->GetFpu();
  ASSERT_TRUE(fpu.has_value());
  EXPECT_EQ(fpu->fcw, 0x40u);
  fpu->fcw = 0x37f;
  ASSERT_TRUE(v->SetFpu(*fpu).has_value());
  EXPECT_EQ(v->GetFpu()->fcw, 0x37fu);
  // Through the XSAVE image when the host has one: XMM0 round trips.
  auto x = v->GetFpu();
  ASSERT_TRUE(x.has_value());
  if (x->has_xsave) {
    x->xmm[0][0] = 0x5a;
    x->xmm[0][15] = 0xa5;
    Status s = v->SetFpu(*x);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    auto y = v->GetFpu();
    ASSERT_TRUE(y.has_value());
    EXPECT_EQ(y->xmm[0][0], 0x5a);
    EXPECT_EQ(y->xmm[0][15], 0xa5);
    EXPECT_EQ(y->xcr0 & 1, 1u);
  }
}

}  // namespace
}  // namespace strata
