#include "devices/i8042.h"

#include <string>
#include <utility>

namespace strata {

namespace {

class I8042Port : public IoDevice {
 public:
  I8042Port(std::shared_ptr<I8042> kbc, bool command)
      : kbc_(std::move(kbc)), command_(command) {}
  uint64_t Read(const IoContext&, uint64_t, uint32_t) override {
    return command_ ? kbc_->ReadStatus() : kbc_->ReadData();
  }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t value) override {
    const uint8_t b = static_cast<uint8_t>(value);
    if (command_) {
      kbc_->WriteCommand(b);
    } else {
      kbc_->WriteData(b);
    }
  }
  std::string_view name() const override {
    return command_ ? "i8042 status/command" : "i8042 data";
  }

 private:
  const std::shared_ptr<I8042> kbc_;
  const bool command_;
};

}  // namespace

I8042::I8042(ResetFn on_reset, IrqLine* kbd_irq, IrqLine* aux_irq)
    : on_reset_(std::move(on_reset)), irq_(kbd_irq), aux_irq_(aux_irq) {
  // What a BIOS leaves: keyboard interrupt on, scan-code translation.
  // SYS stays clear until a self-test (there was no POST).
  ram_[0] = kI8042CtrKbdInt | kI8042CtrTranslate;
}

std::shared_ptr<IoDevice> I8042::DataPort() {
  return std::make_shared<I8042Port>(shared_from_this(), false);
}

std::shared_ptr<IoDevice> I8042::CommandPort() {
  return std::make_shared<I8042Port>(shared_from_this(), true);
}

void I8042::Output(uint8_t v, bool aux) {
  out_ = v;
  status_ |= kI8042StsObf;
  status_ = static_cast<uint8_t>((status_ & ~kI8042StsAuxObf) |
                                 (aux ? kI8042StsAuxObf : 0));
  UpdateIrq();
}

void I8042::NoDevice(bool aux) {
  status_ |= kI8042StsTimeout;
  Output(kI8042NoDevice, aux);
}

void I8042::UpdateIrq() {
  const bool full = (status_ & kI8042StsObf) != 0;
  const bool aux = (status_ & kI8042StsAuxObf) != 0;
  const bool level = full && !aux && (ram_[0] & kI8042CtrKbdInt);
  const bool aux_level = full && aux && (ram_[0] & kI8042CtrAuxInt);
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_ != nullptr) irq_->SetLevel(level);
  }
  if (aux_level != aux_irq_level_) {
    aux_irq_level_ = aux_level;
    if (aux_irq_ != nullptr) aux_irq_->SetLevel(aux_level);
  }
}

void I8042::SetOutPort(uint8_t v, bool* reset) {
  out_port_ = v;
  // The reset line is active low: writing bit 0 as 0 resets the CPU.
  if (!(v & kI8042OutReset)) *reset = true;
}

uint8_t I8042::ReadStatus() {
  std::lock_guard lock(mu_);
  return status_;
}

uint8_t I8042::ReadData() {
  std::lock_guard lock(mu_);
  // An empty buffer reads its last byte again, as the 8042 does.
  status_ &= static_cast<uint8_t>(~(kI8042StsObf | kI8042StsAuxObf));
  UpdateIrq();
  return out_;
}

void I8042::WriteData(uint8_t v) {
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    status_ &= static_cast<uint8_t>(~(kI8042StsCmd | kI8042StsTimeout));
    const uint8_t cmd = pending_;
    pending_ = 0;
    if (cmd >= kI8042CmdWriteRam && cmd < kI8042CmdWriteRam + 0x20) {
      ram_[cmd - kI8042CmdWriteRam] = v;
      if (cmd == kI8042CmdWriteRam) {
        // SYS in the status register follows command byte bit 2.
        status_ = static_cast<uint8_t>((status_ & ~kI8042StsSys) |
                                       (v & kI8042CtrSys ? kI8042StsSys : 0));
        UpdateIrq();
      }
    } else if (cmd == kI8042CmdWriteOutPort) {
      SetOutPort(v, &reset);
    } else if (cmd == kI8042CmdWriteKbdOut) {
      Output(v);
    } else if (cmd == kI8042CmdWriteAuxOut) {
      Output(v, /*aux=*/true);
    } else {
      // For the keyboard (or after 0xd4 the auxiliary device), neither of
      // which is there: the transmission times out.
      NoDevice(cmd == kI8042CmdWriteAux);
    }
  }
  if (reset && on_reset_) on_reset_();
}

void I8042::WriteCommand(uint8_t v) {
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    status_ |= kI8042StsCmd;
    status_ &= static_cast<uint8_t>(~kI8042StsTimeout);
    pending_ = 0;
    if (v >= kI8042CmdReadRam && v < kI8042CmdReadRam + 0x20) {
      Output(ram_[v - kI8042CmdReadRam]);
    } else if (v >= kI8042CmdWriteRam && v < kI8042CmdWriteRam + 0x20) {
      pending_ = v;
    } else if (v >= kI8042CmdPulseFirst) {
      // Bits 0-3 of the command clear: pulse those output-port bits low
      // for about 6 µs. Only bit 0 (reset) is wired to anything.
      if (!(v & kI8042OutReset)) reset = true;
    } else {
      switch (v) {
        case kI8042CmdAuxDisable:
          ram_[0] |= kI8042CtrAuxDisable;
          break;
        case kI8042CmdAuxEnable:
          ram_[0] &= static_cast<uint8_t>(~kI8042CtrAuxDisable);
          break;
        case kI8042CmdSelfTest:
          status_ |= kI8042StsSys;
          ram_[0] |= kI8042CtrSys;
          Output(kI8042SelfTestOk);
          break;
        case kI8042CmdKbdTest:
          Output(kI8042KbdTestOk);
          break;
        case kI8042CmdAuxTest:
          Output(kI8042AuxTestOk);
          break;
        case kI8042CmdKbdDisable:
          ram_[0] |= kI8042CtrKbdDisable;
          break;
        case kI8042CmdKbdEnable:
          ram_[0] &= static_cast<uint8_t>(~kI8042CtrKbdDisable);
          break;
        case kI8042CmdReadOutPort: {
          const uint8_t obf = (status_ & kI8042StsObf) ? kI8042OutKbdObf : 0;
          Output(static_cast<uint8_t>((out_port_ & ~kI8042OutKbdObf) | obf));
          break;
        }
        case kI8042CmdWriteOutPort:
        case kI8042CmdWriteKbdOut:
        case kI8042CmdWriteAuxOut:
        case kI8042CmdWriteAux:
          pending_ = v;
          break;
        default:
          break;  // no password, no input port
      }
    }
  }
  if (reset && on_reset_) on_reset_();
}

}  // namespace strata
