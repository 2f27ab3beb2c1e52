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
// Every access carries an IoContext: the vCPU whose exit it is, or none for
// an access made by a device thread, the coalesced-MMIO ring or the API. A
// device that cares (a per-CPU register bank, a PCI BAR relocation that must
// be attributed) asks the context; the others ignore it.
//
// Locking: many vCPU threads dispatch concurrently; registration is rare.
// The range table is guarded by a std::shared_mutex, but no bus lock is held
// while a device runs: dispatch finds the range under the shared lock, takes
// a reference to the device (shared_ptr) and releases the lock before the
// call. So a device may register, move or remove ranges — its own included —
// from inside an access (a PCI BAR relocation through config space), and
// Unregister never waits for in-flight accesses: an access that found the
// device before Unregister returned may still finish on it, and the device
// object lives until that access is done (and, for a vCPU that had it in
// its BusCache, until that vCPU's next miss). Devices do their own locking.
//
// Accelerated paths. A Bus attached to a VM (Vm::pio_bus(), Vm::mmio_bus())
// also offers the hypervisor's in-kernel shortcuts: ioeventfd (a guest write
// to an address signals an eventfd instead of exiting to a vCPU thread) and
// coalesced MMIO (writes to a zone are queued in a ring and replayed to the
// bus, in order, before the next exit is handled). A detached Bus (unit
// tests) reports them as unsupported.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"

namespace spdlog {
class logger;
}

namespace strata {

class RateLimit;

class Vcpu;

// Who makes an access.
struct IoContext {
  // The vCPU whose exit this access is (its exit handler runs on the vCPU's
  // own thread), or null for device threads, the coalesced-MMIO ring and
  // API callers.
  Vcpu* vcpu = nullptr;

  static IoContext Device() { return IoContext{}; }
};

// One access signature for port I/O and MMIO. offset is relative to the
// registered base; size is 1, 2, 4 or 8; values are little-endian in the low
// bytes. The bus guarantees offset + size <= the registered length and masks
// values to the access size in both directions.
class IoDevice {
 public:
  virtual ~IoDevice() = default;
  virtual uint64_t Read(const IoContext& ctx, uint64_t offset,
                        uint32_t size) = 0;
  virtual void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
                     uint64_t value) = 0;
  virtual std::string_view name() const = 0;
};

enum class BusKind { kPio, kMmio };

// Highest port number of the x86 I/O space; a PIO range must end at or below.
inline constexpr uint64_t kPioMaxPort = 0xffff;

// Returns "pio" or "mmio", for messages.
const char* BusKindName(BusKind kind);

// Whether size is a bus access size (1, 2, 4 or 8 bytes).
constexpr bool ValidAccessSize(uint32_t size) {
  return size == 1 || size == 2 || size == 4 || size == 8;
}

// Returns the value with only the low `size` bytes kept (size 1..8).
constexpr uint64_t MaskToSize(uint64_t value, uint32_t size) {
  return size >= 8 ? value : value & ((uint64_t{1} << (size * 8)) - 1);
}

// What the hypervisor backend provides to an attached bus (internal: the
// KVM backend implements it; embedders use the Bus calls below).
class BusAccelerator {
 public:
  virtual ~BusAccelerator() = default;
  // KVM_IOEVENTFD: assign (or deassign) fd to guest writes of `size` bytes
  // at addr, optionally only when the value equals *datamatch.
  virtual Status AssignIoEventFd(BusKind kind, uint64_t addr, uint32_t size,
                                 std::optional<uint64_t> datamatch, int fd,
                                 bool assign) = 0;
  // KVM_(UN)REGISTER_COALESCED_MMIO for [addr, addr+size).
  virtual Status SetCoalescedZone(BusKind kind, uint64_t addr, uint64_t size,
                                  bool add) = 0;
};

// An eventfd the hypervisor signals when the guest writes a watched address
// (see Bus::AddIoEventFd). Deassigned when destroyed; must not outlive the
// VM (a driver hold pins it, see core/driver.h).
class IoEventFd {
 public:
  ~IoEventFd();
  IoEventFd(const IoEventFd&) = delete;
  IoEventFd& operator=(const IoEventFd&) = delete;

  // The eventfd (EFD_NONBLOCK | EFD_CLOEXEC): poll it, or pass it to
  // another component. Reading returns the number of writes since the last
  // read.
  int fd() const { return fd_.get(); }
  // Reads and resets the counter: the number of guest writes since the last
  // call (0 if none; never blocks).
  Result<uint64_t> Consume();

  uint64_t addr() const { return addr_; }
  uint32_t size() const { return size_; }

 private:
  friend class Bus;
  IoEventFd(BusAccelerator* accel, BusKind kind, uint64_t addr, uint32_t size,
            std::optional<uint64_t> datamatch, UniqueFd fd)
      : accel_(accel), kind_(kind), addr_(addr), size_(size),
        datamatch_(datamatch), fd_(std::move(fd)) {}
  BusAccelerator* accel_;
  BusKind kind_;
  uint64_t addr_;
  uint32_t size_;
  std::optional<uint64_t> datamatch_;
  UniqueFd fd_;
};

// A one-entry lookup cache for one thread's accesses to one bus (each vCPU
// keeps one per bus): the last range it hit and a reference to its device,
// or the last gap between ranges it found unclaimed (dev null), valid
// while the bus's generation — bumped by every Register, Unregister and
// Move — is unchanged. A hit costs one atomic load instead of the table's
// lock and search; a device unregistered meanwhile stays referenced until
// the cache's owner next misses (or goes away). A guest that polls an
// unclaimed port (KUT's vmexit inl_from_qemu, a probe loop) also skips the
// logged-address set for the last unclaimed address it used.
struct BusCache {
  uint64_t generation = 0;  // 0: empty
  uint64_t base = 0;
  uint64_t last = 0;  // inclusive
  std::shared_ptr<IoDevice> dev;  // null: [base, last] is unclaimed
  // The last unclaimed address this cache's owner accessed, already logged
  // (or past the logging bound); valid when quiet_valid.
  bool quiet_valid = false;
  uint64_t quiet_addr = 0;
};

class Bus {
 public:
  // PIO buses read unclaimed addresses as all-ones (masked to the access
  // size), MMIO buses as zero.
  explicit Bus(BusKind kind);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Claims [base, base+length) for dev. Rejects a null device, length 0, a
  // range that wraps past the top of the address space, a PIO range beyond
  // kPioMaxPort (kOutOfRange), and overlap with an existing registration
  // (kAlreadyExists; the message names both devices and ranges). Ranges may
  // touch. The same device object may be registered at several ranges.
  // Callable from inside a device access.
  [[nodiscard]] Status Register(uint64_t base, uint64_t length,
                                std::shared_ptr<IoDevice> dev);

  // Removes the registration whose base is exactly `base` (kNotFound
  // otherwise). Does not wait for in-flight accesses (see the theory above).
  [[nodiscard]] Status Unregister(uint64_t base);

  // Moves the registration at old_base to new_base atomically (same device,
  // same length): no access in between sees neither or both. Fails like
  // Register if the new range is invalid or overlaps; then nothing changes.
  [[nodiscard]] Status Move(uint64_t old_base, uint64_t new_base);

  // Dispatch. size must be 1, 2, 4 or 8 (else kInvalidArgument). An access
  // must lie entirely within one device's range, otherwise it is unclaimed:
  // reads give the default value, writes are ignored, it is counted, and the
  // first unclaimed access to each address is logged (warn). With
  // set_unclaimed_fatal(true) an unclaimed access is still counted but returns
  // Errc::kGuestFault naming the bus, address, size and direction instead.
  // With a cache (owned by the calling thread), a repeated access to the
  // same range skips the table.
  Result<uint64_t> Read(const IoContext& ctx, uint64_t addr, uint32_t size,
                        BusCache* cache = nullptr) {
    uint64_t v;
    if (cache != nullptr && CachedRead(ctx, addr, size, *cache, &v)) return v;
    return ReadSlow(ctx, addr, size, cache);
  }
  Status Write(const IoContext& ctx, uint64_t addr, uint32_t size,
               uint64_t value, BusCache* cache = nullptr) {
    if (cache != nullptr && CachedWrite(ctx, addr, size, value, *cache)) {
      return Ok();
    }
    return WriteSlow(ctx, addr, size, value, cache);
  }
  // The inline part of Read/Write, for an exit path: true if the access was
  // a hit in `cache` — on a device, or on an unclaimed address already
  // logged — and is done (no lock, no Status); false if it needs
  // Read/Write.
  bool CachedRead(const IoContext& ctx, uint64_t addr, uint32_t size,
                  BusCache& cache, uint64_t* value) {
    if (!CacheHolds(cache, addr, size)) return false;
    if (IoDevice* dev = cache.dev.get()) {
      *value = MaskToSize(dev->Read(ctx, addr - cache.base, size), size);
      return true;
    }
    if (!QuietUnclaimed(cache, addr)) return false;
    *value = UnclaimedValue(size);
    return true;
  }
  bool CachedWrite(const IoContext& ctx, uint64_t addr, uint32_t size,
                   uint64_t value, BusCache& cache) {
    if (!CacheHolds(cache, addr, size)) return false;
    if (IoDevice* dev = cache.dev.get()) {
      dev->Write(ctx, addr - cache.base, size, MaskToSize(value, size));
      return true;
    }
    return QuietUnclaimed(cache, addr);
  }

  // The hypervisor shortcuts (kUnsupported on a detached bus).
  // An eventfd signalled by guest writes of exactly `size` bytes (1, 2, 4 or
  // 8) at addr — only of value *datamatch if given. Such writes no longer
  // reach the device registered there (if any).
  Result<std::unique_ptr<IoEventFd>> AddIoEventFd(
      uint64_t addr, uint32_t size, std::optional<uint64_t> datamatch);
  // Queues writes to [addr, addr+size) in the coalesced ring instead of
  // exiting; they are replayed to the bus (with a device context) before the
  // next exit any vCPU handles. Reads still exit. Use for write-only
  // registers whose side effects may be delayed (framebuffers, doorbells
  // with their own ordering).
  [[nodiscard]] Status AddCoalescedZone(uint64_t addr, uint64_t size);
  [[nodiscard]] Status RemoveCoalescedZone(uint64_t addr, uint64_t size);

  void set_unclaimed_fatal(bool fatal);
  uint64_t unclaimed_count() const;
  BusKind kind() const { return kind_; }

  // For diagnostics/dump: (base, length, device name) of each registration,
  // sorted by base.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> Ranges() const;

  // Internal: set once by the VM that owns the bus, before any access.
  void AttachAccelerator(BusAccelerator* accel) { accel_ = accel; }
  // Where unclaimed accesses are logged (default: the process logger).
  // Set once, before any access (the VM does).
  void set_logger(std::shared_ptr<spdlog::logger> logger);

 private:
  struct Entry {
    uint64_t last;  // inclusive end, so a range may end at 2^64 - 1
    std::shared_ptr<IoDevice> dev;
  };

  // Whether cache is current and wholly holds a valid-size access.
  bool CacheHolds(const BusCache& cache, uint64_t addr, uint32_t size) const {
    const uint64_t access_last = addr + (size - 1);
    return ValidAccessSize(size) &&
           cache.generation == generation_.load(std::memory_order_acquire) &&
           addr >= cache.base && access_last >= addr &&
           access_last <= cache.last;
  }
  // An unclaimed access to the cache's quiet address outside fatal mode:
  // counted, nothing else to do.
  bool QuietUnclaimed(const BusCache& cache, uint64_t addr) {
    if (!cache.quiet_valid || cache.quiet_addr != addr ||
        unclaimed_fatal_.load(std::memory_order_relaxed)) {
      return false;
    }
    unclaimed_count_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  uint64_t UnclaimedValue(uint32_t size) const {
    return kind_ == BusKind::kPio ? MaskToSize(~uint64_t{0}, size) : 0;
  }
  Result<uint64_t> ReadSlow(const IoContext& ctx, uint64_t addr, uint32_t size,
                            BusCache* cache);
  Status WriteSlow(const IoContext& ctx, uint64_t addr, uint32_t size,
                   uint64_t value, BusCache* cache);
  Status ValidateRange(uint64_t base, uint64_t length,
                       std::string_view dev_name) const;
  // Overlap check against every range but `ignore_base` (if set). Caller
  // holds mu_ exclusively.
  Status CheckOverlap(uint64_t base, uint64_t last, std::string_view dev_name,
                      std::optional<uint64_t> ignore_base) const;
  // The device whose range holds [addr, addr+size), or null, with *offset
  // set to addr - base; through `cache` if given (a hit takes no lock). The
  // device stays alive through *hold or the cache until the caller's access
  // is done.
  IoDevice* Lookup(uint64_t addr, uint32_t size, uint64_t* offset,
                   BusCache* cache, std::shared_ptr<IoDevice>* hold) const;
  // Counts/logs an unclaimed access; returns an error in fatal mode.
  Status Unclaimed(uint64_t addr, uint32_t size, bool is_write,
                   uint64_t value, BusCache* cache);

  const BusKind kind_;
  BusAccelerator* accel_ = nullptr;
  std::unique_ptr<RateLimit> unclaimed_log_;  // the warnings
  mutable std::shared_mutex mu_;
  std::map<uint64_t, Entry> ranges_;  // keyed by base; guarded by mu_

  std::atomic<bool> unclaimed_fatal_{false};
  std::atomic<uint64_t> unclaimed_count_{0};
  std::atomic<uint64_t> generation_{1};  // bumped under mu_ (exclusive)

  // Addresses already warned about. Bounded so a guest sweeping the address
  // space cannot grow it without limit; past the bound we stop logging.
  std::mutex logged_mu_;
  std::unordered_set<uint64_t> logged_;  // guarded by logged_mu_
  bool log_suppressed_ = false;          // guarded by logged_mu_
};

}  // namespace strata
