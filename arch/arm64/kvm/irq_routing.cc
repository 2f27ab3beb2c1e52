#include "arch/arm64/kvm/irq_routing.h"

#include <asm/kvm.h>

namespace strata::md::arm64 {

namespace {

Status CheckSpi(const IrqPin& pin, uint32_t nr_spis) {
  if (pin.intid < kGicFirstSpi || pin.intid > kGicMaxIntid ||
      pin.intid - kGicFirstSpi >= nr_spis) {
    return MakeError(Errc::kOutOfRange,
                     "{} is not an SPI of this vGIC (INTIDs {}..{})",
                     IrqPinName(pin), kGicFirstSpi,
                     kGicFirstSpi + nr_spis - 1);
  }
  return Ok();
}

}  // namespace

Result<uint32_t> IrqLineValue(const IrqPin& pin, uint32_t nr_spis) {
  switch (pin.type) {
    case IrqPin::Type::kSpi:
      STRATA_TRY(CheckSpi(pin, nr_spis));
      return (uint32_t{KVM_ARM_IRQ_TYPE_SPI} << KVM_ARM_IRQ_TYPE_SHIFT) |
             (pin.intid << KVM_ARM_IRQ_NUM_SHIFT);
    case IrqPin::Type::kPpi: {
      if (pin.intid < kGicFirstPpi || pin.intid >= kGicFirstSpi) {
        return MakeError(Errc::kOutOfRange,
                         "{}: a PPI's INTID is {}..{} (GICv3 spec §2.2.1)",
                         IrqPinName(pin), kGicFirstPpi, kGicFirstSpi - 1);
      }
      if (pin.vcpu > kMaxIrqLineVcpu) {
        return MakeError(Errc::kOutOfRange,
                         "{}: KVM_IRQ_LINE names vCPUs 0..{}", IrqPinName(pin),
                         kMaxIrqLineVcpu);
      }
      const uint32_t low = pin.vcpu & KVM_ARM_IRQ_VCPU_MASK;
      const uint32_t high = (pin.vcpu >> 8) & KVM_ARM_IRQ_VCPU2_MASK;
      return (high << KVM_ARM_IRQ_VCPU2_SHIFT) |
             (uint32_t{KVM_ARM_IRQ_TYPE_PPI} << KVM_ARM_IRQ_TYPE_SHIFT) |
             (low << KVM_ARM_IRQ_VCPU_SHIFT) |
             (pin.intid << KVM_ARM_IRQ_NUM_SHIFT);
    }
  }
  return MakeError(Errc::kInvalidArgument, "unknown interrupt type");
}

Result<uint32_t> SpiGsi(const IrqPin& pin, uint32_t nr_spis) {
  if (pin.type != IrqPin::Type::kSpi) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: only SPIs have a GSI (irqfd, routes); raise a PPI "
                     "with KVM_IRQ_LINE",
                     IrqPinName(pin));
  }
  STRATA_TRY(CheckSpi(pin, nr_spis));
  return pin.intid - kGicFirstSpi;
}

Status FillMsi(const MsiMessage& msi, kvm_msi* out) {
  *out = kvm_msi{};
  out->address_lo = static_cast<uint32_t>(msi.address);
  out->address_hi = static_cast<uint32_t>(msi.address >> 32);
  out->data = msi.data;
  if (msi.has_devid) {
    out->flags = KVM_MSI_VALID_DEVID;
    out->devid = msi.devid;
  }
  return Ok();
}

Status FillMsiRoute(const MsiMessage& msi, kvm_irq_routing_entry* e) {
  e->type = KVM_IRQ_ROUTING_MSI;
  e->u.msi.address_lo = static_cast<uint32_t>(msi.address);
  e->u.msi.address_hi = static_cast<uint32_t>(msi.address >> 32);
  e->u.msi.data = msi.data;
  if (msi.has_devid) {
    e->flags = KVM_MSI_VALID_DEVID;
    e->u.msi.devid = msi.devid;
  }
  return Ok();
}

std::vector<kvm_irq_routing_entry> DefaultRoutes(uint32_t nr_spis) {
  std::vector<kvm_irq_routing_entry> out(nr_spis);
  for (uint32_t i = 0; i < nr_spis; ++i) {
    out[i] = kvm_irq_routing_entry{};
    out[i].gsi = i;
    out[i].type = KVM_IRQ_ROUTING_IRQCHIP;
    out[i].u.irqchip.irqchip = 0;
    out[i].u.irqchip.pin = i;
  }
  return out;
}

}  // namespace strata::md::arm64
