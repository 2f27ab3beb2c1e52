// The machine's config validation: everything Machine::PrepareConfig checks
// before a VM exists (no /dev/kvm needed), on this architecture's machine.
#include "core/machine.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

Config With(std::initializer_list<std::pair<std::string, std::string>> kv) {
  Config c;
  for (auto& [k, v] : kv) EXPECT_TRUE(c.Set(k, v)) << k;
  return c;
}

std::string Prepare(Config& c, const Machine::Options& o = Machine::Options()) {
  Status s = Machine::PrepareConfig(c, o);
  return s ? "" : s.error().message();
}

std::string Prepare(
    std::initializer_list<std::pair<std::string, std::string>> kv,
    const Machine::Options& o = Machine::Options()) {
  Config c = With(kv);
  return Prepare(c, o);
}

// A PCI model, so that PCI instances get as far as the machine allows.
Machine::Options WithPciModel() {
  DeviceModel m;
  m.name = "test-pci";
  m.help = "a PCI function for tests";
  m.bus = DeviceBus::kPci;
  m.keys = {{"path", "a file"}};
  m.create = [](DeviceContext&) -> Result<std::shared_ptr<void>> {
    return std::shared_ptr<void>();
  };
  Machine::Options o;
  o.models.push_back(m);
  return o;
}

TEST(MachineConfig, DefaultsAndTheResolvedTopologyAreWrittenBack) {
  Config c;
  ASSERT_EQ(Prepare(c), "");
  EXPECT_EQ(*c.GetString("memory.size"), "256M");
  EXPECT_EQ(*c.GetString("cpus"), "1");
  EXPECT_EQ(*c.GetString("cpu.sockets"), "1");
  EXPECT_EQ(*c.GetString("cpu.max"), "1");
  EXPECT_EQ(Machine::Name(), "pc");
  EXPECT_EQ(*c.GetString("com1.backend"), "stdio");
  EXPECT_EQ(*c.GetString("x86.cpu_vendor"), "host");
  EXPECT_FALSE(c.Has("log.level"));  // only if asked for

  Config four = With({{"cpus", "4"}, {"memory.size", "1G"}});
  ASSERT_EQ(Prepare(four), "");
  EXPECT_EQ(*four.GetString("cpu.sockets"), "4");  // one socket per vCPU
  EXPECT_EQ(*four.GetString("memory.size"), "1G");
  // Idempotent: preparing a prepared config changes nothing.
  Config again = four;
  ASSERT_EQ(Prepare(again), "");
  EXPECT_EQ(again.DumpFlat(), four.DumpFlat());
}

TEST(MachineConfig, UnknownKeysAreRejectedWithTheClosestKnownKey) {
  EXPECT_EQ(Prepare({{"memory.sise", "1G"}}),
            "unknown config key 'memory.sise' (did you mean 'memory.size'?)");
  EXPECT_EQ(Prepare({{"x86.cpu_vender", "amd"}}),
            "unknown config key 'x86.cpu_vender' (did you mean "
            "'x86.cpu_vendor'?)");
  // A fixed device's keys.
  EXPECT_EQ(Prepare({{"com1.backnd", "none"}}),
            "unknown config key 'com1.backnd' (did you mean 'com1.backend'?)");
  // A declared instance's: the model's keys, under the instance.
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.port", "0x2f8"},
                     {"platform.com2.irq", "3"},
                     {"platform.com2.backed", "none"}}),
            "unknown config key 'platform.com2.backed' (did you mean "
            "'platform.com2.backend'?)");
  EXPECT_EQ(Prepare({{"platfrom.com2.device", "uart_16550"}}),
            "unknown config key 'platfrom.com2.device' (did you mean "
            "'platform.com2.device'?)");
  // Nothing close: the known keys, MI first.
  const std::string far = Prepare({{"frobnicate", "1"}});
  EXPECT_EQ(far.rfind("unknown config key 'frobnicate' (known keys: cpus, ",
                      0),
            0u)
      << far;
}

TEST(MachineConfig, DeviceInstancesAreChecked) {
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.port", "0x2f8"},
                     {"platform.com2.irq", "3"},
                     {"platform.com2.backend", "none"}}),
            "");
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart16550"}}),
            "config key 'platform.com2.device': unknown device model "
            "'uart16550' (did you mean 'uart_16550'?)");
  EXPECT_EQ(Prepare({{"platform.com1.device", "uart_16550"}}),
            "config key 'platform.com1.device': 'com1' is already a device "
            "of this machine (uart_16550, COM1 (port 0x3f8, IRQ 4)); choose "
            "another name");
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.irq", "3"}}),
            "platform.com2: config key 'platform.com2.port' is not set (nor "
            "'platform.com2.base'); a uart_16550 device needs one of them: "
            "port (I/O) or base (MMIO)");
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.port", "0x2f8"},
                     {"platform.com2.irq", "24"}}),
            "config key 'platform.com2.irq': interrupt 24 is not a GSI of "
            "the pc machine (0-23)");
  // The console is the process's stdin and stdout: one device only.
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.port", "0x2f8"},
                     {"platform.com2.irq", "3"},
                     {"platform.com2.backend", "stdio"}}),
            "platform.com2 wants stdio, which com1 already uses; only one "
            "device can");
  EXPECT_EQ(Prepare({{"platform.com2.device", "uart_16550"},
                     {"platform.com2.port", "0x2f8"},
                     {"platform.com2.irq", "3"},
                     {"platform.com2.backend", "stdio"},
                     {"com1.backend", "none"}}),
            "");
  EXPECT_EQ(Prepare({{"com1.backend", "file"}}),
            "com1.backend must be stdio or none, got 'file'");
}

// PCI instances are parsed, looked up and key-checked for real, then held
// to the machine's rules (pc: bus 0, not the host bridge's slot 0).
TEST(MachineConfig, PciInstancesFollowTheMachinesRules) {
  const Machine::Options pci = WithPciModel();
  EXPECT_EQ(Prepare({{"pci.0.3.0.device", "test-pci"},
                     {"pci.0.3.0.path", "/x"}},
                    pci),
            "");
  Status s = [&] {
    Config c = With({{"pci.1.3.0.device", "test-pci"}});
    return Machine::PrepareConfig(c, pci);
  }();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "config key 'pci.1.3.0.device': the pc machine has one PCI bus, "
            "0; there is no bus 1");
  EXPECT_EQ(Prepare({{"pci.0.0.1.device", "test-pci"}}, pci),
            "config key 'pci.0.0.1.device': PCI slot 0 is taken by the host "
            "bridge (00:00.0); use slots 1-31");
  EXPECT_EQ(Prepare({{"pci.0.3.0.device", "test-pci"},
                     {"pci.0.3.0.pth", "/x"}},
                    pci),
            "unknown config key 'pci.0.3.0.pth' (did you mean "
            "'pci.0.3.0.path'?)");
  EXPECT_EQ(Prepare({{"pci.0.32.0.device", "test-pci"}}, pci),
            "config key 'pci.0.32.0.device': PCI slot '32' must be a decimal "
            "number 0-31 (pci.<bus>.<slot>.<func>.device=<model>)");
  EXPECT_EQ(Prepare({{"pci.0.3.0.device", "test-pcie"}}, pci),
            "config key 'pci.0.3.0.device': unknown device model 'test-pcie' "
            "(did you mean 'test-pci'?)");
  EXPECT_EQ(Prepare({{"pci.0.3.0.device", "uart_16550"}}, pci),
            "config key 'pci.0.3.0.device': uart_16550 is a platform device, "
            "not a PCI device (use platform.<name>.device)");
}

TEST(MachineConfig, NumbersAndChoicesAreRangeChecked) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> kv;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{{"cpu.sockets", "4294967297"}},
       "config key 'cpu.sockets' is 4294967297, outside the range "
       "1..4294967295"},
      {{{"cpus", "0"}}, "config key 'cpus' is 0, outside the range"},
      {{{"cpus", "4"}, {"cpu.sockets", "1"}, {"cpu.cores", "2"}},
       "cpus=4 exceeds the topology sockets=1 x cores=2 x threads=1 = 2"},
      {{{"cpu.sockets", "65536"}, {"cpu.cores", "65536"},
        {"cpu.threads", "2"}, {"cpus", "1"}},
       "has more than 4294967295 logical processors"},
      {{{"cpus", "2"}, {"cpu.max", "1"}}, "cpu.max=1 is less than cpus=2"},
      {{{"memory.size", "3000001"}}, "is not a multiple of 4 KiB"},
      {{{"memory.size", "1M"}}, "config key 'memory.size'"},
      {{{"memory.size", "lots"}}, "memory.size"},
      {{{"log.level", "loud"}}, "log.level: unknown log level 'loud'"},
      {{{"bus.unclaimed_fatal", "maybe"}}, "bus.unclaimed_fatal"},
      {{{"x86.cpu_vendor", "via"}},
       "x86.cpu_vendor must be host, intel or amd, got 'via'"},
      {{{"x86.irqchip", "maybe"}}, "x86.irqchip"},
      {{{"x86.x2apic", "false"}, {"cpus", "300"}}, "needs x2APIC"},
  };
  for (const Case& c : cases) {
    Config cfg;
    for (auto& [k, v] : c.kv) ASSERT_TRUE(cfg.Set(k, v)) << k;
    const std::string err = Prepare(cfg);
    EXPECT_NE(err.find(c.error), std::string::npos)
        << c.kv[0].first << ": got '" << err << "'";
    EXPECT_FALSE(err.empty()) << c.kv[0].first;
  }
}

TEST(MachineConfig, AnEmbeddersModelMustNotClashWithTheMachines) {
  Machine::Options o;
  DeviceModel m;
  m.name = "uart_16550";
  m.create = [](DeviceContext&) -> Result<std::shared_ptr<void>> {
    return std::shared_ptr<void>();
  };
  o.models.push_back(m);
  Config c;
  Status s = Machine::PrepareConfig(c, o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kAlreadyExists);
}

TEST(MachineConfig, CreateSaysWhichStepFailed) {
  Machine::Step step = Machine::Step::kHost;
  Config bad_key = With({{"memory.sise", "1G"}});
  auto r = Machine::Create(bad_key, Machine::Options(), &step);
  ASSERT_FALSE(r);
  EXPECT_EQ(step, Machine::Step::kInput);
  Config missing = With({{"kernel.path", "/nonexistent/kernel.elf"}});
  r = Machine::Create(missing, Machine::Options(), &step);
  ASSERT_FALSE(r);
  EXPECT_EQ(step, Machine::Step::kInput);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  Machine::Options no_kvm;
  no_kvm.kvm_device = "/nonexistent/kvm";
  r = Machine::Create(Config(), no_kvm, &step);
  ASSERT_FALSE(r);
  EXPECT_EQ(step, Machine::Step::kHost);
}

TEST(MachineConfig, HelpListsKeysFixedDevicesAndModels) {
  std::vector<std::string> keys;
  for (const ConfigKeyHelp& k : Machine::ConfigKeys()) {
    keys.emplace_back(k.key);
    EXPECT_FALSE(k.help.empty()) << k.key;
  }
  EXPECT_EQ(keys.front(), "cpus");
  EXPECT_NE(std::find(keys.begin(), keys.end(), "x86.irqchip"), keys.end());
  auto help = Machine::DeviceHelp();
  ASSERT_TRUE(help);
  for (const char* needle :
       {"com1", "COM1 (port 0x3f8, IRQ 4); keys: com1.backend", "uart_16550",
        "isa-debug-exit", "fw_cfg", "acpi_pm", "pc-testdev",
        "RTC/CMOS (ports 0x70-0x71, IRQ 8)", "mc146818", "i8042",
        "pci.<bus>.<slot>.<func>.device=<model>",
        "platform.<name>.device=<model>", "backend", "[required]"}) {
    EXPECT_NE(help->find(needle), std::string::npos) << needle << "\n"
                                                     << *help;
  }
  ASSERT_EQ(Machine::CommandLineOptions().size(), 3u);
  EXPECT_STREQ(Machine::CommandLineOptions()[0].name, "cpu-vendor");
  EXPECT_STREQ(Machine::CommandLineOptions()[1].name, "cpu-model");
  EXPECT_STREQ(Machine::CommandLineOptions()[1].key, "x86.cpu_model");
  EXPECT_STREQ(Machine::CommandLineOptions()[2].name, "cpu-features");
  EXPECT_STREQ(Machine::CommandLineOptions()[2].key, "x86.cpu_features");
}

}  // namespace
}  // namespace strata
