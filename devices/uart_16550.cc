#include "devices/uart_16550.h"

#include <utility>

namespace strata {

namespace {

// FCR bits 6-7 select how many received bytes raise RDA (datasheet §8.5).
constexpr size_t kRxTriggerLevels[4] = {1, 4, 8, 14};

// MSR line states as seen with the given MCR (datasheet §8.8: in loopback
// the four MCR outputs drive the four modem inputs).
uint8_t ModemInputs(uint8_t mcr) {
  if ((mcr & kUartMcrLoop) == 0) {
    // Nothing is attached to the host side; report a connected, ready
    // peer so guests do not wait for carrier or CTS.
    return kUartMsrDcd | kUartMsrDsr | kUartMsrCts;
  }
  uint8_t msr = 0;
  if (mcr & kUartMcrRts) msr |= kUartMsrCts;
  if (mcr & kUartMcrDtr) msr |= kUartMsrDsr;
  if (mcr & kUartMcrOut1) msr |= kUartMsrRi;
  if (mcr & kUartMcrOut2) msr |= kUartMsrDcd;
  return msr;
}

}  // namespace

Uart16550::Uart16550(CharBackend* backend, IrqLine* irq, std::string name)
    : backend_(backend), irq_(irq), name_(std::move(name)) {
  msr_ = ModemInputs(mcr_);
}

uint64_t Uart16550::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  std::lock_guard lock(mu_);
  uint64_t value = 0;
  for (uint32_t i = 0; i < size; ++i) {
    value |= uint64_t{ReadRegister(offset + i)} << (8 * i);
  }
  UpdateIrq();
  return value;
}

void Uart16550::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < size; ++i) {
    WriteRegister(offset + i, static_cast<uint8_t>(value >> (8 * i)));
  }
  UpdateIrq();
}

uint8_t Uart16550::ReadRegister(uint64_t offset) {
  const bool dlab = (lcr_ & kUartLcrDlab) != 0;
  switch (offset) {
    case kUartRbrThr: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kUartIer:
      return dlab ? dlm_ : ier_;
    case kUartIirFcr: {
      const uint8_t id = PendingInterrupt();
      // Reading IIR is what acknowledges a THRE interrupt (§8.6).
      if (id == kUartIirThre) thre_pending_ = false;
      return id | (fifo_enabled_ ? kUartIirFifoEnabled : 0);
    }
    case kUartLcr:
      return lcr_;
    case kUartMcr:
      return mcr_;
    case kUartLsr: {
      // THR and the shift register are always empty (instant transmit).
      uint8_t lsr = kUartLsrThre | kUartLsrTemt | lsr_errors_;
      if (!rx_.empty()) lsr |= kUartLsrDr;
      // Error bits are cleared by reading LSR (§8.4), which also clears
      // the receiver-line-status interrupt.
      lsr_errors_ = 0;
      return lsr;
    }
    case kUartMsr: {
      const uint8_t msr = msr_;
      msr_ &= static_cast<uint8_t>(~kUartMsrDeltaMask);  // §8.9
      return msr;
    }
    case kUartScr:
      return scr_;
    default:
      return 0xff;  // unreachable through a Bus registered with length 8
  }
}

void Uart16550::WriteRegister(uint64_t offset, uint8_t value) {
  const bool dlab = (lcr_ & kUartLcrDlab) != 0;
  switch (offset) {
    case kUartRbrThr:
      if (dlab) {
        dll_ = value;
        return;
      }
      // A THR write clears the THRE interrupt; the byte leaves at once and
      // THR is empty again, so THRE is re-raised. Updating the line in
      // between makes it pulse, giving edge-triggered controllers an edge.
      thre_pending_ = false;
      UpdateIrq();
      Transmit(value);
      thre_pending_ = true;
      return;
    case kUartIer: {
      if (dlab) {
        dlm_ = value;
        return;
      }
      const uint8_t old = ier_;
      ier_ = value & kUartIerMask;
      // Enabling the THRE interrupt while THR is empty raises it at once;
      // disabling it drops any latched one (as QEMU does).
      if ((ier_ & kUartIerThre) && !(old & kUartIerThre)) {
        thre_pending_ = true;
      } else if (!(ier_ & kUartIerThre)) {
        thre_pending_ = false;
      }
      return;
    }
    case kUartIirFcr: {
      const bool enable = (value & kUartFcrEnable) != 0;
      // Changing the FIFO mode clears the FIFOs (§8.5).
      if (enable != fifo_enabled_) rx_.clear();
      fifo_enabled_ = enable;
      // The other bits are only programmed while FCR0 is written as 1.
      if (enable) {
        if (value & kUartFcrRxReset) rx_.clear();
        // kUartFcrTxReset: the transmit FIFO is always empty.
        rx_trigger_ = kRxTriggerLevels[value >> kUartFcrTriggerShift];
      }
      return;
    }
    case kUartLcr:
      lcr_ = value;
      return;
    case kUartMcr:
      SetMcr(value & kUartMcrMask);
      return;
    case kUartLsr:
    case kUartMsr:
      // Writable only for factory test (§8.4); drivers never write them.
      return;
    case kUartScr:
      scr_ = value;
      return;
    default:
      return;
  }
}

void Uart16550::SetMcr(uint8_t mcr) {
  mcr_ = mcr;
  const uint8_t old = msr_ & ~kUartMsrDeltaMask;
  const uint8_t now = ModemInputs(mcr_);
  const uint8_t changed = old ^ now;
  uint8_t delta = 0;
  if (changed & kUartMsrCts) delta |= kUartMsrDcts;
  if (changed & kUartMsrDsr) delta |= kUartMsrDdsr;
  if (changed & kUartMsrDcd) delta |= kUartMsrDdcd;
  // TERI flags only the trailing edge of RI (§8.9).
  if ((old & kUartMsrRi) && !(now & kUartMsrRi)) delta |= kUartMsrTeri;
  msr_ = now | (msr_ & kUartMsrDeltaMask) | delta;
}

uint8_t Uart16550::PendingInterrupt() const {
  // Priority order of the datasheet's interrupt control table.
  if ((ier_ & kUartIerRls) && (lsr_errors_ & kUartLsrErrorBits)) {
    return kUartIirRls;
  }
  if ((ier_ & kUartIerRda) && !rx_.empty()) {
    return (fifo_enabled_ && rx_.size() < rx_trigger_) ? kUartIirTimeout
                                                       : kUartIirRda;
  }
  if ((ier_ & kUartIerThre) && thre_pending_) return kUartIirThre;
  if ((ier_ & kUartIerMsi) && (msr_ & kUartMsrDeltaMask)) return kUartIirMsi;
  return kUartIirNone;
}

void Uart16550::UpdateIrq() {
  const bool level = PendingInterrupt() != kUartIirNone;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_ != nullptr) irq_->SetLevel(level);
}

void Uart16550::Transmit(uint8_t byte) {
  if (mcr_ & kUartMcrLoop) {
    ReceiveByte(byte);
    return;
  }
  if (backend_ != nullptr) backend_->Write(std::span<const uint8_t>(&byte, 1));
}

void Uart16550::ReceiveByte(uint8_t byte) {
  if (rx_.size() >= kInputQueueCapacity) {
    lsr_errors_ |= kUartLsrOe;
    return;
  }
  rx_.push_back(byte);
}

size_t Uart16550::PushInput(std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (mcr_ & kUartMcrLoop) return data.size();
  size_t taken = 0;
  for (uint8_t b : data) {
    if (rx_.size() >= kInputQueueCapacity) break;
    rx_.push_back(b);
    ++taken;
  }
  if (taken < data.size()) lsr_errors_ |= kUartLsrOe;
  UpdateIrq();
  return taken;
}

size_t Uart16550::InputRoom() const {
  std::lock_guard lock(mu_);
  return kInputQueueCapacity - rx_.size();
}

Status Uart16550::SaveState(StateWriter& out) {
  std::lock_guard lock(mu_);
  out.U32(1);  // this encoding's version
  for (uint8_t v : {ier_, lcr_, mcr_, msr_, scr_, dll_, dlm_, lsr_errors_}) {
    out.U8(v);
  }
  out.Bool(fifo_enabled_);
  out.U64(rx_trigger_);
  out.Bool(thre_pending_);
  out.Bool(irq_level_);
  out.ByteQueue(rx_);
  return Ok();
}

Status Uart16550::LoadState(StateReader& in) {
  std::lock_guard lock(mu_);
  if (STRATA_TRY(in.U32()) != 1) {
    return in.Fail("unknown uart_16550 state version");
  }
  for (uint8_t* v : {&ier_, &lcr_, &mcr_, &msr_, &scr_, &dll_, &dlm_,
                     &lsr_errors_}) {
    *v = STRATA_TRY(in.U8());
  }
  fifo_enabled_ = STRATA_TRY(in.Bool());
  const uint64_t trigger = STRATA_TRY(in.U64());
  if (trigger < 1 || trigger > 16) {
    return in.Fail(fmt::format("receive trigger level {}", trigger));
  }
  rx_trigger_ = trigger;
  thre_pending_ = STRATA_TRY(in.Bool());
  irq_level_ = STRATA_TRY(in.Bool());
  STRATA_TRY(in.ByteQueue(&rx_, kInputQueueCapacity));
  return in.ExpectEnd();
}

}  // namespace strata
