// strata — default handlers for amd64 arch exits.
#include <mutex>
#include <set>

#include "core/log.h"
#include "core/vm.h"
#include "machine/vm_machdep.h"

namespace strata::md {

namespace {

// KVM's ABI value for "no such hypercall" (include/uapi/linux/kvm_para.h).
constexpr uint64_t kKvmEnosys = 1000;
// HV_STATUS_INVALID_HYPERCALL_CODE (Hyper-V TLFS, appendix
// "Hypercall Status Codes").
constexpr uint64_t kHvStatusInvalidHypercallCode = 0x0002;

// Remembers which MSRs were logged. Bounded: a guest probing every MSR
// index must not grow the VMM's memory, so past the bound it goes quiet.
class OnceLogger {
 public:
  static constexpr size_t kMaxKeys = 256;
  bool First(uint64_t key) {
    std::lock_guard lk(m_);
    if (seen_.size() >= kMaxKeys) return false;
    return seen_.insert(key).second;
  }

 private:
  std::mutex m_;
  std::set<uint64_t> seen_;
};

}  // namespace

void InstallDefaultExitHandlers(Vm& vm) {
  auto msrs = std::make_shared<OnceLogger>();
  auto msr = [msrs](Vcpu& v, ArchExit& a) {
    // An MSR KVM does not implement: #GP, as on hardware (SDM Vol. 2B
    // RDMSR/WRMSR "If the value in ECX specifies a reserved or
    // unimplemented MSR address" → #GP(0)).
    if (msrs->First(a.msr_index)) {
      v.vm().log().info("vCPU {}: {} of unimplemented MSR {:#x}: injecting #GP",
                 v.id(), a.reason == ArchExitReason::kRdmsr ? "read" : "write",
                 a.msr_index);
    }
    *a.msr_error = 1;
    return true;
  };
  // Before any vCPU runs (CreateKvmVm), so these cannot fail.
  (void)vm.SetArchExitHandler(ArchExitReason::kRdmsr, msr);
  (void)vm.SetArchExitHandler(ArchExitReason::kWrmsr, msr);
  (void)vm.SetArchExitHandler(ArchExitReason::kHypercall, [](Vcpu&, ArchExit& a) {
    *a.hypercall_ret = static_cast<uint64_t>(-static_cast<int64_t>(kKvmEnosys));
    return true;
  });
  // Hyper-V (x86.hyperv): a machine with a SynIC service replaces these
  // (arch/amd64/hyperv/synic.h). Without one no device owns a connection,
  // so a hypercall KVM hands over is one nobody implements; and a SynIC
  // register write is KVM's alone (it has done it): nothing posts to the
  // guest's pages.
  (void)vm.SetArchExitHandler(ArchExitReason::kHypervHcall,
                              [](Vcpu&, ArchExit& a) {
                                *a.hv_result = kHvStatusInvalidHypercallCode;
                                return true;
                              });
  (void)vm.SetArchExitHandler(ArchExitReason::kHypervSynic,
                              [](Vcpu&, ArchExit&) { return true; });
}

}  // namespace strata::md
