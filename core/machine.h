// strata — a machine: a VM with its platform, devices and guest, built from
// a config; what bhyverun and embedders both use.
//
// Theory. Vm (core/vm.h) is the low-level API: memory, vCPUs and buses, and
// no devices. A Machine is the layer above it. From a Config it builds what
// a bhyve user expects — the architecture's machine (arch/<arch>/platform/,
// through core/platform.h: memory map, interrupt controllers, fixed
// devices, firmware items, guest loading, vCPU start state), the device
// instances the config declares (core/device_registry.h) — runs one host
// thread per vCPU, and reports why the VM stopped.
//
// Life cycle:
//   PrepareConfig  the machine's defaults, then every check that needs no
//                  host: each key known (MI keys, the machine's, and each
//                  device instance's model keys; else the closest known key
//                  is suggested), numbers in range, the topology, the
//                  memory size, the device instances and their settings.
//                  The config is then what will run (bhyverun's
//                  --dump-config prints it).
//   Create         PrepareConfig, then reads the kernel and initrd, creates
//                  the VM on KVM, builds the platform and the devices,
//                  creates the vCPUs, loads the guest and sets the boot
//                  vCPU's entry state. Nothing runs yet: an embedder may
//                  now add devices of its own — IoDevices registered on
//                  vm().pio_bus() / vm().mmio_bus(), or instances of its own
//                  models (Options::models) declared in the config — and
//                  look at or change vCPU state.
//   Start          starts the devices' threads (the stdio console), then one
//                  host thread per vCPU; returns at once.
//   exit_fd        an eventfd that becomes readable once every vCPU thread
//                  has returned, i.e. the VM stopped: poll it in your own
//                  event loop, then call Wait.
//   Wait           waits for the vCPU threads, stops the devices' threads
//                  (the console writes out what it holds and restores the
//                  terminal) and returns the ExitStatus. Run() is Start()
//                  then Wait().
//   RequestStop    from any thread: the first status wins.
//   ~Machine       stops a VM that still runs (VmmError "machine
//                  destroyed") and waits for it.
//
// Threads. vCPU threads start with the signal mask of the thread that calls
// Start (bhyverun blocks SIGINT/SIGTERM/SIGHUP there and turns them into
// RequestStop); device threads block every signal.
//
// Errors come back as Result; Create also says which step failed: kInput
// (the config or the kernel/initrd files: the caller's to fix) or kHost
// (KVM or vCPU creation: the host's or strata's). bhyverun maps the first,
// when the error code says bad input, to exit status 8 and the rest to 6.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/device_registry.h"
#include "core/platform.h"
#include "core/result.h"
#include "core/vm.h"

namespace spdlog {
class logger;
}

namespace strata {

class Machine {
 public:
  struct Options {
    std::string kvm_device = "/dev/kvm";
    // The VM's logger (its devices log through it); null: the strata
    // logger. A log.level in the config applies to it.
    std::shared_ptr<spdlog::logger> logger;
    // The embedder's own device models, declared in the config like any
    // other (platform.<name>.device=<model>, pci.<b>.<s>.<f>.device=...).
    std::vector<DeviceModel> models;
  };

  // Which step of Create failed.
  enum class Step : uint8_t { kInput, kHost };

  // Applies the machine's defaults to config and checks it (see above).
  // Touches no host resource: no KVM, no files.
  static Status PrepareConfig(Config& config, const Options& options);
  static Status PrepareConfig(Config& config);

  // Builds the machine (see above). On failure *failed_step (if given) says
  // which step failed.
  static Result<std::unique_ptr<Machine>> Create(
      Config config, Options options, Step* failed_step = nullptr);
  static Result<std::unique_ptr<Machine>> Create(Config config);

  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Starts the VM (see above). kBusy if already started; a device that
  // cannot start (kIo, ...) leaves the VM not running.
  Status Start();
  // Readable (EFD_NONBLOCK eventfd, never reset) once the VM has stopped
  // after Start.
  int exit_fd() const { return exit_fd_; }
  // Waits for the stop (see above). Call from one thread; later calls
  // return the same status. Without Start: the stop status if one was
  // requested, else a VmmError saying the machine never ran.
  ExitStatus Wait();
  // Start() and Wait(); a failed Start is a VmmError status.
  ExitStatus Run();
  void RequestStop(ExitStatus status);

  Vm& vm() { return *vm_; }
  const Config& config() const { return config_; }
  uint32_t cpus() const { return cpus_; }
  // The devices created from the config (fixed and declared), by instance
  // name: "com1", "com2" (platform.com2), "pci.0.3.0".
  const DeviceSet& devices() const { return *devices_; }

  // --- For front ends ---------------------------------------------------
  // The machine's name ("pc").
  static std::string_view Name();
  // The MI keys and the machine's, with help (device keys: DeviceHelp).
  static std::vector<ConfigKeyHelp> ConfigKeys();
  // Long options for machine keys (--cpu-vendor).
  static std::span<const CommandLineOption> CommandLineOptions();
  // The machine's fixed devices and every model it offers (with the
  // embedder's), with their keys.
  static Result<std::string> DeviceHelp(const Options& options);
  static Result<std::string> DeviceHelp();

 private:
  struct Plan;
  explicit Machine(Config config) : config_(std::move(config)) {}
  static Result<std::unique_ptr<DeviceRegistry>> BuildRegistry(
      const Options& options);
  static Result<Plan> Prepare(Config& config, const DeviceRegistry& registry);
  void JoinVcpuThreads();

  Config config_;
  uint32_t cpus_ = 1;
  std::unique_ptr<DeviceRegistry> registry_;
  std::unique_ptr<DeviceHost> host_;
  std::unique_ptr<DeviceSet> devices_;
  std::unique_ptr<Vm> vm_;
  std::shared_ptr<void> platform_state_;

  int exit_fd_ = -1;
  bool started_ = false;
  bool waited_ = false;
  std::optional<ExitStatus> final_status_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> running_{0};
};

}  // namespace strata
