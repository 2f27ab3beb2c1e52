// strata — Intel 82093AA I/O APIC (82093AA datasheet, order 290566-001,
// §3 "Register description": IOREGSEL/IOWIN §3.1, IOAPICID §3.2.1,
// IOAPICVER §3.2.2, IOAPICARB §3.2.3, IOREDTBL §3.2.4), whose interrupt
// messages leave as MSIs (SDM Vol. 3 §11.11, "Message Signalled
// Interrupts") — the user-space half of KVM's split irqchip, like bhyve's
// vioapic and QEMU's hw/intc/ioapic.c with kernel-irqchip=split.
//
// Emulated: the direct registers IOREGSEL (offset 0x00) and IOWIN (0x10);
// the indirect ID (index 0x00; bits 27:24 writable), VER (0x01: version
// 0x11, 24 redirection entries) and ARB (0x02: loaded from the ID, read
// only) registers and 24 redirection entries (0x10 + 2n low, 0x11 + 2n
// high dword): vector, delivery mode, destination mode, polarity, trigger
// mode, mask and the 8-bit destination are read/write; remote IRR and
// delivery status are read only; reserved bits read as 0. Reset state:
// every entry masked, everything else 0.
//
// Inputs: SetLevel(pin, asserted), or the IrqLine from input(pin). An
// edge-triggered entry sends one message per rising edge while unmasked
// (an edge while masked is lost, §3.2.4 "Interrupt Mask"). A level-
// triggered entry sends a message when the line is asserted, unmasked and
// remote IRR is clear, and sets remote IRR; Eoi(vector) — the LAPIC's EOI
// broadcast, with the split irqchip KVM_EXIT_IOAPIC_EOI — clears remote IRR
// of the level entries with that vector and sends again at once if the
// line is still asserted. Unmasking an asserted level line sends; reprogramming
// an entry to edge clears its remote IRR. NMI, INIT, SMI and ExtINT entries
// are treated as edge-triggered whatever their trigger bit (§3.2.4,
// "Delivery Mode", asks for them to be programmed edge), so they never set
// remote IRR.
//
// Output: IoapicEntryToMsi translates an entry into the message a device
// writing the same interrupt would send (SDM Vol. 3 §11.11.1–2; QEMU's
// ioapic_entry_parse): address 0xFEE0_0000 | destination << 12 |
// destination mode << 2; data vector | delivery mode << 8, plus trigger
// (bit 15) and level/assert (bit 14) for level-triggered entries. The
// message goes to the MsiFn given at construction (the platform passes
// Vm::SignalMsi). Separately, RouteFn learns the message each pin would
// send whenever an entry changes (nullopt while masked): KVM needs those
// routes to know which EOIs to report (Vm::SetPinMsiRoute).
//
// Simplifications: polarity is stored and read back but not applied —
// SetLevel takes the asserted state as the board wires it (KVM's in-kernel
// IOAPIC, bhyve's vioapic and QEMU do the same). Delivery status always
// reads 0 (idle): a message is handed to the LAPICs synchronously, so it
// is never "send pending". The destination is the 8-bit xAPIC id; bits
// 55:17 (including the extended destination id some hypervisors define in
// 55:48) are reserved and read 0. ExtINT is translated like the others
// (delivery mode 7); there is no 8259 to supply a vector, so a LAPIC that
// receives it (KVM's does) ignores it. Reserved delivery modes (3, 6) send
// nothing. No EOI register (that is the version 0x20 IOAPIC's), no
// interrupt remapping.
//
// Accesses: the datasheet defines only aligned 32-bit accesses to IOREGSEL
// and IOWIN. Anything else in the window — another width, a misaligned
// dword, any other offset — reads 0 and is ignored on write; such accesses
// are counted (stats().bad_accesses) and the first is logged.
//
// Locking: one mutex (mu_) guards the registers and the pin levels; every
// entry point may be called from any thread. Messages are sent after mu_ is
// released, so the MsiFn may block (Vm::SignalMsi takes the VM read lock)
// and may call back into the IOAPIC (SetLevel, Eoi, a register access).
// Consequence: a message computed just before a concurrent mask may be sent
// just after it, as a message already on the APIC bus is not recalled on
// hardware ("Changing the mask bit ... after the interrupt is accepted by a
// local APIC has no effect on that interrupt"). Route updates run under a
// second mutex (route_mu_, taken before mu_, never held while sending),
// which serialises them so the last RouteFn call for a pin always carries
// its current entry; the RouteFn must not call back into the IOAPIC.
// SetLevel may be called with the calling device's own lock held.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/bus.h"
#include "core/irq.h"
#include "devices/irq.h"

namespace strata {

// Where the PC platform puts it (the MADT's default; QEMU, bhyve) and the
// page it decodes.
inline constexpr uint64_t kIoapicMmioBase = 0xfec00000;
inline constexpr uint64_t kIoapicMmioSize = 0x1000;

// Direct registers (§3.1).
inline constexpr uint64_t kIoapicRegSel = 0x00;
inline constexpr uint64_t kIoapicWindow = 0x10;

// Indirect registers (§3.2).
inline constexpr uint32_t kIoapicIndexId = 0x00;
inline constexpr uint32_t kIoapicIndexVersion = 0x01;
inline constexpr uint32_t kIoapicIndexArb = 0x02;
inline constexpr uint32_t kIoapicIndexRedirBase = 0x10;  // + 2 * pin (+ 1)

inline constexpr uint32_t kIoapicPinCount = 24;
inline constexpr uint32_t kIoapicVersion = 0x11;
// IOAPICVER: version in bits 7:0, maximum redirection entry in 23:16.
inline constexpr uint32_t kIoapicVersionValue =
    ((kIoapicPinCount - 1) << 16) | kIoapicVersion;
inline constexpr uint32_t kIoapicIdShift = 24;  // ID/ARB bits 27:24
inline constexpr uint32_t kIoapicIdMask = 0x0f000000;

// Redirection entry fields (§3.2.4).
inline constexpr uint64_t kIoapicRteVector = 0xff;
inline constexpr uint32_t kIoapicRteDeliveryModeShift = 8;
inline constexpr uint64_t kIoapicRteDeliveryMode = 0x7ull << 8;
inline constexpr uint64_t kIoapicRteDestLogical = 1ull << 11;
inline constexpr uint64_t kIoapicRteDeliveryStatus = 1ull << 12;  // RO
inline constexpr uint64_t kIoapicRtePolarityLow = 1ull << 13;
inline constexpr uint64_t kIoapicRteRemoteIrr = 1ull << 14;       // RO
inline constexpr uint64_t kIoapicRteLevel = 1ull << 15;
inline constexpr uint64_t kIoapicRteMasked = 1ull << 16;
inline constexpr uint32_t kIoapicRteDestShift = 56;
// The bits a guest can write.
inline constexpr uint64_t kIoapicRteWritable =
    kIoapicRteVector | kIoapicRteDeliveryMode | kIoapicRteDestLogical |
    kIoapicRtePolarityLow | kIoapicRteLevel | kIoapicRteMasked |
    (0xffull << kIoapicRteDestShift);

enum class IoapicDeliveryMode : uint8_t {
  kFixed = 0,
  kLowestPriority = 1,
  kSmi = 2,
  kNmi = 4,
  kInit = 5,
  kExtInt = 7,
};

// The MSI an entry sends (mask, remote IRR and delivery status ignored);
// nullopt for the reserved delivery modes.
std::optional<md::MsiMessage> IoapicEntryToMsi(uint64_t entry);

class Ioapic : public IoDevice {
 public:
  using MsiFn = std::function<void(const md::MsiMessage&)>;
  using RouteFn =
      std::function<void(uint32_t pin, const std::optional<md::MsiMessage>&)>;

  struct Stats {
    uint64_t msis = 0;             // messages sent
    uint64_t eois = 0;             // Eoi() calls
    uint64_t remote_irr_cleared = 0;  // level entries an EOI completed
    uint64_t eoi_redeliveries = 0;    // messages sent again by an EOI
    uint64_t route_updates = 0;    // RouteFn calls
    uint64_t bad_accesses = 0;     // accesses the datasheet leaves undefined
  };

  // send receives every message (required). routes, if set, receives each
  // pin's route when it changes; every pin starts with none (masked).
  explicit Ioapic(MsiFn send, RouteFn routes = nullptr,
                  std::string name = "ioapic");
  Ioapic(const Ioapic&) = delete;
  Ioapic& operator=(const Ioapic&) = delete;

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return name_; }

  // Drives input pin (0..23; others are ignored).
  void SetLevel(uint32_t pin, bool asserted);
  // A LAPIC EOI broadcast for vector.
  void Eoi(uint8_t vector);
  // An IrqLine driving `pin`, for device models; lives as long as the
  // IOAPIC. pin must be < kIoapicPinCount.
  IrqLine* input(uint32_t pin);

  // The redirection entry as the guest reads it (for tests and dumps).
  uint64_t entry(uint32_t pin) const;
  Stats stats() const;

 private:
  class Input : public IrqLine {
   public:
    void SetLevel(bool asserted) override { ioapic->SetLevel(pin, asserted); }
    Ioapic* ioapic = nullptr;
    uint32_t pin = 0;
  };

  // Messages collected under mu_ and sent after it is released.
  struct Outbox {
    std::array<md::MsiMessage, kIoapicPinCount> msgs;
    uint32_t count = 0;
    void Add(const md::MsiMessage& m) {
      if (count < msgs.size()) msgs[count++] = m;
    }
  };

  void Service(uint32_t pin, Outbox* out);        // mu_ held
  uint32_t ReadIndirect(uint32_t index) const;    // mu_ held
  // mu_ held; returns the pin whose entry changed, or kIoapicPinCount.
  uint32_t WriteIndirect(uint32_t index, uint32_t value, Outbox* out);
  std::optional<md::MsiMessage> RouteOf(uint32_t pin) const;  // mu_ held
  void PublishRoute(uint32_t pin);  // takes route_mu_, then mu_ briefly
  void Send(const Outbox& out);     // no lock held
  void BadAccess(bool write, uint64_t offset, uint32_t size);

  const MsiFn send_;
  const RouteFn routes_;
  const std::string name_;
  std::array<Input, kIoapicPinCount> inputs_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  uint32_t regsel_ = 0;
  uint32_t id_ = 0;  // IOAPICID as read (bits 27:24)
  std::array<uint64_t, kIoapicPinCount> rte_{};
  std::array<bool, kIoapicPinCount> asserted_{};

  std::mutex route_mu_;  // before mu_; serialises RouteFn calls
  std::array<std::optional<md::MsiMessage>, kIoapicPinCount>
      published_{};  // route_mu_

  std::atomic<uint64_t> msis_{0}, eois_{0}, remote_irr_cleared_{0},
      eoi_redeliveries_{0}, route_updates_{0}, bad_accesses_{0};
  std::atomic<bool> bad_access_logged_{false};
};

}  // namespace strata
