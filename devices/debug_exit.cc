#include "devices/debug_exit.h"

namespace strata {

uint64_t DebugExit::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  return MaskToSize(~uint64_t{0}, size);
}

void DebugExit::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  // The bus has already masked value to the access width.
  if (on_exit_) on_exit_((value << 1) | 1);
}

}  // namespace strata
