// An embedder's view of strata: a C++ program that builds a Machine from a
// Config (core/machine.h), adds devices of its own — a raw IoDevice on the
// port bus and an instance of its own registry model — boots one of our
// guests (tests/guests/amd64) on /dev/kvm, waits for the exit through the
// machine's eventfd, and gets the VM's log messages on its own logger.
#include "core/machine.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "core/log.h"
#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

using namespace std::chrono_literals;

std::string Guest(const std::string& name) {
  return testing::Runfile("strata/tests/guests/amd64/" + name + ".elf");
}

// Counts accesses; reads give `value`.
class CountingDevice : public IoDevice {
 public:
  CountingDevice(std::string name, uint64_t value)
      : name_(std::move(name)), value_(value) {}
  uint64_t Read(const IoContext& ctx, uint64_t, uint32_t size) override {
    reads_++;
    if (ctx.vcpu != nullptr) from_vcpu_++;
    return MaskToSize(value_, size);
  }
  void Write(const IoContext&, uint64_t, uint32_t size,
             uint64_t value) override {
    writes_++;
    last_write_ = value;
    last_size_ = size;
  }
  std::string_view name() const override { return name_; }

  std::atomic<int> reads_{0}, writes_{0}, from_vcpu_{0};
  std::atomic<uint64_t> last_write_{0};
  std::atomic<uint32_t> last_size_{0};

 private:
  const std::string name_;
  const uint64_t value_;
};

// The embedder's own model: an MMIO window that reads as zero, at the base
// its instance's config gives.
DeviceModel ProbeModel(std::shared_ptr<CountingDevice>* made) {
  DeviceModel m;
  m.name = "embedder-probe";
  m.help = "counts the guest's accesses to a 4 KiB MMIO window";
  m.keys = {{"base", "MMIO base", true}};
  m.create = [made](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t base =
        STRATA_TRY(ctx.Resource("base", 0, (uint64_t{1} << 52) - 4096));
    auto dev = std::make_shared<CountingDevice>(ctx.instance().name, 0);
    STRATA_TRY(ctx.vm().mmio_bus().Register(base, 4096, dev));
    *made = dev;
    return std::shared_ptr<void>(dev);
  };
  return m;
}

Config IoGuestConfig() {
  Config c;
  EXPECT_TRUE(c.Set("kernel.path", Guest("io")));
  EXPECT_TRUE(c.Set("memory.size", "64M"));
  EXPECT_TRUE(c.Set("com1.backend", "none"));  // not this process's stdio
  return c;
}

// The io guest checks that port 0x9f0 reads all-ones and ignores writes,
// and that MMIO 0xfe000000 reads zero and ignores writes: an embedder's
// devices there keep it passing, and see every access.
TEST(MachineEmbedder, BootsAGuestWithDevicesOfItsOwn) {
  STRATA_REQUIRE_KVM();
  Config c = IoGuestConfig();
  ASSERT_TRUE(c.Set("platform.probe.device", "embedder-probe"));
  ASSERT_TRUE(c.Set("platform.probe.base", "0xfe000000"));
  std::shared_ptr<CountingDevice> probe;
  Machine::Options o;
  o.models.push_back(ProbeModel(&probe));

  Machine::Step step = Machine::Step::kHost;
  auto created = Machine::Create(c, o, &step);
  ASSERT_TRUE(created) << created.error().message();
  std::unique_ptr<Machine> m = std::move(*created);
  ASSERT_NE(probe, nullptr);
  EXPECT_NE(m->devices().Find("probe"), nullptr);
  EXPECT_NE(m->devices().Find("com1"), nullptr);
  EXPECT_EQ(m->devices().Find("com1")->instance.model, "uart_16550");

  // A raw IoDevice on the bus, between Create and Start.
  auto port = std::make_shared<CountingDevice>("embedder-port", ~uint64_t{0});
  ASSERT_TRUE(m->vm().pio_bus().Register(0x9f0, 4, port));

  ASSERT_TRUE(m->Start());
  EXPECT_EQ(m->Start().error().code(), Errc::kBusy);
  // Wait for the exit the way an event loop would.
  struct pollfd p = {m->exit_fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 120000), 1) << "the guest did not stop in 120 s";
  const ExitStatus st = m->Wait();
  EXPECT_EQ(st.why, ExitStatus::Why::kGuestExit) << st.message;
  EXPECT_EQ(st.code, 1) << "the io guest reported failures";
  EXPECT_EQ(m->Wait().code, st.code);  // the same status again

  // inb, inw, inl, outl, inl; all from the vCPU.
  EXPECT_EQ(port->reads_, 4);
  EXPECT_EQ(port->from_vcpu_, 4);
  EXPECT_EQ(port->writes_, 1);
  EXPECT_EQ(port->last_write_, 0u);
  EXPECT_EQ(port->last_size_, 4u);
  // read32, read8, write32 0xffffffff, read32.
  EXPECT_EQ(probe->reads_, 3);
  EXPECT_EQ(probe->writes_, 1);
  EXPECT_EQ(probe->last_write_, 0xffffffffu);
}

// A logger that keeps what it is given.
struct CapturingLogger {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  CapturingLogger() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%n: %l: %v");
    logger = std::make_shared<spdlog::logger>("vm-under-test", sink);
  }
  std::string text() {
    logger->flush();
    return out.str();
  }
};

// The VM's devices log through the VM's logger (not the process's), and
// what the guest can repeat is rate-limited there too.
TEST(MachineEmbedder, DevicesLogThroughTheVmsLogger) {
  STRATA_REQUIRE_KVM();
  CapturingLogger vm_log;
  std::ostringstream process_out;
  auto saved = Log().sinks();
  Log().sinks().clear();
  Log().sinks().push_back(
      std::make_shared<spdlog::sinks::ostream_sink_mt>(process_out));

  Config c;
  ASSERT_TRUE(c.Set("kernel.path", Guest("acpi_flood")));
  ASSERT_TRUE(c.Set("com1.backend", "none"));
  ASSERT_TRUE(c.Set("log.level", "warn"));  // applies to the VM's logger
  Machine::Options o;
  o.logger = vm_log.logger;
  auto m = Machine::Create(c, o);
  ASSERT_TRUE(m) << m.error().message();
  const ExitStatus st = (*m)->Run();
  m->reset();
  Log().sinks() = saved;

  EXPECT_EQ(st.code, 1) << st.message;
  const std::string text = vm_log.text();
  const size_t lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_GE(lines, 11u) << text;
  EXPECT_LE(lines, 14u) << text;
  EXPECT_NE(text.find("vm-under-test: warning: ACPI sleep type 2 requested"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("suppressing further ACPI sleep request messages"),
            std::string::npos)
      << text;
  EXPECT_EQ(process_out.str(), "");
}

// Stopping from outside: the guest waits for console input that never
// comes; the embedder stops it, and its status is the one reported.
TEST(MachineEmbedder, RequestStopFromAnotherThread) {
  STRATA_REQUIRE_KVM();
  Config c;
  ASSERT_TRUE(c.Set("kernel.path", Guest("console")));
  ASSERT_TRUE(c.Set("kernel.cmdline", "echo 100"));
  ASSERT_TRUE(c.Set("com1.backend", "none"));
  ASSERT_TRUE(c.Set("cpus", "2"));
  auto m = Machine::Create(c);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ((*m)->cpus(), 2u);
  ASSERT_TRUE((*m)->Start());
  struct pollfd p = {(*m)->exit_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0);  // still running
  std::thread stopper(
      [&] { (*m)->RequestStop(ExitStatus::Stopped("embedder says stop")); });
  stopper.join();
  const ExitStatus st = (*m)->Wait();
  EXPECT_EQ(st.why, ExitStatus::Why::kStopped);
  EXPECT_EQ(st.message, "embedder says stop");
  EXPECT_EQ(poll(&p, 1, 0), 1);
}

// Destroying a machine that runs stops it first.
TEST(MachineEmbedder, DestroyingARunningMachineStopsIt) {
  STRATA_REQUIRE_KVM();
  Config c;
  ASSERT_TRUE(c.Set("kernel.path", Guest("console")));
  ASSERT_TRUE(c.Set("kernel.cmdline", "echo 100"));
  ASSERT_TRUE(c.Set("com1.backend", "none"));
  auto m = Machine::Create(c);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE((*m)->Start());
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  m->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// A machine that never ran: Wait says so, and destroying it is fine.
TEST(MachineEmbedder, AMachineThatNeverRan) {
  STRATA_REQUIRE_KVM();
  Config c;
  ASSERT_TRUE(c.Set("com1.backend", "none"));
  auto m = Machine::Create(c);  // the built-in demo guest
  ASSERT_TRUE(m) << m.error().message();
  const ExitStatus st = (*m)->Wait();
  EXPECT_EQ(st.why, ExitStatus::Why::kVmmError);
  EXPECT_EQ(st.message, "the machine was never started");
  // The effective config is there to inspect.
  EXPECT_EQ(*(*m)->config().GetString("memory.size"), "256M");
  EXPECT_EQ(Machine::Name(), "pc");
}

// Snapshots on amd64: Save freezes every vCPU from another thread (the
// VcpuLock path arm64's snapshots take too), is refused with a clear
// error, and the VM goes on; Save needs a running machine; Restore checks
// the file before anything else.
TEST(MachineEmbedder, SnapshotsAreRefusedOnAmd64AndTheVmGoesOn) {
  STRATA_REQUIRE_KVM();
  Config c;
  ASSERT_TRUE(c.Set("kernel.path", Guest("console")));
  ASSERT_TRUE(c.Set("kernel.cmdline", "echo 100"));
  ASSERT_TRUE(c.Set("com1.backend", "none"));
  ASSERT_TRUE(c.Set("cpus", "2"));
  auto m = Machine::Create(c);
  ASSERT_TRUE(m) << m.error().message();
  const std::string path = ::testing::TempDir() + "/amd64.snap";
  Status before = (*m)->Save(path, false);
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code(), Errc::kBusy);
  ASSERT_TRUE((*m)->Start());
  for (int i = 0; i < 3; ++i) {
    Status s = Status(Error(Errc::kInternal, "not run"));
    std::thread saver([&] { s = (*m)->Save(path, true); });
    saver.join();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), Errc::kUnsupported);
    EXPECT_NE(s.error().message().find("not supported on amd64 yet"),
              std::string::npos)
        << s.error().message();
  }
  struct pollfd p = {(*m)->exit_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 200), 0);  // still running: nothing was stopped
  EXPECT_NE(access(path.c_str(), F_OK), 0);            // nothing written
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // nor left over
  (*m)->RequestStop(ExitStatus::Stopped("done"));
  EXPECT_EQ((*m)->Wait().why, ExitStatus::Why::kStopped);

  Machine::Step step = Machine::Step::kHost;
  auto missing = Machine::Restore(path, Machine::Options(), &step);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_EQ(step, Machine::Step::kInput);
  auto garbage = Machine::Restore(Guest("console"), Machine::Options(), &step);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(garbage.error().message().find("not a strata snapshot"),
            std::string::npos);
}

}  // namespace
}  // namespace strata
