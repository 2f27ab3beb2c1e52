// strata — Motorola MC146818A real-time clock with 128 bytes of CMOS RAM
// (MC146818A datasheet: "Address Map" Figure 3, "Time, Calendar and Alarm
// Locations" Table 3, "Register A-D"; the DS12887 datasheet says the same
// for the PC's part), the way a PC wires it: an index port at offset 0
// (write-only; bit 7 is the chipset's NMI disable, which we ignore) and a
// data port at offset 1. The pc registers it at 0x70 (pc::kRtcPort) with
// length kRtcIoLength, IRQ 8.
//
// Theory. Nothing ticks in the model: everything is computed from a clock
// (CLOCK_REALTIME unless a test injects one). The divider chain's phase is
//   D = now + divider_offset
// and the 32.768 kHz taps, the periodic rate and the once-a-second update
// are the multiples of their periods that D crosses. The guest's calendar
// time in seconds is floor(D / 1 s) + seconds_delta, so at creation it is
// the host's UTC time, and a guest write to a time register moves
// seconds_delta only (the sub-second phase stays, as on the chip, whose
// divider a time write does not touch). Status flags (register C's PF, AF,
// UF) are brought up to date from the clock on every access — so a guest
// polling register C without interrupts sees them at the right rate — and
// by a timer thread (Start/Stop) that wakes only for the interrupts the
// guest enabled and has not yet seen.
//
// Emulated: seconds, minutes, hours, day of week, date, month, year
// (registers 0, 2, 4, 6-9) and the century at 0x32, in BCD or binary
// (register B DM) and 12- or 24-hour format (24/12; 12-hour hours carry the
// PM flag in bit 7); the alarm (registers 1, 3, 5) with "don't care" values
// 0xC0-0xFF; register A's UIP (set for the 244 µs before and the 1984 µs of
// each update, so the datasheet's "wait for UIP clear, then read" works),
// divider bits DV2-0 (11x holds the chain in reset: time stops; leaving it,
// the first update comes half a second later) and rate select RS3-0
// (32768 Hz >> (RS - 1); RS 1 and 2 give 256 and 128 Hz as on the real
// part); register B's SET (time frozen: reads and writes go to the held
// registers, and clearing SET starts the clock from them; setting SET also
// clears UIE), PIE, AIE, UIE, DM, 24/12; register C (IRQF, PF, AF, UF; a
// read returns and clears them and drops the interrupt line); register D
// (VRT: the battery is always good); the other 114 bytes are plain RAM.
// The firmware's memory-size bytes come from SetMemorySizes.
//
// Interrupt line: asserted exactly while IRQF is set (PF·PIE + AF·AIE +
// UF·UIE), as uart_16550 drives its line: for an ISA edge line (KVM's
// IOAPIC and PIC with edge-triggered IRQ 8) each new interrupt is a
// low-to-high transition, so a guest that does not read register C gets
// no further interrupts — as on a PC.
//
// Simplifications: DV 000 and 001 run like 010 (there is one time base);
// SQWE and DSE are stored and read back but there is no square-wave pin
// and no daylight-saving switch; the day of week is derived from the date
// (a value the guest writes there is not kept); values a guest writes that
// are out of range (a 13th month, a BCD digit above 9) are clamped when the
// clock starts from them; dates are proleptic Gregorian at UTC.
//
// Locking: the state is guarded by one mutex; the interrupt line and the
// alarm callback are called with no lock held. A sequence number makes
// concurrent updates from a vCPU and the timer thread settle on the latest
// level, and a level that fell and rose again before the line was driven
// (register C read on a vCPU, the next flag on the timer thread) is driven
// as a low-high pulse, so no edge is lost.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

#include "core/bus.h"
#include "core/result.h"
#include "devices/irq.h"

namespace strata {

inline constexpr uint64_t kRtcIoLength = 2;
inline constexpr uint64_t kRtcIndexOffset = 0;
inline constexpr uint64_t kRtcDataOffset = 1;
inline constexpr uint8_t kRtcIndexMask = 0x7f;  // bit 7: NMI disable
inline constexpr uint32_t kRtcCmosSize = 128;

// Register indices (datasheet Figure 3).
inline constexpr uint8_t kRtcSeconds = 0x00;
inline constexpr uint8_t kRtcSecondsAlarm = 0x01;
inline constexpr uint8_t kRtcMinutes = 0x02;
inline constexpr uint8_t kRtcMinutesAlarm = 0x03;
inline constexpr uint8_t kRtcHours = 0x04;
inline constexpr uint8_t kRtcHoursAlarm = 0x05;
inline constexpr uint8_t kRtcDayOfWeek = 0x06;  // 1 = Sunday
inline constexpr uint8_t kRtcDayOfMonth = 0x07;
inline constexpr uint8_t kRtcMonth = 0x08;
inline constexpr uint8_t kRtcYear = 0x09;
inline constexpr uint8_t kRtcRegA = 0x0a;
inline constexpr uint8_t kRtcRegB = 0x0b;
inline constexpr uint8_t kRtcRegC = 0x0c;
inline constexpr uint8_t kRtcRegD = 0x0d;
inline constexpr uint8_t kRtcCentury = 0x32;  // IBM PC/AT convention

// Register A.
inline constexpr uint8_t kRtcAUip = 0x80;
inline constexpr uint8_t kRtcADividerMask = 0x70;
inline constexpr uint8_t kRtcADivider32k = 0x20;  // DV = 010
inline constexpr uint8_t kRtcADividerReset = 0x60;  // DV = 11x
inline constexpr uint8_t kRtcARateMask = 0x0f;

// Register B.
inline constexpr uint8_t kRtcBSet = 0x80;
inline constexpr uint8_t kRtcBPie = 0x40;
inline constexpr uint8_t kRtcBAie = 0x20;
inline constexpr uint8_t kRtcBUie = 0x10;
inline constexpr uint8_t kRtcBSqwe = 0x08;
inline constexpr uint8_t kRtcBDm = 0x04;  // 1: binary, 0: BCD
inline constexpr uint8_t kRtcB24h = 0x02;
inline constexpr uint8_t kRtcBDse = 0x01;

// Register C.
inline constexpr uint8_t kRtcCIrqf = 0x80;
inline constexpr uint8_t kRtcCPf = 0x40;
inline constexpr uint8_t kRtcCAf = 0x20;
inline constexpr uint8_t kRtcCUf = 0x10;

// Register D.
inline constexpr uint8_t kRtcDVrt = 0x80;

// Hour registers in 12-hour mode: bit 7 is PM.
inline constexpr uint8_t kRtcHourPm = 0x80;
// An alarm byte with its two top bits set matches every value.
inline constexpr uint8_t kRtcAlarmDontCare = 0xc0;

// The CMOS bytes PC firmware reads for the memory size (SeaBIOS and QEMU's
// pc machines; the first two are the IBM PC/AT's).
inline constexpr uint8_t kCmosBaseMemLow = 0x15;  // KiB below 640 KiB
inline constexpr uint8_t kCmosBaseMemHigh = 0x16;
inline constexpr uint8_t kCmosExtMemLow = 0x17;  // KiB above 1 MiB, <= 0xffff
inline constexpr uint8_t kCmosExtMemHigh = 0x18;
inline constexpr uint8_t kCmosChecksumHigh = 0x2e;  // sum of 0x10-0x2d
inline constexpr uint8_t kCmosChecksumLow = 0x2f;
inline constexpr uint8_t kCmosExtMem2Low = 0x30;  // copy of 0x17/0x18
inline constexpr uint8_t kCmosExtMem2High = 0x31;
inline constexpr uint8_t kCmosMem16mLow = 0x34;  // 64 KiB units above 16 MiB
inline constexpr uint8_t kCmosMem16mHigh = 0x35;
inline constexpr uint8_t kCmosMem4gLow = 0x5b;  // 64 KiB units above 4 GiB,
inline constexpr uint8_t kCmosMem4gMid = 0x5c;  // three bytes
inline constexpr uint8_t kCmosMem4gHigh = 0x5d;

class Mc146818Rtc : public IoDevice {
 public:
  // Nanoseconds since the Unix epoch (UTC); tests inject their own.
  using ClockFn = std::function<int64_t()>;
  using AlarmFn = std::function<void()>;

  // irq may be null; it must outlive the device. An empty now_ns uses
  // CLOCK_REALTIME.
  explicit Mc146818Rtc(IrqLine* irq = nullptr, ClockFn now_ns = {});
  ~Mc146818Rtc() override;  // stops the timer thread
  Mc146818Rtc(const Mc146818Rtc&) = delete;
  Mc146818Rtc& operator=(const Mc146818Rtc&) = delete;

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "mc146818"; }

  // Fills the firmware's memory-size bytes (see above) for a machine with
  // `below_4g` bytes of RAM from 0 and `above_4g` from 4 GiB. Call before
  // the guest runs.
  void SetMemorySizes(uint64_t below_4g, uint64_t above_4g);

  // Called, from a vCPU or the timer thread and with no lock held, each
  // time the alarm matches while AIE is set (the alarm interrupt; a wake
  // event for a sleeping machine). Set before the guest runs.
  void SetAlarmCallback(AlarmFn fn);

  // The thread that raises interrupts when they are due. Without it the
  // flags are still right whenever the guest looks. Start twice is a no-op;
  // Stop joins the thread (it must not be called with a device access in
  // progress on the calling thread).
  Status Start();
  void Stop();

  // Brings the flags up to date and drives the line (what the timer thread
  // does when it wakes); for tests with an injected clock.
  void Poll();

 private:
  struct Pending {  // what to do once the lock is dropped
    AlarmFn alarm_fn;  // the alarm fired with AIE set
  };

  bool Frozen() const;                               // mu_ held
  int64_t DividerNs(int64_t now) const;              // mu_ held
  int64_t GuestSeconds(int64_t now) const;           // mu_ held
  uint8_t EncodeTimeRegister(uint8_t index, int64_t seconds) const;
  uint8_t Encode(uint32_t v) const;                  // per DM
  uint32_t Decode(uint8_t b) const;                  // per DM
  uint8_t EncodeHour(uint32_t hour) const;           // per DM and 24/12
  uint32_t DecodeHour(uint8_t b) const;
  void Freeze(int64_t now);                          // copy time to cmos_
  void Thaw(int64_t now, bool half_second);          // time from cmos_
  bool AlarmMatches(int64_t seconds) const;          // mu_ held
  // Sets the flags for every event in (last_divider_ns_, D(now)].
  void Advance(int64_t now, Pending* p);             // mu_ held
  uint8_t ReadRegister(uint8_t index, int64_t now);  // mu_ held
  void WriteRegister(uint8_t index, uint8_t value, int64_t now);
  bool IrqfLocked() const;                           // mu_ held
  void NoteLevel();                                  // mu_ held
  void Finish(const Pending& p);                     // no lock held
  void ThreadMain();
  // Divider-chain time of the next interrupt the thread must raise, or
  // INT64_MAX if none is enabled and unseen.
  int64_t NextWakeLocked(int64_t now) const;         // mu_ held

  IrqLine* const irq_;
  const ClockFn now_ns_;

  std::mutex mu_;
  // All below guarded by mu_.
  uint8_t cmos_[kRtcCmosSize] = {};  // time bytes valid only while frozen
  uint8_t index_ = 0;
  uint8_t reg_a_ = kRtcADivider32k | 0x06;  // 1024 Hz, as PC firmware sets
  uint8_t reg_b_ = kRtcB24h;
  uint8_t flags_ = 0;        // PF, AF, UF
  int64_t divider_offset_ns_ = 0;
  int64_t seconds_delta_ = 0;
  int64_t last_divider_ns_ = 0;
  AlarmFn on_alarm_;
  // The wanted line level, numbered: Finish applies the latest number and
  // applies again if another thread took a newer one meanwhile.
  uint64_t level_seq_ = 0;
  uint64_t applied_seq_ = 0;
  bool level_ = false;
  bool fell_ = false;  // level_ went low since the line was last driven
  bool stop_ = false;
  std::condition_variable cv_;  // wakes the timer thread

  std::thread thread_;  // Start/Stop only
};

}  // namespace strata
