#include "core/bus.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <utility>

#include "core/log.h"

namespace strata {

namespace {

// Distinct unclaimed addresses we warn about before going quiet; enough to
// see what a guest probes, small enough to bound memory.
constexpr size_t kMaxLoggedUnclaimed = 1024;

}  // namespace

const char* BusKindName(BusKind kind) {
  switch (kind) {
    case BusKind::kPio: return "pio";
    case BusKind::kMmio: return "mmio";
  }
  return "?";
}

// ------------------------------------------------------------ IoEventFd ----

IoEventFd::~IoEventFd() {
  Status s = accel_->AssignIoEventFd(kind_, addr_, size_, datamatch_,
                                     fd_.get(), /*assign=*/false);
  if (!s) Log().warn("removing the ioeventfd at {:#x}: {}", addr_, s.error().message());
}

Result<uint64_t> IoEventFd::Consume() {
  uint64_t n = 0;
  for (;;) {
    ssize_t r = read(fd_.get(), &n, sizeof(n));
    if (r == sizeof(n)) return n;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return uint64_t{0};
    return SysError("reading the ioeventfd at {:#x}", addr_);
  }
}

// ------------------------------------------------------------------ Bus ----

// Unclaimed-access warnings a guest can trigger at once before the rate
// limit (one more every RateLimit::kDefaultRefill): enough to see a probe's
// pattern.
constexpr uint32_t kUnclaimedLogBurst = 32;

Bus::Bus(BusKind kind)
    : kind_(kind),
      unclaimed_log_(std::make_unique<RateLimit>(
          fmt::format("{} unclaimed-access", BusKindName(kind)), nullptr,
          kUnclaimedLogBurst)) {}

Bus::~Bus() = default;

void Bus::set_logger(std::shared_ptr<spdlog::logger> logger) {
  unclaimed_log_ = std::make_unique<RateLimit>(
      fmt::format("{} unclaimed-access", BusKindName(kind_)),
      std::move(logger), kUnclaimedLogBurst);
}

Status Bus::ValidateRange(uint64_t base, uint64_t length,
                          std::string_view dev_name) const {
  if (length == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: device '{}' at {:#x} has length 0",
                     BusKindName(kind_), dev_name, base);
  }
  const uint64_t last = base + (length - 1);
  if (last < base) {
    return MakeError(Errc::kOutOfRange,
                     "{} bus: device '{}' range {:#x}+{:#x} wraps past the "
                     "end of the address space",
                     BusKindName(kind_), dev_name, base, length);
  }
  if (kind_ == BusKind::kPio && last > kPioMaxPort) {
    return MakeError(Errc::kOutOfRange,
                     "pio bus: device '{}' range [{:#x}, {:#x}] goes beyond "
                     "port {:#x}",
                     dev_name, base, last, kPioMaxPort);
  }
  return Ok();
}

Status Bus::CheckOverlap(uint64_t base, uint64_t last,
                         std::string_view dev_name,
                         std::optional<uint64_t> ignore_base) const {
  auto check = [&](std::map<uint64_t, Entry>::const_iterator it) -> Status {
    if (ignore_base && it->first == *ignore_base) return Ok();
    const uint64_t obase = it->first;
    const uint64_t olast = it->second.last;
    if (base <= olast && obase <= last) {
      return MakeError(Errc::kAlreadyExists,
                       "{} bus: device '{}' range [{:#x}, {:#x}] overlaps "
                       "device '{}' range [{:#x}, {:#x}]",
                       BusKindName(kind_), dev_name, base, last,
                       it->second.dev->name(), obase, olast);
    }
    return Ok();
  };
  // Candidates: ranges starting inside [base, last], and the last one
  // starting before base. (With ignore_base, the neighbours of the ignored
  // entry must be looked at too, so walk the few that start <= last.)
  auto it = ranges_.upper_bound(last);
  while (it != ranges_.begin()) {
    --it;
    STRATA_TRY(check(it));
    if (it->first < base && !(ignore_base && it->first == *ignore_base)) break;
  }
  return Ok();
}

Status Bus::Register(uint64_t base, uint64_t length,
                     std::shared_ptr<IoDevice> dev) {
  if (!dev) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: cannot register a null device at {:#x}",
                     BusKindName(kind_), base);
  }
  STRATA_TRY(ValidateRange(base, length, dev->name()));
  const uint64_t last = base + (length - 1);
  std::unique_lock lock(mu_);
  STRATA_TRY(CheckOverlap(base, last, dev->name(), std::nullopt));
  ranges_.emplace(base, Entry{last, std::move(dev)});
  generation_.fetch_add(1, std::memory_order_release);
  return Ok();
}

Status Bus::Unregister(uint64_t base) {
  std::shared_ptr<IoDevice> dropped;  // released after the lock
  {
    std::unique_lock lock(mu_);
    auto it = ranges_.find(base);
    if (it == ranges_.end()) {
      return MakeError(Errc::kNotFound,
                       "{} bus: no device registered at base {:#x}",
                       BusKindName(kind_), base);
    }
    dropped = std::move(it->second.dev);
    ranges_.erase(it);
    generation_.fetch_add(1, std::memory_order_release);
  }
  return Ok();
}

Status Bus::Move(uint64_t old_base, uint64_t new_base) {
  std::unique_lock lock(mu_);
  auto it = ranges_.find(old_base);
  if (it == ranges_.end()) {
    return MakeError(Errc::kNotFound,
                     "{} bus: no device registered at base {:#x}",
                     BusKindName(kind_), old_base);
  }
  if (old_base == new_base) return Ok();
  const uint64_t length = it->second.last - old_base + 1;
  std::string_view name = it->second.dev->name();
  STRATA_TRY(ValidateRange(new_base, length, name));
  const uint64_t last = new_base + (length - 1);
  STRATA_TRY(CheckOverlap(new_base, last, name, old_base));
  Entry e{last, std::move(it->second.dev)};
  ranges_.erase(it);
  ranges_.emplace(new_base, std::move(e));
  generation_.fetch_add(1, std::memory_order_release);
  return Ok();
}

IoDevice* Bus::Lookup(uint64_t addr, uint32_t size, uint64_t* offset,
                      BusCache* cache, std::shared_ptr<IoDevice>* hold) const {
  if (cache != nullptr && CacheHolds(*cache, addr, size)) {
    *offset = addr - cache->base;
    return cache->dev.get();
  }
  const uint64_t access_last = addr + (size - 1);
  std::shared_lock lock(mu_);
  auto next = ranges_.upper_bound(addr);
  if (next != ranges_.begin()) {
    auto it = std::prev(next);
    if (addr <= it->second.last) {
      if (access_last < addr || access_last > it->second.last) {
        return nullptr;  // straddles the range's end: unclaimed, not cached
      }
      *offset = addr - it->first;
      if (cache != nullptr) {
        // The generation read under the lock matches the table it describes.
        cache->generation = generation_.load(std::memory_order_relaxed);
        cache->base = it->first;
        cache->last = it->second.last;
        cache->dev = it->second.dev;
        return cache->dev.get();
      }
      *hold = it->second.dev;
      return hold->get();
    }
  }
  // addr lies in the gap between the range before it (if any) and `next`.
  if (cache != nullptr) {
    const uint64_t gap_base =
        next == ranges_.begin() ? 0 : std::prev(next)->second.last + 1;
    const uint64_t gap_last =
        next == ranges_.end() ? ~uint64_t{0} : next->first - 1;
    cache->generation = generation_.load(std::memory_order_relaxed);
    cache->base = gap_base;
    cache->last = gap_last;
    cache->dev.reset();
  }
  return nullptr;
}

Status Bus::Unclaimed(uint64_t addr, uint32_t size, bool is_write,
                      uint64_t value, BusCache* cache) {
  unclaimed_count_.fetch_add(1, std::memory_order_relaxed);
  const char* dir = is_write ? "write" : "read";
  if (unclaimed_fatal_.load(std::memory_order_relaxed)) {
    return MakeError(Errc::kGuestFault,
                     "{} bus: unclaimed {}-byte {} at {:#x}{}",
                     BusKindName(kind_), size, dir, addr,
                     is_write ? fmt::format(" (value {:#x})", value) : "");
  }
  // This thread's last unclaimed address has been through the set below.
  if (cache != nullptr && cache->quiet_valid && cache->quiet_addr == addr) {
    return Ok();
  }
  bool log = false;
  bool announce_suppression = false;
  {
    std::lock_guard lock(logged_mu_);
    if (!log_suppressed_) {
      if (logged_.size() >= kMaxLoggedUnclaimed) {
        log_suppressed_ = true;
        announce_suppression = true;
      } else {
        log = logged_.insert(addr).second;
      }
    }
  }
  if (cache != nullptr) {
    cache->quiet_valid = true;
    cache->quiet_addr = addr;
  }
  if (log) {
    unclaimed_log_->Warn("{} bus: unclaimed {}-byte {} at {:#x}{} (further "
                         "accesses to this address are not logged)",
                         BusKindName(kind_), size, dir, addr,
                         is_write ? fmt::format(" value {:#x}", value) : "");
  } else if (announce_suppression) {
    unclaimed_log_->Warn("{} bus: more than {} distinct unclaimed addresses; "
                         "no longer logging new ones",
                         BusKindName(kind_), kMaxLoggedUnclaimed);
  }
  return Ok();
}

Result<uint64_t> Bus::ReadSlow(const IoContext& ctx, uint64_t addr,
                               uint32_t size, BusCache* cache) {
  if (!ValidAccessSize(size)) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: invalid access size {} for read at {:#x}",
                     BusKindName(kind_), size, addr);
  }
  uint64_t offset = 0;
  std::shared_ptr<IoDevice> hold;
  if (IoDevice* dev = Lookup(addr, size, &offset, cache, &hold)) {
    return MaskToSize(dev->Read(ctx, offset, size), size);
  }
  STRATA_TRY(Unclaimed(addr, size, /*is_write=*/false, 0, cache));
  return UnclaimedValue(size);
}

Status Bus::WriteSlow(const IoContext& ctx, uint64_t addr, uint32_t size,
                      uint64_t value, BusCache* cache) {
  if (!ValidAccessSize(size)) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: invalid access size {} for write at {:#x}",
                     BusKindName(kind_), size, addr);
  }
  value = MaskToSize(value, size);
  uint64_t offset = 0;
  std::shared_ptr<IoDevice> hold;
  if (IoDevice* dev = Lookup(addr, size, &offset, cache, &hold)) {
    dev->Write(ctx, offset, size, value);
    return Ok();
  }
  return Unclaimed(addr, size, /*is_write=*/true, value, cache);
}

Result<std::unique_ptr<IoEventFd>> Bus::AddIoEventFd(
    uint64_t addr, uint32_t size, std::optional<uint64_t> datamatch) {
  if (accel_ == nullptr) {
    return MakeError(Errc::kUnsupported,
                     "{} bus: ioeventfd needs a bus attached to a VM",
                     BusKindName(kind_));
  }
  if (!ValidAccessSize(size)) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: ioeventfd size {} at {:#x} (use 1, 2, 4 or 8)",
                     BusKindName(kind_), size, addr);
  }
  STRATA_TRY(ValidateRange(addr, size, "ioeventfd"));
  if (datamatch && MaskToSize(*datamatch, size) != *datamatch) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: ioeventfd datamatch {:#x} does not fit in {} "
                     "bytes",
                     BusKindName(kind_), *datamatch, size);
  }
  UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return SysError("eventfd for the ioeventfd at {:#x}", addr);
  Status s = accel_->AssignIoEventFd(kind_, addr, size, datamatch, fd.get(),
                                     /*assign=*/true);
  if (!s) return std::move(s).error();
  return std::unique_ptr<IoEventFd>(
      new IoEventFd(accel_, kind_, addr, size, datamatch, std::move(fd)));
}

Status Bus::AddCoalescedZone(uint64_t addr, uint64_t size) {
  if (accel_ == nullptr) {
    return MakeError(Errc::kUnsupported,
                     "{} bus: coalesced MMIO needs a bus attached to a VM",
                     BusKindName(kind_));
  }
  STRATA_TRY(ValidateRange(addr, size, "coalesced zone"));
  return accel_->SetCoalescedZone(kind_, addr, size, /*add=*/true);
}

Status Bus::RemoveCoalescedZone(uint64_t addr, uint64_t size) {
  if (accel_ == nullptr) {
    return MakeError(Errc::kUnsupported,
                     "{} bus: coalesced MMIO needs a bus attached to a VM",
                     BusKindName(kind_));
  }
  return accel_->SetCoalescedZone(kind_, addr, size, /*add=*/false);
}

void Bus::set_unclaimed_fatal(bool fatal) {
  unclaimed_fatal_.store(fatal, std::memory_order_relaxed);
}

uint64_t Bus::unclaimed_count() const {
  return unclaimed_count_.load(std::memory_order_relaxed);
}

std::vector<std::tuple<uint64_t, uint64_t, std::string>> Bus::Ranges() const {
  std::shared_lock lock(mu_);
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> out;
  out.reserve(ranges_.size());
  for (const auto& [base, e] : ranges_) {
    // last - base + 1 wraps to 0 only for a range covering all 2^64
    // addresses, which Register cannot create (length is a uint64_t).
    out.emplace_back(base, e.last - base + 1, std::string(e.dev->name()));
  }
  return out;
}

}  // namespace strata
