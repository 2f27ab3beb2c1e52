// strata — arm64 hooks the MI VM layer calls (internal header).
#pragma once

namespace strata {
class Vm;
}

namespace strata::md {

// Installs the default handlers of the arch exit table: HVC/SMC calls that
// reach user space (SMCCC NOT_SUPPORTED), and diagnostics for failed entries.
void InstallDefaultExitHandlers(Vm& vm);

}  // namespace strata::md
