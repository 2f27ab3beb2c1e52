#include "core/topology.h"

#include <fmt/format.h>

namespace strata {

uint64_t CpuTopology::Product() const {
  // Saturates instead of wrapping, so a product that does not fit in 64
  // bits still compares greater than any limit.
  unsigned __int128 p = static_cast<unsigned __int128>(sockets) * clusters;
  p *= cores;
  p *= threads;
  return p > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(p);
}

Status CpuTopology::Validate(uint64_t limit) const {
  if (sockets == 0 || clusters == 0 || cores == 0 || threads == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "CPU topology {}: every level must be at least 1",
                     ToString());
  }
  if (Product() > limit) {
    return MakeError(Errc::kOutOfRange,
                     "CPU topology {} describes {} vCPUs, more than the limit "
                     "of {}",
                     ToString(),
                     Product() == UINT64_MAX ? std::string("over 2^64")
                                             : std::to_string(Product()),
                     limit);
  }
  return Ok();
}

std::string CpuTopology::ToString() const {
  std::string s = fmt::format("{} socket{}", sockets, sockets == 1 ? "" : "s");
  if (clusters != 1) s += fmt::format(" x {} clusters", clusters);
  s += fmt::format(" x {} core{} x {} thread{}", cores, cores == 1 ? "" : "s",
                   threads, threads == 1 ? "" : "s");
  return s;
}

}  // namespace strata
