#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

#include <fmt/format.h>

namespace strata::md {

std::string_view RegName(Reg r) {
  static constexpr std::string_view kNames[] = {
      "x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",  "x7",  "x8",
      "x9",  "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17",
      "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
      "x27", "x28", "x29", "x30", "sp",  "pc",  "pstate", "sp_el1",
      "elr_el1", "spsr_el1",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) ==
                static_cast<size_t>(Reg::kCount));
  auto i = static_cast<size_t>(r);
  return i < static_cast<size_t>(Reg::kCount) ? kNames[i] : "?";
}

std::string_view ArchExitName(ArchExitReason r) {
  switch (r) {
    case ArchExitReason::kNone: return "none";
    case ArchExitReason::kHypercall: return "hypercall";
    case ArchExitReason::kDebug: return "debug";
    case ArchExitReason::kDataAbortNoSyndrome: return "data-abort-no-syndrome";
    case ArchExitReason::kCount: break;
  }
  return "?";
}

std::string IrqPinName(const IrqPin& pin) {
  if (pin.type == IrqPin::Type::kPpi) {
    return fmt::format("PPI {} on vCPU {}", pin.intid, pin.vcpu);
  }
  return fmt::format("SPI {}", pin.intid);
}

}  // namespace strata::md
