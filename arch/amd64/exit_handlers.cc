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

// KVM_INTERNAL_ERROR_* suberrors (linux/kvm.h).
const char* InternalErrorName(uint32_t sub) {
  switch (sub) {
    case 1: return "instruction emulation failed";
    case 2: return "simultaneous exceptions";
    case 3: return "delivery event failed";
    case 4: return "unexpected exit reason";
    default: return "unknown suberror";
  }
}

class OnceLogger {
 public:
  bool First(uint64_t key) {
    std::lock_guard lk(m_);
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
      Log().info("vCPU {}: {} of unimplemented MSR {:#x}: injecting #GP",
                 v.id(), a.reason == ArchExitReason::kRdmsr ? "read" : "write",
                 a.msr_index);
    }
    *a.msr_error = 1;
    return true;
  };
  vm.SetArchExitHandler(ArchExitReason::kRdmsr, msr);
  vm.SetArchExitHandler(ArchExitReason::kWrmsr, msr);
  vm.SetArchExitHandler(ArchExitReason::kHypercall, [](Vcpu&, ArchExit& a) {
    *a.hypercall_ret = static_cast<uint64_t>(-static_cast<int64_t>(kKvmEnosys));
    return true;
  });
  vm.SetArchExitHandler(ArchExitReason::kFailEntry, [](Vcpu& v, ArchExit& a) {
    v.vm().RequestStop(ExitStatus::VmmError(fmt::format(
        "vCPU {}: VM entry failed (hardware reason {:#x}); the register "
        "state is invalid for this host\n{}",
        v.id(), a.fail_reason, v.DumpRegisters())));
    return false;
  });
  vm.SetArchExitHandler(ArchExitReason::kInternalError, [](Vcpu& v,
                                                           ArchExit& a) {
    std::string data;
    for (uint32_t i = 0; i < a.internal_ndata && i < 16; ++i) {
      data += fmt::format(" {:#x}", a.internal_data[i]);
    }
    v.vm().RequestStop(ExitStatus::VmmError(fmt::format(
        "vCPU {}: KVM internal error: {} (suberror {}, data:{})\n{}", v.id(),
        InternalErrorName(a.internal_suberror), a.internal_suberror, data,
        v.DumpRegisters())));
    return false;
  });
}

}  // namespace strata::md
