#include "arch/amd64/loader/e820.h"

#include <algorithm>
#include <cstdint>

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

std::string WhyNotRam(const GuestMemory& mem, uint64_t gpa, uint64_t len,
                      std::span<const MemoryHole> holes) {
  if (len == 0) return "";
  // Saturate: a range that wraps is reported up to the top of the space.
  const uint64_t end = gpa + len < gpa ? UINT64_MAX : gpa + len;
  // Holes first: some are backed by RAM (the pc firmware area) and still
  // not the kernel's.
  for (const MemoryHole& h : holes) {
    const uint64_t h_end = h.start + h.size;
    if (h.size != 0 && gpa < h_end && h.start < end) {
      return fmt::format("overlaps {} [{:#x}, {:#x})", h.name, h.start, h_end);
    }
  }
  if (IsRamRange(mem, gpa, len)) return "";
  // The first byte that is not RAM.
  uint64_t a = gpa;
  while (a < end) {
    const MemorySegment* s = mem.Find(a);
    if (s == nullptr) break;
    a = s->end();
  }
  if (a == gpa) return "is outside guest RAM";
  return fmt::format("is outside guest RAM from {:#x}", a);
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
