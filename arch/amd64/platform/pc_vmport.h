// VMware's backdoor I/O port on the pc machine (QEMU's vmport,
// -machine vmport=on), as a platform device: `-o
// platform.vmport.device=vmport`.
//
// A guest calls it with a 32-bit IN from port 0x5658 holding EAX = 0x564D5868
// ("VMXh") and the command in CL; the VMM answers in EAX (the IN's data) and
// in the vCPU's other registers, which it writes during the exit (QEMU reads
// and writes its current CPU's registers the same way). Commands:
//   GETVERSION (0x0a)  EAX = 6 (the VMX version), EBX = the magic,
//                      ECX = 2 (the VMX type, ESX server): QEMU's defaults.
// Any other command, EAX without the magic, an access narrower than 32 bits
// or one made without a vCPU (a device thread) runs nothing: EAX comes back
// as it went in (all-ones without a vCPU) and no register is written.
//
// KVM's `enable_vmware_backdoor` module parameter is the other half: it lets
// user mode reach the port despite the TSS I/O bitmap, and answers the
// backdoor's pseudo performance counters (RDPMC 0x10000-0x10002) in the
// kernel. kvm-unit-tests' vmware_backdoors needs both.
#ifndef STRATA_ARCH_AMD64_PLATFORM_PC_VMPORT_H_
#define STRATA_ARCH_AMD64_PLATFORM_PC_VMPORT_H_

#include <cstdint>

#include "core/bus.h"
#include "core/device_registry.h"

namespace strata::platform::pc {

inline constexpr uint16_t kVmportPort = 0x5658;
inline constexpr uint32_t kVmportMagic = 0x564D5868;
inline constexpr uint8_t kVmportGetVersion = 0x0a;
inline constexpr uint32_t kVmportVersion = 6;
inline constexpr uint32_t kVmportVmxType = 2;

// The backdoor's view of a vCPU's general registers (their low 32 bits).
struct VmportRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// Runs the call in `regs` (as the guest left them): updates the registers
// the command answers in (not EAX) and returns what EAX gets, or nullopt
// if there is no call (no magic, an unknown command): EAX unchanged.
std::optional<uint32_t> VmportCall(VmportRegs& regs);

// The device on the I/O bus: reads the calling vCPU's registers, runs
// VmportCall, writes back the ones it changed.
class Vmport : public IoDevice {
 public:
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t) override {}
  std::string_view name() const override { return "vmport"; }
};

// The registry's "vmport" model (no keys: the port is VMware's).
DeviceModel VmportModel();

}  // namespace strata::platform::pc

#endif  // STRATA_ARCH_AMD64_PLATFORM_PC_VMPORT_H_
