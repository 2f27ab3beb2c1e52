// strata — default handlers for arm64 arch exits.
#include <fmt/format.h>

#include "core/vm.h"
#include "machine/vm_machdep.h"

namespace strata::md {

namespace {

// SMC Calling Convention (ARM DEN 0028) §5.2: an unknown function id
// returns NOT_SUPPORTED (-1) in x0.
constexpr uint64_t kSmcccNotSupported = ~uint64_t{0};

}  // namespace

void InstallDefaultExitHandlers(Vm& vm) {
  // Before any vCPU runs (CreateKvmVm), so these cannot fail.
  (void)vm.SetArchExitHandler(ArchExitReason::kHypercall,
                              [](Vcpu&, ArchExit& a) {
                                *a.hypercall_ret = kSmcccNotSupported;
                                return true;
                              });
  // A data abort KVM could not decode: ESR_EL2.ISV is 0 for load/store pair,
  // writeback and some SIMD forms (ARM ARM D13.2.39), so there is no access
  // size or register to emulate with. QEMU and kvmtool stop the VM too.
  (void)vm.SetArchExitHandler(
      ArchExitReason::kDataAbortNoSyndrome, [](Vcpu& v, ArchExit& a) {
        v.vm().RequestStop(ExitStatus::VmmError(fmt::format(
            "vCPU {}: guest MMIO access at IPA {:#x} has no valid syndrome "
            "(ESR_EL2.ISV=0, ISS {:#x}: a load/store pair, writeback or "
            "similar form KVM cannot decode); the VM cannot continue\n{}",
            v.id(), a.nisv_fault_ipa, a.nisv_esr_iss, v.DumpRegisters())));
        return false;
      });
}

}  // namespace strata::md
