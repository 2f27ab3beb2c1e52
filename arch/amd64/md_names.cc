#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

#include <fmt/format.h>

#include <cctype>
#include <string>

namespace strata::md {

std::string_view RegName(Reg r) {
  static constexpr std::string_view kNames[] = {
      "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
      "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15",
      "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) ==
                static_cast<size_t>(Reg::kCount));
  auto i = static_cast<size_t>(r);
  return i < static_cast<size_t>(Reg::kCount) ? kNames[i] : "?";
}

std::string_view ArchExitName(ArchExitReason r) {
  switch (r) {
    case ArchExitReason::kNone: return "none";
    case ArchExitReason::kRdmsr: return "rdmsr";
    case ArchExitReason::kWrmsr: return "wrmsr";
    case ArchExitReason::kHypercall: return "hypercall";
    case ArchExitReason::kDebug: return "debug";
    case ArchExitReason::kTprAccess: return "tpr-access";
    case ArchExitReason::kSetTpr: return "set-tpr";
    case ArchExitReason::kIoapicEoi: return "ioapic-eoi";
    case ArchExitReason::kHypervSynic: return "hyperv-synic";
    case ArchExitReason::kHypervHcall: return "hyperv-hcall";
    case ArchExitReason::kCount: break;
  }
  return "?";
}

std::string_view IrqchipModeName(IrqchipMode m) {
  switch (m) {
    case IrqchipMode::kKernel: return "kernel";
    case IrqchipMode::kSplit: return "split";
  }
  return "?";
}

std::optional<IrqchipMode> ParseIrqchipMode(std::string_view text) {
  std::string t(text);
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "kernel" || t == "true" || t == "yes" || t == "on" || t == "1") {
    return IrqchipMode::kKernel;
  }
  if (t == "split" || t == "false" || t == "no" || t == "off" || t == "0") {
    return IrqchipMode::kSplit;
  }
  return std::nullopt;
}

std::string IrqPinName(const IrqPin& pin) {
  return fmt::format("GSI {}", pin.gsi);
}

}  // namespace strata::md
