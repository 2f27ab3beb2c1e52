#include "devices/i8042.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

class RecordingIrq : public IrqLine {
 public:
  void SetLevel(bool asserted) override { levels.push_back(asserted); }
  std::vector<bool> levels;
};

class I8042Test : public ::testing::Test {
 protected:
  void SetUp() override {
    kbc_ = std::make_shared<I8042>([this] { ++resets_; }, &irq_);
    ASSERT_TRUE(bus_.Register(kI8042DataPort, 1, kbc_->DataPort()));
    ASSERT_TRUE(bus_.Register(kI8042CommandPort, 1, kbc_->CommandPort()));
  }
  uint8_t In(uint64_t port) {
    auto r = bus_.Read({}, port, 1);
    EXPECT_TRUE(r);
    return r ? static_cast<uint8_t>(*r) : 0;
  }
  void Out(uint64_t port, uint8_t v) { EXPECT_TRUE(bus_.Write({}, port, 1, v)); }
  uint8_t Status() { return In(kI8042CommandPort); }
  void Command(uint8_t c) { Out(kI8042CommandPort, c); }
  // The controller's answer: OBF must be set; reading clears it.
  uint8_t Answer() {
    EXPECT_TRUE(Status() & kI8042StsObf);
    uint8_t v = In(kI8042DataPort);
    EXPECT_FALSE(Status() & kI8042StsObf);
    return v;
  }

  Bus bus_{BusKind::kPio};
  RecordingIrq irq_;
  int resets_ = 0;
  std::shared_ptr<I8042> kbc_;
};

TEST_F(I8042Test, PowerOnStatusAndCommandByte) {
  EXPECT_EQ(Status(), kI8042StsUnlocked);  // no SYS before a self-test
  Command(kI8042CmdReadRam);
  EXPECT_EQ(Status() & (kI8042StsObf | kI8042StsCmd),
            kI8042StsObf | kI8042StsCmd);
  EXPECT_EQ(Answer(), kI8042CtrKbdInt | kI8042CtrTranslate);
  EXPECT_EQ(Status() & kI8042StsIbf, 0);
  // 0x61-0x63 are not the controller's.
  auto r = bus_.Read({}, 0x61, 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0xffu);
}

TEST_F(I8042Test, SelfTestAndInterfaceTest) {
  Command(kI8042CmdSelfTest);
  EXPECT_EQ(Answer(), kI8042SelfTestOk);
  EXPECT_TRUE(Status() & kI8042StsSys);
  Command(kI8042CmdKbdTest);
  EXPECT_EQ(Answer(), kI8042KbdTestOk);
  Command(kI8042CmdReadRam);
  EXPECT_TRUE(Answer() & kI8042CtrSys);
}

TEST_F(I8042Test, WriteCommandByteAndControllerRam) {
  Command(kI8042CmdWriteRam);
  Out(kI8042DataPort, kI8042CtrSys | kI8042CtrTranslate);
  EXPECT_EQ(Status() & (kI8042StsCmd | kI8042StsSys), kI8042StsSys);
  Command(kI8042CmdReadRam);
  EXPECT_EQ(Answer(), kI8042CtrSys | kI8042CtrTranslate);
  Command(kI8042CmdWriteRam + 5);
  Out(kI8042DataPort, 0x5a);
  Command(kI8042CmdReadRam + 5);
  EXPECT_EQ(Answer(), 0x5a);
  // Clearing bit 2 clears SYS.
  Command(kI8042CmdWriteRam);
  Out(kI8042DataPort, 0);
  EXPECT_EQ(Status() & kI8042StsSys, 0);
}

TEST_F(I8042Test, DisableAndEnableKeyboardAndAux) {
  Command(kI8042CmdKbdDisable);
  Command(kI8042CmdAuxDisable);
  Command(kI8042CmdReadRam);
  uint8_t ctr = Answer();
  EXPECT_TRUE(ctr & kI8042CtrKbdDisable);
  EXPECT_TRUE(ctr & kI8042CtrAuxDisable);
  Command(kI8042CmdKbdEnable);
  Command(kI8042CmdAuxEnable);
  Command(kI8042CmdReadRam);
  ctr = Answer();
  EXPECT_FALSE(ctr & kI8042CtrKbdDisable);
  EXPECT_FALSE(ctr & kI8042CtrAuxDisable);
}

TEST_F(I8042Test, OutputBufferRaisesTheKeyboardInterruptWhenEnabled) {
  Command(kI8042CmdKbdTest);
  EXPECT_EQ(irq_.levels, std::vector<bool>({true}));
  (void)In(kI8042DataPort);
  EXPECT_EQ(irq_.levels, std::vector<bool>({true, false}));
  // With the interrupt off in the command byte, no line.
  Command(kI8042CmdWriteRam);
  Out(kI8042DataPort, 0);
  Command(kI8042CmdKbdTest);
  EXPECT_EQ(irq_.levels.size(), 2u);
  EXPECT_EQ(Answer(), kI8042KbdTestOk);
  // 0xd2: the byte comes back as if from the keyboard.
  Command(kI8042CmdWriteKbdOut);
  Out(kI8042DataPort, 0x1c);
  EXPECT_EQ(Answer(), 0x1c);
  // An empty buffer reads its last byte again.
  EXPECT_EQ(In(kI8042DataPort), 0x1c);
}

TEST_F(I8042Test, BytesForTheMissingKeyboardTimeOut) {
  Out(kI8042DataPort, 0xff);  // keyboard reset command
  // Answered at once: time-out, 0xfe as keyboard data, the interrupt.
  EXPECT_EQ(Status() & (kI8042StsTimeout | kI8042StsObf | kI8042StsAuxObf),
            kI8042StsTimeout | kI8042StsObf);
  EXPECT_EQ(irq_.levels, std::vector<bool>({true}));
  EXPECT_EQ(In(kI8042DataPort), kI8042NoDevice);
  Command(kI8042CmdKbdTest);
  EXPECT_EQ(Status() & kI8042StsTimeout, 0);
  EXPECT_EQ(Answer(), kI8042KbdTestOk);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, OutputPortReadAndWrite) {
  Command(kI8042CmdReadOutPort);
  EXPECT_EQ(Answer(), kI8042OutReset | kI8042OutA20);  // buffer was empty
  Command(kI8042CmdWriteOutPort);
  Out(kI8042DataPort, kI8042OutReset);  // A20 off, no reset
  EXPECT_EQ(resets_, 0);
  Command(kI8042CmdReadOutPort);
  EXPECT_EQ(Answer(), kI8042OutReset);
  Command(kI8042CmdWriteOutPort);
  Out(kI8042DataPort, kI8042OutA20);  // bit 0 clear: reset
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, PulseCommandsResetWhenBitZeroIsPulsed) {
  Command(kI8042CmdPulseReset);
  EXPECT_EQ(resets_, 1);
  Command(0xff);  // pulses nothing
  Command(0xf1);  // pulses bits 1-3 only
  EXPECT_EQ(resets_, 1);
  Command(0xf0);  // all four, reset among them
  EXPECT_EQ(resets_, 2);
}

TEST_F(I8042Test, UnknownCommandsAreIgnored) {
  Command(0xc0);  // read input port: not there
  Command(0xa4);  // password installed?
  EXPECT_EQ(Status() & kI8042StsObf, 0);
  EXPECT_EQ(resets_, 0);
}

// The auxiliary port: the controller's own functions answer; the missing
// device times out at once, on IRQ 12 when enabled.
TEST_F(I8042Test, AuxPortFunctionsAndTheMissingMouse) {
  RecordingIrq aux;
  auto kbc = std::make_shared<I8042>([] {}, &irq_, &aux);
  Bus bus{BusKind::kPio};
  ASSERT_TRUE(bus.Register(kI8042DataPort, 1, kbc->DataPort()));
  ASSERT_TRUE(bus.Register(kI8042CommandPort, 1, kbc->CommandPort()));
  auto in = [&](uint64_t p) { return static_cast<uint8_t>(*bus.Read({}, p, 1)); };
  auto out = [&](uint64_t p, uint8_t v) { ASSERT_TRUE(bus.Write({}, p, 1, v)); };
  out(kI8042CommandPort, kI8042CmdAuxTest);
  EXPECT_EQ(in(kI8042CommandPort) & (kI8042StsObf | kI8042StsAuxObf),
            kI8042StsObf);
  EXPECT_EQ(in(kI8042DataPort), kI8042AuxTestOk);
  // Linux's loopback probe: 0xd3 0x5a reads back 0x5a as aux data.
  out(kI8042CommandPort, kI8042CmdWriteAuxOut);
  out(kI8042DataPort, 0x5a);
  EXPECT_EQ(in(kI8042CommandPort) & (kI8042StsObf | kI8042StsAuxObf),
            kI8042StsObf | kI8042StsAuxObf);
  EXPECT_TRUE(aux.levels.empty());  // command byte bit 1 still clear
  EXPECT_EQ(in(kI8042DataPort), 0x5a);
  EXPECT_EQ(in(kI8042CommandPort) & kI8042StsAuxObf, 0);
  // With the aux interrupt enabled, a byte for the mouse times out on it.
  out(kI8042CommandPort, kI8042CmdWriteRam);
  out(kI8042DataPort, kI8042CtrAuxInt | kI8042CtrKbdInt);
  irq_.levels.clear();  // the answers above were controller (IRQ 1) data
  out(kI8042CommandPort, kI8042CmdWriteAux);
  out(kI8042DataPort, 0xf2);  // get device id
  EXPECT_EQ(in(kI8042CommandPort) &
                (kI8042StsTimeout | kI8042StsObf | kI8042StsAuxObf),
            kI8042StsTimeout | kI8042StsObf | kI8042StsAuxObf);
  EXPECT_EQ(aux.levels, std::vector<bool>({true}));
  EXPECT_TRUE(irq_.levels.empty());  // not the keyboard's line
  EXPECT_EQ(in(kI8042DataPort), kI8042NoDevice);
  EXPECT_EQ(aux.levels, std::vector<bool>({true, false}));
}

}  // namespace
}  // namespace strata
