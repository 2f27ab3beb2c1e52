#include "devices/acpi_pm.h"

#include <time.h>

#include <array>
#include <utility>

namespace strata {

namespace {

constexpr uint64_t kNanosPerSecond = 1'000'000'000;

// PM1_STS bits the guest can clear (write 1). WAK_STS and the rest are
// included so a guest's blanket "write back what I read" always works.
constexpr uint16_t kStsClearable =
    kAcpiPm1StsTmr | kAcpiPm1StsBm | kAcpiPm1StsGbl | kAcpiPm1StsPwrBtn |
    kAcpiPm1StsSlpBtn | kAcpiPm1StsRtc | kAcpiPm1StsPciExpWake |
    kAcpiPm1StsWak;
constexpr uint16_t kEnWritable = kAcpiPm1EnTmr | kAcpiPm1EnGbl |
                                 kAcpiPm1EnPwrBtn | kAcpiPm1EnSlpBtn |
                                 kAcpiPm1EnRtc | kAcpiPm1EnPciExpWakeDis;
// Status bits that raise an SCI when their enable bit is set (§4.8.3.1).
constexpr uint16_t kSciSources = kAcpiPm1StsTmr | kAcpiPm1StsGbl |
                                 kAcpiPm1StsPwrBtn | kAcpiPm1StsSlpBtn |
                                 kAcpiPm1StsRtc;
// PM1_CNT bits that hold what the guest writes. SCI_EN belongs to hardware;
// GBL_RLS and SLP_EN are write-only strobes that read as 0.
constexpr uint16_t kCntReadWrite = kAcpiPm1CntBmRld | kAcpiPm1CntSlpTypMask;

uint64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNanosPerSecond +
         static_cast<uint64_t>(ts.tv_nsec);
}

// Bytes [offset, offset+size) of a register image, little-endian.
uint64_t Extract(const std::array<uint8_t, kAcpiPmLength>& image,
                 uint64_t offset, uint32_t size) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < size && offset + i < image.size(); ++i) {
    v |= uint64_t{image[offset + i]} << (8 * i);
  }
  return v;
}

void Put16(std::array<uint8_t, kAcpiPmLength>& image, uint64_t offset,
           uint16_t v) {
  image[offset] = static_cast<uint8_t>(v);
  image[offset + 1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

AcpiPm::AcpiPm(SleepFn on_sleep, IrqLine* sci, ClockFn now_ns)
    : on_sleep_(std::move(on_sleep)),
      sci_(sci),
      now_ns_(now_ns ? std::move(now_ns) : ClockFn(MonotonicNanos)),
      start_ns_(now_ns_()) {}

uint32_t AcpiPm::TimerValue() const {
  const uint64_t elapsed = now_ns_() - start_ns_;
  // elapsed * Hz / 1e9 without overflowing 64 bits: split at seconds.
  const uint64_t ticks =
      (elapsed / kNanosPerSecond) * kAcpiPmTimerHz +
      (elapsed % kNanosPerSecond) * kAcpiPmTimerHz / kNanosPerSecond;
  return static_cast<uint32_t>(ticks) & kAcpiPmTimerMask;
}

uint64_t AcpiPm::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  std::array<uint8_t, kAcpiPmLength> image{};
  {
    std::lock_guard lock(mu_);
    Put16(image, kAcpiPm1StsOffset, sts_);
    Put16(image, kAcpiPm1EnOffset, en_);
    Put16(image, kAcpiPm1CntOffset, cnt_);
  }
  if (offset + size > kAcpiPmTmrOffset) {
    const uint32_t t = TimerValue();
    for (uint32_t i = 0; i < kAcpiPmTmrLength; ++i) {
      image[kAcpiPmTmrOffset + i] = static_cast<uint8_t>(t >> (8 * i));
    }
  }
  return Extract(image, offset, size);
}

void AcpiPm::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  // Spread the access over the block so every register sees the bytes (and
  // a byte-enable mask) that fall on it, whatever the access width.
  std::array<uint8_t, kAcpiPmLength> data{};
  std::array<uint8_t, kAcpiPmLength> lanes{};
  for (uint32_t i = 0; i < size && offset + i < kAcpiPmLength; ++i) {
    data[offset + i] = static_cast<uint8_t>(value >> (8 * i));
    lanes[offset + i] = 0xff;
  }
  auto reg16 = [](const std::array<uint8_t, kAcpiPmLength>& a, uint64_t off) {
    return static_cast<uint16_t>(a[off] | (a[off + 1] << 8));
  };
  const uint16_t sts_val = reg16(data, kAcpiPm1StsOffset);
  const uint16_t sts_mask = reg16(lanes, kAcpiPm1StsOffset);
  const uint16_t en_val = reg16(data, kAcpiPm1EnOffset);
  const uint16_t en_mask = reg16(lanes, kAcpiPm1EnOffset) & kEnWritable;
  const uint16_t cnt_val = reg16(data, kAcpiPm1CntOffset);
  const uint16_t cnt_mask = reg16(lanes, kAcpiPm1CntOffset);
  // PM_TMR is read-only; the reserved bytes ignore writes.

  bool sleep = false;
  uint32_t slp_typ = 0;
  {
    std::lock_guard lock(mu_);
    sts_ &= static_cast<uint16_t>(~(sts_val & sts_mask & kStsClearable));
    en_ = static_cast<uint16_t>((en_ & ~en_mask) | (en_val & en_mask));
    const uint16_t rw = cnt_mask & kCntReadWrite;
    cnt_ = static_cast<uint16_t>((cnt_ & ~rw) | (cnt_val & rw));
    if (cnt_val & cnt_mask & kAcpiPm1CntSlpEn) {
      // SLP_TYP and SLP_EN share a byte, so the type written with SLP_EN
      // is always in this access (OSPM writes the two together).
      sleep = true;
      slp_typ = (cnt_ & kAcpiPm1CntSlpTypMask) >> kAcpiPm1CntSlpTypShift;
    }
    UpdateSci();
  }
  // Outside the lock: the platform may tear the VM down from here.
  if (sleep && on_sleep_) on_sleep_(slp_typ);
}

void AcpiPm::PressPowerButton() {
  std::lock_guard lock(mu_);
  sts_ |= kAcpiPm1StsPwrBtn;
  UpdateSci();
}

bool AcpiPm::WakeEnabled(uint16_t sts_bit) {
  std::lock_guard lock(mu_);
  return (en_ & sts_bit) != 0;  // the EN bits sit at their STS bits
}

void AcpiPm::SetWakeStatus(uint16_t sts_bits) {
  std::lock_guard lock(mu_);
  sts_ |= sts_bits;
  UpdateSci();
}

void AcpiPm::UpdateSci() {
  const bool level =
      (cnt_ & kAcpiPm1CntSciEn) && (sts_ & en_ & kSciSources) != 0;
  if (level == sci_level_) return;
  sci_level_ = level;
  if (sci_ != nullptr) sci_->SetLevel(level);
}

}  // namespace strata
