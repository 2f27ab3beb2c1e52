#include "devices/pc_testdev.h"

namespace strata {

uint64_t PcTestdevLatch::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  std::lock_guard lock(mu_);
  uint64_t value = 0;
  for (uint32_t i = 0; i < size && offset + i < kPcTestdevLatchLength; ++i) {
    value |= uint64_t{(latch_ >> (8 * (offset + i))) & 0xff} << (8 * i);
  }
  return value;
}

void PcTestdevLatch::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < size && offset + i < kPcTestdevLatchLength; ++i) {
    const uint32_t shift = static_cast<uint32_t>(8 * (offset + i));
    const uint32_t byte = static_cast<uint32_t>((value >> (8 * i)) & 0xff);
    latch_ = (latch_ & ~(0xffu << shift)) | (byte << shift);
  }
}

void PcTestdevIrq::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  if (!set_irq_) return;
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t gsi = offset + i;
    if (gsi >= kPcTestdevIrqCount) break;
    set_irq_(static_cast<uint32_t>(gsi), ((value >> (8 * i)) & 0xff) != 0);
  }
}

PcTestdevMmio::PcTestdevMmio() : mem_(kPcTestdevMmioSize, 0) {}

uint64_t PcTestdevMmio::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  std::lock_guard lock(mu_);
  uint64_t value = 0;
  // Assemble little-endian explicitly so the model is host-endian neutral.
  for (uint32_t i = 0; i < size && offset + i < mem_.size(); ++i) {
    value |= uint64_t{mem_[offset + i]} << (8 * i);
  }
  return value;
}

void PcTestdevMmio::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < size && offset + i < mem_.size(); ++i) {
    mem_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

}  // namespace strata
