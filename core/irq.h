// strata — interrupt routing, machine independent.
//
// The names come from <machine/irq_machdep.h>: md::IrqPin is a wired input
// of the architecture's interrupt controller (a GSI on amd64; an SPI, or a
// PPI of one vCPU, on arm64) and md::MsiMessage a message-signalled
// interrupt (address/data; on arm64 also the ITS device id). The VM raises
// them from any thread (Vm::SetIrq, Vm::SignalMsi) or hands out an IrqFd: an
// eventfd the hypervisor watches, so a device thread — or another process —
// raises the interrupt with one write(2), no VMM call and no vCPU involved
// (KVM_IRQFD).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "core/result.h"
#include "machine/irq_machdep.h"

namespace strata {

class IrqFdBackend;

// An interrupt controller the VMM emulates in user space (the IOAPIC of
// KVM's split irqchip). Once attached to a VM (Vm::SetIrqController),
// Vm::SetIrq drives its inputs instead of the hypervisor's, so devices raise
// their lines the same way whichever controller the machine chose.
class IrqController {
 public:
  virtual ~IrqController() = default;
  virtual Status SetPin(const md::IrqPin& pin, bool level) = 0;
};

// Deassigned (and its routing entry removed) when destroyed. Must not
// outlive its VM (a driver hold pins the VM, see core/driver.h).
class IrqFd {
 public:
  ~IrqFd();
  IrqFd(const IrqFd&) = delete;
  IrqFd& operator=(const IrqFd&) = delete;

  // The eventfd: each write of a non-zero count raises the interrupt once
  // (an edge; for a level pin, a pulse unless resample_fd is used).
  int fd() const { return fd_; }
  // Writes 1 to fd(); safe from any thread.
  Status Trigger();
  // Level-triggered pins only: KVM signals this eventfd when the guest
  // acknowledges (EOIs) the interrupt, so the device can re-assert it if it
  // is still pending; -1 otherwise.
  int resample_fd() const { return resample_fd_; }
  uint32_t gsi() const { return gsi_; }

 private:
  friend class Vm;
  IrqFd(std::shared_ptr<IrqFdBackend> be, uint32_t gsi, int fd,
        int resample_fd, bool owns_route)
      : be_(std::move(be)), gsi_(gsi), fd_(fd), resample_fd_(resample_fd),
        owns_route_(owns_route) {}
  std::shared_ptr<IrqFdBackend> be_;
  uint32_t gsi_;
  int fd_;
  int resample_fd_;
  bool owns_route_;  // an MSI route allocated for this irqfd
};

// Internal: what the hypervisor backend provides for irqfds, and the GSI
// routing table behind them.
class IrqFdBackend {
 public:
  virtual ~IrqFdBackend() = default;
  // A pin of an interrupt controller the VMM emulates (amd64's split
  // irqchip): routes pin to the MSI it currently sends, or removes the
  // route (nullopt). See Vm::SetPinMsiRoute.
  virtual Status SetPinMsiRoute(const md::IrqPin& pin,
                                const std::optional<md::MsiMessage>& msi) = 0;
  virtual Status AssignIrqFd(uint32_t gsi, int fd, int resample_fd,
                             bool assign) = 0;
  // Routes a free GSI to msi and returns it.
  virtual Result<uint32_t> AddMsiRoute(const md::MsiMessage& msi) = 0;
  virtual Status RemoveMsiRoute(uint32_t gsi) = 0;
  // The GSI an irqfd on pin uses.
  virtual Result<uint32_t> PinGsi(const md::IrqPin& pin) = 0;
};

}  // namespace strata
