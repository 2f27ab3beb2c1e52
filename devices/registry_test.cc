#include "devices/registry.h"

#include <string>

#include <gtest/gtest.h>

namespace strata {
namespace {

// GSI-like numbering 0-23, as the pc machine gives it.
Result<md::IrqPin> TestIrqPin(uint64_t n) {
  if (n >= 24) return MakeError(Errc::kOutOfRange, "no interrupt line {}", n);
  return md::IrqPin{};
}

class StandardModels : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterStandardDeviceModels(reg_)); }

  // Parses the config's instances and runs each one's check().
  Status Check(const Config& c, std::span<const DeviceInstance> fixed = {}) {
    auto inst = reg_.ParseInstances(c, fixed);
    if (!inst) return std::move(inst).error();
    DeviceHost host(nullptr, TestIrqPin);
    DeviceSet set(reg_, c, host);
    for (const DeviceInstance& i : fixed) STRATA_TRY(set.Check(i));
    for (const DeviceInstance& i : *inst) STRATA_TRY(set.Check(i));
    return Ok();
  }
  static Config With(
      std::initializer_list<std::pair<std::string, std::string>> kv) {
    Config c;
    for (auto& [k, v] : kv) EXPECT_TRUE(c.Set(k, v)) << k;
    return c;
  }
  static std::string ErrorOf(const Status& s) {
    return s ? "(no error)" : s.error().message();
  }

  DeviceRegistry reg_;
};

TEST_F(StandardModels, AreRegisteredWithTheirKeys) {
  std::vector<std::string> names;
  for (const DeviceModel* m : reg_.Models()) {
    names.push_back(m->name);
    EXPECT_EQ(m->bus, DeviceBus::kPlatform) << m->name;
    EXPECT_FALSE(m->help.empty()) << m->name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"isa-debug-exit", "pc-testdev",
                                             "uart_16550"}));
  const DeviceModel* uart = reg_.Find("uart_16550");
  ASSERT_EQ(uart->keys.size(), 3u);
  EXPECT_EQ(uart->keys[0].pattern, "backend");
  EXPECT_FALSE(uart->keys[0].resource);
  EXPECT_TRUE(uart->keys[1].resource);  // port
  EXPECT_TRUE(uart->keys[2].resource);  // irq
  EXPECT_NE(reg_.Help().find("uart_16550"), std::string::npos);
  // Registering twice is refused.
  EXPECT_FALSE(RegisterStandardDeviceModels(reg_));
}

TEST_F(StandardModels, UartSettingsAreChecked) {
  EXPECT_TRUE(Check(With({{"platform.com2.device", "uart_16550"},
                          {"platform.com2.port", "0x2f8"},
                          {"platform.com2.irq", "3"}})));
  struct Case {
    Config cfg;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.port", "0x2f8"},
             {"platform.com2.irq", "3"},
             {"platform.com2.backend", "file"}}),
       "platform.com2.backend must be stdio or none, got 'file'"},
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.irq", "3"}}),
       "config key 'platform.com2.port' is not set; a uart_16550 device "
       "needs it"},
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.port", "0xfffa"},
             {"platform.com2.irq", "3"}}),
       "config key 'platform.com2.port' is 0xfffa, outside the range "
       "0x0..0xfff8"},
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.port", "0x2f8"},
             {"platform.com2.irq", "24"}}),
       "config key 'platform.com2.irq': no interrupt line 24"},
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.port", "0x2f8"},
             {"platform.com2.irq", "3"},
             {"platform.com2.backend", "stdio"},
             {"platform.com3.device", "uart_16550"},
             {"platform.com3.port", "0x3e8"},
             {"platform.com3.irq", "4"},
             {"platform.com3.backend", "stdio"}}),
       "platform.com3 wants stdio, which platform.com2 already uses"},
  };
  for (const Case& c : cases) {
    Status s = Check(c.cfg);
    EXPECT_NE(ErrorOf(s).find(c.needle), std::string::npos) << ErrorOf(s);
  }
}

TEST_F(StandardModels, AFixedUartTakesItsAddressFromTheMachine) {
  DeviceInstance com1;
  com1.kind = DeviceInstance::Kind::kFixed;
  com1.name = com1.prefix = "com1";
  com1.model = "uart_16550";
  com1.resources = {{"port", 0x3f8}, {"irq", 4}};
  EXPECT_TRUE(Check(With({{"com1.backend", "stdio"}}), std::span(&com1, 1)));
  Status bad = Check(With({{"com1.backend", "file"}}), std::span(&com1, 1));
  EXPECT_EQ(ErrorOf(bad), "com1.backend must be stdio or none, got 'file'");
  const auto keys = reg_.InstanceKeys(std::span(&com1, 1));
  EXPECT_EQ(keys, std::vector<std::string>{"com1.backend"});
}

TEST_F(StandardModels, DebugExitNeedsAPort) {
  EXPECT_TRUE(Check(With({{"platform.dbg.device", "isa-debug-exit"},
                          {"platform.dbg.port", "0x501"}})));
  Status s = Check(With({{"platform.dbg.device", "isa-debug-exit"}}));
  EXPECT_NE(ErrorOf(s).find("'platform.dbg.port' is not set"),
            std::string::npos)
      << ErrorOf(s);
  Status top = Check(With({{"platform.dbg.device", "isa-debug-exit"},
                           {"platform.dbg.port", "0xfffd"}}));
  EXPECT_NE(ErrorOf(top).find("outside the range 0x0..0xfffc"),
            std::string::npos)
      << ErrorOf(top);
}

}  // namespace
}  // namespace strata
