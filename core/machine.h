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
//   Create         PrepareConfig, then opens and checks the kernel and
//                  initrd files, creates the VM on KVM, builds the platform
//                  and the devices, creates the vCPUs, loads the guest
//                  (reading those files into guest RAM) and sets the boot
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
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/device_registry.h"
#include "core/platform.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "core/vm.h"

namespace spdlog {
class logger;
}

namespace strata {

class SnapshotReader;  // core/snapshot.h

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
  int exit_fd() const { return exit_fd_.get(); }
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

  // --- Snapshots (core/snapshot.h; core/machine_snapshot.cc) -------------
  // Save writes the running machine to `path`: it freezes every vCPU with
  // a VcpuLock (each out of KVM_RUN, its last exit completed), has the
  // backend write what it keeps in guest memory (arm64: the vGIC's tables),
  // then writes the config, each vCPU's state, the backend's VM state, the
  // devices' states and guest RAM to "<path>.tmp", and renames it to
  // `path`. With `then_stop` the VM is stopped (ExitStatus::Stopped) before
  // any vCPU runs again; otherwise the vCPUs resume. Nothing is written
  // partially: if the backend or any device cannot save its state (a
  // model without snapshot support, amd64's backend, arm64 with MTE or
  // GICv2), Save fails with an error naming it and the VM goes on as if
  // nothing happened. kBusy unless the machine runs. Call it from any
  // thread but the machine's vCPU threads (a vCPU cannot wait for the
  // others).
  Status Save(const std::string& path, bool then_stop);
  // Creates a machine from a snapshot: the config saved in it (so the file
  // is all it needs; the kernel and initrd are not read), then guest RAM,
  // each vCPU's state, the backend's VM state and the devices' states. The
  // result is ready to Start, as after Create. A file that is not a valid
  // snapshot of this architecture (truncated, corrupt, another version or
  // architecture) is bad input (Step::kInput, kInvalidArgument) with a
  // message that says what is wrong; a missing file is kNotFound.
  static Result<std::unique_ptr<Machine>> Restore(const std::string& path,
                                                  Options options,
                                                  Step* failed_step = nullptr);

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
  // Create's body; a restore builds the machine without loading a guest or
  // setting the boot vCPU's entry state.
  static Result<std::unique_ptr<Machine>> Build(Config config, Options options,
                                                Step* failed_step,
                                                bool restoring);
  Status CheckSnapshotParts() const;
  Status LoadSnapshot(const SnapshotReader& reader);
  void JoinVcpuThreads();

  Config config_;
  uint32_t cpus_ = 1;
  std::unique_ptr<DeviceRegistry> registry_;
  std::unique_ptr<DeviceHost> host_;
  std::unique_ptr<DeviceSet> devices_;
  std::unique_ptr<Vm> vm_;
  std::shared_ptr<void> platform_state_;

  UniqueFd exit_fd_;
  bool started_ = false;
  bool waited_ = false;
  std::optional<ExitStatus> final_status_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> running_{0};
  // Save's view, from any thread: between a successful Start and Wait.
  std::atomic<bool> live_{false};
  std::mutex save_mu_;
};

}  // namespace strata
