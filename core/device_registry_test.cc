#include "core/device_registry.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

Result<std::shared_ptr<void>> NoDevice(DeviceContext&) {
  return std::shared_ptr<void>();
}

DeviceModel Model(std::string name, DeviceBus bus,
                  std::vector<DeviceKey> keys = {}) {
  DeviceModel m;
  m.name = std::move(name);
  m.help = "a test model";
  m.bus = bus;
  m.keys = std::move(keys);
  m.create = NoDevice;
  return m;
}

// A registry with one platform and one PCI model.
DeviceRegistry TestRegistry() {
  DeviceRegistry r;
  EXPECT_TRUE(r.Register(Model(
      "uart_16550", DeviceBus::kPlatform,
      {{"backend", "stdio or none"}, {"port", "I/O port", true},
       {"irq", "interrupt", true}})));
  EXPECT_TRUE(r.Register(Model("virtio-blk", DeviceBus::kPci,
                               {{"path", "disk image"}, {"opt.*", "options"}})));
  return r;
}

Config With(std::initializer_list<std::pair<std::string, std::string>> kv) {
  Config c;
  for (auto& [k, v] : kv) EXPECT_TRUE(c.Set(k, v)) << k;
  return c;
}

std::string ErrorOf(const Result<std::vector<DeviceInstance>>& r) {
  return r ? "(no error)" : r.error().message();
}

TEST(DeviceRegistry, RegisterRejectsBadModels) {
  DeviceRegistry r = TestRegistry();
  auto dup = r.Register(Model("uart_16550", DeviceBus::kPlatform));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kAlreadyExists);
  EXPECT_FALSE(r.Register(Model("", DeviceBus::kPlatform)));
  EXPECT_FALSE(r.Register(Model("a.b", DeviceBus::kPlatform)));
  EXPECT_FALSE(r.Register(Model("sp ace", DeviceBus::kPlatform)));
  EXPECT_FALSE(
      r.Register(Model("k1", DeviceBus::kPlatform, {{"device", "x"}})));
  EXPECT_FALSE(r.Register(Model("k2", DeviceBus::kPlatform, {{"a..b", "x"}})));
  EXPECT_FALSE(
      r.Register(Model("k3", DeviceBus::kPlatform, {{"a", "x"}, {"a", "y"}})));
  DeviceModel no_factory = Model("k4", DeviceBus::kPlatform);
  no_factory.create = nullptr;
  EXPECT_FALSE(r.Register(no_factory));
  EXPECT_EQ(r.Models().size(), 2u);
  EXPECT_NE(r.Find("virtio-blk"), nullptr);
  EXPECT_EQ(r.Find("virtio"), nullptr);
}

TEST(DeviceRegistry, ParsesPlatformAndPciInstances) {
  DeviceRegistry r = TestRegistry();
  Config c = With({{"platform.com2.device", "uart_16550"},
                   {"platform.com2.port", "0x2f8"},
                   {"pci.0.3.0.device", "virtio-blk"},
                   {"pci.0.3.0.path", "/disk.img"},
                   {"pci.255.31.7.device", "virtio-blk"},
                   {"memory.size", "1G"}});
  auto inst = r.ParseInstances(c);
  ASSERT_TRUE(inst) << ErrorOf(inst);
  ASSERT_EQ(inst->size(), 3u);
  const DeviceInstance& com2 = (*inst)[0];
  EXPECT_EQ(com2.kind, DeviceInstance::Kind::kPlatform);
  EXPECT_EQ(com2.name, "com2");
  EXPECT_EQ(com2.prefix, "platform.com2");
  EXPECT_EQ(com2.model, "uart_16550");
  const DeviceInstance& pci = (*inst)[1];
  EXPECT_EQ(pci.kind, DeviceInstance::Kind::kPci);
  EXPECT_EQ(pci.name, "pci.0.3.0");
  EXPECT_EQ(pci.prefix, "pci.0.3.0");
  EXPECT_EQ(pci.model, "virtio-blk");
  EXPECT_EQ(pci.pci, (PciAddress{0, 3, 0}));
  EXPECT_EQ((*inst)[2].pci, (PciAddress{255, 31, 7}));
  EXPECT_TRUE(r.ParseInstances(Config())->empty());
}

TEST(DeviceRegistry, BadPciAddressesNameTheKey) {
  DeviceRegistry r = TestRegistry();
  struct Case {
    std::string key, needle;
  };
  for (const Case& c : {
           Case{"pci.256.0.0.device",
                "config key 'pci.256.0.0.device': PCI bus '256' must be a "
                "decimal number 0-255"},
           Case{"pci.0.32.0.device",
                "config key 'pci.0.32.0.device': PCI slot '32' must be a "
                "decimal number 0-31"},
           Case{"pci.0.3.8.device",
                "config key 'pci.0.3.8.device': PCI function '8' must be a "
                "decimal number 0-7"},
           Case{"pci.x.0.0.device", "PCI bus 'x' must be a decimal number"},
           Case{"pci.0x1.0.0.device", "PCI bus '0x1' must be"},
           Case{"pci.-1.0.0.device", "PCI bus '-1' must be"},
           Case{"pci.0000.0.0.device", "PCI bus '0000' must be"},
           // Too short: the "function" is the word device.
           Case{"pci.0.3.device",
                "config key 'pci.0.3.device': PCI function 'device' must be"},
       }) {
    Config cfg = With({{c.key, "virtio-blk"}});
    auto inst = r.ParseInstances(cfg);
    ASSERT_FALSE(inst) << c.key;
    EXPECT_EQ(inst.error().code(), Errc::kOutOfRange) << c.key;
    EXPECT_NE(ErrorOf(inst).find(c.needle), std::string::npos)
        << c.key << ": " << ErrorOf(inst);
  }
}

TEST(DeviceRegistry, MalformedInstancesNameTheKey) {
  DeviceRegistry r = TestRegistry();
  struct Case {
    Config cfg;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {With({{"platform.com2.port", "0x2f8"}}),
       "config key 'platform.com2.port' belongs to no device: set "
       "'platform.com2.device=<model>'"},
      {With({{"pci.0.3.0.path", "/x"}}),
       "config key 'pci.0.3.0.path' belongs to no device: set "
       "'pci.0.3.0.device=<model>'"},
      {With({{"platform.com2", "uart_16550"}}),
       "config key 'platform.com2' must be a group: set "
       "platform.com2.device=<model>"},
      {With({{"pci.0.3.0", "virtio-blk"}}),
       "config key 'pci.0.3.0' must be a group"},
      {With({{"pci", "1"}}), "config key 'pci' must be a group"},
      {With({{"platform", "1"}}), "config key 'platform' must be a group"},
      {With({{"pci.0", "1"}}), "config key 'pci.0' must be a group"},
      {With({{"platform.com2.device.x", "1"}}),
       "config key 'platform.com2.device' is a group"},
  };
  for (const Case& c : cases) {
    auto inst = r.ParseInstances(c.cfg);
    ASSERT_FALSE(inst) << c.needle;
    EXPECT_EQ(inst.error().code(), Errc::kInvalidArgument) << c.needle;
    EXPECT_NE(ErrorOf(inst).find(c.needle), std::string::npos)
        << ErrorOf(inst);
  }
}

TEST(DeviceRegistry, UnknownModelsGetASuggestion) {
  DeviceRegistry r = TestRegistry();
  auto close = r.ParseInstances(With({{"platform.com2.device", "uart16550"}}));
  EXPECT_EQ(ErrorOf(close),
            "config key 'platform.com2.device': unknown device model "
            "'uart16550' (did you mean 'uart_16550'?)");
  auto far = r.ParseInstances(With({{"pci.0.3.0.device", "e1000"}}));
  EXPECT_EQ(ErrorOf(far),
            "config key 'pci.0.3.0.device': unknown device model 'e1000' "
            "(known models: uart_16550, virtio-blk)");
}

TEST(DeviceRegistry, ModelsSitOnTheirOwnBus) {
  DeviceRegistry r = TestRegistry();
  auto on_pci = r.ParseInstances(With({{"pci.0.3.0.device", "uart_16550"}}));
  EXPECT_NE(ErrorOf(on_pci).find("config key 'pci.0.3.0.device': uart_16550 "
                                 "is a platform device, not a PCI device "
                                 "(use platform.<name>.device)"),
            std::string::npos)
      << ErrorOf(on_pci);
  auto on_platform =
      r.ParseInstances(With({{"platform.disk.device", "virtio-blk"}}));
  EXPECT_NE(ErrorOf(on_platform).find("virtio-blk is a PCI device, not a "
                                      "platform device (use "
                                      "pci.<bus>.<slot>.<func>.device)"),
            std::string::npos)
      << ErrorOf(on_platform);
}

TEST(DeviceRegistry, DuplicateInstancesAreRejected) {
  DeviceRegistry r = TestRegistry();
  // Two spellings of one PCI address.
  auto pci = r.ParseInstances(With({{"pci.0.3.0.device", "virtio-blk"},
                                    {"pci.0.03.0.device", "virtio-blk"}}));
  EXPECT_NE(ErrorOf(pci).find("config keys 'pci.0.03.0.device' and "
                              "'pci.0.3.0.device' name the same PCI function "
                              "0:3.0"),
            std::string::npos)
      << ErrorOf(pci);
  // A declared instance with the name of one of the machine's own.
  DeviceInstance com1;
  com1.kind = DeviceInstance::Kind::kFixed;
  com1.name = com1.prefix = "com1";
  com1.model = "uart_16550";
  com1.description = "COM1 (0x3f8, IRQ 4)";
  auto fixed = r.ParseInstances(With({{"platform.com1.device", "uart_16550"}}),
                                std::span(&com1, 1));
  EXPECT_EQ(ErrorOf(fixed),
            "config key 'platform.com1.device': 'com1' is already a device "
            "of this machine (uart_16550, COM1 (0x3f8, IRQ 4)); choose "
            "another name");
}

TEST(DeviceRegistry, UnknownPerDeviceKeysAreRejectedWithTheClosestKey) {
  DeviceRegistry r = TestRegistry();
  DeviceInstance com1;
  com1.kind = DeviceInstance::Kind::kFixed;
  com1.name = com1.prefix = "com1";
  com1.model = "uart_16550";
  com1.resources = {{"port", 0x3f8}, {"irq", 4}};
  Config c = With({{"platform.com2.device", "uart_16550"},
                   {"platform.com2.port", "0x2f8"},
                   {"platform.com2.irq", "3"},
                   {"pci.0.3.0.device", "virtio-blk"},
                   {"pci.0.3.0.opt.cache", "off"},
                   {"com1.backend", "none"}});
  auto inst = r.ParseInstances(c, std::span(&com1, 1));
  ASSERT_TRUE(inst) << ErrorOf(inst);
  std::vector<DeviceInstance> all = *inst;
  all.push_back(com1);
  const std::vector<std::string> keys = r.InstanceKeys(all);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "platform.com2.device", "platform.com2.backend",
                      "platform.com2.port", "platform.com2.irq",
                      "pci.0.3.0.device", "pci.0.3.0.path",
                      "pci.0.3.0.opt.*",
                      // A fixed instance: no device key, no resources.
                      "com1.backend"}));
  std::vector<std::string_view> views(keys.begin(), keys.end());
  EXPECT_TRUE(c.CheckKnownKeys(views));

  for (auto [key, hint] : std::vector<std::pair<std::string, std::string>>{
           {"platform.com2.backnd", "platform.com2.backend"},
           {"pci.0.3.0.pth", "pci.0.3.0.path"},
           {"pci.0.3.0.opts.x", "pci.0.3.0.opt.x"},
       }) {
    Config bad = c;
    ASSERT_TRUE(bad.Set(key, "1"));
    auto s = bad.CheckKnownKeys(views);
    ASSERT_FALSE(s) << key;
    EXPECT_EQ(s.error().message(),
              fmt::format("unknown config key '{}' (did you mean '{}'?)", key,
                          hint));
  }
  // The machine gives com1 its port: not a key com1 accepts.
  Config port = c;
  ASSERT_TRUE(port.Set("com1.port", "0x2f8"));
  auto s = port.CheckKnownKeys(views);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind(
                "unknown config key 'com1.port' (known keys: ", 0),
            0u)
      << s.error().message();
}

TEST(DeviceRegistry, HelpListsModelsAndTheirKeys) {
  DeviceRegistry r = TestRegistry();
  const std::string help = r.Help();
  EXPECT_EQ(help,
            "  uart_16550       (platform) a test model\n"
            "      backend        stdio or none\n"
            "      port           I/O port [required]\n"
            "      irq            interrupt [required]\n"
            "  virtio-blk       (PCI) a test model\n"
            "      path           disk image\n"
            "      opt.*          options\n");
}

// What a model's check() sees, without a VM.
TEST(DeviceContext, SettingsResourcesAndInterruptsWhileChecking) {
  DeviceRegistry r = TestRegistry();
  DeviceHost host(nullptr, [](uint64_t n) -> Result<md::IrqPin> {
    if (n >= 24) {
      return MakeError(Errc::kOutOfRange, "interrupt {} is not 0-23", n);
    }
    md::IrqPin pin{};
    return pin;
  });
  Config c = With({{"platform.com2.device", "uart_16550"},
                   {"platform.com2.port", "0x2f8"},
                   {"platform.com2.irq", "99"},
                   {"platform.com2.backend", "none"}});
  auto inst = r.ParseInstances(c);
  ASSERT_TRUE(inst) << ErrorOf(inst);
  DeviceContext ctx(c, inst->front(), *r.Find("uart_16550"), host);
  EXPECT_TRUE(ctx.checking());
  EXPECT_EQ(ctx.Key("backend"), "platform.com2.backend");
  EXPECT_EQ(*ctx.GetString("backend", "stdio"), "none");
  EXPECT_EQ(*ctx.Resource("port", 0, 0xfff8), 0x2f8u);
  auto low = ctx.Resource("port", 0x3000, 0xfff8);
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error().message(),
            "config key 'platform.com2.port' is 0x2f8, outside the range "
            "0x3000..0xfff8");
  auto missing = ctx.Resource("base", 0, 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "platform.com2: config key 'platform.com2.base' is not set; a "
            "uart_16550 device needs it");
  auto irq = ctx.Irq("irq");
  ASSERT_FALSE(irq);
  EXPECT_EQ(irq.error().message(),
            "config key 'platform.com2.irq': interrupt 99 is not 0-23");
  EXPECT_EQ(ctx.Describe(), "platform.com2 (uart_16550)");
  EXPECT_NE(ctx.logger(), nullptr);

  // A fixed instance takes its resources from the machine.
  DeviceInstance com1;
  com1.kind = DeviceInstance::Kind::kFixed;
  com1.name = com1.prefix = "com1";
  com1.model = "uart_16550";
  com1.resources = {{"port", 0x3f8}, {"irq", 4}};
  DeviceContext fixed(c, com1, *r.Find("uart_16550"), host);
  EXPECT_EQ(*fixed.Resource("port", 0, 0xfff8), 0x3f8u);
  EXPECT_TRUE(fixed.Irq("irq"));
}

TEST(DeviceHost, ClaimsAndHooks) {
  DeviceHost host(nullptr, nullptr);
  EXPECT_TRUE(host.Claim("stdio", "com1"));
  EXPECT_TRUE(host.Claim("stdio", "com1"));  // check(), then create()
  auto again = host.Claim("stdio", "platform.com2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(again.error().message(),
            "platform.com2 wants stdio, which com1 already uses; only one "
            "device can");
  std::vector<int> order;
  host.OnStart([&] { order.push_back(1); return Ok(); });
  host.OnStart([&] { order.push_back(2); return Ok(); });
  host.OnStop([&] { order.push_back(-1); });
  host.OnStop([&] { order.push_back(-2); });
  EXPECT_TRUE(host.RunStartHooks());
  host.RunStopHooks();
  host.RunStopHooks();  // once only
  EXPECT_EQ(order, (std::vector<int>{1, 2, -2, -1}));
  EXPECT_FALSE(host.IrqPin(4));  // this host has no interrupt lines
}

TEST(DeviceHost, ServicesByType) {
  struct Clock {
    int now = 7;
  };
  struct Other {};
  DeviceHost host(nullptr, nullptr);
  EXPECT_EQ(host.Service<Clock>(), nullptr);
  auto clock = std::make_shared<Clock>();
  host.SetService(clock);
  ASSERT_EQ(host.Service<Clock>(), clock);
  EXPECT_EQ(host.Service<Clock>()->now, 7);
  EXPECT_EQ(host.Service<Other>(), nullptr);
  host.SetService<Clock>(nullptr);  // withdrawn
  EXPECT_EQ(host.Service<Clock>(), nullptr);
}

TEST(DeviceSet, CheckRunsTheModelsCheckAndCreateNeedsAVm) {
  DeviceRegistry r;
  DeviceModel m = Model("checked", DeviceBus::kPlatform, {{"mode", "a or b"}});
  m.check = [](DeviceContext& ctx) -> Status {
    const std::string mode = STRATA_TRY(ctx.GetString("mode", "a"));
    if (mode != "a" && mode != "b") {
      return MakeError(Errc::kInvalidArgument, "{} must be a or b, got '{}'",
                       ctx.Key("mode"), mode);
    }
    return Ok();
  };
  ASSERT_TRUE(r.Register(m));
  Config c = With({{"platform.x.device", "checked"},
                   {"platform.x.mode", "c"}});
  DeviceHost host(nullptr, nullptr);
  DeviceSet set(r, c, host);
  auto inst = r.ParseInstances(c);
  ASSERT_TRUE(inst);
  auto s = set.Check(inst->front());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "platform.x.mode must be a or b, got 'c'");
  auto created = set.Create(inst->front());
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code(), Errc::kInternal);
  DeviceInstance unknown = inst->front();
  unknown.model = "nope";
  EXPECT_FALSE(set.Check(unknown));
}


}  // namespace
}  // namespace strata
