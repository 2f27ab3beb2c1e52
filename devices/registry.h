// strata — the arch-neutral device models, for a DeviceRegistry
// (core/device_registry.h).
//
// RegisterStandardDeviceModels adds, by name:
//   uart_16550      NS16550A UART (uart_16550.h). Keys: backend (stdio or
//                   none), port (I/O) or base (MMIO, register stride 1 —
//                   kvmtool's arm64 layout): exactly one of them, irq.
//                   backend=stdio is the process's console: output through
//                   StdioBackend (never blocks the vCPU), stdin into the
//                   UART's receive queue, a terminal in raw mode while the
//                   VM runs; one device at a time (of either UART model).
//   pl011           ARM PL011 UART (pl011.h). Keys: backend (as above),
//                   base (a 4 KiB-aligned page on the MMIO bus), irq,
//                   exit_line (bool, default true: a transmitted line
//                   "EXIT: STATUS=<n>" stops the VM with exit status n, the
//                   kvm-unit-tests convention; exit_line.h).
//   isa-debug-exit  QEMU's debug-exit port (debug_exit.h). Key: port.
//   pc-testdev      kvm-unit-tests' pc-testdev (pc_testdev.h), at its fixed
//                   ports and MMIO window.
// A machine adds its own models (the pc machine: fw_cfg, acpi_pm,
// mc146818, i8042) and
// creates its fixed devices from these.
#pragma once

#include "core/device_registry.h"
#include "core/result.h"
#include "core/vm.h"
#include "devices/irq.h"

namespace strata {

Status RegisterStandardDeviceModels(DeviceRegistry& registry);

// An interrupt line wired to an input of the VM's interrupt controller (a
// GSI on amd64, an SPI on arm64). A failure to drive it stops the VM.
class VmPinLine : public IrqLine {
 public:
  VmPinLine(Vm& vm, md::IrqPin pin) : vm_(vm), pin_(pin) {}
  void SetLevel(bool asserted) override;

 private:
  Vm& vm_;
  const md::IrqPin pin_;
};

}  // namespace strata
