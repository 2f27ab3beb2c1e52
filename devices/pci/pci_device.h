// strata — one PCI function: its configuration space and what hangs off it
// (BARs, MSI, MSI-X, INTx). Arch-neutral; the machine's PciBus (pci_bus.h)
// routes configuration cycles here and gives the function its buses, its
// INTx line and its MSI sink when the function is added.
//
// Emulated (PCI Local Bus 3.0 §6, PCI Express Base 4.0 §7.5.1): a 4 KiB
// configuration space with a type-0 header. Every byte has a writable mask
// and a write-1-to-clear mask; a write keeps the read-only bits, replaces
// the writable ones and clears the W1C bits written as 1. On top of that:
//   - command (§6.2.2): I/O and memory decode map and unmap the BARs,
//     bus master gates MSI/MSI-X, INTx disable gates the INTx line;
//   - status (§6.2.3): capabilities list (bit 4), interrupt status (bit 3:
//     the function's INTx level, whatever INTx disable says), the error
//     bits W1C;
//   - BARs (§6.2.5.1): 32-bit and 64-bit memory (optionally prefetchable)
//     and I/O, sized the usual way (write all-ones, read back the mask). A
//     BAR is decoded at its address while its decode bit is on; moving it
//     or toggling decode moves, registers or unregisters its handler on the
//     pio or mmio Bus. Address 0, and a BAR reaching the top of its space
//     (the all-ones a sizing write leaves), count as unmapped, as in QEMU.
//     A placement the bus refuses (overlap) is logged, rate-limited, and
//     the BAR stays unmapped until the guest moves it again;
//   - a capability list (§6.7) in 0x40-0xff;
//   - MSI (§6.8.1): 64-bit address, one message (multiple message
//     disabled), optional per-vector mask and pending bits;
//   - MSI-X (§6.8.2): table and PBA in a BAR of their own, per-vector mask,
//     function mask, pending bits; unmasking a pending vector sends it;
//   - INTx: interrupt pin (read-only, chosen by the model) and line
//     (writable, firmware's note) registers, and the function's level
//     driven onto its IrqLine unless INTx disable is set or MSI/MSI-X is
//     enabled (§6.8: a function using MSI must not use INTx).
// Missing: expansion ROM (reads 0: no ROM), PCIe extended capabilities,
// power management, the MSI extended message data.
//
// Locking: one mutex per function guards its configuration space, MSI-X
// table and mapping state. Bus calls are made with it held (the bus never
// calls a device with its own lock held, core/bus.h); messages are sent
// after it is released.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus.h"
#include "core/result.h"
#include "core/snapshot.h"
#include "devices/irq.h"
#include "machine/irq_machdep.h"

namespace spdlog {
class logger;
}

namespace strata {

class RateLimit;

// Configuration space offsets and bits (PCI Local Bus 3.0 §6.1, §6.2).
namespace pcicfg {
inline constexpr uint32_t kSize = 4096;
inline constexpr uint32_t kVendorId = 0x00;
inline constexpr uint32_t kDeviceId = 0x02;
inline constexpr uint32_t kCommand = 0x04;
inline constexpr uint32_t kStatus = 0x06;
inline constexpr uint32_t kRevision = 0x08;
inline constexpr uint32_t kProgIf = 0x09;
inline constexpr uint32_t kSubclass = 0x0a;
inline constexpr uint32_t kClass = 0x0b;
inline constexpr uint32_t kHeaderType = 0x0e;
inline constexpr uint32_t kBar0 = 0x10;
inline constexpr uint32_t kBarCount = 6;
inline constexpr uint32_t kSubsystemVendorId = 0x2c;
inline constexpr uint32_t kSubsystemId = 0x2e;
inline constexpr uint32_t kCapPtr = 0x34;
inline constexpr uint32_t kInterruptLine = 0x3c;
inline constexpr uint32_t kInterruptPin = 0x3d;
inline constexpr uint32_t kCapStart = 0x40;  // first capability
inline constexpr uint32_t kCapEnd = 0x100;   // end of the legacy space

inline constexpr uint16_t kCommandIo = 1u << 0;
inline constexpr uint16_t kCommandMemory = 1u << 1;
inline constexpr uint16_t kCommandMaster = 1u << 2;
inline constexpr uint16_t kCommandParity = 1u << 6;
inline constexpr uint16_t kCommandSerr = 1u << 8;
inline constexpr uint16_t kCommandIntxDisable = 1u << 10;

inline constexpr uint16_t kStatusIntx = 1u << 3;
inline constexpr uint16_t kStatusCapList = 1u << 4;
// Master/target abort, SERR, parity error bits (W1C).
inline constexpr uint16_t kStatusW1c = 0xf900;

inline constexpr uint8_t kHeaderMultiFunction = 0x80;

inline constexpr uint32_t kBarIo = 0x1;
inline constexpr uint32_t kBarMem64 = 0x4;
inline constexpr uint32_t kBarPrefetch = 0x8;

inline constexpr uint8_t kCapIdMsi = 0x05;
inline constexpr uint8_t kCapIdMsix = 0x11;
}  // namespace pcicfg

// Who a function is (PCI Local Bus 3.0 §6.2.1).
// Red Hat's (ex-Qumranet) vendor id, QEMU's devices (QEMU's
// docs/specs/pci-ids.rst).
inline constexpr uint16_t kPciVendorRedHat = 0x1b36;

struct PciId {
  uint16_t vendor = 0xffff;
  uint16_t device = 0xffff;
  uint8_t class_code = 0;
  uint8_t subclass = 0;
  uint8_t prog_if = 0;
  uint8_t revision = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem = 0;
  uint8_t interrupt_pin = 0;  // 0: none, 1-4: INTA#-INTD#
};

enum class PciBarKind : uint8_t { kIo, kMem32, kMem64 };

struct PciBarSpec {
  PciBarKind kind = PciBarKind::kMem32;
  uint64_t size = 0;  // a power of two: >= 16 (memory), 4..256 (I/O)
  bool prefetchable = false;  // memory only
  // Receives the accesses, at offsets relative to the BAR's base.
  std::shared_ptr<IoDevice> handler;
};

// Where a function sends its messages (the platform passes Vm::SignalMsi).
using PciMsiFn = std::function<void(const md::MsiMessage&)>;

// What the bus gives a function when it is added.
struct PciAttachment {
  Bus* pio = nullptr;
  Bus* mmio = nullptr;
  std::shared_ptr<IrqLine> intx;  // null: no INTx (pin 0)
  PciMsiFn msi;                   // null: messages are dropped
  std::shared_ptr<spdlog::logger> logger;  // null: the strata logger
  // Whether a BAR at address 0 decodes. Off (the pc machine, QEMU's
  // default): 0 means unassigned. On: QEMU's virt (pci_allow_0_address),
  // where PCI I/O space is its own window and port 0 is a usable BAR
  // address (kvm-unit-tests' allocator puts the first I/O BAR there).
  bool allow_zero_address = false;
};

class PciDevice : public std::enable_shared_from_this<PciDevice> {
 public:
  PciDevice(const PciId& id, std::string name);
  virtual ~PciDevice();
  PciDevice(const PciDevice&) = delete;
  PciDevice& operator=(const PciDevice&) = delete;

  const std::string& name() const { return name_; }

  // --- Building the function (before it is added to a bus) ---

  // BAR `index` (0-5; a 64-bit BAR also takes index+1). kInvalidArgument
  // for a bad size or index, an index in use, or a missing handler.
  Status AddBar(uint32_t index, const PciBarSpec& spec);
  // Appends a capability of `length` bytes (>= 2; the ID and next-pointer
  // bytes are filled in) to the list, 4-byte aligned; returns its offset.
  // kOutOfRange if it does not fit below 0x100.
  Result<uint32_t> AddCapability(uint8_t id, uint32_t length);
  // An MSI capability (64-bit, one message), with mask and pending bits
  // if per_vector_mask.
  Result<uint32_t> AddMsi(bool per_vector_mask);
  // An MSI-X capability with `vectors` (1-2048) entries; the table (at 0)
  // and the PBA live in BAR `bar`, a 32-bit memory BAR of their own.
  Result<uint32_t> AddMsix(uint32_t bar, uint32_t vectors);

  // Raw configuration-space setup for the model: value and masks of
  // [offset, offset+size), size 1, 2 or 4, little-endian.
  void SetConfig(uint32_t offset, uint32_t size, uint32_t value);
  void SetWritable(uint32_t offset, uint32_t size, uint32_t mask);
  void SetWriteOneToClear(uint32_t offset, uint32_t size, uint32_t mask);

  // --- The bus's side ---

  // Called once by the bus that adds the function.
  void Attach(PciAttachment attachment);
  // A configuration read or write of `size` (1, 2, 4) bytes at `offset`;
  // the part beyond 4 KiB reads as zero and is not written.
  uint32_t ConfigRead(uint32_t offset, uint32_t size);
  void ConfigWrite(uint32_t offset, uint32_t size, uint32_t value);

  // The BAR's register value (type bits included), its size, and whether
  // it is a BAR at all; for the firmware-like allocator and tests.
  struct BarInfo {
    PciBarKind kind;
    uint64_t size;
    std::optional<uint64_t> mapped;  // where it is decoded now
  };
  std::optional<BarInfo> Bar(uint32_t index);
  // Places BAR `index` at `address` (as firmware writes it).
  void SetBarAddress(uint32_t index, uint64_t address);

  // --- The model's side ---

  // Sends vector `vector`: through MSI-X if enabled (pending if masked),
  // else MSI (vector 0 only; pending if masked), else nothing. Needs bus
  // master enable (a message is a memory write by the function).
  void Notify(uint32_t vector);
  // Drives the function's INTx level (status bit 3 follows it).
  void SetIntx(bool asserted);

  bool msi_enabled();
  bool msix_enabled();

  // --- Snapshots (core/snapshot.h) ---

  // The function's state: configuration space (BAR addresses, command,
  // capabilities), the INTx level, MSI/MSI-X pending bits and the MSI-X
  // table, plus the model's own state if it set one. LoadState, on a
  // function built the same way and attached, places the BARs as the
  // saved configuration decodes them and drives INTx as saved.
  Status SaveState(StateWriter& out);
  Status LoadState(StateReader& in);
  // A model with state of its own beyond configuration space and the
  // MSI-X table (pci-testdev's test counters) sets it before the function
  // is added; it is saved and loaded with the function.
  void SetModelState(std::shared_ptr<Snapshottable> state) {
    model_state_ = std::move(state);
  }

 protected:
  // Called after a configuration write (without the lock), for models
  // with registers of their own in configuration space.
  virtual void ConfigWritten(uint32_t /*offset*/, uint32_t /*size*/) {}

 private:
  class MsixBar;
  struct BarState {
    PciBarKind kind = PciBarKind::kMem32;
    uint64_t size = 0;
    bool prefetchable = false;
    bool upper = false;  // the high half of a 64-bit BAR
    std::shared_ptr<IoDevice> handler;
    std::optional<uint64_t> mapped;
  };
  struct MsixEntry {
    uint64_t address = 0;
    uint32_t data = 0;
    uint32_t control = 1;  // bit 0: masked
  };

  uint32_t Get(uint32_t offset, uint32_t size) const;  // mu_ held
  void Put(uint32_t offset, uint32_t size, uint32_t value);  // mu_ held
  uint16_t command() const { return static_cast<uint16_t>(Get(pcicfg::kCommand, 2)); }
  std::optional<uint64_t> BarAddress(uint32_t index) const;  // mu_ held
  void UpdateMappings();  // mu_ held
  void UpdateIntx();      // mu_ held
  // MSI state after a write, and messages now due (unmasked pending).
  void MsiWritten(std::vector<md::MsiMessage>* out);   // mu_ held
  void MsixWritten(std::vector<md::MsiMessage>* out);  // mu_ held
  bool MsiEnabledLocked() const;
  bool MsixEnabledLocked() const;
  bool MsixFunctionMasked() const;
  void Deliver(const std::vector<md::MsiMessage>& msgs);  // mu_ not held
  // The MSI-X BAR's accesses.
  uint64_t MsixRead(uint64_t offset, uint32_t size);
  void MsixWrite(uint64_t offset, uint32_t size, uint64_t value);

  const std::string name_;
  std::mutex mu_;
  std::array<uint8_t, pcicfg::kSize> cfg_{};
  std::array<uint8_t, pcicfg::kSize> wmask_{};
  std::array<uint8_t, pcicfg::kSize> w1cmask_{};
  std::array<BarState, pcicfg::kBarCount> bars_{};
  uint32_t next_cap_ = pcicfg::kCapStart;
  uint32_t last_cap_ = 0;  // offset of the last capability, 0: none
  bool intx_level_ = false;
  bool intx_out_ = false;  // what the line was last driven to
  // MSI
  uint32_t msi_cap_ = 0;  // 0: none
  bool msi_masking_ = false;
  bool msi_pending_ = false;
  // MSI-X
  uint32_t msix_cap_ = 0;  // 0: none
  uint32_t msix_bar_ = 0;
  uint64_t msix_pba_offset_ = 0;
  std::vector<MsixEntry> msix_table_;
  std::vector<bool> msix_pending_;

  std::shared_ptr<Snapshottable> model_state_;
  PciAttachment att_;
  std::unique_ptr<RateLimit> conflict_log_;
  bool attached_ = false;
};

}  // namespace strata
