// strata — guest physical memory.
//
// Guest RAM is a set of named segments, each mapped once into the VMM and
// backed (GuestMemory::Backing) by private anonymous memory that the kernel
// may back with transparent huge pages (the default, as QEMU's -m: the
// hypervisor then maps guest RAM in 2 MiB blocks, so a guest takes far
// fewer stage-2/EPT faults — under nested virtualization each is an exit
// to the L1), or by its own memfd named "strata:<name>" (shareable by fd,
// 4 KiB pages unless the host's shmem THP is on). Translate() is the one safe accessor every device uses: it returns a
// host span only when [gpa, gpa+len) lies entirely inside one segment, and
// an error otherwise, so a guest-programmed address can never make the VMM
// touch memory outside guest RAM.
//
// Concurrency: the segment list changes only under the VM write lock (every
// vCPU quiesced), through Vm::AddMemory/RemoveMemory. vCPU threads handling
// an exit may read it freely; any other thread must hold the VM read lock
// or use Vm::ReadMemory/WriteMemory (see core/vm.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"

namespace strata {

struct MemorySegment {
  std::string name;
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint8_t* host = nullptr;  // VMM mapping
  UniqueFd memfd;           // kMemfd backing only
  uint32_t slot = 0;        // hypervisor slot id, assigned by GuestMemory

  uint64_t end() const { return gpa + size; }  // exclusive
  bool Contains(uint64_t a, uint64_t len) const {
    return a >= gpa && len <= size && a - gpa <= size - len;
  }
};

class GuestMemory {
 public:
  enum class Backing : uint8_t {
    kAnonymous,  // MAP_PRIVATE | MAP_ANONYMOUS, MADV_HUGEPAGE
    kMemfd,      // memfd_create + MAP_SHARED
  };
  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Host view of [gpa, gpa+len) if it lies inside one segment.
  Result<std::span<uint8_t>> Translate(uint64_t gpa, uint64_t len) const;

  // Copies that may span adjacent segments; fail without side effects if any
  // byte is outside RAM.
  Status Read(uint64_t gpa, void* dst, uint64_t len) const;
  Status Write(uint64_t gpa, const void* src, uint64_t len);
  // Fill with 0 gives whole pages back to the host instead of writing them
  // (they read as zeros), so zeroing fresh memory does not make it
  // resident.
  Status Fill(uint64_t gpa, uint8_t value, uint64_t len);
  // Writes [gpa, gpa+len) through `fill`, called for each piece of it that
  // is contiguous on the host with that piece and its offset from gpa: a
  // file is read straight into guest RAM, with no buffer between. The
  // range is checked first (nothing is written if any byte is outside
  // RAM); fill's first error stops it and is returned.
  using FillFn = std::function<Status(std::span<uint8_t> dst, uint64_t off)>;
  Status WriteWith(uint64_t gpa, uint64_t len, const FillFn& fill);

  template <typename T>
  Result<T> ReadObj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    STRATA_TRY(Read(gpa, &v, sizeof(T)));
    return v;
  }
  template <typename T>
  Status WriteObj(uint64_t gpa, const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(gpa, &v, sizeof(T));
  }

  bool IsRam(uint64_t gpa, uint64_t len = 1) const {
    return Translate(gpa, len).has_value();
  }
  const MemorySegment* Find(uint64_t gpa) const;
  const std::vector<std::unique_ptr<MemorySegment>>& segments() const {
    return segments_;
  }
  uint64_t TotalSize() const;

 private:
  friend class Vm;
  friend class GuestMemoryTestPeer;
  // The map changes only through Vm::AddMemory / Vm::RemoveMemory, under
  // the VM write lock.
  // Maps a segment with the memory's backing (a memfd named `name` for
  // kMemfd). gpa and size must be page aligned, non-empty and must not
  // overlap an existing segment.
  Result<const MemorySegment*> AddSegment(std::string name, uint64_t gpa,
                                          uint64_t size);
  // Unmaps and closes the segment starting at gpa (caller holds the VM
  // write lock and has unregistered it from the hypervisor).
  Status RemoveSegment(uint64_t gpa);

  // Visits each (segment, offset, chunk) covering [gpa, gpa+len); fails if
  // any part is not RAM before visiting anything.
  template <typename F>
  Status ForEachChunk(uint64_t gpa, uint64_t len, F&& f) const;
  static void ZeroHost(const MemorySegment& s, uint8_t* host, uint64_t n);

  std::vector<std::unique_ptr<MemorySegment>> segments_;  // sorted by gpa
  Backing backing_ = Backing::kAnonymous;  // set by Vm::Create
};

}  // namespace strata
