// strata — the Vm and Vcpu halves of snapshots (core/snapshot.h): the
// backend's state behind the same access rules as the registers.
#include "core/backend.h"
#include "core/vm.h"

namespace strata {

Status Vcpu::SaveState(StateWriter& out) {
  STRATA_TRY(CheckRegisterAccess());
  if (IsRunnerThread()) return backend_->SaveState(out);
  std::lock_guard lk(regs_mu_);
  return backend_->SaveState(out);
}

Status Vcpu::LoadState(StateReader& in) {
  STRATA_TRY(CheckRegisterAccess());
  if (IsRunnerThread()) return backend_->LoadState(in);
  std::lock_guard lk(regs_mu_);
  return backend_->LoadState(in);
}

Status Vm::PrepareSnapshot() { return backend_->PrepareSave(); }

Status Vm::SaveBackendState(StateWriter& out) {
  return backend_->SaveState(out);
}

Status Vm::LoadBackendState(StateReader& in) {
  return backend_->LoadState(in);
}

}  // namespace strata
