#include "core/device_registry.h"

#include <algorithm>
#include <cassert>
#include <tuple>
#include <utility>

#include "core/log.h"
#include "core/vm.h"

namespace strata {

namespace {

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Dotted components of [A-Za-z0-9_-] (and, if allowed, `*`).
bool IsDottedName(std::string_view s, bool allow_star) {
  if (s.empty()) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view c = s.substr(
        start, dot == std::string_view::npos ? std::string_view::npos
                                             : dot - start);
    if (c.empty()) return false;
    if (!(allow_star && c == "*") &&
        !std::all_of(c.begin(), c.end(), IsKeyChar)) {
      return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// The first key at or under `path`, to name in an error.
std::string FirstKeyUnder(const Config& config, std::string_view path) {
  const std::string dotted = std::string(path) + ".";
  for (const std::string& k : config.Keys()) {
    if (k == path || k.rfind(dotted, 0) == 0) return k;
  }
  return std::string(path);
}

// A decimal PCI address component: digits only, at most 3, <= max.
std::optional<uint32_t> ParsePciComponent(std::string_view s, uint32_t max) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

std::string Suggestion(std::string_view name,
                       const std::vector<const DeviceModel*>& models) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const DeviceModel* m : models) {
    const size_t d = EditDistance(name, m->name);
    if (d < best_d) {
      best_d = d;
      best = m->name;
    }
  }
  const size_t close =
      std::max<size_t>(1, std::min<size_t>(3, name.size() / 3));
  if (!best.empty() && best_d <= close) {
    return fmt::format(" (did you mean '{}'?)", best);
  }
  std::string all;
  for (const DeviceModel* m : models) {
    if (!all.empty()) all += ", ";
    all += m->name;
  }
  return fmt::format(" (known models: {})", all.empty() ? "none" : all);
}

}  // namespace

std::string_view DeviceBusName(DeviceBus bus) {
  switch (bus) {
    case DeviceBus::kPlatform:
      return "platform";
    case DeviceBus::kPci:
      return "PCI";
  }
  return "?";
}

// --- DeviceHost -------------------------------------------------------------

DeviceHost::DeviceHost(Vm* vm, IrqPinFn irq_pin)
    : vm_(vm), irq_pin_(std::move(irq_pin)) {}

Result<md::IrqPin> DeviceHost::IrqPin(uint64_t number) const {
  if (!irq_pin_) {
    return MakeError(Errc::kUnsupported,
                     "this machine has no interrupt lines for devices");
  }
  return irq_pin_(number);
}

Status DeviceHost::Claim(std::string_view resource, std::string_view user) {
  auto it = claims_.find(resource);
  if (it != claims_.end() && it->second != user) {
    return MakeError(Errc::kInvalidArgument,
                     "{} wants {}, which {} already uses; only one device "
                     "can",
                     user, resource, it->second);
  }
  claims_.emplace(std::string(resource), std::string(user));  // or kept
  return Ok();
}

void DeviceHost::OnStart(std::function<Status()> fn) {
  start_.push_back(std::move(fn));
}

void DeviceHost::OnStop(std::function<void()> fn) {
  stop_.push_back(std::move(fn));
}

Status DeviceHost::RunStartHooks() {
  for (auto& fn : start_) STRATA_TRY(fn());
  start_.clear();
  return Ok();
}

void DeviceHost::RunStopHooks() {
  auto hooks = std::exchange(stop_, {});
  for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) (*it)();
}

// --- DeviceContext ----------------------------------------------------------

Vm& DeviceContext::vm() const {
  assert(!checking() && "DeviceContext::vm() while checking");
  return *host_.vm();
}

std::shared_ptr<spdlog::logger> DeviceContext::logger() const {
  if (checking()) return DefaultLogger();
  const auto& l = host_.vm()->options().logger;
  return l ? l : DefaultLogger();
}

std::string DeviceContext::Key(std::string_view rel) const {
  return fmt::format("{}.{}", instance_.prefix, rel);
}

Result<std::string> DeviceContext::GetString(std::string_view rel,
                                             std::string_view dflt) const {
  return config_.GetString(Key(rel), dflt);
}

Result<bool> DeviceContext::GetBool(std::string_view rel, bool dflt) const {
  return config_.GetBool(Key(rel), dflt);
}

Result<uint64_t> DeviceContext::GetUintInRange(std::string_view rel,
                                               uint64_t dflt, uint64_t min,
                                               uint64_t max) const {
  return config_.GetUintInRange(Key(rel), dflt, min, max);
}

Result<uint64_t> DeviceContext::Resource(std::string_view rel, uint64_t min,
                                         uint64_t max) const {
  auto it = instance_.resources.find(rel);
  if (it != instance_.resources.end()) return it->second;
  const std::string key = Key(rel);
  if (!config_.Has(key)) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: config key '{}' is not set; a {} device needs it",
                     instance_.prefix, key, model_.name);
  }
  const uint64_t v = STRATA_TRY(config_.GetUint(key));
  if (v < min || v > max) {
    return MakeError(Errc::kOutOfRange,
                     "config key '{}' is {:#x}, outside the range {:#x}..{:#x}",
                     key, v, min, max);
  }
  return v;
}

Result<md::IrqPin> DeviceContext::Irq(std::string_view rel) const {
  const uint64_t n = STRATA_TRY(Resource(rel, 0, UINT32_MAX));
  auto pin = host_.IrqPin(n);
  if (!pin) {
    return pin.error().Wrap(instance_.resources.count(rel)
                                ? Describe()
                                : fmt::format("config key '{}'", Key(rel)));
  }
  return pin;
}

std::string DeviceContext::Describe() const {
  return fmt::format("{} ({})", instance_.prefix, model_.name);
}

// --- DeviceRegistry ---------------------------------------------------------

Status DeviceRegistry::Register(DeviceModel model) {
  if (!IsDottedName(model.name, false) ||
      model.name.find('.') != std::string::npos) {
    return MakeError(Errc::kInvalidArgument,
                     "device model name '{}' must be one config key "
                     "component ([A-Za-z0-9_-]+)",
                     model.name);
  }
  if (!model.create) {
    return MakeError(Errc::kInvalidArgument,
                     "device model '{}' has no factory", model.name);
  }
  std::set<std::string> seen;
  for (const DeviceKey& k : model.keys) {
    if (!IsDottedName(k.pattern, true)) {
      return MakeError(Errc::kInvalidArgument,
                       "device model '{}': key pattern '{}' is not a dotted "
                       "config key (components of [A-Za-z0-9_-] or '*')",
                       model.name, k.pattern);
    }
    if (k.pattern == "device") {
      return MakeError(Errc::kInvalidArgument,
                       "device model '{}': 'device' is the instance's own "
                       "key, not a model key",
                       model.name);
    }
    if (!seen.insert(k.pattern).second) {
      return MakeError(Errc::kInvalidArgument,
                       "device model '{}' lists key '{}' twice", model.name,
                       k.pattern);
    }
  }
  if (models_.count(model.name) != 0) {
    return MakeError(Errc::kAlreadyExists,
                     "device model '{}' is already registered", model.name);
  }
  std::string name = model.name;
  models_.emplace(std::move(name), std::move(model));
  return Ok();
}

const DeviceModel* DeviceRegistry::Find(std::string_view name) const {
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : &it->second;
}

std::vector<const DeviceModel*> DeviceRegistry::Models() const {
  std::vector<const DeviceModel*> out;
  out.reserve(models_.size());
  for (const auto& [name, m] : models_) out.push_back(&m);
  return out;
}

std::string DeviceRegistry::Help() const {
  std::string out;
  for (const DeviceModel* m : Models()) {
    out += fmt::format("  {:<16} ({}) {}\n", m->name, DeviceBusName(m->bus),
                       m->help);
    for (const DeviceKey& k : m->keys) {
      out += fmt::format("      {:<14} {}{}\n", k.pattern, k.help,
                         k.resource ? " [required]" : "");
    }
  }
  return out;
}

Result<std::vector<DeviceInstance>> DeviceRegistry::ParseInstances(
    const Config& config, std::span<const DeviceInstance> fixed) const {
  std::vector<DeviceInstance> out;
  const auto models = Models();

  // The model named by <prefix>.device, which must sit on `bus`.
  auto model_of = [&](const std::string& prefix,
                      DeviceBus bus) -> Result<std::string> {
    const std::string key = prefix + ".device";
    if (config.Children(prefix).empty()) {
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}' must be a group: set {}.device=<model>",
                       prefix, prefix);
    }
    if (!config.Has(key)) {
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}' belongs to no device: set "
                       "'{}=<model>' (see bhyverun --help for the models)",
                       FirstKeyUnder(config, prefix), key);
    }
    const std::string name = STRATA_TRY(config.GetString(key));
    const DeviceModel* m = Find(name);
    if (m == nullptr) {
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}': unknown device model '{}'{}", key,
                       name, Suggestion(name, models));
    }
    if (m->bus != bus) {
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}': {} is a {} device, not a {} device "
                       "(use {})",
                       key, name, DeviceBusName(m->bus), DeviceBusName(bus),
                       m->bus == DeviceBus::kPci
                           ? "pci.<bus>.<slot>.<func>.device"
                           : "platform.<name>.device");
    }
    return name;
  };
  auto must_be_group = [&](std::string_view path,
                           std::string_view form) -> Status {
    if (config.Has(path) && config.Children(path).empty()) {
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}' must be a group: {}", path, form);
    }
    return Ok();
  };

  constexpr std::string_view kPlatformForm = "platform.<name>.device=<model>";
  constexpr std::string_view kPciForm =
      "pci.<bus>.<slot>.<func>.device=<model>";
  STRATA_TRY(must_be_group("platform", kPlatformForm));
  for (const std::string& name : config.Children("platform")) {
    DeviceInstance inst;
    inst.kind = DeviceInstance::Kind::kPlatform;
    inst.name = name;
    inst.prefix = "platform." + name;
    inst.model = STRATA_TRY(model_of(inst.prefix, DeviceBus::kPlatform));
    for (const DeviceInstance& f : fixed) {
      if (f.name == name) {
        return MakeError(Errc::kInvalidArgument,
                         "config key '{}.device': '{}' is already a device of "
                         "this machine ({}{}); choose another name",
                         inst.prefix, name, f.model,
                         f.description.empty() ? "" : ", " + f.description);
      }
    }
    out.push_back(std::move(inst));
  }

  STRATA_TRY(must_be_group("pci", kPciForm));
  std::map<std::string, std::string> seen;  // canonical -> spelled prefix
  for (const std::string& b : config.Children("pci")) {
    const std::string bus_path = "pci." + b;
    auto bus = ParsePciComponent(b, kPciMaxBus);
    if (!bus) {
      return MakeError(Errc::kOutOfRange,
                       "config key '{}': PCI bus '{}' must be a decimal "
                       "number 0-{} ({})",
                       FirstKeyUnder(config, bus_path), b, kPciMaxBus,
                       kPciForm);
    }
    STRATA_TRY(must_be_group(bus_path, kPciForm));
    for (const std::string& s : config.Children(bus_path)) {
      const std::string slot_path = bus_path + "." + s;
      auto slot = ParsePciComponent(s, kPciMaxSlot);
      if (!slot) {
        return MakeError(Errc::kOutOfRange,
                         "config key '{}': PCI slot '{}' must be a decimal "
                         "number 0-{} ({})",
                         FirstKeyUnder(config, slot_path), s, kPciMaxSlot,
                         kPciForm);
      }
      STRATA_TRY(must_be_group(slot_path, kPciForm));
      for (const std::string& f : config.Children(slot_path)) {
        const std::string prefix = slot_path + "." + f;
        auto func = ParsePciComponent(f, kPciMaxFunc);
        if (!func) {
          return MakeError(Errc::kOutOfRange,
                           "config key '{}': PCI function '{}' must be a "
                           "decimal number 0-{} ({})",
                           FirstKeyUnder(config, prefix), f, kPciMaxFunc,
                           kPciForm);
        }
        DeviceInstance inst;
        inst.kind = DeviceInstance::Kind::kPci;
        inst.pci = {static_cast<uint8_t>(*bus), static_cast<uint8_t>(*slot),
                    static_cast<uint8_t>(*func)};
        inst.name = fmt::format("pci.{}.{}.{}", *bus, *slot, *func);
        inst.prefix = prefix;
        auto [it, fresh] = seen.emplace(inst.name, prefix);
        if (!fresh) {
          return MakeError(Errc::kInvalidArgument,
                           "config keys '{}.device' and '{}.device' name the "
                           "same PCI function {}:{}.{}",
                           it->second, prefix, *bus, *slot, *func);
        }
        inst.model = STRATA_TRY(model_of(prefix, DeviceBus::kPci));
        out.push_back(std::move(inst));
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const DeviceInstance& a, const DeviceInstance& b) {
              return std::tie(a.kind, a.pci.bus, a.pci.slot, a.pci.func,
                              a.name) < std::tie(b.kind, b.pci.bus, b.pci.slot,
                                                 b.pci.func, b.name);
            });
  return out;
}

std::vector<std::string> DeviceRegistry::InstanceKeys(
    std::span<const DeviceInstance> instances) const {
  std::vector<std::string> out;
  for (const DeviceInstance& inst : instances) {
    if (inst.kind != DeviceInstance::Kind::kFixed) {
      out.push_back(inst.prefix + ".device");
    }
    const DeviceModel* m = Find(inst.model);
    if (m == nullptr) continue;
    for (const DeviceKey& k : m->keys) {
      if (k.resource && inst.resources.count(k.pattern) != 0) continue;
      out.push_back(inst.prefix + "." + k.pattern);
    }
  }
  return out;
}

// --- DeviceSet --------------------------------------------------------------

Result<const DeviceModel*> DeviceSet::ModelFor(
    const DeviceInstance& instance) const {
  const DeviceModel* m = registry_.Find(instance.model);
  if (m == nullptr) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: unknown device model '{}'", instance.prefix,
                     instance.model);
  }
  const DeviceBus want = instance.kind == DeviceInstance::Kind::kPci
                             ? DeviceBus::kPci
                             : DeviceBus::kPlatform;
  if (m->bus != want) {
    return MakeError(Errc::kInvalidArgument, "{}: {} is a {} device, not a {} "
                     "device", instance.prefix, m->name, DeviceBusName(m->bus),
                     DeviceBusName(want));
  }
  return m;
}

Status DeviceSet::Check(const DeviceInstance& instance) {
  const DeviceModel* m = STRATA_TRY(ModelFor(instance));
  if (!m->check) return Ok();
  DeviceContext ctx(config_, instance, *m, host_);
  return m->check(ctx);
}

Status DeviceSet::Create(const DeviceInstance& instance) {
  if (host_.vm() == nullptr) {
    return MakeError(Errc::kInternal, "{}: creating a device needs a VM",
                     instance.prefix);
  }
  if (Find(instance.name) != nullptr) {
    return MakeError(Errc::kAlreadyExists, "device '{}' already exists",
                     instance.name);
  }
  const DeviceModel* m = STRATA_TRY(ModelFor(instance));
  DeviceContext ctx(config_, instance, *m, host_);
  if (m->check) STRATA_TRY(m->check(ctx));
  auto object = m->create(ctx);
  if (!object) {
    Error e = std::move(object).error().Wrap(
        fmt::format("creating {}", ctx.Describe()));
    // A range another device holds: the config put two devices on it,
    // which is bad input (core/bus.h reports it as kAlreadyExists).
    if (e.code() == Errc::kAlreadyExists) {
      return Error(Errc::kInvalidArgument, e.message());
    }
    return e;
  }
  devices_.push_back({instance, std::move(*object)});
  return Ok();
}

const DeviceSet::Created* DeviceSet::Find(std::string_view name) const {
  for (const Created& c : devices_) {
    if (c.instance.name == name) return &c;
  }
  return nullptr;
}

void DeviceSet::Clear() {
  while (!devices_.empty()) devices_.pop_back();
}

}  // namespace strata
