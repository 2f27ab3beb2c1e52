#include "devices/uart_16550.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"
#include "devices/char_backend.h"

namespace strata {
namespace {

constexpr uint64_t kCom1 = 0x3f8;

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
  void Clear() {
    std::lock_guard lock(mu_);
    levels_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<bool> levels_;
};

class UartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uart_ = std::make_shared<Uart16550>(&out_, &irq_, "com1");
    ASSERT_TRUE(bus_.Register(kCom1, kUart16550RegisterCount, uart_));
  }
  uint8_t In(uint64_t reg) {
    auto r = bus_.Read({}, kCom1 + reg, 1);
    EXPECT_TRUE(r);
    return r ? static_cast<uint8_t>(*r) : 0;
  }
  void Out(uint64_t reg, uint8_t v) {
    EXPECT_TRUE(bus_.Write({}, kCom1 + reg, 1, v));
  }
  void Push(std::string_view s) {
    uart_->PushInput(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }

  Bus bus_{BusKind::kPio};
  BufferBackend out_;
  RecordingIrq irq_;
  std::shared_ptr<Uart16550> uart_;
};

TEST_F(UartTest, ResetState) {
  EXPECT_EQ(In(kUartIer), 0x00);
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
  EXPECT_EQ(In(kUartLcr), 0x00);
  EXPECT_EQ(In(kUartMcr), 0x00);
  EXPECT_EQ(In(kUartLsr), 0x60);  // THRE | TEMT, no data
  EXPECT_EQ(In(kUartMsr), kUartMsrDcd | kUartMsrDsr | kUartMsrCts);
  EXPECT_TRUE(irq_.levels().empty());
  EXPECT_EQ(uart_->name(), "com1");
}

TEST_F(UartTest, LcrReadsBackAndDlabSelectsDivisor) {
  Out(kUartIer, 0x05);
  Out(kUartLcr, 0x80 | 0x03);  // DLAB, 8N1
  EXPECT_EQ(In(kUartLcr), 0x83);
  EXPECT_EQ(In(kUartRbrThr), 0x0c);  // DLL reset value: 9600 baud
  EXPECT_EQ(In(kUartIer), 0x00);     // DLM
  Out(kUartRbrThr, 0x01);            // 115200 baud
  Out(kUartIer, 0x00);
  EXPECT_EQ(In(kUartRbrThr), 0x01);
  // Writing DLL must not transmit.
  EXPECT_EQ(out_.contents(), "");
  Out(kUartLcr, 0x03);
  EXPECT_EQ(In(kUartLcr), 0x03);
  EXPECT_EQ(In(kUartIer), 0x05);  // IER unchanged behind the latch
  Out(kUartLcr, 0x80);
  EXPECT_EQ(In(kUartRbrThr), 0x01);
  for (int v : {0x00, 0x1b, 0x7f, 0xff}) {
    Out(kUartLcr, static_cast<uint8_t>(v));
    EXPECT_EQ(In(kUartLcr), v);
  }
}

TEST_F(UartTest, IerKeepsLowNibbleAndScratchpad) {
  Out(kUartIer, 0xff);
  EXPECT_EQ(In(kUartIer), 0x0f);
  Out(kUartScr, 0xa5);
  EXPECT_EQ(In(kUartScr), 0xa5);
  Out(kUartMcr, 0xff);
  EXPECT_EQ(In(kUartMcr), 0x1f);
}

TEST_F(UartTest, ThrWritesReachBackend) {
  for (char c : std::string("hi\n")) Out(kUartRbrThr, static_cast<uint8_t>(c));
  EXPECT_EQ(out_.contents(), "hi\n");
  EXPECT_EQ(In(kUartLsr), 0x60);
}

TEST_F(UartTest, InputSetsDataReadyAndReadsInOrder) {
  Push("ab");
  EXPECT_EQ(In(kUartLsr), 0x61);
  EXPECT_EQ(In(kUartRbrThr), 'a');
  EXPECT_EQ(In(kUartLsr), 0x61);
  EXPECT_EQ(In(kUartRbrThr), 'b');
  EXPECT_EQ(In(kUartLsr), 0x60);
  EXPECT_EQ(In(kUartRbrThr), 0);  // empty
}

TEST_F(UartTest, ThreInterruptSequence) {
  // Enabling ETBEI with THR empty raises THRE at once.
  Out(kUartIer, kUartIerThre);
  EXPECT_EQ(irq_.levels(), std::vector<bool>({true}));
  EXPECT_EQ(In(kUartIirFcr), kUartIirThre);
  // Reading IIR acknowledged it.
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);

  // A THR write re-raises it.
  irq_.Clear();
  Out(kUartRbrThr, 'x');
  EXPECT_EQ(irq_.levels(), std::vector<bool>({true}));
  // A second write while pending pulses the line: cleared by the write,
  // set again when the byte leaves.
  irq_.Clear();
  Out(kUartRbrThr, 'y');
  EXPECT_EQ(irq_.levels(), std::vector<bool>({false, true}));
  EXPECT_EQ(In(kUartIirFcr), kUartIirThre);
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
  EXPECT_EQ(out_.contents(), "xy");

  // Disabling the source drops the line.
  irq_.Clear();
  Out(kUartRbrThr, 'z');
  Out(kUartIer, 0);
  EXPECT_EQ(irq_.levels(), std::vector<bool>({true, false}));
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
}

TEST_F(UartTest, FifoEnabledBitsInIir) {
  Out(kUartIirFcr, kUartFcrEnable);
  EXPECT_EQ(In(kUartIirFcr), 0xc1);
  Out(kUartIer, kUartIerThre);
  EXPECT_EQ(In(kUartIirFcr), 0xc2);
  EXPECT_EQ(In(kUartIirFcr), 0xc1);
  Out(kUartIirFcr, 0);
  EXPECT_EQ(In(kUartIirFcr), 0x01);
}

TEST_F(UartTest, ReceivedDataInterrupt) {
  Out(kUartIer, kUartIerRda);
  EXPECT_TRUE(irq_.levels().empty());
  Push("k");
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(In(kUartIirFcr), kUartIirRda);
  EXPECT_EQ(In(kUartIirFcr), kUartIirRda);  // IIR read does not clear RDA
  EXPECT_EQ(In(kUartRbrThr), 'k');
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
}

TEST_F(UartTest, FifoTriggerLevelAndTimeout) {
  Out(kUartIer, kUartIerRda);
  Out(kUartIirFcr, kUartFcrEnable | (3 << kUartFcrTriggerShift));  // 14
  Push("abc");
  EXPECT_EQ(In(kUartIirFcr), 0xc0 | kUartIirTimeout);
  Push("defghijklmn");  // 14 bytes now
  EXPECT_EQ(In(kUartIirFcr), 0xc0 | kUartIirRda);
  // RX FIFO reset discards input.
  Out(kUartIirFcr, kUartFcrEnable | kUartFcrRxReset);
  EXPECT_EQ(In(kUartLsr), 0x60);
  EXPECT_EQ(In(kUartIirFcr), 0xc1);
  EXPECT_FALSE(irq_.level());
}

TEST_F(UartTest, InterruptPriority) {
  Out(kUartIer, kUartIerRda | kUartIerThre | kUartIerRls | kUartIerMsi);
  // THRE is pending; loopback toggling makes modem-status deltas too.
  Out(kUartMcr, kUartMcrLoop | kUartMcrRts);
  EXPECT_EQ(In(kUartIirFcr), kUartIirThre);  // THRE beats MSR
  EXPECT_EQ(In(kUartIirFcr), kUartIirMsi);
  // Received data beats modem status.
  Out(kUartRbrThr, 'L');  // looped back; also re-raises THRE
  EXPECT_EQ(In(kUartIirFcr), kUartIirRda);
  EXPECT_EQ(In(kUartRbrThr), 'L');
  EXPECT_EQ(In(kUartIirFcr), kUartIirThre);
  // RTS loops to CTS (unchanged); DSR and DCD fell.
  EXPECT_EQ(In(kUartMsr) & kUartMsrDeltaMask, kUartMsrDdsr | kUartMsrDdcd);
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
  EXPECT_FALSE(irq_.level());
}

TEST_F(UartTest, OverrunRaisesLineStatusInterrupt) {
  Out(kUartIer, kUartIerRls | kUartIerRda);
  std::vector<uint8_t> lots(Uart16550::kInputQueueCapacity + 10, 'x');
  EXPECT_EQ(uart_->InputRoom(), Uart16550::kInputQueueCapacity);
  EXPECT_EQ(uart_->PushInput(lots), Uart16550::kInputQueueCapacity);
  EXPECT_EQ(uart_->InputRoom(), 0u);
  EXPECT_EQ(In(kUartIirFcr), kUartIirRls);  // beats received data
  EXPECT_EQ(In(kUartLsr), 0x60 | kUartLsrOe | kUartLsrDr);
  EXPECT_EQ(In(kUartLsr), 0x60 | kUartLsrDr);  // OE cleared by the read
  EXPECT_EQ(In(kUartIirFcr), kUartIirRda);
  EXPECT_EQ(In(kUartRbrThr), 'x');
  EXPECT_EQ(uart_->InputRoom(), 1u);
}

TEST_F(UartTest, LoopbackRoutesTxToRx) {
  Out(kUartMcr, kUartMcrLoop);
  Out(kUartRbrThr, 'Q');
  EXPECT_EQ(out_.contents(), "");  // nothing leaves the chip
  EXPECT_EQ(In(kUartLsr), 0x61);
  EXPECT_EQ(In(kUartRbrThr), 'Q');
  EXPECT_EQ(In(kUartLsr), 0x60);
  // External input is disconnected in loopback.
  Push("ext");
  EXPECT_EQ(In(kUartLsr), 0x60);
  // Leaving loopback transmits normally again.
  Out(kUartMcr, 0);
  Out(kUartRbrThr, 'R');
  EXPECT_EQ(out_.contents(), "R");
}

TEST_F(UartTest, LoopbackModemLines) {
  (void)In(kUartMsr);
  Out(kUartMcr, kUartMcrLoop);
  // All four inputs follow the (clear) outputs: DCD, DSR, CTS fell.
  EXPECT_EQ(In(kUartMsr), kUartMsrDcts | kUartMsrDdsr | kUartMsrDdcd);
  Out(kUartMcr, kUartMcrLoop | kUartMcrDtr | kUartMcrRts | kUartMcrOut1 |
                    kUartMcrOut2);
  EXPECT_EQ(In(kUartMsr), 0xf0 | kUartMsrDcts | kUartMsrDdsr | kUartMsrDdcd);
  EXPECT_EQ(In(kUartMsr), 0xf0);  // deltas cleared by the read
  // RI falling sets TERI; RI rising does not.
  Out(kUartMcr, kUartMcrLoop | kUartMcrDtr | kUartMcrRts | kUartMcrOut2);
  EXPECT_EQ(In(kUartMsr), 0xb0 | kUartMsrTeri);
  Out(kUartMcr, kUartMcrLoop | kUartMcrDtr | kUartMcrRts | kUartMcrOut1 |
                    kUartMcrOut2);
  EXPECT_EQ(In(kUartMsr), 0xf0);
}

TEST_F(UartTest, ModemStatusInterrupt) {
  Out(kUartIer, kUartIerMsi);
  Out(kUartMcr, kUartMcrLoop);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(In(kUartIirFcr), kUartIirMsi);
  (void)In(kUartMsr);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(In(kUartIirFcr), kUartIirNone);
}

TEST_F(UartTest, WideAccessesAreSplitIntoBytes) {
  Out(kUartLcr, 0x03);
  Out(kUartMcr, 0x0b);
  // A 2-byte read at LCR returns LCR and MCR.
  auto r = bus_.Read({}, kCom1 + kUartLcr, 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0x0b03u);
  // A 4-byte write at offset 4 sets MCR, ignores LSR/MSR, sets SCR.
  ASSERT_TRUE(bus_.Write({}, kCom1 + kUartMcr, 4, 0x5a00ff01));
  EXPECT_EQ(In(kUartMcr), 0x01);
  EXPECT_EQ(In(kUartScr), 0x5a);
}

TEST(UartNoBackendTest, NullBackendAndIrqAreAllowed) {
  Bus bus(BusKind::kPio);
  auto uart = std::make_shared<Uart16550>(nullptr, nullptr);
  ASSERT_TRUE(bus.Register(kCom1, kUart16550RegisterCount, uart));
  EXPECT_TRUE(bus.Write({}, kCom1 + kUartIer, 1, 0x0f));
  EXPECT_TRUE(bus.Write({}, kCom1, 1, 'x'));
  EXPECT_EQ(*bus.Read({}, kCom1 + kUartIirFcr, 1), kUartIirThre);
  EXPECT_EQ(uart->name(), "uart_16550");
}

// Input from a host thread while a vCPU thread drains the port (for TSan).
TEST_F(UartTest, ConcurrentInputAndGuestReads) {
  constexpr int kBytes = 20000;
  std::thread host([&] {
    int sent = 0;
    while (sent < kBytes) {
      uint8_t b = static_cast<uint8_t>(sent & 0x7f);
      if (uart_->InputRoom() > 0 &&
          uart_->PushInput(std::span<const uint8_t>(&b, 1)) == 1) {
        ++sent;
      } else {
        std::this_thread::yield();
      }
    }
  });
  int received = 0;
  bool in_order = true;
  while (received < kBytes) {
    if (In(kUartLsr) & kUartLsrDr) {
      if (In(kUartRbrThr) != (received & 0x7f)) in_order = false;
      ++received;
    }
  }
  host.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(In(kUartLsr), 0x60);
}

// A console nobody reads never blocks the vCPU that transmits, nor another
// vCPU that wants the UART's lock meanwhile: the transmitting side returns
// promptly write after write, and LSR reads from a second thread keep being
// answered. (With a console that blocked on a full pipe the first thread
// would stop inside THR with the lock held, and the second with it.)
TEST(UartStalledConsoleTest, TransmitNeverBlocksOnAPipeNobodyReads) {
  using Clock = std::chrono::steady_clock;
  using namespace std::chrono_literals;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  StdioBackend::Options o;
  o.out_fd = p[1];
  o.in_fd = -1;
  o.drain_timeout = 100ms;
  StdioBackend console(o);
  ASSERT_TRUE(console.Start());
  Bus bus(BusKind::kPio);
  auto uart = std::make_shared<Uart16550>(&console, nullptr, "com1");
  ASSERT_TRUE(bus.Register(kCom1, kUart16550RegisterCount, uart));

  // 512 KiB: eight times what the pipe and the console buffer hold.
  constexpr int kBytes = 512 << 10;
  std::atomic<bool> tx_done{false};
  auto tx = std::async(std::launch::async, [&] {
    Clock::duration slowest{};
    for (int i = 0; i < kBytes; ++i) {
      const auto t0 = Clock::now();
      (void)bus.Write({}, kCom1 + kUartRbrThr, 1, 'a' + i % 26);
      slowest = std::max(slowest, Clock::now() - t0);
    }
    tx_done = true;
    return slowest;
  });
  auto lsr = std::async(std::launch::async, [&] {
    Clock::duration slowest{};
    int reads = 0;
    while (!tx_done || reads < 1000) {
      const auto t0 = Clock::now();
      auto v = bus.Read({}, kCom1 + kUartLsr, 1);
      slowest = std::max(slowest, Clock::now() - t0);
      EXPECT_TRUE(v && (*v & kUartLsrThre));
      ++reads;
    }
    return slowest;
  });
  const bool finished = tx.wait_for(60s) == std::future_status::ready;
  EXPECT_TRUE(finished) << "a THR write blocked on the stalled console";
  if (!finished) close(p[0]);  // unblock it (EPIPE) so the test can end
  const auto tx_slowest = tx.get();
  const auto lsr_slowest = lsr.get();
  EXPECT_LT(tx_slowest, 500ms);
  EXPECT_LT(lsr_slowest, 500ms);
  console.Stop();
  const auto st = console.stats();
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(st.written + st.dropped, uint64_t{kBytes});
  if (finished) close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// kvmtool's arm64 layout: the same device on the MMIO bus at 0x1000000,
// one byte per register.
TEST(Uart16550Mmio, WorksAtAnMmioBaseWithStrideOne) {
  constexpr uint64_t kBase = 0x01000000;
  Bus bus{BusKind::kMmio};
  BufferBackend out;
  auto uart = std::make_shared<Uart16550>(&out, nullptr, "ttyS0");
  ASSERT_TRUE(bus.Register(kBase, kUart16550RegisterCount, uart));
  ASSERT_TRUE(bus.Write({}, kBase + kUartRbrThr, 1, 'k'));
  EXPECT_EQ(out.contents(), "k");
  EXPECT_EQ(*bus.Read({}, kBase + kUartLsr, 1), 0x60u);
  ASSERT_TRUE(bus.Write({}, kBase + kUartScr, 1, 0x5a));
  EXPECT_EQ(*bus.Read({}, kBase + kUartScr, 1), 0x5au);
  const uint8_t in[] = {'z'};
  EXPECT_EQ(uart->PushInput(in), 1u);
  EXPECT_EQ(*bus.Read({}, kBase + kUartLsr, 1) & kUartLsrDr, kUartLsrDr);
  EXPECT_EQ(*bus.Read({}, kBase + kUartRbrThr, 1), uint64_t{'z'});
  // Past the eighth register is not the UART's.
  auto past = bus.Read({}, kBase + kUart16550RegisterCount, 1);
  ASSERT_TRUE(past);
  EXPECT_EQ(*past, 0u);
}

}  // namespace
}  // namespace strata
