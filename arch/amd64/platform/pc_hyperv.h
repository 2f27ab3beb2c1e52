// strata — the pc machine's Hyper-V enlightenments (x86.hyperv).
//
// KVM emulates them once the backend has written the Hyper-V CPUID leaves
// (arch/amd64/hyperv/hyperv_cpuid.h; Vm::machine_options().hyperv is then
// the settled feature list). With the SynIC the machine adds the VMM's
// half (arch/amd64/hyperv/synic.h) — its exit handlers, the thread that
// redelivers messages when the guest frees a slot, and the service device
// models use — and offers the hyperv-testdev model (devices/
// hyperv_testdev.h), which needs that SynIC and KVM's in-kernel IOAPIC
// (SINT acknowledgements come through resampling irqfds).
// Internal header of //arch/amd64/platform.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/device_registry.h"
#include "core/platform.h"
#include "core/result.h"

namespace strata::platform::pc {

// Config defaults of x86.hyperv and x86.hyperv_vendor_id (their help is
// in pc.cc's ConfigKeys).
Status InitHypervConfig(Config& c);
// Checks both keys (bad input: kInvalidArgument); what KVM offers is
// checked when the VM is created.
Status CheckHypervConfig(const Config& c, bool hypervisor_bit);

// Machine init: the SynIC's VMM half when the VM has the SynIC.
Status InitHyperv(PlatformContext& m);

// The hyperv-testdev model, for the machine's registry.
DeviceModel HypervTestdevModel();

}  // namespace strata::platform::pc
