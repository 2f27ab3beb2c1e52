// strata — the device registry: device models by name, and the device
// instances a configuration asks for (after bhyve_config(5)).
//
// Theory. A model is a name, a line of help, the bus it sits on, the config
// keys it accepts (patterns relative to its instance, `*` matching one
// component) and a factory. Models are registered explicitly into a
// DeviceRegistry object — devices/registry.h registers the arch-neutral
// ones, each machine (arch/<arch>/platform/) its own, an embedder theirs —
// so there are no static constructors and no process-wide list.
//
// An instance is one device of a VM, in one of three forms:
//   pci.<bus>.<slot>.<func>.device=<model>
//       a PCI function: bus 0-255, slot 0-31, function 0-7, in decimal.
//       Its settings are pci.<bus>.<slot>.<func>.<key>.
//   platform.<name>.device=<model>
//       a platform (non-PCI) device: an ISA/LPC device on pc, an MMIO
//       device on arm64 virt. <name> is one key component; its settings,
//       including its addresses and interrupt, are platform.<name>.<key>.
//   fixed instances
//       the devices every VM of a machine has (pc: com1, isa-debug-exit,
//       ...), declared by the machine with the addresses and interrupts it
//       gives them (DeviceInstance::resources). Their settings are
//       <name>.<key> (com1.backend), minus the resources.
//
// Everything about instances is checked before a VM exists: the instance
// keys parse (a PCI address out of range names the key), each model exists
// (else the closest name is suggested) and sits on the instance's bus, no
// two instances are the same device, and InstanceKeys() gives the patterns
// Config::CheckKnownKeys needs, so a per-device key the model does not
// accept is rejected with the closest known one like any other unknown key.
// A model's check() then validates its settings' values. Creation
// (DeviceSet::Create) runs the model's factory with a DeviceContext: the VM,
// the instance's settings and resources, and the services of the machine
// through DeviceHost (the platform's interrupt numbering, start and stop
// hooks for device threads, host resources only one device may use).
//
// Devices created this way log through the VM's logger (DeviceContext::
// log()), and rate-limit anything a guest can trigger (core/log.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/result.h"
#include "machine/irq_machdep.h"

namespace spdlog {
class logger;
}

namespace strata {

class Vm;
class PciBus;  // devices/pci/pci_bus.h: a machine's PCI bus 0
class Snapshottable;  // core/snapshot.h

enum class DeviceBus : uint8_t { kPlatform, kPci };
// "platform" or "PCI".
std::string_view DeviceBusName(DeviceBus bus);

inline constexpr uint32_t kPciMaxBus = 255;
inline constexpr uint32_t kPciMaxSlot = 31;
inline constexpr uint32_t kPciMaxFunc = 7;

struct PciAddress {
  uint8_t bus = 0;
  uint8_t slot = 0;
  uint8_t func = 0;
  friend bool operator==(const PciAddress&, const PciAddress&) = default;
};

// Addresses and interrupts a machine gives one of its fixed devices, by the
// model's key name: {"port", 0x3f8}, {"irq", 4}.
using DeviceResources = std::map<std::string, uint64_t, std::less<>>;

struct DeviceInstance {
  enum class Kind : uint8_t { kFixed, kPlatform, kPci };
  Kind kind = Kind::kPlatform;
  // Unique within a VM: the fixed name ("com1"), the platform name
  // ("com2"), or the canonical PCI address ("pci.0.3.0").
  std::string name;
  // Where its settings live: "com1", "platform.com2", or the PCI address
  // as the config spells it.
  std::string prefix;
  std::string model;
  PciAddress pci;              // kPci
  DeviceResources resources;   // kFixed
  std::string description;     // kFixed, for help: "COM1 (0x3f8, IRQ 4)"
};

// A machine's fixed instance `name` of `model` with the machine's resources
// (platform::FixedDevices); its settings are <name>.<key>.
inline DeviceInstance FixedDevice(std::string name, std::string model,
                                  DeviceResources resources,
                                  std::string description) {
  DeviceInstance d;
  d.kind = DeviceInstance::Kind::kFixed;
  d.name = name;
  d.prefix = std::move(name);
  d.model = std::move(model);
  d.resources = std::move(resources);
  d.description = std::move(description);
  return d;
}

// One config key a model accepts.
struct DeviceKey {
  std::string pattern;  // relative to the instance: "backend", "opt.*"
  std::string help;     // "stdio or none (default: none)"
  // An address or interrupt: required for declared instances, given by the
  // machine for its fixed ones (and then not a key they accept).
  bool resource = false;
};

class DeviceContext;

struct DeviceModel {
  std::string name;  // components of [A-Za-z0-9_-], e.g. "uart_16550"
  std::string help;  // one line
  DeviceBus bus = DeviceBus::kPlatform;
  std::vector<DeviceKey> keys;
  // Checks the instance's settings before the VM exists (optional): bad
  // input here is reported before the host is touched.
  std::function<Status(DeviceContext&)> check;
  // Creates the device on ctx.vm() — registers it on the buses, wires its
  // interrupts — and returns what must live as long as the VM.
  std::function<Result<std::shared_ptr<void>>(DeviceContext&)> create;
};

// What the machine offers the devices it creates.
class DeviceHost {
 public:
  // Interrupt-controller input `number` in the platform's numbering (pc:
  // GSI 0-23), or an error naming the limits.
  using IrqPinFn = std::function<Result<md::IrqPin>(uint64_t number)>;

  // vm null: only checking (models' check(); Claim still works).
  DeviceHost(Vm* vm, IrqPinFn irq_pin);
  DeviceHost(const DeviceHost&) = delete;
  DeviceHost& operator=(const DeviceHost&) = delete;

  Vm* vm() const { return vm_; }
  Result<md::IrqPin> IrqPin(uint64_t number) const;

  // Claims a host resource only one device may use (e.g. "stdio": the
  // process's stdin and stdout). kInvalidArgument naming both users if
  // another user has it; claiming it again for the same user is fine.
  Status Claim(std::string_view resource, std::string_view user);

  // The machine's PCI bus, where PCI models add their functions: set by a
  // machine with a host bridge during its Init (before declared instances
  // are created); null otherwise, and while checking.
  void SetPciBus(PciBus* bus) { pci_bus_ = bus; }
  PciBus* pci_bus() const { return pci_bus_; }

  // Other services a machine offers its device models, one per type T
  // (the pc machine with a Hyper-V SynIC: hv::SynicService,
  // devices/hyperv_synic.h): set during the machine's Init, before
  // declared instances are created. Service<T>() is null when the machine
  // has none, and while checking.
  template <typename T>
  void SetService(std::shared_ptr<T> service) {
    services_[std::type_index(typeid(T))] = std::move(service);
  }
  template <typename T>
  std::shared_ptr<T> Service() const {
    auto it = services_.find(std::type_index(typeid(T)));
    return it == services_.end() ? nullptr
                                 : std::static_pointer_cast<T>(it->second);
  }

  // Hooks for device threads: start hooks run, in order, when the VM
  // starts (before its vCPUs run); stop hooks run, in reverse order, after
  // its vCPUs have stopped (or when a VM that never ran goes away).
  void OnStart(std::function<Status()> fn);
  void OnStop(std::function<void()> fn);
  // For the machine. RunStopHooks runs each hook once.
  Status RunStartHooks();
  void RunStopHooks();

  // Snapshots (core/snapshot.h). Every device instance the machine creates
  // says how its state is saved — AddSnapshot(instance name, state) with the
  // object that saves it, several parts as "<name>/<part>", or with null
  // when it has no state of its own (or another part saves it, as the PCI
  // bus saves its functions) — and the machine's own parts (the PCI bus)
  // register under names of their own. Machine::Save refuses a machine
  // with an instance that registered nothing, naming it.
  struct SnapshotPart {
    std::string name;
    std::shared_ptr<Snapshottable> state;  // null: nothing to save
  };
  void AddSnapshot(std::string name, std::shared_ptr<Snapshottable> state) {
    snapshot_parts_.push_back({std::move(name), std::move(state)});
  }
  const std::vector<SnapshotPart>& snapshot_parts() const {
    return snapshot_parts_;
  }

 private:
  std::vector<SnapshotPart> snapshot_parts_;
  Vm* const vm_;
  const IrqPinFn irq_pin_;
  PciBus* pci_bus_ = nullptr;
  std::map<std::type_index, std::shared_ptr<void>> services_;
  std::map<std::string, std::string, std::less<>> claims_;
  std::vector<std::function<Status()>> start_;
  std::vector<std::function<void()>> stop_;
};

// What a model's check() and create() see.
class DeviceContext {
 public:
  DeviceContext(const Config& config, const DeviceInstance& instance,
                const DeviceModel& model, DeviceHost& host)
      : config_(config), instance_(instance), model_(model), host_(host) {}

  const Config& config() const { return config_; }
  const DeviceInstance& instance() const { return instance_; }
  const DeviceModel& model() const { return model_; }
  DeviceHost& host() const { return host_; }
  // True in check(): there is no VM yet.
  bool checking() const { return host_.vm() == nullptr; }
  Vm& vm() const;  // not while checking
  // The VM's logger (the strata logger while checking), shared so device
  // threads and RateLimits can keep it.
  std::shared_ptr<spdlog::logger> logger() const;
  spdlog::logger& log() const { return *logger(); }

  // "<prefix>.<rel>": the full config key of one of the instance's settings.
  std::string Key(std::string_view rel) const;
  // The instance's settings (errors name the full key).
  Result<std::string> GetString(std::string_view rel,
                                std::string_view dflt) const;
  Result<bool> GetBool(std::string_view rel, bool dflt) const;
  Result<uint64_t> GetUintInRange(std::string_view rel, uint64_t dflt,
                                  uint64_t min, uint64_t max) const;
  // A resource key: the machine's value for a fixed instance, else the
  // instance's setting, which must be set (kInvalidArgument saying so) and
  // within [min, max] (kOutOfRange).
  Result<uint64_t> Resource(std::string_view rel, uint64_t min,
                            uint64_t max) const;
  // An interrupt: Resource(rel) in the platform's numbering.
  Result<md::IrqPin> Irq(std::string_view rel) const;
  // "platform.com2 (uart_16550)", for messages.
  std::string Describe() const;

 private:
  const Config& config_;
  const DeviceInstance& instance_;
  const DeviceModel& model_;
  DeviceHost& host_;
};

class DeviceRegistry {
 public:
  // Adds a model. kAlreadyExists if the name is taken; kInvalidArgument for
  // a malformed name or key pattern, a key named "device" (the instance's
  // own), two keys with the same pattern, or no factory.
  Status Register(DeviceModel model);

  const DeviceModel* Find(std::string_view name) const;
  // Sorted by name.
  std::vector<const DeviceModel*> Models() const;
  // Every model with its bus, help and keys, for --help.
  std::string Help() const;

  // The instances the config declares: platform.* by name, then pci.* by
  // address. `fixed` are the machine's fixed instances: a declared instance of
  // the same name is a duplicate. Errors are kInvalidArgument (kOutOfRange
  // for a PCI address out of range) and name the offending key.
  Result<std::vector<DeviceInstance>> ParseInstances(
      const Config& config, std::span<const DeviceInstance> fixed = {}) const;

  // The config key patterns the instances accept (for
  // Config::CheckKnownKeys): "<prefix>.device" for declared instances and
  // "<prefix>.<pattern>" for each model key — for a fixed instance, minus
  // the resources the machine gives it. Instances of unknown models
  // contribute only their device key.
  std::vector<std::string> InstanceKeys(
      std::span<const DeviceInstance> instances) const;

 private:
  std::map<std::string, DeviceModel, std::less<>> models_;
};

// The devices of one VM, created through a registry. Owns them (and so
// keeps them alive for the VM's lifetime).
class DeviceSet {
 public:
  DeviceSet(const DeviceRegistry& registry, const Config& config,
            DeviceHost& host)
      : registry_(registry), config_(config), host_(host) {}

  // Runs the model's check() (without a VM, as for validation).
  Status Check(const DeviceInstance& instance);
  // Runs check() and then create(). kAlreadyExists if an instance of that
  // name was created already; kInvalidArgument for an unknown model or one
  // on another bus; errors from create() are prefixed with "creating
  // <prefix> (<model>)", and an address range another device holds (the
  // bus's kAlreadyExists) is kInvalidArgument: the config's doing.
  Status Create(const DeviceInstance& instance);

  struct Created {
    DeviceInstance instance;
    std::shared_ptr<void> object;
  };
  const Created* Find(std::string_view name) const;
  const std::vector<Created>& devices() const { return devices_; }
  // The machine's services the devices are created with.
  DeviceHost& host() const { return host_; }
  // Destroys the devices, last created first.
  void Clear();

 private:
  Result<const DeviceModel*> ModelFor(const DeviceInstance& instance) const;

  const DeviceRegistry& registry_;
  const Config& config_;
  DeviceHost& host_;
  std::vector<Created> devices_;
};

}  // namespace strata
