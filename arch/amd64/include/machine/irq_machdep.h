// strata — amd64 interrupt-routing names (the MD half of core/irq.h).
//
// A wired interrupt is a GSI: an input of the IOAPIC (pins 0–23), where
// GSIs 0–15 also reach the legacy 8259 pair (ACPI 6.4 §5.2.13, "Global
// System Interrupts"). A message-signalled interrupt is the address/data
// pair a device writes (SDM Vol. 3 §11.11): address 0xFEEx_xxxx carries the
// destination APIC id, data the vector and delivery mode.
#pragma once

#include <cstdint>
#include <string>

namespace strata::md {

struct IrqPin {
  uint32_t gsi = 0;
  friend bool operator==(const IrqPin&, const IrqPin&) = default;
};

struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  friend bool operator==(const MsiMessage&, const MsiMessage&) = default;
};

// IOAPIC inputs of the in-kernel irqchip (KVM_IOAPIC_NUM_PINS).
inline constexpr uint32_t kIrqPinCount = 24;

// "GSI 4", for messages.
std::string IrqPinName(const IrqPin& pin);

}  // namespace strata::md
