// strata — the neutral exit record.
//
// A backend turns its raw exit (kvm_run on Linux) into a VmExit. The MI run
// loop handles the common kinds itself; kArch goes to the architecture's
// handler table (keyed by md::ArchExitReason); kUnknown stops the VM with a
// register dump.
#pragma once

#include <cstdint>
#include <string_view>

#include "machine/vmmapi_machdep.h"

namespace strata {

enum class ExitKind : uint8_t {
  kNone,         // interrupted by a kick; nothing to do
  kIo,           // port I/O (amd64 only in practice)
  kMmio,         // access to guest-physical space that is not RAM
  kHalt,         // the vCPU halted and the hypervisor did not handle it
  kShutdown,     // triple fault or equivalent: the guest is dead
  kSystemEvent,  // the guest asked to power off / reset (PSCI, ...)
  kArch,         // architecture-specific, see md::ArchExit
  kUnknown,      // anything the backend could not classify
  kCount,
};

std::string_view ExitKindName(ExitKind k);

enum class SystemEvent : uint8_t { kPowerOff, kReset, kCrash, kOther };

struct IoExit {
  uint16_t port = 0;
  uint8_t size = 0;     // 1, 2 or 4
  bool write = false;
  uint32_t count = 1;   // string instructions repeat
  uint8_t* data = nullptr;  // count * size bytes, in the backend's buffer
};

struct MmioExit {
  uint64_t gpa = 0;
  uint8_t size = 0;     // 1..8
  bool write = false;
  uint8_t* data = nullptr;  // size bytes, in the backend's buffer
};

struct VmExit {
  ExitKind kind = ExitKind::kNone;
  uint32_t raw_reason = 0;  // the backend's own number, for diagnostics
  IoExit io;
  MmioExit mmio;
  SystemEvent event = SystemEvent::kOther;
  md::ArchExit arch;
};

}  // namespace strata
