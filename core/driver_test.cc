// The driver interface on real KVM: holds pin the VM, leases are revoked by
// the write lock and re-acquired, a writer waits for an access in progress.
#include "core/driver.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "core/vmmapi.h"
#include "machine/test_programs.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

using namespace std::chrono_literals;
using md::testing::LoadTestProgram;
using md::testing::TestProgram;

std::unique_ptr<Vm> MakeVm() {
  VmOptions o;
  auto vm = CreateKvmVm(o);
  EXPECT_TRUE(vm.has_value()) << vm.error().message();
  if (!vm) return nullptr;
  EXPECT_TRUE((*vm)->AddMemory("ram", 0, md::testing::kTestRamSize).has_value());
  return std::move(*vm);
}

TEST(DriverTest, AHoldPinsTheVmUntilTheDriverLetsGo) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  std::atomic<bool> asked{false};
  auto hold = DriverHold::Acquire(*vm, "test-driver", [&] { asked = true; });
  ASSERT_TRUE(hold.has_value()) << hold.error().message();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    vm.reset();
    destroyed = true;
  });
  while (!asked.load()) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE((*hold)->release_requested());
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(destroyed.load()) << "the VM went away under a hold";
  // No new holds once the VM is going away.
  auto late = DriverHold::Acquire((*hold)->vm(), "late");
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), Errc::kBusy);
  hold->reset();
  destroyer.join();
  EXPECT_TRUE(destroyed.load());
}

TEST(DriverTest, LeasesAreRevokedByTheWriteLockAndRenewed) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto hold = *DriverHold::Acquire(*vm, "d");
  std::atomic<int> revoked{0};
  auto lease = hold->LeaseMemory(0x8000, 0x1000, [&] { revoked++; });
  ASSERT_TRUE(lease.has_value()) << lease.error().message();
  {
    auto a = (*lease)->Begin();
    ASSERT_TRUE(a.has_value());
    std::memset(a->data().data(), 0xab, a->data().size());
  }
  uint8_t b = 0;
  ASSERT_TRUE(vm->ReadMemory(0x8fff, &b, 1).has_value());
  EXPECT_EQ(b, 0xab);
  // Any map change revokes; the next access re-translates.
  ASSERT_TRUE(vm->AddMemory("more", 0x200000, 0x10000).has_value());
  EXPECT_EQ(revoked.load(), 1);
  EXPECT_EQ((*lease)->revocations(), 1u);
  {
    auto a = (*lease)->Begin();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->data()[0], 0xab);
  }
  // A lease on something that is not RAM is refused.
  auto bad = hold->LeaseMemory(md::testing::kTestRamSize - 0x800, 0x1000);
  ASSERT_FALSE(bad.has_value());
  // Once the leased range is removed, Begin says so and the lease stays
  // revoked.
  auto moving = hold->LeaseMemory(0x200000, 0x1000);
  ASSERT_TRUE(moving.has_value());
  ASSERT_TRUE((*moving)->Begin().has_value());
  ASSERT_TRUE(vm->RemoveMemory(0x200000).has_value());
  auto gone = (*moving)->Begin();
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), Errc::kOutOfRange);
  lease->reset();
  moving->reset();
}

// The writer waits for an access in progress before it changes the map, so
// a driver never copies through a stale mapping.
TEST(DriverTest, AWriterWaitsForAnAccessInProgress) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto hold = *DriverHold::Acquire(*vm, "d");
  auto lease = *hold->LeaseMemory(0x4000, 0x1000);
  std::atomic<bool> in_access{false}, access_done{false}, map_changed{false};
  std::atomic<bool> order_ok{true};
  std::thread driver([&] {
    auto a = lease->Begin();
    ASSERT_TRUE(a.has_value());
    in_access = true;
    std::this_thread::sleep_for(50ms);
    if (map_changed.load()) order_ok = false;
    // Inside an access the driver may still take the read lock.
    EXPECT_TRUE(vm->SetIrq(md::IrqPin{3}, false).has_value());
    access_done = true;
  });
  while (!in_access.load()) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(vm->AddMemory("x", 0x300000, 0x1000).has_value());
  map_changed = true;
  EXPECT_TRUE(access_done.load()) << "the writer did not wait for the access";
  driver.join();
  EXPECT_TRUE(order_ok.load());
  lease.reset();
}

// A lease must not be renewed between a writer's revocation and its map
// change: the writer revokes before it takes the map lock, so a Begin() in
// that window would translate the map that is about to change and keep the
// stale span afterwards. The revoke callback opens the window wide: it
// lets the driver call Begin() and waits (bounded) for it to return.
TEST(DriverTest, NoLeaseIsRenewedAgainstAMapAboutToChange) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  constexpr uint64_t kGpa = 0x200000;
  ASSERT_TRUE(vm->AddMemory("moving", kGpa, 0x1000).has_value());
  auto hold = *DriverHold::Acquire(*vm, "d");
  std::mutex mu;
  std::condition_variable cv;
  bool in_window = false, begin_returned = false;  // mu
  auto lease = hold->LeaseMemory(kGpa, 0x1000, [&] {
    std::unique_lock lk(mu);
    in_window = true;
    cv.notify_all();
    cv.wait_for(lk, 300ms, [&] { return begin_returned; });
  });
  ASSERT_TRUE(lease.has_value()) << lease.error().message();
  ASSERT_TRUE((*lease)->Begin().has_value());  // valid now
  std::optional<Errc> driver_error;
  std::thread driver([&] {
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return in_window; });
    }
    auto a = (*lease)->Begin();
    if (!a) driver_error = a.error().code();
    std::lock_guard lk(mu);
    begin_returned = true;
    cv.notify_all();
  });
  ASSERT_TRUE(vm->RemoveMemory(kGpa).has_value());
  driver.join();
  EXPECT_EQ(driver_error, Errc::kOutOfRange)
      << "Begin() during the writer's map change did not wait for it";
  auto after = (*lease)->Begin();
  EXPECT_FALSE(after.has_value())
      << "the lease still maps the removed segment";
  lease->reset();
}

// The same window, but the driver holds an access on another lease, which
// the writer will wait for: Begin must fail (kBusy), not wait for the
// writer, or the two would wait for each other.
TEST(DriverTest, ANestedBeginDuringAMapChangeFailsInsteadOfWaiting) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  constexpr uint64_t kGpa = 0x200000;
  ASSERT_TRUE(vm->AddMemory("moving", kGpa, 0x1000).has_value());
  auto hold = *DriverHold::Acquire(*vm, "d");
  std::mutex mu;
  std::condition_variable cv;
  bool in_window = false, begin_returned = false;  // mu
  // Registered first, so revoked first: its callback opens the window.
  auto lease = hold->LeaseMemory(kGpa, 0x1000, [&] {
    std::unique_lock lk(mu);
    in_window = true;
    cv.notify_all();
    cv.wait_for(lk, 10s, [&] { return begin_returned; });
  });
  ASSERT_TRUE(lease.has_value()) << lease.error().message();
  auto other = hold->LeaseMemory(0x4000, 0x1000);
  ASSERT_TRUE(other.has_value()) << other.error().message();
  ASSERT_TRUE((*lease)->Begin().has_value());
  std::optional<Errc> nested_error;
  std::atomic<bool> holding{false};
  std::thread driver([&] {
    auto outer = (*other)->Begin();
    ASSERT_TRUE(outer.has_value());
    holding = true;
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return in_window; });
    }
    auto inner = (*lease)->Begin();
    if (!inner) nested_error = inner.error().code();
    std::lock_guard lk(mu);
    begin_returned = true;
    cv.notify_all();
  });
  while (!holding.load()) std::this_thread::sleep_for(1ms);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(vm->RemoveMemory(kGpa).has_value());
  driver.join();
  EXPECT_EQ(nested_error, Errc::kBusy);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s)
      << "the nested Begin waited for the writer";
  EXPECT_FALSE((*lease)->Begin().has_value());
  lease->reset();
  other->reset();
}

// A driver thread runs a loop of lease accesses and MSI irqfd triggers
// while another thread changes the memory map in a loop and a vCPU runs.
TEST(DriverTest, LeaseLoopRacesMapChanges) {
  STRATA_REQUIRE_KVM();
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto v = vm->CreateVcpu(0);
  ASSERT_TRUE(v.has_value());
  ASSERT_TRUE(LoadTestProgram(*vm, **v, TestProgram::kSpinLoop).has_value());
  auto hold = *DriverHold::Acquire(*vm, "d");
  auto lease = *hold->LeaseMemory(0x6000, 0x2000);
  auto msi = hold->MsiFd(md::MsiMessage{0xfee00000, 0x41});
  ASSERT_TRUE(msi.has_value()) << msi.error().message();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> copies{0};
  std::thread vcpu([&] { (void)(*v)->Run(); });
  std::thread driver([&] {
    while (!stop.load()) {
      auto a = lease->Begin();
      ASSERT_TRUE(a.has_value()) << a.error().message();
      std::memset(a->data().data(), static_cast<int>(copies.load() & 0xff),
                  a->data().size());
      copies++;
      EXPECT_TRUE((*msi)->Trigger().has_value());
    }
  });
  // Only a renewed lease is revoked (and counted), so before each change
  // let the driver copy once after the previous one: on a loaded host its
  // thread may otherwise sleep through several changes. An access that
  // was in progress during a change ended before the change returned, so a
  // copy counted after that began after it.
  auto driver_copied_since = [&](uint64_t mark) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (copies.load() == mark &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return copies.load() != mark;
  };
  int changes = 0;
  for (int i = 0; i < 50; ++i) {
    if (!driver_copied_since(copies.load())) break;
    ASSERT_TRUE(vm->AddMemory("churn", 0x400000, 0x1000).has_value());
    ++changes;
    if (!driver_copied_since(copies.load())) break;
    ASSERT_TRUE(vm->RemoveMemory(0x400000).has_value());
    ++changes;
  }
  stop = true;
  driver.join();
  vm->RequestStop(ExitStatus::PowerOff());
  vcpu.join();
  EXPECT_EQ(changes, 100) << "the driver thread stopped copying";
  EXPECT_GT(copies.load(), 0u);
  EXPECT_EQ(lease->revocations(), static_cast<uint64_t>(changes));
  msi->reset();
  lease.reset();
}

TEST(DriverDeathTest, TheWriteLockInsideALeaseAccessIsAChecked) {
  STRATA_REQUIRE_KVM();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto vm = MakeVm();
        auto hold = *DriverHold::Acquire(*vm, "d");
        auto lease = *hold->LeaseMemory(0x4000, 0x1000);
        auto a = lease->Begin();
        VmWriteLock wl(*vm);
      },
      "inside a lease access");
}

}  // namespace
}  // namespace strata
