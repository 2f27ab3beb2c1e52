// strata — NS16550A UART (National PC16550D datasheet §8 "Registers"; the
// interrupt priorities and reset conditions are its "Interrupt Control
// Functions" table).
//
// Emulated: RBR/THR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR and the DLL/DLM
// divisor latch behind LCR.DLAB; the four interrupt sources with the
// datasheet's priority (receiver line status > received data / character
// timeout > THR empty > modem status); FIFO-enabled IIR bits; loopback
// (MCR.LOOP) routing TX to RX and MCR outputs to MSR inputs.
//
// Simplifications, all invisible to a driver that follows the datasheet:
//  - Transmission is instantaneous: THR is never observed full, so LSR.THRE
//    and LSR.TEMT read 1 and a THR write re-raises the THRE interrupt at
//    once (clear-then-set, so the IRQ line pulses and an edge-triggered
//    controller sees a new edge).
//  - Receive data sits in one host-side queue of kInputQueueCapacity bytes
//    rather than a 16-byte FIFO: the guest reads it a byte at a time through
//    RBR in either mode, and LSR.OE is set only when that queue overflows.
//    Below the FCR trigger level the "character timeout" interrupt (IIR
//    0x0C) is reported immediately, since host input arrives in bursts and
//    four character times have always elapsed from the guest's view.
//  - Baud rate, word length, parity and stop bits are stored and read back
//    but have no effect; parity/framing errors and break never occur.
//  - The IRQ is not gated by MCR.OUT2 (that gate is PC board logic, not the
//    chip, and QEMU and bhyve omit it too).
//  - Outside loopback the modem inputs read as DCD, DSR and CTS asserted so
//    guests waiting for carrier or using CTS flow control proceed. In
//    loopback, external input is discarded (the datasheet disconnects SIN).
//
// The device is byte-wide; a wider access is split into byte accesses at
// consecutive offsets. The platform registers it at 0x3f8 (COM1) with
// length kUart16550RegisterCount.
//
// Transmitted bytes go to the CharBackend under the device's lock (so the
// bytes of several vCPUs keep the order of their THR writes); backends never
// block (char_backend.h), so a stalled console never holds the lock. Host
// input arrives through the CharInput interface, from the backend's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "core/bus.h"
#include "core/snapshot.h"
#include "devices/char_backend.h"
#include "devices/irq.h"

namespace strata {

// Register offsets (PC16550D "Summary of Registers" table).
inline constexpr uint64_t kUartRbrThr = 0;  // RBR (read) / THR (write); DLL
inline constexpr uint64_t kUartIer = 1;     // interrupt enable; DLM
inline constexpr uint64_t kUartIirFcr = 2;  // IIR (read) / FCR (write)
inline constexpr uint64_t kUartLcr = 3;
inline constexpr uint64_t kUartMcr = 4;
inline constexpr uint64_t kUartLsr = 5;
inline constexpr uint64_t kUartMsr = 6;
inline constexpr uint64_t kUartScr = 7;
inline constexpr uint64_t kUart16550RegisterCount = 8;

// IER bits.
inline constexpr uint8_t kUartIerRda = 0x01;   // received data available
inline constexpr uint8_t kUartIerThre = 0x02;  // THR empty
inline constexpr uint8_t kUartIerRls = 0x04;   // receiver line status
inline constexpr uint8_t kUartIerMsi = 0x08;   // modem status
inline constexpr uint8_t kUartIerMask = 0x0f;  // bits 4-7 read as 0

// IIR values (bit 0 clear = interrupt pending) and the FIFO-enabled bits.
inline constexpr uint8_t kUartIirNone = 0x01;
inline constexpr uint8_t kUartIirMsi = 0x00;
inline constexpr uint8_t kUartIirThre = 0x02;
inline constexpr uint8_t kUartIirRda = 0x04;
inline constexpr uint8_t kUartIirRls = 0x06;
inline constexpr uint8_t kUartIirTimeout = 0x0c;
inline constexpr uint8_t kUartIirFifoEnabled = 0xc0;

// FCR bits.
inline constexpr uint8_t kUartFcrEnable = 0x01;
inline constexpr uint8_t kUartFcrRxReset = 0x02;
inline constexpr uint8_t kUartFcrTxReset = 0x04;
inline constexpr uint8_t kUartFcrTriggerShift = 6;

// LCR bits.
inline constexpr uint8_t kUartLcrDlab = 0x80;

// MCR bits.
inline constexpr uint8_t kUartMcrDtr = 0x01;
inline constexpr uint8_t kUartMcrRts = 0x02;
inline constexpr uint8_t kUartMcrOut1 = 0x04;
inline constexpr uint8_t kUartMcrOut2 = 0x08;
inline constexpr uint8_t kUartMcrLoop = 0x10;
inline constexpr uint8_t kUartMcrMask = 0x1f;  // bits 5-7 read as 0

// LSR bits.
inline constexpr uint8_t kUartLsrDr = 0x01;
inline constexpr uint8_t kUartLsrOe = 0x02;
inline constexpr uint8_t kUartLsrPe = 0x04;
inline constexpr uint8_t kUartLsrFe = 0x08;
inline constexpr uint8_t kUartLsrBi = 0x10;
inline constexpr uint8_t kUartLsrThre = 0x20;
inline constexpr uint8_t kUartLsrTemt = 0x40;
inline constexpr uint8_t kUartLsrErrorBits =
    kUartLsrOe | kUartLsrPe | kUartLsrFe | kUartLsrBi;

// MSR bits: deltas in 0-3, line states in 4-7.
inline constexpr uint8_t kUartMsrDcts = 0x01;
inline constexpr uint8_t kUartMsrDdsr = 0x02;
inline constexpr uint8_t kUartMsrTeri = 0x04;
inline constexpr uint8_t kUartMsrDdcd = 0x08;
inline constexpr uint8_t kUartMsrDeltaMask = 0x0f;
inline constexpr uint8_t kUartMsrCts = 0x10;
inline constexpr uint8_t kUartMsrDsr = 0x20;
inline constexpr uint8_t kUartMsrRi = 0x40;
inline constexpr uint8_t kUartMsrDcd = 0x80;

class Uart16550 : public IoDevice, public CharInput, public Snapshottable {
 public:
  // Receive bytes held for the guest before further input overruns.
  static constexpr size_t kInputQueueCapacity = 4096;

  // backend receives transmitted bytes (null: discarded); irq is driven
  // with the interrupt output (null: none). Both must outlive the device.
  Uart16550(CharBackend* backend, IrqLine* irq,
            std::string name = "uart_16550");

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return name_; }

  // Queues host input for the guest to read from RBR. Returns how many bytes
  // were taken: bytes beyond the queue's capacity are dropped and flagged
  // with LSR.OE (check InputRoom() first to avoid that). In loopback mode
  // external input is discarded but reported as taken.
  size_t PushInput(std::span<const uint8_t> data) override;
  // Bytes PushInput can take now without overrun.
  size_t InputRoom() const override;

  // Snapshots: the registers, the receive queue, the latched THRE
  // interrupt and the line's level (restored with the interrupt
  // controller, so a load does not drive it).
  Status SaveState(StateWriter& out) override;
  Status LoadState(StateReader& in) override;

 private:
  uint8_t ReadRegister(uint64_t offset);               // mu_ held
  void WriteRegister(uint64_t offset, uint8_t value);  // mu_ held
  uint8_t PendingInterrupt() const;                    // mu_ held; IIR id
  void UpdateIrq();                                    // mu_ held
  void Transmit(uint8_t byte);                         // mu_ held
  void ReceiveByte(uint8_t byte);                      // mu_ held
  void SetMcr(uint8_t mcr);                            // mu_ held

  CharBackend* const backend_;
  IrqLine* const irq_;
  const std::string name_;

  mutable std::mutex mu_;
  // All below guarded by mu_.
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t msr_ = 0;
  uint8_t scr_ = 0;
  // Divisor 12 = 9600 baud from the 1.8432 MHz clock (QEMU's reset value;
  // the datasheet leaves the latch undefined at reset).
  uint8_t dll_ = 0x0c;
  uint8_t dlm_ = 0;
  uint8_t lsr_errors_ = 0;     // sticky OE until LSR is read
  bool fifo_enabled_ = false;  // FCR bit 0
  size_t rx_trigger_ = 1;      // FCR bits 6-7 as a byte count
  bool thre_pending_ = false;  // THRE interrupt latched, cleared by IIR read
  bool irq_level_ = false;     // last level given to irq_
};

}  // namespace strata
