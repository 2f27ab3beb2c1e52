// The standard models created on a VM (needs /dev/kvm): the pl011's
// exit_line stopping the VM as isa-debug-exit does, and a uart_16550 on
// the MMIO bus. The accesses are API-caller writes to the VM's buses, so
// no guest runs.
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/vmmapi.h"
#include "devices/pl011.h"
#include "devices/registry.h"
#include "devices/uart_16550.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

Result<md::IrqPin> AnyPin(uint64_t n) {
  if (n >= 24) return MakeError(Errc::kOutOfRange, "no interrupt line {}", n);
  return md::IrqPin{};
}

class RegistryOnAVm : public ::testing::Test {
 protected:
  void SetUp() override {
    STRATA_REQUIRE_KVM();
    VmOptions o;
    o.name = "registry-vm-test";
    auto vm = CreateKvmVm(o);
    ASSERT_TRUE(vm) << vm.error().message();
    vm_ = std::move(*vm);
    ASSERT_TRUE(RegisterStandardDeviceModels(reg_));
    host_ = std::make_unique<DeviceHost>(vm_.get(), AnyPin);
  }
  // The devices go before the VM (members are destroyed in reverse order).
  // Creates the config's declared instances.
  Status Create(std::initializer_list<std::pair<std::string, std::string>> kv) {
    for (auto& [k, v] : kv) EXPECT_TRUE(config_.Set(k, v)) << k;
    auto inst = STRATA_TRY(reg_.ParseInstances(config_));
    set_ = std::make_unique<DeviceSet>(reg_, config_, *host_);
    for (const DeviceInstance& i : inst) STRATA_TRY(set_->Create(i));
    return Ok();
  }
  void Send(uint64_t addr, std::string_view s) {
    for (char c : s) {
      ASSERT_TRUE(vm_->mmio_bus().Write({}, addr, 1, static_cast<uint8_t>(c)));
    }
  }

  std::unique_ptr<Vm> vm_;
  DeviceRegistry reg_;
  Config config_;
  std::unique_ptr<DeviceHost> host_;
  std::unique_ptr<DeviceSet> set_;
};

constexpr uint64_t kBase = 0x09000000;

TEST_F(RegistryOnAVm, Pl011ExitLineStopsTheVmWithTheGuestsStatus) {
  ASSERT_TRUE(Create({{"platform.uart0.device", "pl011"},
                      {"platform.uart0.base", "0x9000000"},
                      {"platform.uart0.irq", "5"}}));
  // The ID registers are there.
  EXPECT_EQ(*vm_->mmio_bus().Read({}, kBase + 0xfe0, 4), 0x11u);
  Send(kBase + kPl011Dr, "PASS: x\nEXIT: STATUS=");
  EXPECT_FALSE(vm_->exit_status());
  Send(kBase + kPl011Dr, "7\n");
  auto st = vm_->exit_status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->why, ExitStatus::Why::kGuestExit);
  EXPECT_EQ(st->code, 7);  // bhyverun exits with n
}

TEST_F(RegistryOnAVm, Pl011WithoutExitLine) {
  ASSERT_TRUE(Create({{"platform.uart0.device", "pl011"},
                      {"platform.uart0.base", "0x9000000"},
                      {"platform.uart0.irq", "5"},
                      {"platform.uart0.exit_line", "false"}}));
  Send(kBase + kPl011Dr, "EXIT: STATUS=7\n");
  EXPECT_FALSE(vm_->exit_status());
}

TEST_F(RegistryOnAVm, Uart16550AtAnMmioBase) {
  ASSERT_TRUE(Create({{"platform.ttyS0.device", "uart_16550"},
                      {"platform.ttyS0.base", "0x1000000"},
                      {"platform.ttyS0.irq", "4"}}));
  EXPECT_EQ(*vm_->mmio_bus().Read({}, 0x1000000 + kUartLsr, 1), 0x60u);
  ASSERT_TRUE(vm_->mmio_bus().Write({}, 0x1000000 + kUartScr, 1, 0xa5));
  EXPECT_EQ(*vm_->mmio_bus().Read({}, 0x1000000 + kUartScr, 1), 0xa5u);
  // Not on the port bus.
  EXPECT_EQ(*vm_->pio_bus().Read({}, kUartScr, 1), 0xffu);
  // exit_line is off by default on a 16550 (a PC's COM1).
  Send(0x1000000 + kUartRbrThr, "EXIT: STATUS=7\n");
  EXPECT_FALSE(vm_->exit_status());
}

// kvmtool's layout has a 16550 where kvm-unit-tests prints its exit line.
TEST_F(RegistryOnAVm, Uart16550ExitLineWhenAsked) {
  ASSERT_TRUE(Create({{"platform.ttyS0.device", "uart_16550"},
                      {"platform.ttyS0.base", "0x1000000"},
                      {"platform.ttyS0.irq", "4"},
                      {"platform.ttyS0.exit_line", "true"}}));
  Send(0x1000000 + kUartRbrThr, "EXIT: STATUS=5\n");
  auto st = vm_->exit_status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->why, ExitStatus::Why::kGuestExit);
  EXPECT_EQ(st->code, 5);
}

}  // namespace
}  // namespace strata
