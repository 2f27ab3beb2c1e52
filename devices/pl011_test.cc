#include "devices/pl011.h"

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"
#include "devices/char_backend.h"

namespace strata {
namespace {

constexpr uint64_t kBase = 0x09000000;  // QEMU virt's UART

class RecordingIrq : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    std::lock_guard lock(mu_);
    levels_.push_back(asserted);
  }
  std::vector<bool> levels() const {
    std::lock_guard lock(mu_);
    return levels_;
  }
  bool level() const {
    std::lock_guard lock(mu_);
    return !levels_.empty() && levels_.back();
  }

 private:
  mutable std::mutex mu_;
  std::vector<bool> levels_;
};

class Pl011Test : public ::testing::Test {
 protected:
  void SetUp() override {
    uart_ = std::make_shared<Pl011>(&out_, &irq_, "uart0");
    ASSERT_TRUE(bus_.Register(kBase, kPl011Size, uart_));
  }
  uint64_t Rd(uint64_t off, uint32_t size = 4) {
    auto r = bus_.Read({}, kBase + off, size);
    EXPECT_TRUE(r);
    return r ? *r : 0;
  }
  void Wr(uint64_t off, uint64_t v, uint32_t size = 4) {
    EXPECT_TRUE(bus_.Write({}, kBase + off, size, v));
  }
  size_t Push(std::string_view s) {
    return uart_->PushInput(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  // Linux's pl011_startup, roughly: enable, unmask RX and RX timeout.
  // The receive half of UARTRIS.
  uint64_t RxRis() { return Rd(kPl011Ris) & (kPl011IntRx | kPl011IntRt); }
  void EnableLikeLinux() {
    Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe);
    Wr(kPl011Imsc, kPl011IntRx | kPl011IntRt);
  }

  Bus bus_{BusKind::kMmio};
  BufferBackend out_;
  RecordingIrq irq_;
  std::shared_ptr<Pl011> uart_;
};

TEST(Pl011Registers, TheTableIsWellFormed) {
  std::set<uint64_t> seen;
  for (const Pl011Register& r : kPl011Registers) {
    EXPECT_EQ(r.offset % 4, 0u) << r.name;
    EXPECT_LT(r.offset, kPl011Size) << r.name;
    EXPECT_TRUE(seen.insert(r.offset).second) << r.name;
    EXPECT_EQ(FindPl011Register(r.offset), &r);
    EXPECT_EQ(r.reset & ~0xffffu, 0u) << r.name;  // all fit in 15:0
  }
  EXPECT_EQ(FindPl011Register(0x008), nullptr);
  EXPECT_EQ(FindPl011Register(0x04c), nullptr);
  EXPECT_EQ(FindPl011Register(0x001), nullptr);
}

TEST_F(Pl011Test, ResetValues) {
  // TRM Table 3-1.
  EXPECT_EQ(Rd(kPl011Dr), 0u);
  EXPECT_EQ(Rd(kPl011Rsr), 0u);
  EXPECT_EQ(Rd(kPl011Fr), kPl011FrTxfe | kPl011FrRxfe);
  EXPECT_EQ(Rd(kPl011Fr), 0x90u);
  EXPECT_EQ(Rd(kPl011Ilpr), 0u);
  EXPECT_EQ(Rd(kPl011Ibrd), 0u);
  EXPECT_EQ(Rd(kPl011Fbrd), 0u);
  EXPECT_EQ(Rd(kPl011LcrH), 0u);
  EXPECT_EQ(Rd(kPl011Cr), 0x300u);
  EXPECT_EQ(Rd(kPl011Ifls), 0x12u);
  EXPECT_EQ(Rd(kPl011Imsc), 0u);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
  EXPECT_EQ(Rd(kPl011Mis), 0u);
  EXPECT_EQ(Rd(kPl011Icr), 0u);
  EXPECT_EQ(Rd(kPl011Dmacr), 0u);
  // And the table says the same for every register that is not computed.
  for (const Pl011Register& r : kPl011Registers) {
    if (r.offset == kPl011Dr) continue;
    EXPECT_EQ(Rd(r.offset), r.reset) << r.name;
  }
  EXPECT_TRUE(irq_.levels().empty());
}

TEST_F(Pl011Test, IdentificationRegisters) {
  // What Linux's AMBA bus assembles: periphid 0x00141011 (part 0x011,
  // designer 0x41 'A', revision 1 => r1p5), cellid 0xb105f00d.
  const uint8_t want[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
  uint32_t periphid = 0;
  uint32_t cellid = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Rd(kPl011PeriphId0 + 4 * i), want[i]) << i;
    EXPECT_EQ(Rd(kPl011PCellId0 + 4 * i), want[4 + i]) << i;
    periphid |= static_cast<uint32_t>(Rd(kPl011PeriphId0 + 4 * i) & 0xff)
                << (8 * i);
    cellid |= static_cast<uint32_t>(Rd(kPl011PCellId0 + 4 * i) & 0xff)
              << (8 * i);
  }
  EXPECT_EQ(periphid, 0x00141011u);
  EXPECT_EQ(cellid, 0xb105f00du);
  // Byte reads give the same; the upper bytes are 0.
  EXPECT_EQ(Rd(0xfe0, 1), 0x11u);
  EXPECT_EQ(Rd(0xfe1, 1), 0u);
  EXPECT_EQ(Rd(0xffc, 2), 0xb1u);
  // Read-only.
  Wr(0xfe0, 0xff);
  EXPECT_EQ(Rd(0xfe0), 0x11u);
}

TEST_F(Pl011Test, TransmitGoesToTheBackend) {
  for (char c : std::string("hi\n")) Wr(kPl011Dr, static_cast<uint8_t>(c));
  // Only bits 7:0 are data.
  Wr(kPl011Dr, 0xf00 | '!');
  EXPECT_EQ(out_.contents(), "hi\n!");
  // Even with the UART disabled, as early consoles leave it (UARTCR reset).
  Wr(kPl011Cr, 0);
  Wr(kPl011Dr, 'x');
  EXPECT_EQ(out_.Take(), "hi\n!x");
  // The transmitter is always idle and its FIFO empty.
  EXPECT_EQ(Rd(kPl011Fr) & (kPl011FrTxfe | kPl011FrTxff | kPl011FrBusy),
            kPl011FrTxfe);
}

TEST_F(Pl011Test, ByteAndHalfwordWritesToDrTransmit) {
  Wr(kPl011Dr, 'a', 1);   // earlycon, kvm-unit-tests: writeb
  Wr(kPl011Dr, 'b', 2);   // Linux's driver: writew
  Wr(kPl011Dr, 'c', 4);
  EXPECT_EQ(out_.Take(), "abc");
  // A byte at DR+1 writes DR with the byte in lane 1: the data lane is 0.
  Wr(kPl011Dr + 1, 'd', 1);
  EXPECT_EQ(out_.Take(), std::string(1, '\0'));
}

TEST_F(Pl011Test, TransmitInterrupt) {
  // Not latched at reset (UARTEN clear), so unmasking raises nothing.
  Wr(kPl011Imsc, kPl011IntTx);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
  EXPECT_FALSE(irq_.level());
  // Enabling the transmitter latches it: the FIFO is empty.
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe);
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntTx);
  EXPECT_EQ(Rd(kPl011Mis), kPl011IntTx);
  EXPECT_TRUE(irq_.level());
  // Linux's handler writes characters while TXIM is set; each write
  // leaves it raised.
  Wr(kPl011Dr, 'x');
  EXPECT_TRUE(irq_.level());
  // Masking drops the line but not the raw status.
  Wr(kPl011Imsc, 0);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntTx);
  EXPECT_EQ(Rd(kPl011Mis), 0u);
  // UARTICR clears it until the next write.
  Wr(kPl011Imsc, kPl011IntTx);
  EXPECT_TRUE(irq_.level());
  Wr(kPl011Icr, kPl011IntTx);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
  EXPECT_FALSE(irq_.level());
  Wr(kPl011Dr, 'y');
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntTx);
  EXPECT_TRUE(irq_.level());
  // Rewriting UARTCR with the transmitter already on latches nothing new.
  Wr(kPl011Icr, kPl011IntAll);
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
  // The line followed the mask and status, one transition at a time.
  const std::vector<bool> want = {true, false, true, false, true, false};
  EXPECT_EQ(irq_.levels(), want);
}

TEST_F(Pl011Test, ReceiveWithoutFifo) {
  EnableLikeLinux();
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(Push("ab"), 2u);
  // FEN clear: a 1-byte holding register, trigger level 1; full at once.
  EXPECT_EQ(RxRis(), kPl011IntRx | kPl011IntRt);
  EXPECT_EQ(Rd(kPl011Fr) & (kPl011FrRxfe | kPl011FrRxff), kPl011FrRxff);
  EXPECT_TRUE(irq_.level());
  // Bits 8-11 (the byte's errors) are 0.
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'a'});
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(Rd(kPl011Dr, 2), uint64_t{'b'});
  EXPECT_EQ(RxRis(), 0u);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(Rd(kPl011Fr) & (kPl011FrRxfe | kPl011FrRxff), kPl011FrRxfe);
  // Empty: reads 0 and changes nothing.
  EXPECT_EQ(Rd(kPl011Dr), 0u);
  EXPECT_EQ(Rd(kPl011Dr, 1), 0u);
}

TEST_F(Pl011Test, ReceiveFifoTriggerLevelsAndTimeout) {
  Wr(kPl011LcrH, kPl011LcrHFen | 0x60);  // FIFOs on, 8 bits
  Wr(kPl011Ifls, 0 << kPl011IflsRxShift);  // RX at 1/8: 4 bytes
  EnableLikeLinux();
  EXPECT_EQ(Push("abc"), 3u);
  // Below the trigger level only the timeout interrupt is raised.
  EXPECT_EQ(RxRis(), kPl011IntRt);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(Rd(kPl011Fr) & (kPl011FrRxfe | kPl011FrRxff), 0u);
  EXPECT_EQ(Push("d"), 1u);
  EXPECT_EQ(RxRis(), kPl011IntRx | kPl011IntRt);
  // Reading below the level clears RX; emptying clears RT.
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'a'});
  EXPECT_EQ(RxRis(), kPl011IntRt);
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'b'});
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'c'});
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'d'});
  EXPECT_EQ(RxRis(), 0u);
  EXPECT_FALSE(irq_.level());
  // With only RXIM unmasked, data below the level raises nothing.
  Wr(kPl011Imsc, kPl011IntRx);
  EXPECT_EQ(Push("xy"), 2u);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(Rd(kPl011Mis) & kPl011IntRx, 0u);
  // Lowering the trigger level to what is queued crosses it.
  Wr(kPl011LcrH, 0x60);  // FEN off: trigger 1
  EXPECT_EQ(RxRis() & kPl011IntRx, kPl011IntRx);
  EXPECT_TRUE(irq_.level());
  // Changing FEN does not flush.
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'x'});
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'y'});
}

TEST_F(Pl011Test, FifoFullFlag) {
  Wr(kPl011LcrH, kPl011LcrHFen);
  EXPECT_EQ(Push(std::string(kPl011FifoDepth - 1, 'z')), kPl011FifoDepth - 1);
  EXPECT_EQ(Rd(kPl011Fr) & kPl011FrRxff, 0u);
  EXPECT_EQ(Push("z"), 1u);
  EXPECT_EQ(Rd(kPl011Fr) & kPl011FrRxff, kPl011FrRxff);
  // The host queue behind the FIFO holds more; RXFF stays until reads
  // bring it below the depth.
  EXPECT_EQ(Push("12"), 2u);
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'z'});
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'z'});
  EXPECT_EQ(Rd(kPl011Fr) & kPl011FrRxff, kPl011FrRxff);
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'z'});
  EXPECT_EQ(Rd(kPl011Fr) & (kPl011FrRxff | kPl011FrRxfe), 0u);
}

TEST_F(Pl011Test, InterruptClearRegister) {
  EnableLikeLinux();
  Wr(kPl011Imsc, kPl011IntAll);
  EXPECT_EQ(Push("q"), 1u);
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntRx | kPl011IntRt | kPl011IntTx);
  // Linux's interrupt handler acknowledges all but TX, RX and RT.
  Wr(kPl011Icr, kPl011IntAll & ~(kPl011IntTx | kPl011IntRx | kPl011IntRt));
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntRx | kPl011IntRt | kPl011IntTx);
  // Clearing RX and RT with data still queued: they stay clear until the
  // next transition (TRM; Linux drains the FIFO after this).
  Wr(kPl011Icr, kPl011IntRx | kPl011IntRt);
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntTx);
  EXPECT_EQ(Rd(kPl011Fr) & kPl011FrRxfe, 0u);
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'q'});
  EXPECT_EQ(Push("r"), 1u);
  EXPECT_EQ(Rd(kPl011Ris), kPl011IntRx | kPl011IntRt | kPl011IntTx);
  Wr(kPl011Icr, kPl011IntAll);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
  EXPECT_EQ(Rd(kPl011Mis), 0u);
  EXPECT_FALSE(irq_.level());
  // ICR reads as 0 and stores nothing.
  EXPECT_EQ(Rd(kPl011Icr), 0u);
}

TEST_F(Pl011Test, OverrunAndErrorClear) {
  Wr(kPl011Imsc, kPl011IntOe);
  const std::string big(Pl011::kInputQueueCapacity, 'o');
  EXPECT_EQ(uart_->InputRoom(), Pl011::kInputQueueCapacity);
  EXPECT_EQ(Push(big), big.size());
  EXPECT_EQ(uart_->InputRoom(), 0u);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(Push("lost"), 0u);
  EXPECT_EQ(Rd(kPl011Rsr), kPl011RsrOe);
  EXPECT_EQ(Rd(kPl011Ris) & kPl011IntOe, kPl011IntOe);
  EXPECT_TRUE(irq_.level());
  // UARTECR: any write clears the flags; OEIC clears the interrupt.
  Wr(kPl011Rsr, 0x1234);
  EXPECT_EQ(Rd(kPl011Rsr), 0u);
  Wr(kPl011Icr, kPl011IntOe);
  EXPECT_FALSE(irq_.level());
  // Data read back is still there; the bytes carry no error bits.
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'o'});
  EXPECT_EQ(uart_->InputRoom(), 1u);
}

TEST_F(Pl011Test, Loopback) {
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe | kPl011CrLbe);
  Wr(kPl011Dr, 'L');
  EXPECT_EQ(out_.contents(), "");  // not sent
  // Outside input is disconnected but taken.
  EXPECT_EQ(Push("ext"), 3u);
  EXPECT_EQ(Rd(kPl011Dr), uint64_t{'L'});
  EXPECT_EQ(Rd(kPl011Fr) & kPl011FrRxfe, kPl011FrRxfe);
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe);
  Wr(kPl011Dr, 'M');
  EXPECT_EQ(out_.contents(), "M");
}

TEST_F(Pl011Test, WriteMasks) {
  Wr(kPl011Ibrd, 0xffffffff);
  EXPECT_EQ(Rd(kPl011Ibrd), 0xffffu);
  Wr(kPl011Fbrd, 0xffffffff);
  EXPECT_EQ(Rd(kPl011Fbrd), 0x3fu);
  Wr(kPl011Ilpr, 0x1ff);
  EXPECT_EQ(Rd(kPl011Ilpr), 0xffu);
  Wr(kPl011LcrH, 0x1ff);
  EXPECT_EQ(Rd(kPl011LcrH), 0xffu);
  Wr(kPl011Cr, 0xffffffff);  // bits 6:3 reserved
  EXPECT_EQ(Rd(kPl011Cr), 0xff87u);
  Wr(kPl011Ifls, 0xff);
  EXPECT_EQ(Rd(kPl011Ifls), 0x3fu);
  Wr(kPl011Imsc, 0xffff);
  EXPECT_EQ(Rd(kPl011Imsc), uint64_t{kPl011IntAll});
  Wr(kPl011Dmacr, 0xff);
  EXPECT_EQ(Rd(kPl011Dmacr), 0x7u);
  // Read-only registers ignore writes.
  Wr(kPl011Fr, 0);
  EXPECT_NE(Rd(kPl011Fr) & kPl011FrTxfe, 0u);
  Wr(kPl011Ris, kPl011IntAll);
  Wr(kPl011Mis, kPl011IntAll);
  Wr(kPl011Icr, kPl011IntAll);
  Wr(kPl011Imsc, 0);
  EXPECT_EQ(Rd(kPl011Ris), 0u);
}

TEST_F(Pl011Test, NarrowAccessesUseTheirLanes) {
  Wr(kPl011Ibrd, 0xabcd);
  EXPECT_EQ(Rd(kPl011Ibrd, 2), 0xabcdu);
  EXPECT_EQ(Rd(kPl011Ibrd, 1), 0xcdu);
  EXPECT_EQ(Rd(kPl011Ibrd + 1, 1), 0xabu);
  EXPECT_EQ(Rd(kPl011Ibrd + 2, 2), 0u);
  EXPECT_EQ(Rd(kPl011Ibrd + 1, 2), 0xabu);  // bytes 1-2 of the register
  // A narrow write fills the other lanes with zeros.
  Wr(kPl011Ibrd + 1, 0x12, 1);
  EXPECT_EQ(Rd(kPl011Ibrd), 0x1200u);
  Wr(kPl011Ibrd, 0x34, 1);
  EXPECT_EQ(Rd(kPl011Ibrd), 0x34u);
  // Halfword writes at the register offset are the whole register.
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe, 2);
  EXPECT_EQ(Rd(kPl011Cr, 2), 0x301u);
  // A byte read of UARTDR's upper lane still pops the byte.
  EXPECT_EQ(Push("ab"), 2u);
  EXPECT_EQ(Rd(kPl011Dr + 1, 1), 0u);  // lane 1: error bits
  EXPECT_EQ(Rd(kPl011Dr, 1), uint64_t{'b'});
  // The ID registers by halfword.
  EXPECT_EQ(Rd(0xff8, 2), 0x05u);
}

TEST_F(Pl011Test, WideAndStraddlingAccessesTouchEachRegisterOnce) {
  Wr(kPl011Imsc, kPl011IntTx);
  Wr(kPl011Cr, kPl011CrUarten | kPl011CrTxe | kPl011CrRxe);
  // 8 bytes at UARTIMSC: IMSC in the low half, RIS in the high half.
  EXPECT_EQ(Rd(kPl011Imsc, 8),
            uint64_t{kPl011IntTx} | (uint64_t{kPl011IntTx} << 32));
  // 8 bytes at UARTIBRD: IBRD and FBRD, both written.
  Wr(kPl011Ibrd, 0x0000002a00001234, 8);
  EXPECT_EQ(Rd(kPl011Ibrd), 0x1234u);
  EXPECT_EQ(Rd(kPl011Fbrd), 0x2au);
  // A halfword across the IBRD/FBRD boundary: byte 3 of IBRD, byte 0 of
  // FBRD.
  EXPECT_EQ(Rd(kPl011Ibrd + 3, 2), 0x2a00u);
  Wr(kPl011Ibrd + 3, 0x1100, 2);  // IBRD: 0 in lane 3; FBRD: 0x11 in lane 0
  EXPECT_EQ(Rd(kPl011Ibrd), 0u);
  EXPECT_EQ(Rd(kPl011Fbrd), 0x11u);
  // 8 bytes at UARTDR pop one byte (DR once) and read RSR.
  EXPECT_EQ(Push("xy"), 2u);
  EXPECT_EQ(Rd(kPl011Dr, 8), uint64_t{'x'});
  EXPECT_EQ(Rd(kPl011Dr, 8), uint64_t{'y'});
  // An 8-byte DR write transmits once.
  Wr(kPl011Dr, 0x4141414141414141, 8);
  EXPECT_EQ(out_.Take(), "A");
}

TEST_F(Pl011Test, ReservedOffsetsReadZeroAndIgnoreWrites) {
  for (uint64_t off : {0x008u, 0x00cu, 0x014u, 0x01cu, 0x04cu, 0x080u,
                       0x800u, 0xfdcu}) {
    Wr(off, 0xffffffff);
    EXPECT_EQ(Rd(off), 0u) << std::hex << off;
  }
  EXPECT_EQ(out_.contents(), "");
  EXPECT_EQ(Rd(kPl011Cr), 0x300u);
}

TEST_F(Pl011Test, WithoutBackendOrIrq) {
  Pl011 bare(nullptr, nullptr);
  EXPECT_EQ(bare.name(), "pl011");
  bare.Write({}, kPl011Imsc, 4, kPl011IntAll);
  bare.Write({}, kPl011Cr, 4, kPl011CrUarten | kPl011CrTxe);
  bare.Write({}, kPl011Dr, 4, 'x');
  EXPECT_EQ(bare.Read({}, kPl011Mis, 4), kPl011IntTx);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// Snapshots: a second PL011 loaded with the first's state reads back the
// same registers and the queued input, and a short state is an error.
TEST_F(Pl011Test, SaveAndLoadState) {
  Wr(kPl011Ibrd, 0x27);
  Wr(kPl011LcrH, 0x70);
  Wr(kPl011Imsc, kPl011IntRx | kPl011IntRt);
  ASSERT_EQ(Push("abc"), 3u);
  StateWriter w;
  ASSERT_TRUE(uart_->SaveState(w));

  RecordingIrq irq2;
  auto uart2 = std::make_shared<Pl011>(nullptr, &irq2, "uart0");
  Bus bus2(BusKind::kMmio);
  ASSERT_TRUE(bus2.Register(kBase, kPl011Size, uart2));
  StateReader r(w.data(), "device uart0");
  ASSERT_TRUE(uart2->LoadState(r));
  auto rd = [&](uint64_t off) { return *bus2.Read({}, kBase + off, 4); };
  EXPECT_EQ(rd(kPl011Ibrd), 0x27u);
  EXPECT_EQ(rd(kPl011LcrH), 0x70u);
  EXPECT_EQ(rd(kPl011Imsc), uint64_t{kPl011IntRx | kPl011IntRt});
  EXPECT_EQ(rd(kPl011Mis), Rd(kPl011Mis));
  EXPECT_EQ(rd(kPl011Dr), uint64_t{'a'});
  EXPECT_EQ(rd(kPl011Dr), uint64_t{'b'});
  EXPECT_EQ(rd(kPl011Dr), uint64_t{'c'});
  EXPECT_NE(rd(kPl011Fr) & kPl011FrRxfe, 0u);

  std::vector<uint8_t> cut(w.data().begin(), w.data().end() - 2);
  StateReader short_state(cut, "device uart0");
  Status s = uart2->LoadState(short_state);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("device uart0: truncated"),
            std::string::npos)
      << s.error().message();
}

}  // namespace
}  // namespace strata
