// Integration tests of the split irqchip (x86.irqchip=split: LAPICs in
// KVM, the IOAPIC in user space, devices/ioapic.h) on /dev/kvm:
//   - the KVM backend in split mode, through the C++ API, without a guest;
//   - the `ioapic` guest (COM1 interrupts through the IOAPIC) on a VM built
//     through the C++ API, with the IOAPIC's and the vCPU's counters;
//   - the same guest, and the `smp` guest's INIT/SIPI start-up, through
//     bhyverun.
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arch/amd64/loader/multiboot.h"
#include "core/vmmapi.h"
#include "devices/acpi_pm.h"
#include "devices/char_backend.h"
#include "devices/debug_exit.h"
#include "devices/ioapic.h"
#include "devices/uart_16550.h"
#include "tests/integration/run_vmm.h"
#include "tests/kvm_testing.h"

namespace strata::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kCom1Pin = 4;
constexpr uint64_t kCom1Port = 0x3f8;
constexpr uint64_t kAcpiPmPort = 0x600;

std::string Guest(const std::string& name) {
  return Runfile("strata/tests/guests/amd64/" + name + ".elf");
}

VmOptions SplitOptions(uint32_t vcpus = 1) {
  VmOptions o;
  o.name = "split-irqchip-test";
  o.max_vcpus = vcpus;
  o.machine.irqchip = md::IrqchipMode::kSplit;
  return o;
}

TEST(IrqchipMode, ConfigSpellings) {
  using md::IrqchipMode;
  for (const char* k : {"kernel", "KERNEL", "true", "yes", "on", "1"}) {
    EXPECT_EQ(md::ParseIrqchipMode(k), IrqchipMode::kKernel) << k;
  }
  for (const char* s : {"split", "Split", "false", "no", "off", "0"}) {
    EXPECT_EQ(md::ParseIrqchipMode(s), IrqchipMode::kSplit) << s;
  }
  for (const char* bad : {"", "maybe", "userspace", "2"}) {
    EXPECT_FALSE(md::ParseIrqchipMode(bad)) << bad;
  }
  EXPECT_EQ(md::IrqchipModeName(IrqchipMode::kKernel), "kernel");
  EXPECT_EQ(md::IrqchipModeName(IrqchipMode::kSplit), "split");
  EXPECT_EQ(md::ArchExitName(md::ArchExitReason::kIoapicEoi), "ioapic-eoi");
}

// ------------------------------------------------- the backend, no guest --

TEST(SplitIrqchipVm, PinsAreRefusedMsisWork) {
  STRATA_REQUIRE_KVM();
  auto vm = CreateKvmVm(SplitOptions());
  ASSERT_TRUE(vm) << vm.error().message();
  ASSERT_TRUE((*vm)->CreateVcpu(0));

  // Pins belong to the user-space IOAPIC: KVM_IRQ_LINE and pin irqfds are
  // refused with a message that says so.
  Status s = (*vm)->SetIrq(md::IrqPin{kCom1Pin}, true);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kUnsupported);
  EXPECT_NE(s.error().message().find("x86.irqchip=split"), std::string::npos)
      << s.error().message();
  auto pin_fd = (*vm)->AddIrqFd(md::IrqPin{kCom1Pin});
  ASSERT_FALSE(pin_fd);
  EXPECT_EQ(pin_fd.error().code(), Errc::kUnsupported);

  // MSIs reach KVM's LAPICs: KVM_SIGNAL_MSI and MSI irqfds.
  const md::MsiMessage msi{0xfee00000, 0x40};
  EXPECT_TRUE((*vm)->SignalMsi(msi));
  auto msi_fd = (*vm)->AddMsiFd(msi);
  ASSERT_TRUE(msi_fd) << msi_fd.error().message();
  EXPECT_GE((*msi_fd)->gsi(), kIoapicPinCount);  // 0..23 are the IOAPIC's
  EXPECT_TRUE((*msi_fd)->Trigger());

  // Pin routes: set, unchanged, changed, removed, removed again.
  const md::MsiMessage level{0xfee00000, 0xc034};
  EXPECT_TRUE((*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin}, level));
  EXPECT_TRUE((*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin}, level));
  EXPECT_TRUE((*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin},
                                    md::MsiMessage{0xfee01000, 0xc034}));
  EXPECT_TRUE((*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin}, std::nullopt));
  EXPECT_TRUE((*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin}, std::nullopt));
  // Each commit rewrote the whole table; the irqfd (and its route) is
  // still there to be removed when it goes out of scope.
  EXPECT_TRUE((*msi_fd)->Trigger());
  auto bad_pin = (*vm)->SetPinMsiRoute(md::IrqPin{kIoapicPinCount}, level);
  ASSERT_FALSE(bad_pin);
  EXPECT_EQ(bad_pin.error().code(), Errc::kOutOfRange);
  auto bad_msi = (*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin},
                                       md::MsiMessage{0xfec00000, 0x34});
  ASSERT_FALSE(bad_msi);
  EXPECT_EQ(bad_msi.error().code(), Errc::kInvalidArgument);
}

TEST(SplitIrqchipVm, TheInKernelIrqchipHasNoPinRoutes) {
  STRATA_REQUIRE_KVM();
  VmOptions o;
  o.max_vcpus = 1;
  auto vm = CreateKvmVm(o);  // default: x86.irqchip=kernel
  ASSERT_TRUE(vm) << vm.error().message();
  EXPECT_EQ(o.machine.irqchip, md::IrqchipMode::kKernel);
  EXPECT_TRUE((*vm)->SetIrq(md::IrqPin{kCom1Pin}, true));
  EXPECT_TRUE((*vm)->SetIrq(md::IrqPin{kCom1Pin}, false));
  auto r = (*vm)->SetPinMsiRoute(md::IrqPin{kCom1Pin},
                                 md::MsiMessage{0xfee00000, 0xc034});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
}

// ------------------------------------------- the ioapic guest, C++ API --

// The platform bhyverun builds in split mode, reduced to what the guest
// uses: RAM, COM1 on IOAPIC pin 4, the IOAPIC, isa-debug-exit, the ACPI PM
// block (the guest's PM-timer deadlines).
struct SplitMachine {
  BufferBackend console;  // first: the UART (owned by the VM's bus) uses it
  std::unique_ptr<Vm> vm;
  std::shared_ptr<Ioapic> ioapic;
  std::vector<std::shared_ptr<IoDevice>> devices;
};

void Build(SplitMachine& m, const std::vector<uint8_t>& image) {
  auto vm = CreateKvmVm(SplitOptions());
  ASSERT_TRUE(vm) << vm.error().message();
  m.vm = std::move(*vm);
  Vm& v = *m.vm;
  ASSERT_TRUE(v.AddMemory("ram", 0, 64ull << 20));

  m.ioapic = std::make_shared<Ioapic>(
      [&v](const md::MsiMessage& msi) {
        Status s = v.SignalMsi(msi);
        if (!s) v.RequestStop(ExitStatus::VmmError(s.error().message()));
      },
      [&v](uint32_t pin, const std::optional<md::MsiMessage>& msi) {
        Status s = v.SetPinMsiRoute(md::IrqPin{pin}, msi);
        if (!s) v.RequestStop(ExitStatus::VmmError(s.error().message()));
      });
  ASSERT_TRUE(v.mmio_bus().Register(kIoapicMmioBase, kIoapicMmioSize, m.ioapic));
  std::shared_ptr<Ioapic> io = m.ioapic;
  ASSERT_TRUE(v.SetArchExitHandler(md::ArchExitReason::kIoapicEoi,
                                   [io](Vcpu&, md::ArchExit& a) {
                                     io->Eoi(a.eoi_vector);
                                     return true;
                                   }));

  auto uart = std::make_shared<Uart16550>(&m.console, m.ioapic->input(kCom1Pin),
                                          "com1");
  ASSERT_TRUE(v.pio_bus().Register(kCom1Port, kUart16550RegisterCount, uart));
  auto dbg = std::make_shared<DebugExit>([&v](uint64_t status) {
    v.RequestStop(ExitStatus::GuestExit(status >> 1));
  });
  ASSERT_TRUE(v.pio_bus().Register(kDebugExitPort, kDebugExitLength, dbg));
  auto pm = std::make_shared<AcpiPm>([&v](uint32_t) {
    v.RequestStop(ExitStatus::PowerOff());
  });
  ASSERT_TRUE(v.pio_bus().Register(kAcpiPmPort, kAcpiPmLength, pm));
  m.devices = {uart, dbg, pm};
  // Anything else the guest touches is a bug in it or in us.
  v.pio_bus().set_unclaimed_fatal(true);
  v.mmio_bus().set_unclaimed_fatal(true);

  amd64::BootParams params;
  params.cmdline = "ioapic";
  auto boot = amd64::LoadKernel(image, params, v.memory());
  ASSERT_TRUE(boot) << boot.error().message();
  auto vcpu = v.CreateVcpu(0);
  ASSERT_TRUE(vcpu) << vcpu.error().message();
  Vcpu& c = **vcpu;
  ASSERT_TRUE(c.SetState(boot->sregs));
  ASSERT_TRUE(c.SetRegister(md::Reg::kRip, boot->entry));
  ASSERT_TRUE(c.SetRegister(md::Reg::kRax, boot->rax));
  ASSERT_TRUE(c.SetRegister(md::Reg::kRbx, boot->rbx));
  ASSERT_TRUE(c.SetRegister(md::Reg::kRsp, boot->rsp));
  ASSERT_TRUE(c.SetRegister(md::Reg::kRflags, boot->rflags));
}

TEST(SplitIrqchipGuest, Com1InterruptsThroughTheUserSpaceIoapic) {
  STRATA_REQUIRE_KVM();
  std::ifstream f(Guest("ioapic"), std::ios::binary);
  ASSERT_TRUE(f) << Guest("ioapic");
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(f)),
                             std::istreambuf_iterator<char>());
  SplitMachine m;
  Build(m, image);
  if (HasFatalFailure()) return;

  Vcpu* v = m.vm->vcpu(0);
  auto start = std::chrono::steady_clock::now();
  std::thread runner([v] {
    Status s = v->Run();
    if (!s) v->vm().RequestStop(ExitStatus::VmmError(s.error().message()));
  });
  // The guest needs well under a second here; give a slow host plenty.
  while (!m.vm->stop_requested() &&
         std::chrono::steady_clock::now() - start < 60s) {
    std::this_thread::sleep_for(5ms);
  }
  if (!m.vm->stop_requested()) {
    m.vm->RequestStop(ExitStatus::VmmError("guest timed out"));
  }
  runner.join();
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);

  const std::string out = m.console.contents();
  std::optional<ExitStatus> st = m.vm->exit_status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->why, ExitStatus::Why::kGuestExit) << st->message << "\n" << out;
  EXPECT_EQ(st->code, 1) << st->message << "\n" << out;  // debug exit, V = 0
  EXPECT_NE(out.find("SUMMARY: 11 tests, 0 unexpected failures"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("FAIL:"), std::string::npos) << out;
  EXPECT_NE(out.find("ioapic: this line was sent by level-triggered THRE "
                     "interrupts\n"),
            std::string::npos)
      << out;

  // What the guest's interrupts cost on our side. The guest takes about
  // 130: 1 + 4 + 63 level-triggered (each completed by an EOI exit), 1 + 62
  // edge-triggered (no EOI exit).
  Ioapic::Stats s = m.ioapic->stats();
  const VcpuStats& vs = v->stats();
  uint64_t eoi_exits = vs.arch_exits[static_cast<size_t>(
      md::ArchExitReason::kIoapicEoi)].load();
  std::cout << "ioapic guest (split irqchip, C++ API): " << elapsed.count()
            << " ms, " << s.msis << " MSIs sent, " << eoi_exits
            << " EOI exits, " << s.remote_irr_cleared
            << " level interrupts completed, " << s.eoi_redeliveries
            << " re-sent on EOI, " << s.route_updates << " route updates, "
            << s.bad_accesses << " bad accesses\n";
  EXPECT_EQ(eoi_exits, s.eois);
  EXPECT_GE(s.msis, 130u);
  EXPECT_LE(s.msis, 140u);
  // Level interrupts: every one completed by an EOI exit.
  EXPECT_GE(s.remote_irr_cleared, 68u);
  EXPECT_GE(s.eoi_redeliveries, 3u);  // the three unacknowledged EOIs
  EXPECT_LE(s.remote_irr_cleared, s.msis);
  EXPECT_GE(s.route_updates, 2u);  // unmasked level, then edge, ...
  EXPECT_EQ(s.bad_accesses, 0u);
  // Remote IRR of pin 4 is clear at the end (the guest masked it).
  EXPECT_EQ(m.ioapic->entry(kCom1Pin) & kIoapicRteRemoteIrr, 0u);
  EXPECT_NE(m.ioapic->entry(kCom1Pin) & kIoapicRteMasked, 0u);
  EXPECT_EQ(m.vm->pio_bus().unclaimed_count(), 0u);
  EXPECT_EQ(m.vm->mmio_bus().unclaimed_count(), 0u);
}

// ----------------------------------------------------- through bhyverun --

ProcessResult Bhyverun(std::vector<std::string> args, int timeout = 90) {
  args.insert(args.begin(), Runfile("strata/frontends/bhyverun/bhyverun"));
  return RunProcess(args, timeout);
}

TEST(SplitIrqchipBhyverun, Com1InterruptsInBothModes) {
  STRATA_REQUIRE_KVM();
  // split (and its old spelling) and the in-kernel irqchip run the same
  // guest: it checks the IOAPIC semantics, not whose IOAPIC it is.
  for (const char* mode : {"split", "false", "kernel"}) {
    auto start = std::chrono::steady_clock::now();
    auto r = Bhyverun({"-o", std::string("x86.irqchip=") + mode, "-o",
                       "bus.unclaimed_fatal=true", "-k", Guest("ioapic")});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::cout << "ioapic guest, bhyverun x86.irqchip=" << mode << ": " << ms
              << " ms\n";
    EXPECT_EQ(r.exit_code, 1) << mode << "\n" << Describe(r);
    EXPECT_NE(r.out.find("SUMMARY: 11 tests, 0 unexpected failures"),
              std::string::npos)
        << mode << "\n" << Describe(r);
    EXPECT_EQ(r.out.find("FAIL:"), std::string::npos) << mode << "\n" << Describe(r);
    EXPECT_EQ(r.err, "") << mode;
  }
}

TEST(SplitIrqchipBhyverun, SplitModeUsesTheUserSpaceIoapic) {
  STRATA_REQUIRE_KVM();
  auto split = Bhyverun({"-l", "debug", "-o", "x86.irqchip=split", "-k",
                         Guest("ioapic")});
  EXPECT_EQ(split.exit_code, 1) << Describe(split);
  EXPECT_NE(split.err.find("user-space IOAPIC at 0xfec00000"), std::string::npos)
      << Describe(split);
  auto kernel = Bhyverun({"-l", "debug", "-o", "x86.irqchip=kernel", "-k",
                          Guest("ioapic")});
  EXPECT_EQ(kernel.exit_code, 1) << Describe(kernel);
  EXPECT_EQ(kernel.err.find("user-space IOAPIC"), std::string::npos)
      << Describe(kernel);
}

TEST(SplitIrqchipBhyverun, ApsStartThroughTheKernelLapic) {
  STRATA_REQUIRE_KVM();
  // INIT/SIPI is the in-kernel LAPIC's, so split mode starts APs too.
  auto two = Bhyverun({"-o", "x86.irqchip=split", "-c", "2", "-k", Guest("smp")});
  EXPECT_EQ(two.exit_code, 1) << Describe(two);
  EXPECT_NE(two.out.find("smp: 2 of 2 cpus up"), std::string::npos) << Describe(two);
  EXPECT_NE(two.out.find("smp: PASS"), std::string::npos) << Describe(two);
  auto four = Bhyverun({"-o", "x86.irqchip=split", "-c", "4", "-k", Guest("smp"),
                        "-a", "broadcast"});
  EXPECT_EQ(four.exit_code, 1) << Describe(four);
  EXPECT_NE(four.out.find("smp: 4 of 4 cpus up"), std::string::npos)
      << Describe(four);
  EXPECT_NE(four.out.find("smp: apic ids 0 1 2 3"), std::string::npos)
      << Describe(four);
  // And the demo guest's check-in of every vCPU.
  auto demo = Bhyverun({"-o", "x86.irqchip=split", "-c", "3"});
  EXPECT_EQ(demo.exit_code, 0) << Describe(demo);
  EXPECT_NE(demo.out.find("vcpus: 3 of 3 checked in"), std::string::npos)
      << Describe(demo);
}

TEST(SplitIrqchipBhyverun, BadModeIsAUsageError) {
  auto r = Bhyverun({"-o", "x86.irqchip=userspace"});
  EXPECT_EQ(r.exit_code, 8) << Describe(r);
  EXPECT_NE(r.err.find("x86.irqchip must be kernel"), std::string::npos)
      << Describe(r);
}

}  // namespace
}  // namespace strata::testing
