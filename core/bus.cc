#include "core/bus.h"

#include <iterator>
#include <utility>

#include "core/log.h"

namespace strata {

namespace {

// Distinct unclaimed addresses we warn about before going quiet; enough to
// see what a guest probes, small enough to bound memory.
constexpr size_t kMaxLoggedUnclaimed = 1024;

bool ValidSize(uint32_t size) {
  return size == 1 || size == 2 || size == 4 || size == 8;
}

}  // namespace

const char* BusKindName(BusKind kind) {
  switch (kind) {
    case BusKind::kPio: return "pio";
    case BusKind::kMmio: return "mmio";
  }
  return "?";
}

Bus::Bus(BusKind kind) : kind_(kind) {}

Status Bus::Register(uint64_t base, uint64_t length,
                     std::shared_ptr<IoDevice> dev) {
  if (!dev) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: cannot register a null device at {:#x}",
                     BusKindName(kind_), base);
  }
  if (length == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: device '{}' at {:#x} has length 0",
                     BusKindName(kind_), dev->name(), base);
  }
  const uint64_t last = base + (length - 1);
  if (last < base) {
    return MakeError(Errc::kOutOfRange,
                     "{} bus: device '{}' range {:#x}+{:#x} wraps past the "
                     "end of the address space",
                     BusKindName(kind_), dev->name(), base, length);
  }
  if (kind_ == BusKind::kPio && last > kPioMaxPort) {
    return MakeError(Errc::kOutOfRange,
                     "pio bus: device '{}' range [{:#x}, {:#x}] goes beyond "
                     "port {:#x}",
                     dev->name(), base, last, kPioMaxPort);
  }

  std::unique_lock lock(mu_);
  // The only candidates for overlap are the first range starting after
  // `base` and the last one starting at or before it.
  auto next = ranges_.upper_bound(base);
  auto check = [&](std::map<uint64_t, Entry>::const_iterator it) -> Status {
    const uint64_t obase = it->first;
    const uint64_t olast = it->second.last;
    if (base <= olast && obase <= last) {
      return MakeError(Errc::kAlreadyExists,
                       "{} bus: device '{}' range [{:#x}, {:#x}] overlaps "
                       "device '{}' range [{:#x}, {:#x}]",
                       BusKindName(kind_), dev->name(), base, last,
                       it->second.dev->name(), obase, olast);
    }
    return Ok();
  };
  if (next != ranges_.end()) STRATA_TRY(check(next));
  if (next != ranges_.begin()) STRATA_TRY(check(std::prev(next)));
  ranges_.emplace(base, Entry{last, std::move(dev)});
  return Ok();
}

Status Bus::Unregister(uint64_t base) {
  std::shared_ptr<IoDevice> dropped;  // destroyed after the lock is released
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
  }
  return Ok();
}

IoDevice* Bus::Find(uint64_t addr, uint32_t size, uint64_t* offset) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  const uint64_t access_last = addr + (size - 1);
  // access_last < addr: the access itself wraps, which no range can hold.
  if (access_last < addr || access_last > it->second.last) return nullptr;
  *offset = addr - it->first;
  return it->second.dev.get();
}

Status Bus::Unclaimed(uint64_t addr, uint32_t size, bool is_write,
                      uint64_t value) {
  unclaimed_count_.fetch_add(1, std::memory_order_relaxed);
  const char* dir = is_write ? "write" : "read";
  if (unclaimed_fatal_.load(std::memory_order_relaxed)) {
    return MakeError(Errc::kGuestFault,
                     "{} bus: unclaimed {}-byte {} at {:#x}{}",
                     BusKindName(kind_), size, dir, addr,
                     is_write ? fmt::format(" (value {:#x})", value) : "");
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
  if (log) {
    Log().warn("{} bus: unclaimed {}-byte {} at {:#x}{} (further accesses "
               "to this address are not logged)",
               BusKindName(kind_), size, dir, addr,
               is_write ? fmt::format(" value {:#x}", value) : "");
  } else if (announce_suppression) {
    Log().warn("{} bus: more than {} distinct unclaimed addresses; no "
               "longer logging new ones",
               BusKindName(kind_), kMaxLoggedUnclaimed);
  }
  return Ok();
}

Result<uint64_t> Bus::Read(uint64_t addr, uint32_t size) {
  if (!ValidSize(size)) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: invalid access size {} for read at {:#x}",
                     BusKindName(kind_), size, addr);
  }
  {
    std::shared_lock lock(mu_);
    uint64_t offset = 0;
    if (IoDevice* dev = Find(addr, size, &offset)) {
      return MaskToSize(dev->Read(offset, size), size);
    }
  }
  STRATA_TRY(Unclaimed(addr, size, /*is_write=*/false, 0));
  return kind_ == BusKind::kPio ? MaskToSize(~uint64_t{0}, size) : 0;
}

Status Bus::Write(uint64_t addr, uint32_t size, uint64_t value) {
  if (!ValidSize(size)) {
    return MakeError(Errc::kInvalidArgument,
                     "{} bus: invalid access size {} for write at {:#x}",
                     BusKindName(kind_), size, addr);
  }
  value = MaskToSize(value, size);
  {
    std::shared_lock lock(mu_);
    uint64_t offset = 0;
    if (IoDevice* dev = Find(addr, size, &offset)) {
      dev->Write(offset, size, value);
      return Ok();
    }
  }
  return Unclaimed(addr, size, /*is_write=*/true, value);
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
