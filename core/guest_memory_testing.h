// strata — test-only access to GuestMemory's map (testonly target).
//
// Production code changes the map only through Vm::AddMemory/RemoveMemory
// (under the VM write lock); unit tests of loaders and devices build a
// stand-alone GuestMemory with this peer instead of a whole VM.
#pragma once

#include <string>

#include "core/guest_memory.h"

namespace strata {

class GuestMemoryTestPeer {
 public:
  static Result<const MemorySegment*> AddSegment(GuestMemory& m,
                                                 std::string name,
                                                 uint64_t gpa, uint64_t size) {
    return m.AddSegment(std::move(name), gpa, size);
  }
  static void SetBacking(GuestMemory& m, GuestMemory::Backing b) {
    m.backing_ = b;
  }
  static Status RemoveSegment(GuestMemory& m, uint64_t gpa) {
    return m.RemoveSegment(gpa);
  }
};

}  // namespace strata
