// strata — QEMU's pc-testdev (hw/misc/pc-testdev.c), the helper ports
// kvm-unit-tests' x86 tests use to check the hypervisor's I/O paths.
//
// Emulated, as four IoDevice classes the platform registers separately:
//  - PcTestdevLatch: a 32-bit latch at ports 0xe0-0xe3, readable and
//    writable at any width through byte lanes (a 1-byte write at 0xe2 sets
//    byte 2; a 4-byte read at 0xe0 returns all four). QEMU also decodes
//    the same latch at 0xe8-0xeb (its byte-at-a-time "ioport-byte" view);
//    the platform gets that by registering the same object twice, since a
//    split access and a whole one give the same result here.
//  - PcTestdevFlush: port 0xe4, 4 bytes. QEMU mprotect()s the host page
//    at the written guest address to make KVM drop its shadow/EPT entries
//    (an MMU-notifier stress). That has no guest-visible effect — memory
//    keeps its contents — so writes are accepted and ignored; reads give 0.
//  - PcTestdevIrq: ports 0x2000 + n for GSI n < 24; a write sets GSI n's
//    level (value != 0 asserts). Each byte of a wider write drives the
//    next GSI (QEMU only accepts 1-byte writes). Reads give 0.
//  - PcTestdevMmio: 64 KiB at 0xff000000 that behaves like RAM (any width
//    1/2/4/8, little-endian, initially zero) — the target of the
//    emulator tests' MMIO instructions.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bus.h"

namespace strata {

inline constexpr uint64_t kPcTestdevLatchPort = 0xe0;
inline constexpr uint64_t kPcTestdevLatchBytePort = 0xe8;  // QEMU alias
inline constexpr uint64_t kPcTestdevLatchLength = 4;
inline constexpr uint64_t kPcTestdevFlushPort = 0xe4;
inline constexpr uint64_t kPcTestdevFlushLength = 4;
inline constexpr uint64_t kPcTestdevIrqPort = 0x2000;
inline constexpr uint64_t kPcTestdevIrqCount = 24;  // GSIs 0-23, one port each
inline constexpr uint64_t kPcTestdevMmioBase = 0xff000000;
inline constexpr uint64_t kPcTestdevMmioSize = 64 * 1024;

class PcTestdevLatch : public IoDevice {
 public:
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "pc-testdev-ioport"; }

 private:
  std::mutex mu_;
  uint32_t latch_ = 0;  // guarded by mu_
};

class PcTestdevFlush : public IoDevice {
 public:
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override { return 0; }
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override {}
  std::string_view name() const override { return "pc-testdev-flush-page"; }
};

class PcTestdevIrq : public IoDevice {
 public:
  // Called with (gsi, level) from the writing vCPU's thread.
  using SetIrqFn = std::function<void(uint32_t gsi, bool level)>;
  explicit PcTestdevIrq(SetIrqFn set_irq) : set_irq_(std::move(set_irq)) {}

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override { return 0; }
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "pc-testdev-irq-line"; }

 private:
  const SetIrqFn set_irq_;
};

class PcTestdevMmio : public IoDevice {
 public:
  PcTestdevMmio();
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "pc-testdev-iomem"; }

 private:
  std::mutex mu_;
  std::vector<uint8_t> mem_;  // kPcTestdevMmioSize bytes; guarded by mu_
};

}  // namespace strata
