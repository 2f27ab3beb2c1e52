// Integration test: the driver interface (core/driver.h) end to end, with a
// real guest. tests/guests/amd64/driver.c rings a doorbell port for each
// sequence number i; a driver thread here — holding a DriverHold, never on a
// vCPU thread — wakes on the doorbell's ioeventfd, copies the pattern for i
// into the guest's buffer through its Lease, and raises the guest's MSI
// through an irqfd. Meanwhile another thread changes the memory map in a
// loop (an unrelated range above 4 GiB), so every map change revokes the
// lease and the driver's next access renews it.
//
// The VM is built through the C++ API (not bhyverun), with only the devices
// the guest uses: COM1 (captured), isa-debug-exit, the ACPI PM block (the
// guest's deadlines read its timer), and a counting device on the doorbell
// port that must never see an access — the doorbell is served in the kernel.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arch/amd64/loader/multiboot.h"
#include "core/driver.h"
#include "core/vmmapi.h"
#include "devices/acpi_pm.h"
#include "devices/char_backend.h"
#include "devices/debug_exit.h"
#include "devices/uart_16550.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The protocol of tests/guests/amd64/driver.c (see its file comment).
constexpr uint64_t kBufGpa = 0x800000;
constexpr uint32_t kWords = 64;
constexpr uint64_t kRequestOffset = 0;
constexpr uint64_t kDoneOffset = 4;
constexpr uint64_t kWordsOffset = 8;
constexpr uint64_t kMagicOffset = 12;
constexpr uint64_t kDataOffset = 16;
constexpr uint64_t kPageBytes = kDataOffset + 4 * kWords;
constexpr uint32_t kGuestMagic = 0x52565244;  // "DRVR"
constexpr uint16_t kDoorbellPort = 0x5a0;
constexpr uint32_t kDoorbellSize = 4;
// MSI to APIC id 0 (address bits 19:12), fixed delivery, edge, vector 0x41
// (SDM Vol. 3 §11.11.1, §11.11.2).
constexpr uint64_t kMsiAddress = 0xfee00000;
constexpr uint32_t kMsiVector = 0x41;

constexpr uint32_t kRounds = 200;
constexpr uint64_t kRamSize = 32ull << 20;
// The range the churn thread adds and removes: RAM nobody uses, above the
// guest's identity map of the low 4 GiB.
constexpr uint64_t kChurnGpa = 1ull << 32;
constexpr uint64_t kChurnSize = 64ull << 10;
constexpr auto kChurnPause = 500us;

uint32_t Pattern(uint32_t seq, uint32_t k) { return seq * 0x01010101u ^ k; }

uint32_t Load32(std::span<const uint8_t> d, uint64_t off) {
  uint32_t v;
  std::memcpy(&v, d.data() + off, sizeof(v));
  return v;
}

void Store32(std::span<uint8_t> d, uint64_t off, uint32_t v) {
  std::memcpy(d.data() + off, &v, sizeof(v));
}

std::string GuestPath() {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir != nullptr ? dir : ".") +
         "/strata/tests/guests/amd64/driver.elf";
}

// A device on the doorbell port: with the ioeventfd in place no access may
// reach it (each would be a vCPU exit).
class CountingPort : public IoDevice {
 public:
  uint64_t Read(const IoContext&, uint64_t, uint32_t) override {
    reads_.fetch_add(1, std::memory_order_relaxed);
    return ~0ull;
  }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t) override {
    writes_.fetch_add(1, std::memory_order_relaxed);
  }
  std::string_view name() const override { return "doorbell-witness"; }
  uint64_t reads() const { return reads_.load(); }
  uint64_t writes() const { return writes_.load(); }

 private:
  std::atomic<uint64_t> reads_{0}, writes_{0};
};

// The VM and what the test looks at. The console outlives the VM (the UART
// keeps a pointer to it): members are destroyed in reverse order.
struct Machine {
  std::shared_ptr<BufferBackend> console = std::make_shared<BufferBackend>();
  std::shared_ptr<CountingPort> witness = std::make_shared<CountingPort>();
  std::unique_ptr<Vm> vm;
  Vcpu* vcpu = nullptr;
};

void BuildMachine(Machine& m, const std::string& args) {
  VmOptions o;
  o.name = "driver-test";
  auto vm = CreateKvmVm(o);
  ASSERT_TRUE(vm.has_value()) << vm.error().message();
  m.vm = std::move(*vm);
  Vm* raw = m.vm.get();
  ASSERT_TRUE(m.vm->AddMemory("ram", 0, kRamSize).has_value());

  auto uart = std::make_shared<Uart16550>(m.console.get(), nullptr, "com1");
  ASSERT_TRUE(m.vm->pio_bus().Register(0x3f8, kUart16550RegisterCount, uart)
                  .has_value());
  auto dbg = std::make_shared<DebugExit>([raw](uint64_t status) {
    raw->RequestStop(ExitStatus::GuestExit(status >> 1));
  });
  ASSERT_TRUE(m.vm->pio_bus()
                  .Register(kDebugExitPort, kDebugExitLength, dbg)
                  .has_value());
  auto pm = std::make_shared<AcpiPm>(
      [raw](uint32_t) { raw->RequestStop(ExitStatus::PowerOff()); });
  ASSERT_TRUE(
      m.vm->pio_bus().Register(kAcpiPmPort, kAcpiPmLength, pm).has_value());
  ASSERT_TRUE(m.vm->pio_bus()
                  .Register(kDoorbellPort, kDoorbellSize, m.witness)
                  .has_value());

  std::ifstream f(GuestPath(), std::ios::binary);
  ASSERT_TRUE(f.good()) << "cannot open " << GuestPath();
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(f)),
                             std::istreambuf_iterator<char>());
  amd64::BootParams params;
  params.cmdline = GuestPath() + " " + args;
  Result<amd64::BootInfo> boot = [&] {
    VmReadLock rl(*m.vm);
    return amd64::LoadKernel(image, params, m.vm->memory());
  }();
  ASSERT_TRUE(boot.has_value()) << boot.error().message();
  ASSERT_LE(boot->boot_data_end, kBufGpa);
  ASSERT_LE(boot->kernel_end, kBufGpa);

  auto v = m.vm->CreateVcpu(0);
  ASSERT_TRUE(v.has_value()) << v.error().message();
  m.vcpu = *v;
  ASSERT_TRUE(m.vcpu->SetState(boot->sregs).has_value());
  ASSERT_TRUE(m.vcpu->SetRegister(md::Reg::kRip, boot->entry).has_value());
  ASSERT_TRUE(m.vcpu->SetRegister(md::Reg::kRax, boot->rax).has_value());
  ASSERT_TRUE(m.vcpu->SetRegister(md::Reg::kRbx, boot->rbx).has_value());
  ASSERT_TRUE(m.vcpu->SetRegister(md::Reg::kRsp, boot->rsp).has_value());
  ASSERT_TRUE(
      m.vcpu->SetRegister(md::Reg::kRflags, boot->rflags).has_value());
}

// The driver: everything it uses comes through its hold, and it lets go of
// all of it when the VM asks (the release callback), from its own thread.
class TestDriver {
 public:
  ~TestDriver() { Join(); }

  // Sets up on the calling thread — before the guest can ring — and starts
  // the driver thread.
  static std::unique_ptr<TestDriver> Start(Vm& vm) {
    std::unique_ptr<TestDriver> d(new TestDriver);
    d->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    EXPECT_GE(d->stop_fd_, 0) << std::strerror(errno);
    TestDriver* raw = d.get();
    auto hold = DriverHold::Acquire(vm, "driver-test", [raw] {
      // On the thread shutting the VM down: only signal, never wait for the
      // driver (it may be inside a lease access).
      raw->release_requested_.store(true);
      uint64_t one = 1;
      (void)!write(raw->stop_fd_, &one, sizeof(one));
    });
    EXPECT_TRUE(hold.has_value()) << hold.error().message();
    if (!hold) return nullptr;
    d->hold_ = std::move(*hold);
    auto lease = d->hold_->LeaseMemory(kBufGpa, kPageBytes, [raw] {
      raw->revoke_callbacks_.fetch_add(1, std::memory_order_relaxed);
    });
    EXPECT_TRUE(lease.has_value()) << lease.error().message();
    auto bell = d->hold_->Doorbell(BusKind::kPio, kDoorbellPort, kDoorbellSize,
                                   std::nullopt);
    EXPECT_TRUE(bell.has_value()) << bell.error().message();
    auto msi = d->hold_->MsiFd(md::MsiMessage{kMsiAddress, kMsiVector});
    EXPECT_TRUE(msi.has_value()) << msi.error().message();
    if (!lease || !bell || !msi) return nullptr;
    d->lease_ = std::move(*lease);
    d->doorbell_ = std::move(*bell);
    d->msi_ = std::move(*msi);
    d->thread_ = std::thread([raw] { raw->Loop(); });
    return d;
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
    if (stop_fd_ >= 0) close(stop_fd_);
    stop_fd_ = -1;
  }

  uint64_t served() const { return served_.load(); }
  uint64_t doorbells() const { return doorbells_.load(); }
  uint64_t seq_errors() const { return seq_errors_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t revocations() const { return revocations_.load(); }
  uint64_t revoke_callbacks() const { return revoke_callbacks_.load(); }
  bool release_requested() const { return release_requested_.load(); }
  bool dropped_all_but_hold() const { return dropped_all_but_hold_.load(); }
  bool released() const { return released_.load(); }
  std::string first_error() const {
    std::lock_guard lk(mu_);
    return first_error_;
  }

 private:
  TestDriver() = default;

  void Fail(std::string what) {
    errors_.fetch_add(1);
    std::lock_guard lk(mu_);
    if (first_error_.empty()) first_error_ = std::move(what);
  }

  void Loop() {
    uint32_t expected = 1;
    for (;;) {
      struct pollfd fds[2] = {{doorbell_->fd(), POLLIN, 0},
                              {stop_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        Fail(std::string("poll: ") + std::strerror(errno));
        break;
      }
      if (fds[1].revents & POLLIN) break;
      auto rung = doorbell_->Consume();
      if (!rung) {
        Fail(rung.error().message());
        break;
      }
      if (*rung == 0) continue;
      doorbells_.fetch_add(*rung);
      uint32_t seq;
      {
        auto a = lease_->Begin();
        if (!a) {
          Fail(a.error().message());
          continue;
        }
        std::span<uint8_t> d = a->data();
        if (Load32(d, kMagicOffset) != kGuestMagic ||
            Load32(d, kWordsOffset) != kWords) {
          Fail("the guest's page has the wrong magic or word count");
        }
        seq = Load32(d, kRequestOffset);
        if (seq != expected) seq_errors_.fetch_add(1);
        expected = seq + 1;
        for (uint32_t k = 0; k < kWords; ++k) {
          Store32(d, kDataOffset + 4 * k, Pattern(seq, k));
        }
        Store32(d, kDoneOffset, seq);
      }
      served_.fetch_add(1);
      if (auto t = msi_->Trigger(); !t) Fail(t.error().message());
    }
    // Let go, in the order driver.h asks: everything made through the hold,
    // then the hold itself.
    revocations_.store(lease_->revocations());
    msi_.reset();
    doorbell_.reset();
    lease_.reset();
    // Vm::Shutdown returns once ~DriverHold has unregistered the hold, so
    // it can see this flag but not necessarily released_.
    dropped_all_but_hold_.store(true);
    hold_.reset();
    released_.store(true);
  }

  std::unique_ptr<DriverHold> hold_;
  std::unique_ptr<Lease> lease_;
  std::unique_ptr<IoEventFd> doorbell_;
  std::unique_ptr<IrqFd> msi_;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<uint64_t> served_{0}, doorbells_{0}, seq_errors_{0}, errors_{0};
  std::atomic<uint64_t> revocations_{0}, revoke_callbacks_{0};
  std::atomic<bool> release_requested_{false}, dropped_all_but_hold_{false},
      released_{false};
  mutable std::mutex mu_;
  std::string first_error_;  // mu_
};

// Adds and removes an unrelated RAM range until stopped: each change takes
// the VM write lock, which quiesces the vCPU and revokes the lease.
class MapChurn {
 public:
  explicit MapChurn(Vm& vm) : thread_([this, &vm] { Loop(vm); }) {}
  ~MapChurn() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t changes() const { return changes_.load(); }
  uint64_t errors() const { return errors_.load(); }

 private:
  void Loop(Vm& vm) {
    while (!stop_.load()) {
      if (!vm.AddMemory("churn", kChurnGpa, kChurnSize).has_value()) {
        errors_.fetch_add(1);
      } else {
        changes_.fetch_add(1);
        if (vm.RemoveMemory(kChurnGpa).has_value()) {
          changes_.fetch_add(1);
        } else {
          errors_.fetch_add(1);
        }
      }
      std::this_thread::sleep_for(kChurnPause);
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> changes_{0}, errors_{0};
  std::thread thread_;  // last: starts after the counters exist
};

std::string Args(uint32_t rounds) {
  return "n=" + std::to_string(rounds) + " buf=" + std::to_string(kBufGpa) +
         " words=" + std::to_string(kWords) + " timeout_ms=10000";
}

// "driver: interrupts counted N" from the guest, or -1.
long CountedInterrupts(const std::string& out) {
  const std::string key = "driver: interrupts counted ";
  auto at = out.find(key);
  if (at == std::string::npos) return -1;
  return std::strtol(out.c_str() + at + key.size(), nullptr, 10);
}

TEST(DriverAmd64, GuestDoorbellLeaseAndMsiWhileTheMapChanges) {
  STRATA_REQUIRE_KVM();
  Machine m;
  ASSERT_NO_FATAL_FAILURE(BuildMachine(m, Args(kRounds)));
  auto driver = TestDriver::Start(*m.vm);
  ASSERT_TRUE(driver);

  const auto start = Clock::now();
  Status run = Ok();
  std::thread vcpu([&] { run = m.vcpu->Run(); });
  uint64_t map_changes = 0, churn_errors = 0;
  {
    MapChurn churn(*m.vm);
    vcpu.join();
    churn.Stop();
    map_changes = churn.changes();
    churn_errors = churn.errors();
  }
  const auto guest_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                            start)
          .count();
  const std::string out = m.console->contents();
  const uint64_t io_exits =
      m.vcpu->stats().exits[static_cast<size_t>(ExitKind::kIo)].load();
  const std::optional<ExitStatus> exit = m.vm->exit_status();

  // The VM goes away cleanly: Shutdown asks the driver to let go and waits
  // until it has.
  EXPECT_FALSE(driver->released());
  auto sd = m.vm->Shutdown();
  EXPECT_TRUE(sd.has_value()) << sd.error().message();
  EXPECT_TRUE(driver->release_requested());
  EXPECT_TRUE(driver->dropped_all_but_hold());  // Shutdown waited for it
  driver->Join();
  EXPECT_TRUE(driver->released());
  m.vm.reset();

  std::printf(
      "driver test: N=%u, guest counted %ld interrupts, driver served %" PRIu64
      " doorbells (%" PRIu64 " eventfd wakeups), lease revoked %" PRIu64
      " times (%" PRIu64 " revoke callbacks), %" PRIu64
      " map changes, %" PRIu64 " vCPU I/O exits, guest ran %lld ms\n",
      kRounds, CountedInterrupts(out), driver->served(), driver->doorbells(),
      driver->revocations(), driver->revoke_callbacks(), map_changes,
      io_exits, static_cast<long long>(guest_ms));
  ::testing::Test::RecordProperty("lease_revocations",
                                  std::to_string(driver->revocations()));
  ::testing::Test::RecordProperty("map_changes", std::to_string(map_changes));

  EXPECT_TRUE(run.has_value()) << run.error().message();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->why, ExitStatus::Why::kGuestExit) << exit->message;
  EXPECT_EQ(exit->code, 1) << out;  // debug exit with V = 0
  EXPECT_NE(out.find("SUMMARY: 5 tests, 0 unexpected failures"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("FAIL:"), std::string::npos) << out;
  EXPECT_EQ(CountedInterrupts(out), static_cast<long>(kRounds)) << out;
  EXPECT_EQ(driver->served(), kRounds);
  EXPECT_EQ(driver->seq_errors(), 0u);
  EXPECT_EQ(driver->errors(), 0u) << driver->first_error();
  EXPECT_GT(driver->revocations(), 0u);
  EXPECT_EQ(driver->revocations(), driver->revoke_callbacks());
  EXPECT_GT(map_changes, 0u);
  EXPECT_EQ(churn_errors, 0u);
  // Served in the kernel: no guest access to the doorbell port became a
  // vCPU exit (it would have reached the witness device).
  EXPECT_EQ(m.witness->writes(), 0u);
  EXPECT_EQ(m.witness->reads(), 0u);
}

TEST(DriverAmd64, DestroyingTheVmReleasesABusyDriver) {
  STRATA_REQUIRE_KVM();
  Machine m;
  // More rounds than the test waits for: the guest is still ringing when the
  // VM is destroyed.
  ASSERT_NO_FATAL_FAILURE(BuildMachine(m, Args(1000000)));
  auto driver = TestDriver::Start(*m.vm);
  ASSERT_TRUE(driver);
  Status run = Ok();
  std::thread vcpu([&] { run = m.vcpu->Run(); });

  const auto deadline = Clock::now() + 120s;
  while (driver->served() < 20 && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(driver->served(), 20u) << m.console->contents();
  EXPECT_FALSE(driver->released());

  // Destroy the VM from another thread while the driver holds it; the
  // release callback makes the driver stop, and then destruction finishes.
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    m.vm.reset();
    destroyed.store(true);
  });
  const auto destroy_deadline = Clock::now() + 60s;
  while (!destroyed.load() && Clock::now() < destroy_deadline) {
    std::this_thread::sleep_for(1ms);
  }
  if (!destroyed.load()) {
    ADD_FAILURE() << "VM destruction did not finish within 60 s (driver "
                     "released: "
                  << driver->released() << ")";
    std::fflush(nullptr);
    std::abort();  // the threads below would wait forever
  }
  destroyer.join();
  vcpu.join();
  driver->Join();
  EXPECT_TRUE(driver->release_requested());
  EXPECT_TRUE(driver->released());
  EXPECT_EQ(driver->errors(), 0u) << driver->first_error();
  EXPECT_EQ(driver->seq_errors(), 0u);
  // Run() ended because the VM was shut down, not by an error of its own.
  EXPECT_TRUE(run.has_value()) << run.error().message();
  std::printf("destroy test: driver served %" PRIu64
              " doorbells before the VM was destroyed\n",
              driver->served());
}

}  // namespace
}  // namespace strata
