// strata — ACPI fixed-hardware power-management registers (ACPI 6.0 §4.8:
// §4.8.3.1 PM1 event grouping, §4.8.3.2 PM1 control grouping, §4.8.3.3
// power management timer), laid out as one 12-byte block:
//   offset 0  PM1a_EVT_BLK: PM1_STS (16 bits, write-1-to-clear)
//   offset 2                PM1_EN  (16 bits)
//   offset 4  PM1a_CNT_BLK: PM1_CNT (16 bits)
//   offset 6  reserved (reads 0)
//   offset 8  PM_TMR_BLK:   24-bit timer at 3.579545 MHz (read-only)
// The platform registers it at 0x600 and describes the three blocks in the
// FADT with these offsets and lengths (PM1_EVT_LEN 4, PM1_CNT_LEN 2,
// PM_TMR_LEN 4, TMR_VAL_EXT clear).
//
// Emulated: status/enable bits with write-1-to-clear status; the power
// button (PressPowerButton sets PWRBTN_STS); an SCI line asserted while
// SCI_EN and any enabled status bit are set; SLP_TYP read/write; SLP_EN
// (write-only) invoking the sleep callback with the SLP_TYP written
// alongside it — the platform decides what each type means (S5: power off);
// the PM timer, counted from CLOCK_MONOTONIC since device creation. Any
// access width within the block works, by byte lanes.
//
// Wake from a sleep state is the platform's (pc: S3 woken by the RTC
// alarm); it sets RTC_STS and WAK_STS through SetWakeStatus.
//
// Missing: TMR_STS is never set (no timer-carry event; guests use the timer
// only as a clock source), as are BM_STS, GBL_STS and PCIEXP_WAKE_STS. SCI_EN is hardware-owned and
// always reads 1: there is no SMI_CMD port, so the machine is always in ACPI
// mode and the FADT must set SMI_CMD to 0 (FADT, §5.2.9).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

#include "core/bus.h"
#include "devices/irq.h"

namespace strata {

inline constexpr uint64_t kAcpiPmPort = 0x600;
inline constexpr uint64_t kAcpiPmLength = 12;

// Offsets in the block, and the FADT lengths of each register block.
inline constexpr uint64_t kAcpiPm1StsOffset = 0;
inline constexpr uint64_t kAcpiPm1EnOffset = 2;
inline constexpr uint64_t kAcpiPm1CntOffset = 4;
inline constexpr uint64_t kAcpiPmTmrOffset = 8;
inline constexpr uint32_t kAcpiPm1EvtLength = 4;
inline constexpr uint32_t kAcpiPm1CntLength = 2;
inline constexpr uint32_t kAcpiPmTmrLength = 4;

// PM1_STS bits (§4.8.3.1.1, Table 4-16).
inline constexpr uint16_t kAcpiPm1StsTmr = 1u << 0;
inline constexpr uint16_t kAcpiPm1StsBm = 1u << 4;
inline constexpr uint16_t kAcpiPm1StsGbl = 1u << 5;
inline constexpr uint16_t kAcpiPm1StsPwrBtn = 1u << 8;
inline constexpr uint16_t kAcpiPm1StsSlpBtn = 1u << 9;
inline constexpr uint16_t kAcpiPm1StsRtc = 1u << 10;
inline constexpr uint16_t kAcpiPm1StsPciExpWake = 1u << 14;
inline constexpr uint16_t kAcpiPm1StsWak = 1u << 15;

// PM1_EN bits (§4.8.3.1.2, Table 4-17).
inline constexpr uint16_t kAcpiPm1EnTmr = 1u << 0;
inline constexpr uint16_t kAcpiPm1EnGbl = 1u << 5;
inline constexpr uint16_t kAcpiPm1EnPwrBtn = 1u << 8;
inline constexpr uint16_t kAcpiPm1EnSlpBtn = 1u << 9;
inline constexpr uint16_t kAcpiPm1EnRtc = 1u << 10;
inline constexpr uint16_t kAcpiPm1EnPciExpWakeDis = 1u << 14;

// PM1_CNT bits (§4.8.3.2.1, Table 4-18).
inline constexpr uint16_t kAcpiPm1CntSciEn = 1u << 0;
inline constexpr uint16_t kAcpiPm1CntBmRld = 1u << 1;
inline constexpr uint16_t kAcpiPm1CntGblRls = 1u << 2;
inline constexpr uint32_t kAcpiPm1CntSlpTypShift = 10;
inline constexpr uint16_t kAcpiPm1CntSlpTypMask = 0x7u << 10;
inline constexpr uint16_t kAcpiPm1CntSlpEn = 1u << 13;

// PM timer (§4.8.3.3): 3.579545 MHz, 24 bits when FADT TMR_VAL_EXT is 0.
inline constexpr uint64_t kAcpiPmTimerHz = 3579545;
inline constexpr uint32_t kAcpiPmTimerMask = 0xffffff;

class AcpiPm : public IoDevice {
 public:
  // Called with SLP_TYP when the guest sets SLP_EN, from its vCPU thread
  // and without the device lock held.
  using SleepFn = std::function<void(uint32_t slp_typ)>;
  // Nanoseconds on a monotonic clock; tests inject their own.
  using ClockFn = std::function<uint64_t()>;

  // sci may be null; it must outlive the device. An empty now_ns uses
  // CLOCK_MONOTONIC.
  explicit AcpiPm(SleepFn on_sleep, IrqLine* sci = nullptr,
                  ClockFn now_ns = {});

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "acpi_pm"; }

  // Sets PWRBTN_STS, as a press of the fixed power button does; the guest
  // gets an SCI if it enabled PWRBTN_EN (its cue for orderly shutdown).
  void PressPowerButton();

  // For the platform's sleep states: whether the guest enabled the wake
  // source of status bit `sts_bit` (RTC_EN for RTC_STS, ...), and the
  // status bits a wake sets (RTC_STS, WAK_STS; §4.8.3.1.1).
  bool WakeEnabled(uint16_t sts_bit);
  void SetWakeStatus(uint16_t sts_bits);

 private:
  uint32_t TimerValue() const;
  void UpdateSci();  // mu_ held

  const SleepFn on_sleep_;
  IrqLine* const sci_;
  const ClockFn now_ns_;
  const uint64_t start_ns_;

  std::mutex mu_;
  // All below guarded by mu_.
  uint16_t sts_ = 0;
  uint16_t en_ = 0;
  uint16_t cnt_ = kAcpiPm1CntSciEn;
  bool sci_level_ = false;
};

}  // namespace strata
