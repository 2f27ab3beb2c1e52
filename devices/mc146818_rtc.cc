#include "devices/mc146818_rtc.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <system_error>
#include <utility>

namespace strata {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kSecondsPerDay = 86400;
// UIP is set 244 µs before an update cycle and stays set through its
// 1984 µs (datasheet, "Update Cycle" and Figure 16, 32.768 kHz time base).
constexpr int64_t kUipLeadNs = 244'000;
constexpr int64_t kUpdateCycleNs = 1'984'000;
constexpr uint32_t kTimeBaseHz = 32768;
// The timer thread re-reads the clock at least this often, so a step of
// the host clock delays an interrupt by no more than this.
constexpr int64_t kMaxSleepNs = kNanosPerSecond;

int64_t RealtimeNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H.
// Hinnant, "chrono-Compatible Low-Level Date Algorithms").
int64_t DaysFromCivil(int64_t y, uint32_t m, uint32_t d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, uint32_t* m, uint32_t* d) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<uint32_t>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<uint32_t>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

bool IsTimeRegister(uint8_t index) {
  switch (index) {
    case kRtcSeconds:
    case kRtcMinutes:
    case kRtcHours:
    case kRtcDayOfWeek:
    case kRtcDayOfMonth:
    case kRtcMonth:
    case kRtcYear:
    case kRtcCentury:
      return true;
    default:
      return false;
  }
}

constexpr uint8_t kTimeRegisters[] = {kRtcSeconds,    kRtcMinutes, kRtcHours,
                                      kRtcDayOfWeek,  kRtcDayOfMonth,
                                      kRtcMonth,      kRtcYear,    kRtcCentury};

// Periodic interrupt frequency for RS3-0 (datasheet Table 5), 0 for none.
uint32_t PeriodicHz(uint8_t rate) {
  if (rate == 0) return 0;
  // RS = 1 and 2 select taps of the 4.194304/1.048576 MHz time bases; with
  // the PC's 32.768 kHz crystal they give 256 and 128 Hz (as RS = 8, 9).
  const uint32_t r = rate <= 2 ? rate + 7u : rate;
  return kTimeBaseHz >> (r - 1);
}

// Periodic ticks of `hz` from divider time 0 to d.
int64_t Ticks(int64_t d, uint32_t hz) {
  return FloorDiv(d, kNanosPerSecond) * hz +
         FloorMod(d, kNanosPerSecond) * hz / kNanosPerSecond;
}

// Divider time of tick number n of `hz` (the first instant Ticks reaches n).
int64_t TickTime(int64_t n, uint32_t hz) {
  const int64_t sec = FloorDiv(n, hz);
  const int64_t rem = FloorMod(n, hz);
  return sec * kNanosPerSecond + (rem * kNanosPerSecond + hz - 1) / hz;
}

void Put16(uint8_t* cmos, uint8_t low_index, uint8_t high_index, uint64_t v) {
  cmos[low_index] = static_cast<uint8_t>(v);
  cmos[high_index] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

Mc146818Rtc::Mc146818Rtc(IrqLine* irq, ClockFn now_ns)
    : irq_(irq), now_ns_(now_ns ? std::move(now_ns) : ClockFn(RealtimeNanos)) {
  std::lock_guard lock(mu_);
  last_divider_ns_ = DividerNs(now_ns_());
}

Mc146818Rtc::~Mc146818Rtc() { Stop(); }

bool Mc146818Rtc::Frozen() const {
  return (reg_b_ & kRtcBSet) ||
         (reg_a_ & kRtcADividerReset) == kRtcADividerReset;
}

int64_t Mc146818Rtc::DividerNs(int64_t now) const {
  return now + divider_offset_ns_;
}

int64_t Mc146818Rtc::GuestSeconds(int64_t now) const {
  return FloorDiv(DividerNs(now), kNanosPerSecond) + seconds_delta_;
}

uint8_t Mc146818Rtc::Encode(uint32_t v) const {
  if (reg_b_ & kRtcBDm) return static_cast<uint8_t>(v);
  return static_cast<uint8_t>(((v / 10) << 4) | (v % 10));
}

uint32_t Mc146818Rtc::Decode(uint8_t b) const {
  if (reg_b_ & kRtcBDm) return b;
  return (b >> 4) * 10u + (b & 0x0f);
}

uint8_t Mc146818Rtc::EncodeHour(uint32_t hour) const {
  if (reg_b_ & kRtcB24h) return Encode(hour);
  const uint32_t h12 = hour % 12 == 0 ? 12 : hour % 12;
  return static_cast<uint8_t>(Encode(h12) | (hour >= 12 ? kRtcHourPm : 0));
}

uint32_t Mc146818Rtc::DecodeHour(uint8_t b) const {
  if (reg_b_ & kRtcB24h) return Decode(b);
  const uint32_t h12 = Decode(b & static_cast<uint8_t>(~kRtcHourPm));
  return h12 % 12 + ((b & kRtcHourPm) ? 12 : 0);
}

uint8_t Mc146818Rtc::EncodeTimeRegister(uint8_t index, int64_t seconds) const {
  const int64_t days = FloorDiv(seconds, kSecondsPerDay);
  const int64_t tod = FloorMod(seconds, kSecondsPerDay);
  switch (index) {
    case kRtcSeconds:
      return Encode(static_cast<uint32_t>(tod % 60));
    case kRtcMinutes:
      return Encode(static_cast<uint32_t>(tod / 60 % 60));
    case kRtcHours:
      return EncodeHour(static_cast<uint32_t>(tod / 3600));
    case kRtcDayOfWeek:  // 1970-01-01 was a Thursday; Sunday is 1
      return Encode(static_cast<uint32_t>(FloorMod(days + 4, 7) + 1));
    default:
      break;
  }
  int64_t y;
  uint32_t m, d;
  CivilFromDays(days, &y, &m, &d);
  switch (index) {
    case kRtcDayOfMonth:
      return Encode(d);
    case kRtcMonth:
      return Encode(m);
    case kRtcYear:
      return Encode(static_cast<uint32_t>(FloorMod(y, 100)));
    case kRtcCentury:
      return Encode(static_cast<uint32_t>(FloorMod(FloorDiv(y, 100), 100)));
    default:
      return 0;
  }
}

void Mc146818Rtc::Freeze(int64_t now) {
  const int64_t s = GuestSeconds(now);
  for (uint8_t i : kTimeRegisters) cmos_[i] = EncodeTimeRegister(i, s);
}

void Mc146818Rtc::Thaw(int64_t now, bool half_second) {
  if (half_second) {
    // Leaving divider reset: the first update comes 500 ms later
    // (datasheet, "Divider Control"). Put the chain at k + 0.5 s.
    const int64_t k = FloorDiv(DividerNs(now), kNanosPerSecond);
    const int64_t target = k * kNanosPerSecond + kNanosPerSecond / 2;
    divider_offset_ns_ = target - now;
    last_divider_ns_ = target;
  }
  const auto field = [&](uint8_t index, uint32_t lo, uint32_t hi) {
    return std::clamp(Decode(cmos_[index]), lo, hi);
  };
  const uint32_t sec = field(kRtcSeconds, 0, 59);
  const uint32_t min = field(kRtcMinutes, 0, 59);
  const uint32_t hour = std::min(DecodeHour(cmos_[kRtcHours]), 23u);
  const uint32_t day = field(kRtcDayOfMonth, 1, 31);
  const uint32_t month = field(kRtcMonth, 1, 12);
  const int64_t year = int64_t{field(kRtcCentury, 0, 99)} * 100 +
                       field(kRtcYear, 0, 99);
  const int64_t s = DaysFromCivil(year, month, day) * kSecondsPerDay +
                    hour * 3600 + min * 60 + sec;
  seconds_delta_ = s - FloorDiv(DividerNs(now), kNanosPerSecond);
}

bool Mc146818Rtc::AlarmMatches(int64_t seconds) const {
  const auto match = [](uint8_t alarm, uint8_t now) {
    return (alarm & kRtcAlarmDontCare) == kRtcAlarmDontCare || alarm == now;
  };
  return match(cmos_[kRtcSecondsAlarm],
               EncodeTimeRegister(kRtcSeconds, seconds)) &&
         match(cmos_[kRtcMinutesAlarm],
               EncodeTimeRegister(kRtcMinutes, seconds)) &&
         match(cmos_[kRtcHoursAlarm], EncodeTimeRegister(kRtcHours, seconds));
}

void Mc146818Rtc::Advance(int64_t now, Pending* p) {
  const int64_t d = DividerNs(now);
  const int64_t last = last_divider_ns_;
  last_divider_ns_ = d;
  // The clock stepped back: nothing happened in between.
  if (d <= last) return;
  const bool divider_reset =
      (reg_a_ & kRtcADividerReset) == kRtcADividerReset;
  if (divider_reset) return;  // the chain is held: no taps toggle
  if (const uint32_t hz = PeriodicHz(reg_a_ & kRtcARateMask);
      hz != 0 && Ticks(d, hz) > Ticks(last, hz)) {
    flags_ |= kRtcCPf;
  }
  if (!Frozen()) {
    const int64_t s_last = FloorDiv(last, kNanosPerSecond);
    const int64_t s_now = FloorDiv(d, kNanosPerSecond);
    if (s_now > s_last) {
      flags_ |= kRtcCUf;
      // Each update compares the new time with the alarm. Every alarm
      // that can match does so within a day, so a longer gap needs only
      // the last day's seconds checked.
      for (int64_t s = std::max(s_last + 1, s_now - kSecondsPerDay + 1);
           s <= s_now; ++s) {
        if (AlarmMatches(s + seconds_delta_)) {
          flags_ |= kRtcCAf;
          if ((reg_b_ & kRtcBAie) && on_alarm_) p->alarm_fn = on_alarm_;
          break;
        }
      }
    }
  }
  NoteLevel();
}

bool Mc146818Rtc::IrqfLocked() const {
  return (flags_ & reg_b_ & (kRtcCPf | kRtcCAf | kRtcCUf)) != 0;
}

void Mc146818Rtc::NoteLevel() {
  const bool want = IrqfLocked();
  if (want == level_) return;
  if (!want) fell_ = true;
  level_ = want;
  ++level_seq_;
}

uint8_t Mc146818Rtc::ReadRegister(uint8_t index, int64_t now) {
  if (IsTimeRegister(index)) {
    return Frozen() ? cmos_[index]
                    : EncodeTimeRegister(index, GuestSeconds(now));
  }
  switch (index) {
    case kRtcRegA: {
      uint8_t a = reg_a_;
      if (!Frozen()) {
        const int64_t phase = FloorMod(DividerNs(now), kNanosPerSecond);
        if (phase >= kNanosPerSecond - kUipLeadNs || phase < kUpdateCycleNs) {
          a |= kRtcAUip;
        }
      }
      return a;
    }
    case kRtcRegB:
      return reg_b_;
    case kRtcRegC: {
      const uint8_t c = flags_ | (IrqfLocked() ? kRtcCIrqf : 0);
      flags_ = 0;
      NoteLevel();
      cv_.notify_one();  // the thread may have an interrupt to schedule
      return c;
    }
    case kRtcRegD:
      return kRtcDVrt;
    default:
      return cmos_[index];
  }
}

void Mc146818Rtc::WriteRegister(uint8_t index, uint8_t value, int64_t now) {
  if (IsTimeRegister(index)) {
    if (Frozen()) {
      cmos_[index] = value;
      return;
    }
    // The clock runs: the new field applies from now, the others and the
    // phase within the second stay.
    Freeze(now);
    cmos_[index] = value;
    Thaw(now, false);
    return;
  }
  switch (index) {
    case kRtcRegA: {
      const bool was_frozen = Frozen();
      const bool was_reset =
          (reg_a_ & kRtcADividerReset) == kRtcADividerReset;
      if (!was_frozen && (value & kRtcADividerReset) == kRtcADividerReset) {
        Freeze(now);
      }
      reg_a_ = value & static_cast<uint8_t>(~kRtcAUip);  // UIP: read-only
      const bool reset = (reg_a_ & kRtcADividerReset) == kRtcADividerReset;
      if (was_reset && !reset) {
        if (Frozen()) {
          // SET still holds the time; the chain restarts all the same.
          const int64_t k = FloorDiv(DividerNs(now), kNanosPerSecond);
          const int64_t target = k * kNanosPerSecond + kNanosPerSecond / 2;
          divider_offset_ns_ = target - now;
          last_divider_ns_ = target;
        } else {
          Thaw(now, true);
        }
      }
      cv_.notify_one();
      return;
    }
    case kRtcRegB: {
      const bool was_frozen = Frozen();
      // The held registers keep the format they were read in: changing
      // DM or 24/12 does not convert them (datasheet, Register B).
      if (!was_frozen && (value & kRtcBSet)) Freeze(now);
      reg_b_ = value;
      // Setting SET clears UIE (datasheet, Register B, UIE).
      if (reg_b_ & kRtcBSet) reg_b_ &= static_cast<uint8_t>(~kRtcBUie);
      if (was_frozen && !Frozen()) Thaw(now, false);
      NoteLevel();
      cv_.notify_one();
      return;
    }
    case kRtcRegC:
    case kRtcRegD:
      return;  // read-only
    default:
      cmos_[index] = value;
      return;
  }
}

uint64_t Mc146818Rtc::Read(const IoContext& ctx, uint64_t offset,
                           uint32_t size) {
  Pending p;
  uint64_t value = 0;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_ns_();
    Advance(now, &p);
    for (uint32_t i = 0; i < size; ++i) {
      // The index port is write-only; PCs float it.
      const uint8_t b = offset + i == kRtcDataOffset
                            ? ReadRegister(index_, now)
                            : uint8_t{0xff};
      value |= uint64_t{b} << (8 * i);
    }
  }
  Finish(p);
  return value;
}

void Mc146818Rtc::Write(const IoContext& ctx, uint64_t offset, uint32_t size,
                        uint64_t value) {
  Pending p;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_ns_();
    Advance(now, &p);
    for (uint32_t i = 0; i < size; ++i) {
      const uint8_t b = static_cast<uint8_t>(value >> (8 * i));
      if (offset + i == kRtcIndexOffset) {
        index_ = b & kRtcIndexMask;  // bit 7 gates NMI on the board
      } else {
        WriteRegister(index_, b, now);
      }
    }
  }
  Finish(p);
}

void Mc146818Rtc::Finish(const Pending& p) {
  if (irq_ != nullptr) {
    // Apply the latest wanted level. If another thread took a newer one
    // while we were calling the line, our call may have landed after its
    // call, so apply the latest again. A level that fell and rose again
    // before anyone applied it (register C read, then the next flag) is
    // applied as a pulse: the edge a PC's IRQ 8 needs must not be lost.
    bool again = false;
    for (;;) {
      uint64_t seq;
      bool level, pulse;
      {
        std::lock_guard lock(mu_);
        if (!again && applied_seq_ == level_seq_) break;
        seq = level_seq_;
        level = level_;
        pulse = level && fell_;
        fell_ = false;
        applied_seq_ = seq;
      }
      if (pulse) irq_->SetLevel(false);
      irq_->SetLevel(level);
      std::lock_guard lock(mu_);
      again = applied_seq_ != seq;
    }
  }
  if (p.alarm_fn) p.alarm_fn();
}

void Mc146818Rtc::SetMemorySizes(uint64_t below_4g, uint64_t above_4g) {
  constexpr uint64_t kKiB = 1024;
  constexpr uint64_t kMiB = 1024 * kKiB;
  constexpr uint64_t k64KiB = 64 * kKiB;
  std::lock_guard lock(mu_);
  Put16(cmos_, kCmosBaseMemLow, kCmosBaseMemHigh, 640);
  const uint64_t ext =
      std::min<uint64_t>(below_4g > kMiB ? (below_4g - kMiB) / kKiB : 0, 0xffff);
  Put16(cmos_, kCmosExtMemLow, kCmosExtMemHigh, ext);
  Put16(cmos_, kCmosExtMem2Low, kCmosExtMem2High, ext);
  const uint64_t above_16m = std::min<uint64_t>(
      below_4g > 16 * kMiB ? (below_4g - 16 * kMiB) / k64KiB : 0, 0xffff);
  Put16(cmos_, kCmosMem16mLow, kCmosMem16mHigh, above_16m);
  const uint64_t high = std::min<uint64_t>(above_4g / k64KiB, 0xffffff);
  cmos_[kCmosMem4gLow] = static_cast<uint8_t>(high);
  cmos_[kCmosMem4gMid] = static_cast<uint8_t>(high >> 8);
  cmos_[kCmosMem4gHigh] = static_cast<uint8_t>(high >> 16);
  // The PC/AT checksum over 0x10-0x2d, big-endian at 0x2e.
  uint32_t sum = 0;
  for (uint8_t i = 0x10; i < kCmosChecksumHigh; ++i) sum += cmos_[i];
  cmos_[kCmosChecksumHigh] = static_cast<uint8_t>(sum >> 8);
  cmos_[kCmosChecksumLow] = static_cast<uint8_t>(sum);
}

void Mc146818Rtc::SetAlarmCallback(AlarmFn fn) {
  std::lock_guard lock(mu_);
  on_alarm_ = std::move(fn);
}

Status Mc146818Rtc::Start() {
  if (thread_.joinable()) return Ok();
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  try {
    thread_ = std::thread([this] { ThreadMain(); });
  } catch (const std::system_error& e) {
    return MakeError(Errc::kIo, "starting the RTC timer thread: {}", e.what());
  }
  return Ok();
}

void Mc146818Rtc::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Mc146818Rtc::Poll() {
  Pending p;
  {
    std::lock_guard lock(mu_);
    Advance(now_ns_(), &p);
  }
  Finish(p);
}

int64_t Mc146818Rtc::NextWakeLocked(int64_t now) const {
  int64_t wake = std::numeric_limits<int64_t>::max();
  if ((reg_a_ & kRtcADividerReset) == kRtcADividerReset) return wake;
  const int64_t d = DividerNs(now);
  if ((reg_b_ & kRtcBPie) && !(flags_ & kRtcCPf)) {
    if (const uint32_t hz = PeriodicHz(reg_a_ & kRtcARateMask); hz != 0) {
      wake = std::min(wake, TickTime(Ticks(d, hz) + 1, hz));
    }
  }
  // The alarm is checked at every update while AIE is set, so that each
  // match reaches the alarm callback even if AF is still set.
  if (!Frozen() &&
      (((reg_b_ & kRtcBUie) && !(flags_ & kRtcCUf)) || (reg_b_ & kRtcBAie))) {
    wake = std::min(wake,
                    (FloorDiv(d, kNanosPerSecond) + 1) * kNanosPerSecond);
  }
  return wake;
}

void Mc146818Rtc::ThreadMain() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    Pending p;
    const int64_t now = now_ns_();
    Advance(now, &p);
    if (applied_seq_ != level_seq_ || p.alarm_fn) {
      lock.unlock();
      Finish(p);
      lock.lock();
      continue;
    }
    const int64_t wake = NextWakeLocked(now);
    int64_t delay = kMaxSleepNs;
    if (wake != std::numeric_limits<int64_t>::max()) {
      delay = std::clamp<int64_t>(wake - DividerNs(now), 0, kMaxSleepNs);
    }
    cv_.wait_for(lock, std::chrono::nanoseconds(delay));
  }
}

}  // namespace strata
