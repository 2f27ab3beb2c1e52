// strata — the interrupt line a device model drives.
//
// Devices see only a level: the platform maps it to an interrupt controller
// input (KVM_IRQ_LINE on a GSI for x86 ISA devices, an SPI on arm64). Edge
// semantics, where the controller wants them, come from the level going
// low then high again; a device that needs a fresh edge pulses the line.
#pragma once

namespace strata {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Drives the line; asserted = true raises it. Called from vCPU threads,
  // possibly under the device's own lock, so it must not call back into the
  // device.
  virtual void SetLevel(bool asserted) = 0;
};

}  // namespace strata
