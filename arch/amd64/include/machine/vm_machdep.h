// strata — amd64 hooks the MI VM layer calls (internal header).
#pragma once

namespace strata {
class Vm;
}

namespace strata::md {

// Installs the default handlers of the arch exit table: user-space MSR
// accesses (#GP, logged once per MSR), hypercalls (-KVM_ENOSYS), Hyper-V
// hypercalls (HV_STATUS_INVALID_HYPERCALL_CODE) and SynIC register writes
// (nothing to do without a SynIC service). Failed entries and emulation
// failures are MI exit kinds (core/exit.h).
void InstallDefaultExitHandlers(Vm& vm);

}  // namespace strata::md
