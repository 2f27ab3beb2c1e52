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
//
// Besides pins and MSIs, a hypervisor may route interrupt sources of its
// own: HvSint, a Hyper-V SynIC SINT (KVM_IRQ_ROUTING_HV_SINT). The uapi
// route is architecture-neutral; whether a VM has it is the hypervisor's
// answer (KVM: KVM_CAP_HYPERV_SYNIC, x86 only today).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>

#include "core/result.h"
#include "core/unique_fd.h"
#include "machine/irq_machdep.h"

namespace strata {

class IrqFdBackend;

// A Hyper-V SynIC interrupt source (Hyper-V TLFS, "Synthetic Interrupt
// Controller"): SINT `sint` (0-15) of the virtual processor whose VP index
// is `vp_index`. Asserting it raises the vector the guest put in that VP's
// SINTx register, unless the guest masked it.
struct HvSint {
  uint32_t vp_index = 0;
  uint32_t sint = 0;
  friend bool operator==(const HvSint&, const HvSint&) = default;
};
// SINTs per virtual processor (TLFS, "Synthetic Interrupt Controller").
inline constexpr uint32_t kHvSintCount = 16;

// What a GSI route the VMM allocates (IrqFdBackend::AddRoute) delivers.
using IrqRoute = std::variant<md::MsiMessage, HvSint>;

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
  int fd() const { return fd_.get(); }
  // Writes 1 to fd(); safe from any thread.
  Status Trigger();
  // Level-triggered pins, and SynIC SINTs asked with an ack: KVM signals
  // this eventfd when the guest acknowledges the interrupt (EOI; for a SINT
  // also an EOM write), so the device can re-assert it or deliver what was
  // waiting; -1 otherwise.
  int resample_fd() const { return resample_fd_.get(); }
  uint32_t gsi() const { return gsi_; }

 private:
  friend class Vm;
  IrqFd(std::shared_ptr<IrqFdBackend> be, uint32_t gsi, UniqueFd fd,
        UniqueFd resample_fd, bool owns_route)
      : be_(std::move(be)), gsi_(gsi), fd_(std::move(fd)),
        resample_fd_(std::move(resample_fd)), owns_route_(owns_route) {}
  std::shared_ptr<IrqFdBackend> be_;
  uint32_t gsi_;
  UniqueFd fd_;
  UniqueFd resample_fd_;  // none unless resampled
  bool owns_route_;  // a route allocated for this irqfd (MSI, SINT)
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
  // Routes a free GSI to `route` and returns it. kUnsupported for a kind
  // of route this VM's hypervisor does not offer.
  virtual Result<uint32_t> AddRoute(const IrqRoute& route) = 0;
  virtual Status RemoveRoute(uint32_t gsi) = 0;
  // The GSI an irqfd on pin uses.
  virtual Result<uint32_t> PinGsi(const md::IrqPin& pin) = 0;
};

}  // namespace strata
