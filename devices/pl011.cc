#include "devices/pl011.h"

#include <utility>

namespace strata {

namespace {

constexpr uint64_t kWord = 4;

// UARTIFLS.RXIFLSEL (TRM §3.3.9): 1/8, 1/4, 1/2, 3/4, 7/8 of the 32-entry
// FIFO; the reserved encodings b101-b111 are taken as 7/8.
constexpr size_t kRxTriggerLevels[8] = {4, 8, 16, 24, 28, 28, 28, 28};

constexpr uint32_t ResetValue(uint64_t offset) {
  for (const Pl011Register& r : kPl011Registers) {
    if (r.offset == offset) return r.reset;
  }
  return 0;
}

constexpr uint32_t WriteMask(uint64_t offset) {
  for (const Pl011Register& r : kPl011Registers) {
    if (r.offset == offset) return r.write_mask;
  }
  return 0;
}

}  // namespace

const Pl011Register* FindPl011Register(uint64_t offset) {
  for (const Pl011Register& r : kPl011Registers) {
    if (r.offset == offset) return &r;
  }
  return nullptr;
}

Pl011::Pl011(CharBackend* backend, IrqLine* irq, std::string name)
    : backend_(backend), irq_(irq), name_(std::move(name)) {
  ilpr_ = ResetValue(kPl011Ilpr);
  ibrd_ = ResetValue(kPl011Ibrd);
  fbrd_ = ResetValue(kPl011Fbrd);
  lcr_h_ = ResetValue(kPl011LcrH);
  cr_ = ResetValue(kPl011Cr);
  ifls_ = ResetValue(kPl011Ifls);
  imsc_ = ResetValue(kPl011Imsc);
  dmacr_ = ResetValue(kPl011Dmacr);
}

uint64_t Pl011::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  std::lock_guard lock(mu_);
  uint64_t value = 0;
  const uint64_t end = offset + size;
  for (uint64_t reg = offset & ~(kWord - 1); reg < end; reg += kWord) {
    const uint64_t word = ReadRegister(reg);
    // Bytes [lo, hi) of this register are in the access.
    const uint64_t lo = reg < offset ? offset : reg;
    const uint64_t hi = reg + kWord < end ? reg + kWord : end;
    for (uint64_t b = lo; b < hi; ++b) {
      value |= ((word >> (8 * (b - reg))) & 0xff) << (8 * (b - offset));
    }
  }
  UpdateIrq();
  return value;
}

void Pl011::Write(const IoContext& ctx, uint64_t offset, uint32_t size,
                  uint64_t value) {
  std::lock_guard lock(mu_);
  const uint64_t end = offset + size;
  for (uint64_t reg = offset & ~(kWord - 1); reg < end; reg += kWord) {
    uint32_t word = 0;
    const uint64_t lo = reg < offset ? offset : reg;
    const uint64_t hi = reg + kWord < end ? reg + kWord : end;
    for (uint64_t b = lo; b < hi; ++b) {
      const uint32_t byte =
          static_cast<uint32_t>(value >> (8 * (b - offset))) & 0xff;
      word |= byte << (8 * (b - reg));
    }
    WriteRegister(reg, word);
  }
  UpdateIrq();
}

uint32_t Pl011::Flags() const {
  // Transmit FIFO always empty and idle; modem inputs not connected.
  uint32_t fr = kPl011FrTxfe;
  const size_t depth = (lcr_h_ & kPl011LcrHFen) ? kPl011FifoDepth : 1;
  if (rx_.empty()) fr |= kPl011FrRxfe;
  if (rx_.size() >= depth) fr |= kPl011FrRxff;
  return fr;
}

size_t Pl011::RxTrigger() const {
  if ((lcr_h_ & kPl011LcrHFen) == 0) return 1;  // 1-byte holding register
  return kRxTriggerLevels[(ifls_ >> kPl011IflsRxShift) & 7];
}

void Pl011::UpdateRx(size_t before, size_t old_trigger) {
  const size_t now = rx_.size();
  const size_t trigger = RxTrigger();
  // TRM §2.8.2 UARTRXINTR: asserted when the FIFO reaches the trigger
  // level, cleared by reading it below (or through UARTICR).
  if (now < trigger) {
    ris_ &= ~kPl011IntRx;
  } else if (before < old_trigger) {
    ris_ |= kPl011IntRx;
  }
  // UARTRTINTR: data arrived (and the line has since been idle); cleared
  // when the FIFO becomes empty.
  if (now == 0) {
    ris_ &= ~kPl011IntRt;
  } else if (now > before) {
    ris_ |= kPl011IntRt;
  }
}

uint32_t Pl011::ReadRegister(uint64_t offset) {
  switch (offset) {
    case kPl011Dr: {
      if (rx_.empty()) return 0;
      const size_t before = rx_.size();
      const uint8_t b = rx_.front();
      rx_.pop_front();
      UpdateRx(before, RxTrigger());
      return b;  // bits 8-11 (FE, PE, BE, OE of this byte): never set
    }
    case kPl011Rsr:
      return rsr_;
    case kPl011Fr:
      return Flags();
    case kPl011Ilpr:
      return ilpr_;
    case kPl011Ibrd:
      return ibrd_;
    case kPl011Fbrd:
      return fbrd_;
    case kPl011LcrH:
      return lcr_h_;
    case kPl011Cr:
      return cr_;
    case kPl011Ifls:
      return ifls_;
    case kPl011Imsc:
      return imsc_;
    case kPl011Ris:
      return ris_;
    case kPl011Mis:
      return ris_ & imsc_;
    case kPl011Dmacr:
      return dmacr_;
    default:
      // The identification registers; UARTICR and reserved offsets read 0.
      if (offset >= kPl011PeriphId0) return ResetValue(offset);
      return 0;
  }
}

void Pl011::WriteRegister(uint64_t offset, uint32_t value) {
  value &= WriteMask(offset);
  switch (offset) {
    case kPl011Dr:
      if (cr_ & kPl011CrLbe) {
        ReceiveByte(static_cast<uint8_t>(value));
      } else if (backend_ != nullptr) {
        const uint8_t byte = static_cast<uint8_t>(value);
        backend_->Write(std::span<const uint8_t>(&byte, 1));
      }
      // The byte left at once: the FIFO is back below its trigger level.
      ris_ |= kPl011IntTx;
      return;
    case kPl011Rsr:
      rsr_ = 0;  // UARTECR: any write clears the error flags
      return;
    case kPl011Ilpr:
      ilpr_ = value;
      return;
    case kPl011Ibrd:
      ibrd_ = value;
      return;
    case kPl011Fbrd:
      fbrd_ = value;
      return;
    case kPl011LcrH: {
      const size_t old_trigger = RxTrigger();
      lcr_h_ = value;
      UpdateRx(rx_.size(), old_trigger);
      return;
    }
    case kPl011Cr: {
      constexpr uint32_t kTxOn = kPl011CrUarten | kPl011CrTxe;
      const bool was_on = (cr_ & kTxOn) == kTxOn;
      cr_ = value;
      // An enabled transmitter with an empty FIFO is below its trigger.
      if (!was_on && (cr_ & kTxOn) == kTxOn) ris_ |= kPl011IntTx;
      return;
    }
    case kPl011Ifls: {
      const size_t old_trigger = RxTrigger();
      ifls_ = value;
      UpdateRx(rx_.size(), old_trigger);
      return;
    }
    case kPl011Imsc:
      imsc_ = value;
      return;
    case kPl011Icr:
      ris_ &= ~(static_cast<uint32_t>(value) & kPl011IntAll);
      return;
    case kPl011Dmacr:
      dmacr_ = value;
      return;
    default:
      return;  // read-only and reserved offsets
  }
}

void Pl011::ReceiveByte(uint8_t byte) {
  if (rx_.size() >= kInputQueueCapacity) {
    rsr_ |= kPl011RsrOe;
    ris_ |= kPl011IntOe;
    return;
  }
  const size_t before = rx_.size();
  rx_.push_back(byte);
  UpdateRx(before, RxTrigger());
}

void Pl011::UpdateIrq() {
  const bool level = (ris_ & imsc_) != 0;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_ != nullptr) irq_->SetLevel(level);
}

size_t Pl011::PushInput(std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (cr_ & kPl011CrLbe) return data.size();
  const size_t before = rx_.size();
  const size_t room = kInputQueueCapacity - before;
  const size_t taken = data.size() < room ? data.size() : room;
  rx_.insert(rx_.end(), data.begin(), data.begin() + taken);
  if (taken < data.size()) {
    rsr_ |= kPl011RsrOe;
    ris_ |= kPl011IntOe;
  }
  UpdateRx(before, RxTrigger());
  UpdateIrq();
  return taken;
}

size_t Pl011::InputRoom() const {
  std::lock_guard lock(mu_);
  return kInputQueueCapacity - rx_.size();
}

Status Pl011::SaveState(StateWriter& out) {
  std::lock_guard lock(mu_);
  out.U32(1);  // this encoding's version
  for (uint32_t v : {rsr_, ilpr_, ibrd_, fbrd_, lcr_h_, cr_, ifls_, imsc_,
                     ris_, dmacr_}) {
    out.U32(v);
  }
  out.Bool(irq_level_);
  out.ByteQueue(rx_);
  return Ok();
}

Status Pl011::LoadState(StateReader& in) {
  std::lock_guard lock(mu_);
  if (STRATA_TRY(in.U32()) != 1) return in.Fail("unknown pl011 state version");
  for (uint32_t* v : {&rsr_, &ilpr_, &ibrd_, &fbrd_, &lcr_h_, &cr_, &ifls_,
                      &imsc_, &ris_, &dmacr_}) {
    *v = STRATA_TRY(in.U32());
  }
  irq_level_ = STRATA_TRY(in.Bool());
  STRATA_TRY(in.ByteQueue(&rx_, kInputQueueCapacity));
  return in.ExpectEnd();
}

}  // namespace strata
