// strata — QEMU's isa-debug-exit device (hw/misc/debug-exit.c), the port
// test guests such as kvm-unit-tests write to end the VM with a status.
//
// Emulated: a write of value V, of any width, anywhere in the device's range
// calls the exit callback with (V << 1) | 1 — QEMU's encoding, which keeps
// the status odd so a guest can never fake a clean 0 exit. Reads return
// all-ones, like an empty port. Nothing else (QEMU's device has no other
// state either).
//
// The conventional port is 0xf4 with QEMU's default iosize of 1. The
// platform registers it with length kDebugExitLength (4) so that 2- and
// 4-byte writes (outw/outl to 0xf4, as some guests do with iosize=0x04)
// land in the device rather than straddling out of it.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

#include "core/bus.h"

namespace strata {

inline constexpr uint64_t kDebugExitPort = 0xf4;
inline constexpr uint64_t kDebugExitLength = 4;

class DebugExit : public IoDevice {
 public:
  // Called from the writing vCPU's thread with the exit status; it should
  // ask the VM to stop rather than stop it inline.
  using ExitFn = std::function<void(uint64_t status)>;

  explicit DebugExit(ExitFn on_exit) : on_exit_(std::move(on_exit)) {}

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "isa-debug-exit"; }

 private:
  const ExitFn on_exit_;
};

}  // namespace strata
