// strata — the KVM encoding of arm64 interrupts (internal header): the MD
// half of core/irq.h's routing for the vGIC, as pure functions that
// md::KvmVmArch (the arm64 backend, with the arm64 issue) calls.
//
// KVM_IRQ_LINE (Documentation/virt/kvm/api.rst, "KVM_IRQ_LINE", arm64):
//   bits 31-28 vcpu2_index  (vCPU index bits 11-8, PPIs)
//   bits 27-24 irq_type     (KVM_ARM_IRQ_TYPE_SPI = 1, _PPI = 2)
//   bits 23-16 vcpu_index   (vCPU index bits 7-0, PPIs)
//   bits 15-0  irq_id       (the INTID: 32..1019 for SPIs, 16..31 for PPIs)
// GSI routing and irqfd name SPI n as GSI n - 32 (virt/kvm/arm/vgic/
// vgic-irqfd.c: the default routes map GSI i to vGIC pin i); PPIs have no
// GSI. An MSI to a GICv3 ITS carries the requester's device id
// (KVM_MSI_VALID_DEVID; GICv3 spec §5.2 — the ITS looks up the device
// table by it).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "core/result.h"
#include "machine/irq_machdep.h"

namespace strata::md::arm64 {

// The largest vCPU index KVM_IRQ_LINE can name (12 bits).
inline constexpr uint32_t kMaxIrqLineVcpu = 0xfff;

// KVM_IRQ_LINE's irq field for pin; nr_spis is the vGIC's SPI count
// (KVM_DEV_ARM_VGIC_GRP_NR_IRQS - 32).
Result<uint32_t> IrqLineValue(const IrqPin& pin, uint32_t nr_spis);
// The GSI an irqfd (or a route) uses for an SPI; PPIs are refused.
Result<uint32_t> SpiGsi(const IrqPin& pin, uint32_t nr_spis);
// kvm_msi / an MSI routing entry for msi (flags and devid for the ITS).
Status FillMsi(const MsiMessage& msi, kvm_msi* out);
Status FillMsiRoute(const MsiMessage& msi, kvm_irq_routing_entry* e);
// The vGIC's default routes (GSI i -> SPI 32 + i), which a
// KVM_SET_GSI_ROUTING table must repeat.
std::vector<kvm_irq_routing_entry> DefaultRoutes(uint32_t nr_spis);

}  // namespace strata::md::arm64
