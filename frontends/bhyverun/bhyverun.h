// strata — bhyverun, the runnable VMM: shared (MI) declarations.
//
// bhyverun.cc is machine independent: it parses options into the config
// tree, creates the VM and its vCPUs, runs one host thread per vCPU and
// turns the VM's ExitStatus into the process exit status. Each architecture
// provides the hooks below in frontends/bhyverun/<arch>/bhyverun_machdep.cc,
// shaped like bhyve's bhyverun_machdep.c.
//
// Exit status (documented in README.md):
//   0        the guest powered off
//   (V<<1)|1 the guest wrote V to the debug-exit device
//   2        the guest asked for a reset (not supported yet)
//   4        the guest crashed (triple fault / crash event)
//   6        a VMM error stopped the VM (unknown exit, host failure, ...)
//   8        bad input: command line, configuration, kernel or initrd
// Which of 6 and 8 a failure before the guest runs gets follows one rule,
// stated with SetupFailure in bhyverun.cc: input-checking steps report bad
// input as kInvalidArgument, kOutOfRange, kNotFound or kUnsupported (8);
// anything else is the host or strata failing (6).
// 1 and 77 are never produced by the VMM itself (kvm-unit-tests reads them
// as pass and skip).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/result.h"
#include "core/vmmapi.h"
#include "devices/irq.h"

namespace strata::bhyverun {

// Everything bhyverun builds for one VM; devices live as long as this.
struct Context {
  Config config;
  std::unique_ptr<Vm> vm;
  uint32_t cpus = 1;
  uint64_t memsize = 0;
  // kernel.path's and kernel.initrd's contents, read (and so checked)
  // before the VM is created; no kernel means the built-in demo guest.
  std::optional<std::vector<uint8_t>> kernel;
  std::optional<std::vector<uint8_t>> initrd;
  std::vector<std::shared_ptr<void>> owned;  // devices, backends, lines
  std::shared_ptr<void> machdep;             // the MD hooks' own state

  template <typename T>
  T* Own(std::shared_ptr<T> p) {
    owned.push_back(p);
    return p.get();
  }
};

// An interrupt line wired to an input of the VM's interrupt controller (a
// GSI on amd64, an SPI on arm64).
class PinLine : public IrqLine {
 public:
  PinLine(Vm& vm, md::IrqPin pin) : vm_(vm), pin_(pin) {}
  void SetLevel(bool asserted) override;

 private:
  Vm& vm_;
  md::IrqPin pin_;
};

// --- MD hooks (same names in every architecture) ---

// Sets the architecture's defaults in the config tree (bhyve's
// bhyve_init_config()).
Status bhyve_init_config(Config& config);

// Usage lines for architecture-specific config keys.
const char* bhyve_usage_machdep();

// The architecture's config keys (patterns for Config::CheckKnownKeys; `*`
// matches one component). bhyverun rejects any key that is neither one of
// these nor an MI key, before it runs or dumps the config.
std::span<const std::string_view> bhyve_config_keys_machdep();

// Architecture-specific long options (bhyve's bhyve_optparse()): each sets
// one config key from its argument. Terminated by a null name.
struct MachdepOption {
  const char* name;  // --name VALUE
  const char* key;   // config key it sets
  const char* help;
};
const MachdepOption* bhyve_options_machdep();

// Reads the MD creation-time options from the config.
Result<md::MachineOptions> bhyve_machine_options(const Config& config);

// Guest memory and devices (bhyve's init_platform / init_pci).
Status bhyve_init_platform(Context& ctx);

// Per-vCPU setup after creation (bhyve's bhyve_init_vcpu()).
Status bhyve_init_vcpu(Context& ctx, Vcpu& vcpu);

// Loads the guest (or the built-in demo) and builds firmware tables
// (bhyve's init_platform_late).
Status bhyve_init_platform_late(Context& ctx);

// Readies a vCPU to run, just before its thread starts (bhyve's
// bhyve_start_vcpu()): the boot vCPU gets the loader's entry state; the
// others wait to be started by the guest (INIT/SIPI, PSCI CPU_ON).
Status bhyve_start_vcpu(Context& ctx, Vcpu& vcpu);

// Runs bhyverun with argv; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace strata::bhyverun
