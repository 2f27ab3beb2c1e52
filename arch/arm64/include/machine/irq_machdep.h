// strata — arm64 interrupt-routing names (the MD half of core/irq.h).
//
// Wired interrupts are GIC INTIDs (GICv3 spec §2.2): SPIs 32–1019 are
// shared, PPIs 16–31 are private to one PE (so they name a vCPU). KVM's
// KVM_IRQ_LINE packs them as type << 24 | vcpu << 16 | id (see
// Documentation/virt/kvm/api.rst, "KVM_IRQ_LINE", arm64). An MSI is the
// doorbell write a device makes; with a GICv3 ITS the write also carries
// the device id (KVM_MSI_VALID_DEVID), which the ITS uses to find the
// device's interrupt translation table (GICv3 spec §5.2).
#pragma once

#include <cstdint>
#include <string>

namespace strata::md {

struct IrqPin {
  enum class Type : uint8_t { kSpi, kPpi };
  Type type = Type::kSpi;
  uint32_t intid = 32;  // GIC INTID: 32.. for SPIs, 16..31 for PPIs
  uint32_t vcpu = 0;    // PPIs: the target vCPU index
  friend bool operator==(const IrqPin&, const IrqPin&) = default;
};

struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  bool has_devid = false;  // ITS: the requester (device) id is valid
  uint32_t devid = 0;
  friend bool operator==(const MsiMessage&, const MsiMessage&) = default;
};

inline constexpr uint32_t kGicFirstSpi = 32;
inline constexpr uint32_t kGicFirstPpi = 16;
inline constexpr uint32_t kGicMaxIntid = 1019;

// "SPI 33" / "PPI 27 on vCPU 2", for messages.
std::string IrqPinName(const IrqPin& pin);

}  // namespace strata::md
