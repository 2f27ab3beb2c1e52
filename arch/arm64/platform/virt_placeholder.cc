// strata — placeholder for the arm64 "virt" machine (see BUILD): every step
// that would build a VM reports that the machine does not exist yet.
#include "core/platform.h"

namespace strata::platform {

namespace {

Error NotYet() {
  return MakeError(Errc::kUnsupported,
                   "the arm64 'virt' machine is not implemented yet");
}

}  // namespace

std::string_view Name() { return "virt"; }
Status InitConfig(Config&) { return Ok(); }
std::span<const ConfigKeyHelp> ConfigKeys() { return {}; }
std::span<const CommandLineOption> CommandLineOptions() { return {}; }
Status RegisterDeviceModels(DeviceRegistry&) { return Ok(); }
std::vector<DeviceInstance> FixedDevices() { return {}; }
Result<md::IrqPin> IrqPin(uint64_t) { return NotYet(); }
Status CheckPciInstance(const DeviceInstance&) { return NotYet(); }
Result<md::MachineOptions> MachineOptions(const Config&) { return NotYet(); }
Result<std::vector<FirmwareFile>> FirmwareTables(const Config&) {
  return NotYet();
}
Status Init(PlatformContext&) { return NotYet(); }
Status InitVcpu(PlatformContext&, Vcpu&) { return NotYet(); }
Status LoadGuest(PlatformContext&) { return NotYet(); }
Status StartVcpu(PlatformContext&, Vcpu&) { return NotYet(); }

}  // namespace strata::platform
