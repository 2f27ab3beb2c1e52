#include "core/vmmapi.h"

#include "core/kvm/kvm.h"
#include "machine/vm_machdep.h"

namespace strata {

Result<std::unique_ptr<Vm>> CreateKvmVm(const VmOptions& opts,
                                        const std::string& device) {
  auto sys = STRATA_TRY(kvm::KvmSystem::Open(device));
  if (opts.max_vcpus == 0 || opts.max_vcpus > sys->max_vcpus()) {
    return MakeError(Errc::kOutOfRange,
                     "maximum vCPU count {} is outside 1..{} (the host's "
                     "limit, KVM_CAP_MAX_VCPUS)",
                     opts.max_vcpus, sys->max_vcpus());
  }
  STRATA_TRY(opts.topology.Validate(UINT32_MAX));
  auto be = STRATA_TRY(
      kvm::KvmVm::Create(sys, opts.machine, opts.topology, opts.max_vcpus));
  auto vm = STRATA_TRY(Vm::Create(opts, std::move(be)));
  md::InstallDefaultExitHandlers(*vm);
  return vm;
}

Result<uint32_t> HostMaxVcpus(const std::string& device) {
  auto sys = STRATA_TRY(kvm::KvmSystem::Open(device));
  return sys->max_vcpus();
}

}  // namespace strata
