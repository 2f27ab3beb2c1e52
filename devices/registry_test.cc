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
                                             "pl011", "uart_16550"}));
  const DeviceModel* uart = reg_.Find("uart_16550");
  ASSERT_EQ(uart->keys.size(), 5u);
  EXPECT_EQ(uart->keys[0].pattern, "backend");
  EXPECT_FALSE(uart->keys[0].resource);
  EXPECT_EQ(uart->keys[1].pattern, "port");
  EXPECT_TRUE(uart->keys[1].resource);
  EXPECT_EQ(uart->keys[2].pattern, "base");
  EXPECT_TRUE(uart->keys[2].resource);
  EXPECT_TRUE(uart->keys[3].resource);  // irq
  EXPECT_EQ(uart->keys[4].pattern, "exit_line");
  EXPECT_FALSE(uart->keys[4].resource);
  const DeviceModel* pl011 = reg_.Find("pl011");
  ASSERT_NE(pl011, nullptr);
  std::vector<std::string> keys;
  for (const DeviceKey& k : pl011->keys) {
    keys.push_back(k.pattern + (k.resource ? "*" : ""));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"backend", "base*", "irq*",
                                            "exit_line"}));
  EXPECT_NE(reg_.Help().find("pl011"), std::string::npos);
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
       "config key 'platform.com2.port' is not set (nor "
       "'platform.com2.base'); a uart_16550 device needs one of them"},
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
  // base is a key it accepts, so that setting it gets the check's message
  // (the machine gives com1 a port: one of the two) rather than "unknown".
  EXPECT_EQ(keys, (std::vector<std::string>{"com1.backend", "com1.base",
                                            "com1.exit_line"}));
}

TEST_F(StandardModels, AUartOnMmioTakesABaseInsteadOfAPort) {
  // kvmtool's arm64 layout: an ns16550a at 0x1000000, stride 1.
  EXPECT_TRUE(Check(With({{"platform.ttyS0.device", "uart_16550"},
                          {"platform.ttyS0.base", "0x1000000"},
                          {"platform.ttyS0.irq", "3"}})));
  Status both = Check(With({{"platform.ttyS0.device", "uart_16550"},
                            {"platform.ttyS0.base", "0x1000000"},
                            {"platform.ttyS0.port", "0x3f8"},
                            {"platform.ttyS0.irq", "3"}}));
  EXPECT_EQ(ErrorOf(both),
            "platform.ttyS0: 'platform.ttyS0.port' and 'platform.ttyS0.base' "
            "are both set; a uart_16550 device takes exactly one (port: I/O "
            "ports, base: MMIO)");
  Status neither = Check(With({{"platform.ttyS0.device", "uart_16550"},
                               {"platform.ttyS0.irq", "3"}}));
  EXPECT_EQ(ErrorOf(neither),
            "platform.ttyS0: config key 'platform.ttyS0.port' is not set (nor "
            "'platform.ttyS0.base'); a uart_16550 device needs one of them: "
            "port (I/O) or base (MMIO)");
  Status top = Check(With({{"platform.ttyS0.device", "uart_16550"},
                           {"platform.ttyS0.base", "0xfffffffffffffff9"},
                           {"platform.ttyS0.irq", "3"}}));
  EXPECT_NE(ErrorOf(top).find("outside the range 0x0..0xfffffffffffffff8"),
            std::string::npos)
      << ErrorOf(top);
  // A fixed UART with its port from the machine cannot also take a base.
  DeviceInstance com1;
  com1.kind = DeviceInstance::Kind::kFixed;
  com1.name = com1.prefix = "com1";
  com1.model = "uart_16550";
  com1.resources = {{"port", 0x3f8}, {"irq", 4}};
  Status fixed = Check(With({{"com1.base", "0x1000000"}}), std::span(&com1, 1));
  EXPECT_EQ(ErrorOf(fixed),
            "com1: 'com1.base' is set, but the machine gives com1 its I/O "
            "port; a uart_16550 device takes exactly one of port and base");
  // A machine may give a fixed UART its MMIO base instead.
  DeviceInstance mmio = com1;
  mmio.resources = {{"base", 0x1000000}, {"irq", 4}};
  EXPECT_TRUE(Check(Config(), std::span(&mmio, 1)));
}

TEST_F(StandardModels, Pl011SettingsAreChecked) {
  EXPECT_TRUE(Check(With({{"platform.uart0.device", "pl011"},
                          {"platform.uart0.base", "0x9000000"},
                          {"platform.uart0.irq", "1"}})));
  EXPECT_TRUE(Check(With({{"platform.uart0.device", "pl011"},
                          {"platform.uart0.base", "0x9000000"},
                          {"platform.uart0.irq", "1"},
                          {"platform.uart0.backend", "stdio"},
                          {"platform.uart0.exit_line", "false"}})));
  struct Case {
    Config cfg;
    std::string error;
  };
  const std::vector<Case> cases = {
      {With({{"platform.uart0.device", "pl011"},
             {"platform.uart0.irq", "1"}}),
       "platform.uart0: config key 'platform.uart0.base' is not set; a pl011 "
       "device needs it"},
      {With({{"platform.uart0.device", "pl011"},
             {"platform.uart0.base", "0x9000800"},
             {"platform.uart0.irq", "1"}}),
       "platform.uart0.base is 0x9000800; a pl011's 4 KiB register page "
       "must be 4 KiB-aligned"},
      {With({{"platform.uart0.device", "pl011"},
             {"platform.uart0.base", "0xfffffffffffff800"},
             {"platform.uart0.irq", "1"}}),
       "config key 'platform.uart0.base' is 0xfffffffffffff800, outside the "
       "range 0x0..0xfffffffffffff000"},
      {With({{"platform.uart0.device", "pl011"},
             {"platform.uart0.base", "0x9000000"}}),
       "platform.uart0: config key 'platform.uart0.irq' is not set; a pl011 "
       "device needs it"},
      {With({{"platform.uart0.device", "pl011"},
             {"platform.uart0.base", "0x9000000"},
             {"platform.uart0.irq", "1"},
             {"platform.uart0.backend", "file"}}),
       "platform.uart0.backend must be stdio or none, got 'file'"},
      // One console for both UART models.
      {With({{"platform.com2.device", "uart_16550"},
             {"platform.com2.port", "0x2f8"},
             {"platform.com2.irq", "3"},
             {"platform.com2.backend", "stdio"},
             {"platform.uart0.device", "pl011"},
             {"platform.uart0.base", "0x9000000"},
             {"platform.uart0.irq", "1"},
             {"platform.uart0.backend", "stdio"}}),
       "platform.uart0 wants stdio, which platform.com2 already uses"},
  };
  for (const Case& c : cases) {
    Status s = Check(c.cfg);
    EXPECT_NE(ErrorOf(s).find(c.error), std::string::npos) << ErrorOf(s);
  }
  Status bad_bool = Check(With({{"platform.uart0.device", "pl011"},
                                {"platform.uart0.base", "0x9000000"},
                                {"platform.uart0.irq", "1"},
                                {"platform.uart0.exit_line", "maybe"}}));
  EXPECT_NE(ErrorOf(bad_bool).find("platform.uart0.exit_line"),
            std::string::npos)
      << ErrorOf(bad_bool);
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
