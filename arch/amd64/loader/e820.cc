#include "arch/amd64/loader/e820.h"

#include <algorithm>

#include <fmt/format.h>

namespace strata::amd64 {

namespace {

void Append(std::vector<E820Entry>& map, uint64_t addr, uint64_t end,
            uint32_t type) {
  if (end <= addr) return;
  if (!map.empty() && map.back().end() == addr && map.back().type == type) {
    map.back().size += end - addr;
    return;
  }
  map.push_back({addr, end - addr, type});
}

}  // namespace

std::vector<E820Entry> BuildE820(const GuestMemory& mem) {
  std::vector<E820Entry> map;
  // segments() is sorted by gpa and non-overlapping (GuestMemory::AddSegment).
  for (const auto& seg : mem.segments()) {
    const uint64_t start = seg->gpa;
    const uint64_t end = seg->end();
    const uint64_t hole_lo = std::clamp(kLegacyHoleStart, start, end);
    const uint64_t hole_hi = std::clamp(kLegacyHoleEnd, start, end);
    Append(map, start, hole_lo, kE820Ram);
    Append(map, hole_lo, hole_hi, kE820Reserved);
    Append(map, hole_hi, end, kE820Ram);
  }
  return map;
}

bool IsRamRange(const GuestMemory& mem, uint64_t gpa, uint64_t len) {
  if (len == 0) return true;
  if (gpa + len < gpa) return false;
  const uint64_t end = gpa + len;
  uint64_t a = gpa;
  while (a < end) {
    const MemorySegment* s = mem.Find(a);
    if (s == nullptr) return false;
    a = s->end();
  }
  return true;
}

std::string DescribeRam(const GuestMemory& mem) {
  std::string out;
  for (const auto& seg : mem.segments()) {
    if (!out.empty()) out += ", ";
    out += fmt::format("[{:#x}, {:#x})", seg->gpa, seg->end());
  }
  return out.empty() ? "no RAM" : out;
}

}  // namespace strata::amd64
