// strata — the public C++ API (vmmapi).
//
// This is the one header embedders include. It pulls in the
// machine-independent types and, through <machine/vmmapi_machdep.h>, the
// architecture the library was built for, so MI names carry MD values:
// md::Reg names registers (RAX… on amd64, X0… on arm64), md::VcpuState is
// the architecture's register file, md::ArchExit its exit payloads and
// md::MachineOptions its creation-time knobs.
//
// Errors come back as Result<T>; nothing throws across this API.
//
// Typical use:
//   strata::VmOptions o;  o.max_vcpus = 2;
//   auto vm = STRATA_TRY(strata::CreateKvmVm(o));
//   STRATA_TRY(vm->AddMemory("ram", 0, 64 << 20));
//   strata::Vcpu* v = STRATA_TRY(vm->CreateVcpu(0));
//   ... load code, set registers, register devices on vm->pio_bus() ...
//   std::thread t([&] { (void)v->Run(); });
#pragma once

#include <memory>
#include <string>

#include "core/bus.h"
#include "core/config.h"
#include "core/guest_memory.h"
#include "core/result.h"
#include "core/vm.h"
#include "machine/vmmapi_machdep.h"

namespace strata {

// Creates a VM on Linux KVM (default device /dev/kvm) with the
// architecture's default exit handlers installed.
Result<std::unique_ptr<Vm>> CreateKvmVm(const VmOptions& opts,
                                        const std::string& device = "/dev/kvm");

// KVM_CAP_MAX_VCPUS of the host (or an error if KVM is unusable).
Result<uint32_t> HostMaxVcpus(const std::string& device = "/dev/kvm");

}  // namespace strata
