// strata — the address-range bus shared by port I/O and MMIO.
//
// Theory: every device model implements IoDevice, one access signature for
// both address spaces (kvmtool's kvm__register_iotrap idea). A Bus maps
// non-overlapping [base, base+length) ranges to devices and dispatches an
// access to the single device whose range wholly contains it; there is no
// broadcast. Accesses the bus cannot route ("unclaimed") behave like an empty
// ISA/PCI decode: PIO reads float to all-ones, MMIO reads return zero, writes
// are dropped. They are counted, logged once per address, and can be made
// fatal so a test suite notices a guest poking at hardware we lack.
//
// Locking: many vCPU threads dispatch concurrently; registration is rare.
// The range table is guarded by a std::shared_mutex — shared for dispatch,
// exclusive for Register/Unregister. The device call runs under the shared
// lock, which keeps the device alive for the call and means Unregister waits
// for in-flight accesses; devices do their own internal locking. A device
// must therefore never call Register/Unregister on the bus that is
// dispatching to it (it would self-deadlock).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "core/result.h"

namespace strata {

// One access signature for port I/O and MMIO. offset is relative to the
// registered base; size is 1, 2, 4 or 8; values are little-endian in the low
// bytes. The bus guarantees offset + size <= the registered length and masks
// values to the access size in both directions.
class IoDevice {
 public:
  virtual ~IoDevice() = default;
  virtual uint64_t Read(uint64_t offset, uint32_t size) = 0;
  virtual void Write(uint64_t offset, uint32_t size, uint64_t value) = 0;
  virtual std::string_view name() const = 0;
};

enum class BusKind { kPio, kMmio };

// Highest port number of the x86 I/O space; a PIO range must end at or below.
inline constexpr uint64_t kPioMaxPort = 0xffff;

// Returns "pio" or "mmio", for messages.
const char* BusKindName(BusKind kind);

// Returns the value with only the low `size` bytes kept (size 1..8).
constexpr uint64_t MaskToSize(uint64_t value, uint32_t size) {
  return size >= 8 ? value : value & ((uint64_t{1} << (size * 8)) - 1);
}

class Bus {
 public:
  // PIO buses read unclaimed addresses as all-ones (masked to the access
  // size), MMIO buses as zero.
  explicit Bus(BusKind kind);
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Claims [base, base+length) for dev. Rejects a null device, length 0, a
  // range that wraps past the top of the address space, a PIO range beyond
  // kPioMaxPort (kOutOfRange), and overlap with an existing registration
  // (kAlreadyExists; the message names both devices and ranges). Ranges may
  // touch. The same device object may be registered at several ranges.
  [[nodiscard]] Status Register(uint64_t base, uint64_t length,
                                std::shared_ptr<IoDevice> dev);

  // Removes the registration whose base is exactly `base` (kNotFound
  // otherwise). Waits for in-flight accesses to finish.
  [[nodiscard]] Status Unregister(uint64_t base);

  // Dispatch. size must be 1, 2, 4 or 8 (else kInvalidArgument). An access
  // must lie entirely within one device's range, otherwise it is unclaimed:
  // reads give the default value, writes are ignored, it is counted, and the
  // first unclaimed access to each address is logged (warn). With
  // set_unclaimed_fatal(true) an unclaimed access is still counted but returns
  // Errc::kGuestFault naming the bus, address, size and direction instead.
  Result<uint64_t> Read(uint64_t addr, uint32_t size);
  Status Write(uint64_t addr, uint32_t size, uint64_t value);

  void set_unclaimed_fatal(bool fatal);
  uint64_t unclaimed_count() const;
  BusKind kind() const { return kind_; }

  // For diagnostics/dump: (base, length, device name) of each registration,
  // sorted by base.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> Ranges() const;

 private:
  struct Entry {
    uint64_t last;  // inclusive end, so a range may end at 2^64 - 1
    std::shared_ptr<IoDevice> dev;
  };

  // Returns the device whose range holds [addr, addr+size), or null. Caller
  // holds mu_ (shared). Sets *offset to addr - base.
  IoDevice* Find(uint64_t addr, uint32_t size, uint64_t* offset) const;
  // Counts/logs an unclaimed access; returns an error in fatal mode.
  Status Unclaimed(uint64_t addr, uint32_t size, bool is_write,
                   uint64_t value);

  const BusKind kind_;
  mutable std::shared_mutex mu_;
  std::map<uint64_t, Entry> ranges_;  // keyed by base; guarded by mu_

  std::atomic<bool> unclaimed_fatal_{false};
  std::atomic<uint64_t> unclaimed_count_{0};

  // Addresses already warned about. Bounded so a guest sweeping the address
  // space cannot grow it without limit; past the bound we stop logging.
  std::mutex logged_mu_;
  std::unordered_set<uint64_t> logged_;  // guarded by logged_mu_
  bool log_suppressed_ = false;          // guarded by logged_mu_
};

}  // namespace strata
