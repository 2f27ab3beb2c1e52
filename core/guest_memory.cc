#include "core/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace strata {

namespace {
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kHugePageSize = 2 << 20;

// Address space for a segment of `size` bytes at `gpa`, its start
// congruent to gpa modulo 2 MiB (PROT_NONE until mapped over with
// MAP_FIXED). A plain mmap is only 4 KiB-aligned (Linux aligns large
// anonymous mappings to huge pages only from 6.7), and then every 2 MiB of
// guest memory straddles two host huge pages, so KVM maps it 4 KiB at a
// time whatever the host's THP does: in the nested SVM L1 a Linux boot
// took 24 800 stage-2 faults under strata against QEMU's 610 (QEMU aligns
// its RAM the same way).
void* ReserveAligned(uint64_t gpa, uint64_t size) {
  const uint64_t span = size + kHugePageSize;
  void* r = mmap(nullptr, span, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return r;
  const auto base = reinterpret_cast<uintptr_t>(r);
  const uintptr_t start = base + ((gpa - base) & (kHugePageSize - 1));
  const uintptr_t end = start + size;
  if (start > base) munmap(r, start - base);
  if (base + span > end) munmap(reinterpret_cast<void*>(end), base + span - end);
  return reinterpret_cast<void*>(start);
}
}  // namespace

GuestMemory::~GuestMemory() {
  for (auto& s : segments_) {
    if (s->host != nullptr) munmap(s->host, s->size);
  }
}

Result<const MemorySegment*> GuestMemory::AddSegment(std::string name,
                                                     uint64_t gpa,
                                                     uint64_t size) {
  if (size == 0 || gpa % kPageSize != 0 || size % kPageSize != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "memory segment '{}' at {:#x} size {:#x}: base and size "
                     "must be non-zero multiples of 4 KiB",
                     name, gpa, size);
  }
  if (gpa + size < gpa) {
    return MakeError(Errc::kOutOfRange,
                     "memory segment '{}' at {:#x} size {:#x} wraps the "
                     "address space", name, gpa, size);
  }
  for (const auto& s : segments_) {
    if (gpa < s->end() && s->gpa < gpa + size) {
      return MakeError(Errc::kAlreadyExists,
                       "memory segment '{}' [{:#x}, {:#x}) overlaps '{}' "
                       "[{:#x}, {:#x})",
                       name, gpa, gpa + size, s->name, s->gpa, s->end());
    }
  }
  auto seg = std::make_unique<MemorySegment>();
  seg->name = std::move(name);
  seg->gpa = gpa;
  seg->size = size;
  void* at = ReserveAligned(gpa, size);
  if (at == MAP_FAILED) {
    return SysError("reserving address space for memory segment '{}' ({} MiB)",
                    seg->name, size >> 20);
  }
  void* p = MAP_FAILED;
  if (backing_ == Backing::kAnonymous) {
    p = mmap(at, size, PROT_READ | PROT_WRITE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      Error e = SysError("mapping memory segment '{}' ({} MiB)", seg->name,
                         size >> 20);
      munmap(at, size);
      return e;
    }
    // Transparent huge pages where the host allows them (its THP setting
    // "always" or "madvise"); a refusal only costs speed.
    (void)madvise(p, size, MADV_HUGEPAGE);
  } else {
    std::string fdname = "strata:" + seg->name;
    seg->memfd.reset(memfd_create(fdname.c_str(), MFD_CLOEXEC));
    if (!seg->memfd) {
      Error e = SysError("memfd_create({})", fdname);
      munmap(at, size);
      return e;
    }
    if (ftruncate(seg->memfd.get(), static_cast<off_t>(size)) != 0) {
      Error e = SysError("sizing memory segment '{}' to {} MiB", seg->name,
                         size >> 20);
      munmap(at, size);
      return e;
    }
    p = mmap(at, size, PROT_READ | PROT_WRITE,
             MAP_FIXED | MAP_SHARED | MAP_NORESERVE, seg->memfd.get(), 0);
    if (p == MAP_FAILED) {
      Error e = SysError("mapping memory segment '{}'", seg->name);
      munmap(at, size);
      return e;
    }
  }
  seg->host = static_cast<uint8_t*>(p);
  // The lowest slot id no segment uses (KVM has a few hundred slots, so a
  // map that changes often must reuse them).
  uint32_t slot = 0;
  for (bool taken = true; taken; ) {
    taken = false;
    for (const auto& s : segments_) {
      if (s->slot == slot) {
        taken = true;
        ++slot;
      }
    }
  }
  seg->slot = slot;
  const MemorySegment* out = seg.get();
  auto pos = std::lower_bound(
      segments_.begin(), segments_.end(), gpa,
      [](const std::unique_ptr<MemorySegment>& s, uint64_t a) {
        return s->gpa < a;
      });
  segments_.insert(pos, std::move(seg));
  return out;
}

Status GuestMemory::RemoveSegment(uint64_t gpa) {
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    if ((*it)->gpa == gpa) {
      munmap((*it)->host, (*it)->size);
      segments_.erase(it);
      return Ok();
    }
  }
  return MakeError(Errc::kNotFound, "no memory segment starts at {:#x}", gpa);
}

const MemorySegment* GuestMemory::Find(uint64_t gpa) const {
  for (const auto& s : segments_) {
    if (gpa >= s->gpa && gpa < s->end()) return s.get();
  }
  return nullptr;
}

Result<std::span<uint8_t>> GuestMemory::Translate(uint64_t gpa,
                                                  uint64_t len) const {
  for (const auto& s : segments_) {
    if (s->Contains(gpa, len)) {
      return std::span<uint8_t>(s->host + (gpa - s->gpa), len);
    }
  }
  return MakeError(Errc::kOutOfRange,
                   "guest-physical range [{:#x}, +{:#x}) is not guest RAM",
                   gpa, len);
}

template <typename F>
Status GuestMemory::ForEachChunk(uint64_t gpa, uint64_t len, F&& f) const {
  // First pass validates, second pass acts: nothing is touched on error.
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t a = gpa;
    uint64_t left = len;
    while (left > 0) {
      const MemorySegment* s = Find(a);
      if (s == nullptr) {
        return MakeError(Errc::kOutOfRange,
                         "guest-physical range [{:#x}, +{:#x}) is not guest "
                         "RAM (first bad byte at {:#x})",
                         gpa, len, a);
      }
      uint64_t chunk = std::min(left, s->end() - a);
      if (pass == 1) f(s->host + (a - s->gpa), a - gpa, chunk);
      a += chunk;
      left -= chunk;
    }
  }
  return Ok();
}

Status GuestMemory::Read(uint64_t gpa, void* dst, uint64_t len) const {
  auto* d = static_cast<uint8_t*>(dst);
  return ForEachChunk(gpa, len, [d](uint8_t* host, uint64_t off, uint64_t n) {
    std::memcpy(d + off, host, n);
  });
}

Status GuestMemory::Write(uint64_t gpa, const void* src, uint64_t len) {
  const auto* s = static_cast<const uint8_t*>(src);
  return ForEachChunk(gpa, len, [s](uint8_t* host, uint64_t off, uint64_t n) {
    std::memcpy(host, s + off, n);
  });
}

Status GuestMemory::WriteWith(uint64_t gpa, uint64_t len, const FillFn& fill) {
  Status st = Ok();
  STRATA_TRY(ForEachChunk(gpa, len, [&](uint8_t* host, uint64_t off,
                                        uint64_t n) {
    if (st) st = fill(std::span<uint8_t>(host, n), off);
  }));
  return st;
}

Status GuestMemory::Fill(uint64_t gpa, uint8_t value, uint64_t len) {
  if (value == 0) {
    return ForEachChunk(gpa, len, [this, gpa](uint8_t* host, uint64_t off,
                                              uint64_t n) {
      ZeroHost(*Find(gpa + off), host, n);
    });
  }
  return ForEachChunk(gpa, len, [value](uint8_t* host, uint64_t, uint64_t n) {
    std::memset(host, value, n);
  });
}

// Zeroes [host, host+n) of segment s. The whole pages inside are given
// back to the kernel instead of written (MADV_DONTNEED on private
// anonymous memory, a punched hole in a memfd: either reads as zeros
// afterwards), so a loader zeroing a kernel's bss (12.5 MiB for a
// kvm-unit-tests binary) leaves fresh memory untouched and unbacked. The
// partial pages at either end, and any discard the kernel refuses, are
// written.
void GuestMemory::ZeroHost(const MemorySegment& s, uint8_t* host, uint64_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(host);
  const uintptr_t first = (begin + kPageSize - 1) & ~(kPageSize - 1);
  const uintptr_t last = (begin + n) & ~(kPageSize - 1);
  if (first >= last) {
    std::memset(host, 0, n);
    return;
  }
  std::memset(host, 0, first - begin);
  std::memset(reinterpret_cast<uint8_t*>(last), 0, begin + n - last);
  auto* p = reinterpret_cast<uint8_t*>(first);
  const size_t len = last - first;
  const bool discarded =
      s.memfd
          ? fallocate(s.memfd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(p - s.host),
                      static_cast<off_t>(len)) == 0
          : madvise(p, len, MADV_DONTNEED) == 0;
  if (!discarded) std::memset(p, 0, len);
}

uint64_t GuestMemory::TotalSize() const {
  uint64_t t = 0;
  for (const auto& s : segments_) t += s->size;
  return t;
}

}  // namespace strata
