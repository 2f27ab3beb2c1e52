// strata — what a machine provides: the machine-dependent half of
// core/machine.h.
//
// Each architecture has its machines under arch/<arch>/platform/ (amd64:
// pc; arm64: virt, with the arm64 issue). Every one defines the functions
// below under the same names, and the build links exactly one of them
// (//arch:platform selects it, as //arch:md_headers selects the MD
// headers), so core/machine.cc calls them without naming an architecture.
// Read together they are bhyve's bhyverun flow: bhyve_init_config,
// bhyve_optparse's MD options, the VM's creation options, then
// bhyve_init_platform, bhyve_init_vcpu, init_platform_late and
// bhyve_start_vcpu.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/device_registry.h"
#include "core/host_file.h"
#include "core/result.h"
#include "core/vm.h"
#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

namespace strata {

// A config key a machine (or the MI layer) reads, with one line of help.
struct ConfigKeyHelp {
  std::string_view key;  // a Config::CheckKnownKeys pattern
  std::string_view help;
};

// A front-end long option that sets one config key (`--cpu-vendor amd`
// sets x86.cpu_vendor).
struct CommandLineOption {
  const char* name;
  const char* key;
  const char* help;
};

// One firmware table (or set of tables) as a file: bhyverun --dump-tables
// writes each as <dir>/<name>.
struct FirmwareFile {
  std::string name;  // "APIC.dat", "smbios.bin"
  std::vector<uint8_t> data;
};

// What a machine's init steps share for one VM (bhyve's globals, made a
// value).
struct PlatformContext {
  const Config& config;
  Vm& vm;
  DeviceSet& devices;  // creates devices through the registry
  uint32_t cpus = 1;
  uint64_t memory_size = 0;
  // kernel.path and kernel.initrd, opened and checked (regular files of
  // bounded size) before the VM was created; read by LoadGuest, which may
  // copy them straight into guest RAM. No kernel: the built-in guest.
  std::optional<ByteSource> kernel;
  std::optional<ByteSource> initrd;
  std::shared_ptr<void> md;  // the machine's own state between the steps
};

namespace platform {

// The machine's name, for messages and help ("pc").
std::string_view Name();

// Sets the machine's defaults for keys the config leaves unset.
Status InitConfig(Config& config);
// The keys the machine reads beyond the MI ones and its devices'.
std::span<const ConfigKeyHelp> ConfigKeys();
// Front-end options for some of those keys.
std::span<const CommandLineOption> CommandLineOptions();

// Registers every device model the machine offers: the arch-neutral ones
// (devices/registry.h) and its own.
Status RegisterDeviceModels(DeviceRegistry& registry);
// The devices every VM of the machine has (kind kFixed, with resources).
std::vector<DeviceInstance> FixedDevices();
// The interrupt-controller input that device instances call `number`.
Result<md::IrqPin> IrqPin(uint64_t number);
// Whether a PCI instance can be created on this machine: its bus and slot
// against the machine's PCI topology (pc: bus 0, slots 1-31; a machine
// without PCI: kUnsupported). Errors name the instance's key.
Status CheckPciInstance(const DeviceInstance& instance);

// The VM's creation options from the config, and every check of the
// machine's keys that needs no host (bad input: kInvalidArgument or
// kOutOfRange).
Result<md::MachineOptions> MachineOptions(const Config& config);

// The firmware tables a VM of the prepared `config` gets, built without a
// VM (pc: each ACPI table as <SIGNATURE>.dat, SMBIOS as smbios.bin in
// dmidecode --dump-bin's layout); kUnsupported where a machine has none.
Result<std::vector<FirmwareFile>> FirmwareTables(const Config& config);

// Builds the machine on a new VM: memory map, interrupt controllers, fixed
// devices, firmware items (bhyve_init_platform).
Status Init(PlatformContext& m);
// After each vCPU is created (bhyve_init_vcpu).
Status InitVcpu(PlatformContext& m, Vcpu& vcpu);
// Loads the guest (or the built-in one) into memory (init_platform_late).
Status LoadGuest(PlatformContext& m);
// A vCPU's start state: the boot vCPU gets the loader's entry state, the
// others wait to be started by the guest (bhyve_start_vcpu).
Status StartVcpu(PlatformContext& m, Vcpu& vcpu);

}  // namespace platform
}  // namespace strata
