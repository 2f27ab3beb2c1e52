// strata — amd64 hooks the MI VM layer calls (internal header).
#pragma once

namespace strata {
class Vm;
}

namespace strata::md {

// Installs the default handlers of the arch exit table: user-space MSR
// accesses (#GP, logged once per MSR), hypercalls (-KVM_ENOSYS), and
// diagnostics for failed VM entries and emulation failures.
void InstallDefaultExitHandlers(Vm& vm);

}  // namespace strata::md
