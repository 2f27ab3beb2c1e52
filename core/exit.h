// strata — the neutral exit record.
//
// A backend turns its raw exit (kvm_run on Linux) into a VmExit. The MI run
// loop handles the common kinds itself — I/O, MMIO, halt, shutdown, system
// events, and the two ways the hypervisor itself can fail (a VM entry it
// could not make, an instruction it could not emulate) — and hands kArch to
// the architecture's handler table (keyed by md::ArchExitReason). kUnknown
// stops the VM with a register dump.
#pragma once

#include <cstdint>
#include <string_view>

#include "machine/vmmapi_machdep.h"

namespace strata {

enum class ExitKind : uint8_t {
  kNone,           // interrupted by a kick; nothing to do
  kIo,             // port I/O (amd64 only in practice)
  kMmio,           // access to guest-physical space that is not RAM
  kHalt,           // the vCPU halted and the hypervisor did not handle it
  kShutdown,       // triple fault or equivalent: the guest is dead
  kSystemEvent,    // the guest asked to power off / reset (PSCI, ...)
  kFailEntry,      // the hypervisor could not enter the guest
  kInternalError,  // the hypervisor failed (e.g. could not emulate)
  kArch,           // architecture-specific, see md::ArchExit
  kUnknown,        // anything the backend could not classify
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

// kFailEntry: the hardware (or the hypervisor) refused the guest state.
struct FailEntryExit {
  uint64_t hardware_reason = 0;  // VMX exit qualification / SVM exit code
  uint32_t host_cpu = 0;
};

// kInternalError: the hypervisor gave up (KVM_EXIT_INTERNAL_ERROR).
struct InternalErrorExit {
  enum class Kind : uint8_t {
    kEmulation,         // instruction emulation failed
    kSimultaneousFault, // an exception while delivering another
    kDeliveryEvent,     // event delivery failed
    kUnexpectedExit,    // an exit reason the hypervisor did not expect
    kOther,
  };
  Kind kind = Kind::kOther;
  uint32_t suberror = 0;  // the backend's number
  uint32_t ndata = 0;
  uint64_t data[16] = {};
};

std::string_view InternalErrorName(InternalErrorExit::Kind k);

struct VmExit {
  ExitKind kind = ExitKind::kNone;
  uint32_t raw_reason = 0;  // the backend's own number, for diagnostics
  IoExit io;
  MmioExit mmio;
  SystemEvent event = SystemEvent::kOther;
  FailEntryExit fail_entry;
  InternalErrorExit internal;
  md::ArchExit arch;
};

}  // namespace strata
