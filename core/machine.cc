#include "core/machine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <iterator>
#include <system_error>
#include <utility>

#include "core/host_file.h"
#include "core/log.h"
#include "core/vmmapi.h"

namespace strata {

namespace {

// The keys the MI layer reads; the machine (platform::ConfigKeys) and the
// device instances add theirs. Anything else in a config is a typo.
constexpr ConfigKeyHelp kMiKeys[] = {
    {"cpus", "vCPUs to create (default 1)"},
    {"cpu.sockets", "topology: sockets (default: one per vCPU)"},
    {"cpu.cores", "topology: cores per socket (default 1)"},
    {"cpu.threads", "topology: threads per core (default 1)"},
    {"cpu.max", "the VM's fixed vCPU limit (default: cpus)"},
    {"memory.size", "guest RAM, e.g. 256M, 2G (default 256M)"},
    {"memory.backing",
     "anonymous (default: private memory with transparent huge pages, as "
     "QEMU) or memfd (one shareable memfd per segment)"},
    {"kernel.path", "guest kernel (default: the machine's built-in guest)"},
    {"kernel.cmdline", "kernel command line"},
    {"kernel.initrd", "initrd / boot module"},
    {"log.level", "trace, debug, info, warn, error, critical, off"},
    {"bus.unclaimed_fatal", "stop the VM on an access nothing claims"},
    {"name", "the VM's name (default strata)"},
};

// Every platform.<name>.device / pci.<b>.<s>.<f>.device is an instance, so
// these always match something known; listing them lets a misspelt
// instance key ("platfrom.x.device") get a suggestion.
constexpr std::string_view kInstancePatterns[] = {
    "platform.*.device",
    "pci.*.*.*.device",
};

constexpr std::string_view kDefaultMemory = "256M";
// memory.size: at least what the boot data and a small kernel need, in
// whole pages (guest memory is mapped in 4 KiB pages).
constexpr uint64_t kMinMemory = 2u << 20;
constexpr uint64_t kMemoryGranule = 4096;

Status CheckLogLevel(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps anything unknown to "off"; only accept "off" when asked.
  if (lvl == spdlog::level::off && level != "off") {
    return MakeError(Errc::kInvalidArgument,
                     "log.level: unknown log level '{}' (use trace, debug, "
                     "info, warn, error, critical or off)",
                     level);
  }
  return Ok();
}

// Blocks until fd is readable (the VM's exit eventfd).
void WaitReadable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  while (::poll(&p, 1, -1) <= 0 || !(p.revents & POLLIN)) {
  }
}

void Signal(int efd) {
  const uint64_t one = 1;
  ssize_t n = ::write(efd, &one, sizeof one);
  (void)n;  // an eventfd write of 1 cannot fail short of overflow
}

}  // namespace

// Everything Prepare resolves from the config.
struct Machine::Plan {
  uint32_t cpus = 1;
  uint32_t max_vcpus = 1;
  uint64_t memory_size = 0;
  GuestMemory::Backing memory_backing = GuestMemory::Backing::kAnonymous;
  CpuTopology topology;
  md::MachineOptions machine;
  std::string name;
  bool unclaimed_fatal = false;
  std::vector<DeviceInstance> fixed;
  std::vector<DeviceInstance> declared;
};

namespace {

// Resolves cpus/topology/maxcpus into consistent values, written back to
// the config so a dump shows what runs. Every count is a 32-bit quantity
// (CPUID and APIC ids carry them) and at least 1; their product is
// computed checked, so no value wraps or truncates.
Status ResolveTopology(Config& c, uint32_t* cpus_out, uint32_t* max_out,
                       CpuTopology* topo) {
  const bool topo_given = c.Has("cpu.sockets") || c.Has("cpu.cores") ||
                          c.Has("cpu.threads");
  uint64_t sockets =
      STRATA_TRY(c.GetUintInRange("cpu.sockets", 1, 1, UINT32_MAX));
  const uint64_t cores =
      STRATA_TRY(c.GetUintInRange("cpu.cores", 1, 1, UINT32_MAX));
  const uint64_t threads =
      STRATA_TRY(c.GetUintInRange("cpu.threads", 1, 1, UINT32_MAX));
  uint64_t product = 0;
  if (__builtin_mul_overflow(sockets, cores, &product) ||
      __builtin_mul_overflow(product, threads, &product) ||
      product > UINT32_MAX) {
    return MakeError(Errc::kOutOfRange,
                     "the topology cpu.sockets={} x cpu.cores={} x "
                     "cpu.threads={} has more than {} logical processors",
                     sockets, cores, threads, UINT32_MAX);
  }
  uint64_t cpus;
  if (c.Has("cpus")) {
    cpus = STRATA_TRY(c.GetUintInRange("cpus", 1, 1, UINT32_MAX));
  } else {
    cpus = topo_given ? product : 1;
  }
  if (!topo_given) {
    // One socket per vCPU, one core, one thread (bhyve's default).
    sockets = cpus;
    product = cpus;
  } else if (cpus > product) {
    return MakeError(Errc::kInvalidArgument,
                     "cpus={} exceeds the topology sockets={} x cores={} x "
                     "threads={} = {}",
                     cpus, sockets, cores, threads, product);
  }
  const uint64_t maxcpus =
      STRATA_TRY(c.GetUintInRange("cpu.max", cpus, 1, UINT32_MAX));
  if (maxcpus < cpus) {
    return MakeError(Errc::kInvalidArgument,
                     "cpu.max={} is less than cpus={}", maxcpus, cpus);
  }
  STRATA_TRY(c.Set("cpus", std::to_string(cpus)));
  STRATA_TRY(c.Set("cpu.sockets", std::to_string(sockets)));
  STRATA_TRY(c.Set("cpu.cores", std::to_string(cores)));
  STRATA_TRY(c.Set("cpu.threads", std::to_string(threads)));
  STRATA_TRY(c.Set("cpu.max", std::to_string(maxcpus)));
  *cpus_out = static_cast<uint32_t>(cpus);
  *max_out = static_cast<uint32_t>(maxcpus);
  topo->sockets = static_cast<uint32_t>(sockets);
  topo->cores = static_cast<uint32_t>(cores);
  topo->threads = static_cast<uint32_t>(threads);
  return Ok();
}

}  // namespace

Result<std::unique_ptr<DeviceRegistry>> Machine::BuildRegistry(
    const Options& options) {
  auto reg = std::make_unique<DeviceRegistry>();
  STRATA_TRY(platform::RegisterDeviceModels(*reg));
  for (const DeviceModel& m : options.models) STRATA_TRY(reg->Register(m));
  return reg;
}

Result<Machine::Plan> Machine::Prepare(Config& c,
                                       const DeviceRegistry& registry) {
  Plan plan;
  STRATA_TRY(c.SetDefault("memory.size", kDefaultMemory));
  STRATA_TRY(platform::InitConfig(c));

  // Instances first: their keys are known keys.
  plan.fixed = platform::FixedDevices();
  plan.declared = STRATA_TRY(registry.ParseInstances(c, plan.fixed));
  std::vector<std::string> keys;
  for (const ConfigKeyHelp& k : kMiKeys) keys.emplace_back(k.key);
  for (const ConfigKeyHelp& k : platform::ConfigKeys()) {
    keys.emplace_back(k.key);
  }
  for (std::string_view p : kInstancePatterns) keys.emplace_back(p);
  for (auto& k : registry.InstanceKeys(plan.fixed)) keys.push_back(k);
  for (auto& k : registry.InstanceKeys(plan.declared)) keys.push_back(k);
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  // Before anything reads the config: a misspelt key would otherwise be
  // ignored and its default used.
  STRATA_TRY(c.CheckKnownKeys(views));

  STRATA_TRY(ResolveTopology(c, &plan.cpus, &plan.max_vcpus, &plan.topology));
  if (c.Has("log.level")) {
    STRATA_TRY(CheckLogLevel(STRATA_TRY(c.GetString("log.level"))));
  }
  plan.memory_size =
      STRATA_TRY(c.GetSizeInRange("memory.size", 0, kMinMemory, UINT64_MAX));
  const std::string backing =
      STRATA_TRY(c.GetString("memory.backing", "anonymous"));
  if (backing == "memfd") {
    plan.memory_backing = GuestMemory::Backing::kMemfd;
  } else if (backing != "anonymous") {
    return MakeError(Errc::kInvalidArgument,
                     "memory.backing must be anonymous or memfd, got '{}'",
                     backing);
  }
  if (plan.memory_size % kMemoryGranule != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "memory.size {} is not a multiple of 4 KiB",
                     plan.memory_size);
  }
  plan.name = STRATA_TRY(c.GetString("name", "strata"));
  plan.unclaimed_fatal = STRATA_TRY(c.GetBool("bus.unclaimed_fatal", false));
  plan.machine = STRATA_TRY(platform::MachineOptions(c));

  for (const DeviceInstance& inst : plan.declared) {
    if (inst.kind == DeviceInstance::Kind::kPci) {
      STRATA_TRY(platform::CheckPciInstance(inst));
    }
  }
  // Each device's own settings, with a host that has no VM yet.
  DeviceHost check_host(nullptr, platform::IrqPin);
  DeviceSet check(registry, c, check_host);
  for (const DeviceInstance& inst : plan.fixed) STRATA_TRY(check.Check(inst));
  for (const DeviceInstance& inst : plan.declared) {
    STRATA_TRY(check.Check(inst));
  }
  return plan;
}

Status Machine::PrepareConfig(Config& config, const Options& options) {
  auto registry = STRATA_TRY(BuildRegistry(options));
  STRATA_TRY(Prepare(config, *registry));
  return Ok();
}

Status Machine::PrepareConfig(Config& config) {
  return PrepareConfig(config, Options());
}

Result<std::unique_ptr<Machine>> Machine::Create(Config config) {
  return Create(std::move(config), Options());
}

Result<std::unique_ptr<Machine>> Machine::Create(Config config,
                                                 Options options,
                                                 Step* failed_step) {
  return Build(std::move(config), std::move(options), failed_step,
               /*restoring=*/false);
}

Result<std::unique_ptr<Machine>> Machine::Build(Config config, Options options,
                                                Step* failed_step,
                                                bool restoring) {
  Step step = Step::kInput;
  auto fail = [&](Error e) -> Error {
    if (failed_step != nullptr) *failed_step = step;
    return e;
  };
#define STRATA_STEP(expr)                       \
  ({                                            \
    auto strata_step_r_ = (expr);               \
    if (!strata_step_r_) {                      \
      return fail(std::move(strata_step_r_).error()); \
    }                                           \
    std::move(strata_step_r_).value();          \
  })

  // 1. The input, before the host is touched.
  std::unique_ptr<Machine> m(new Machine(std::move(config)));
  m->registry_ = STRATA_STEP(BuildRegistry(options));
  Plan plan = STRATA_STEP(Prepare(m->config_, *m->registry_));
  const Config& c = m->config_;
  m->cpus_ = plan.cpus;
  std::shared_ptr<spdlog::logger> logger =
      options.logger ? options.logger : DefaultLogger();
  if (c.Has("log.level")) {
    const std::string level = STRATA_STEP(c.GetString("log.level"));
    logger->set_level(spdlog::level::from_str(level));
  }
  // The kernel and initrd: missing, not a regular file, larger than guest
  // RAM are bad input like any other.
  std::optional<ByteSource> kernel, initrd;
  // A restore loads RAM from the snapshot: the kernel is not read again
  // (it need not exist any more).
  if (!restoring && c.Has("kernel.path")) {
    const std::string path = STRATA_STEP(c.GetString("kernel.path"));
    kernel = STRATA_STEP(HostFile::Open(path, "kernel", plan.memory_size));
  }
  if (!restoring && c.Has("kernel.initrd")) {
    const std::string path = STRATA_STEP(c.GetString("kernel.initrd"));
    initrd = STRATA_STEP(HostFile::Open(path, "initrd", plan.memory_size));
  }
  // The host's vCPU limit is the one input check that needs the host.
  step = Step::kHost;
  const uint32_t host_max = STRATA_STEP(HostMaxVcpus(options.kvm_device));
  step = Step::kInput;
  if (plan.max_vcpus > host_max) {
    return fail(MakeError(Errc::kOutOfRange,
                          "cpu.max={} is more than this host's limit of {} "
                          "vCPUs (KVM_CAP_MAX_VCPUS)",
                          plan.max_vcpus, host_max));
  }

  // 2. The VM.
  step = Step::kHost;
  VmOptions vo;
  vo.name = plan.name;
  vo.max_vcpus = plan.max_vcpus;
  vo.topology = plan.topology;
  vo.machine = plan.machine;
  vo.memory_backing = plan.memory_backing;
  vo.logger = logger;
  m->vm_ = STRATA_STEP(CreateKvmVm(vo, options.kvm_device));
  Vm& vm = *m->vm_;
  vm.pio_bus().set_unclaimed_fatal(plan.unclaimed_fatal);
  vm.mmio_bus().set_unclaimed_fatal(plan.unclaimed_fatal);
  m->exit_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->exit_fd_) return fail(SysError("eventfd for the VM's exit"));

  // 3. The platform and the devices. These still check input (the
  //    kernel's segments against RAM, device addresses against each other).
  step = Step::kInput;
  m->host_ = std::make_unique<DeviceHost>(&vm, platform::IrqPin);
  m->devices_ = std::make_unique<DeviceSet>(*m->registry_, c, *m->host_);
  PlatformContext ctx{c,           vm,
                      *m->devices_, plan.cpus,
                      plan.memory_size, std::move(kernel),
                      std::move(initrd), nullptr};
  STRATA_STEP(platform::Init(ctx));
  for (const DeviceInstance& inst : plan.declared) {
    STRATA_STEP(m->devices_->Create(inst));
  }
  step = Step::kHost;
  for (uint32_t i = 0; i < plan.cpus; ++i) {
    Vcpu* v = STRATA_STEP(vm.CreateVcpu(i));
    STRATA_STEP(platform::InitVcpu(ctx, *v));
  }
  if (!restoring) {
    step = Step::kInput;
    STRATA_STEP(platform::LoadGuest(ctx));
    step = Step::kHost;
    for (uint32_t i = 0; i < plan.cpus; ++i) {
      STRATA_STEP(platform::StartVcpu(ctx, *vm.vcpu(i)));
    }
  }
  m->platform_state_ = std::move(ctx.md);
#undef STRATA_STEP
  return m;
}

Machine::~Machine() {
  if (started_ && !waited_) {
    RequestStop(ExitStatus::Stopped("machine destroyed while running"));
    (void)Wait();
  }
  if (host_) host_->RunStopHooks();
  vm_.reset();  // stops nothing more: no vCPU runs; waits for driver holds
  if (devices_) devices_->Clear();
}

Status Machine::Start() {
  if (started_) return MakeError(Errc::kBusy, "the machine was started already");
  started_ = true;
  if (Status s = host_->RunStartHooks(); !s) {
    RequestStop(ExitStatus::VmmError(s.error().message()));
    waited_ = true;
    host_->RunStopHooks();
    return s;
  }
  running_.store(cpus_);
  // Save may come as soon as the guest can have asked for it; a vCPU whose
  // thread is not started yet is frozen as well (it parks at its loop top
  // when it starts under the lock).
  live_.store(true);
  for (uint32_t i = 0; i < cpus_; ++i) {
    Vcpu* v = vm_->vcpu(i);
    auto body = [this, v] {
      Status s = v->Run();
      if (!s) {
        vm_->RequestStop(ExitStatus::VmmError(
            fmt::format("vCPU {}: {}", v->id(), s.error().message())));
      }
      if (running_.fetch_sub(1) == 1) Signal(exit_fd_.get());
    };
    try {
      threads_.emplace_back(body);
    } catch (const std::system_error& e) {
      // No exception crosses the API: stop what runs, report the error.
      const Error err(Errc::kIo, fmt::format("starting the thread of vCPU "
                                             "{}: {}", i, e.what()));
      RequestStop(ExitStatus::VmmError(err.message()));
      // The threads that never started count as returned.
      if (running_.fetch_sub(cpus_ - i) == cpus_ - i) Signal(exit_fd_.get());
      (void)Wait();
      return err;
    }
  }
  return Ok();
}

void Machine::JoinVcpuThreads() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

ExitStatus Machine::Wait() {
  if (final_status_) return *final_status_;
  if (!started_) {
    return vm_->exit_status().value_or(
        ExitStatus::VmmError("the machine was never started"));
  }
  if (!threads_.empty()) WaitReadable(exit_fd_.get());
  live_.store(false);
  JoinVcpuThreads();
  waited_ = true;
  host_->RunStopHooks();
  final_status_ = vm_->exit_status().value_or(
      ExitStatus::VmmError("all vCPUs returned without a stop request"));
  // Exit counts per vCPU, kick signals, unclaimed accesses: at debug level
  // (bhyverun -l debug).
  vm_->log().debug("{}", vm_->DumpStats());
  return *final_status_;
}

ExitStatus Machine::Run() {
  if (Status s = Start(); !s) {
    return ExitStatus::VmmError(s.error().message());
  }
  return Wait();
}

void Machine::RequestStop(ExitStatus status) {
  vm_->RequestStop(std::move(status));
}

std::string_view Machine::Name() { return platform::Name(); }

std::vector<ConfigKeyHelp> Machine::ConfigKeys() {
  std::vector<ConfigKeyHelp> keys(std::begin(kMiKeys), std::end(kMiKeys));
  for (const ConfigKeyHelp& k : platform::ConfigKeys()) keys.push_back(k);
  return keys;
}

std::span<const CommandLineOption> Machine::CommandLineOptions() {
  return platform::CommandLineOptions();
}

Result<std::string> Machine::DeviceHelp() { return DeviceHelp(Options()); }

Result<std::string> Machine::DeviceHelp(const Options& options) {
  auto registry = STRATA_TRY(BuildRegistry(options));
  std::string out = fmt::format(
      "Devices of the {} machine (their settings: <name>.<key>):\n",
      platform::Name());
  for (const DeviceInstance& d : platform::FixedDevices()) {
    std::string keys;
    for (const std::string& k : registry->InstanceKeys(std::span(&d, 1))) {
      keys += (keys.empty() ? "; keys: " : ", ") + k;
    }
    out += fmt::format("  {:<16} {:<16} {}{}\n", d.name, d.model,
                       d.description, keys);
  }
  out +=
      "Device models, for platform.<name>.device=<model> (settings\n"
      "platform.<name>.<key>) and pci.<bus>.<slot>.<func>.device=<model>\n"
      "(bus 0-255, slot 0-31, func 0-7; settings pci.<b>.<s>.<f>.<key>):\n";
  out += registry->Help();
  return out;
}

}  // namespace strata
