// strata — ARM PrimeCell UART (PL011), revision r1p5 (ARM DDI 0183G, the
// PL011 Technical Reference Manual: §3.2 "Summary of registers", §3.3
// "Register descriptions", §2.8 "Interrupts").
//
// Emulated: the register file of the table below, the combined interrupt
// output UARTINTR (the OR of UARTMIS; one level-triggered line, e.g. a GIC
// SPI), the receive FIFO trigger levels of UARTIFLS with UARTLCR_H.FEN, the
// receive timeout interrupt, loopback (UARTCR.LBE: transmitted bytes are
// received, not sent), and the PrimeCell identification registers that
// Linux's AMBA bus reads to bind the amba-pl011 driver.
//
// Simplifications, invisible to drivers that follow the TRM (Linux's
// amba-pl011 and its earlycon, kvm-unit-tests, U-Boot, EDK2):
//  - Transmission is instantaneous: the transmit FIFO is always empty, so
//    UARTFR reads TXFE=1, TXFF=0, BUSY=0. The transmit interrupt (TXRIS) is
//    latched when the transmitter is enabled (UARTEN and TXE become set) and
//    on every UARTDR write — the FIFO has passed back below its trigger
//    level — and cleared only through UARTICR. So once enabled it stays
//    raised, which Linux's driver relies on when it unmasks TXIM to send.
//  - Receive data sits in one host-side queue of kInputQueueCapacity bytes
//    that stands for the 32-entry FIFO (1 entry with FEN clear): RXFF is set
//    when it holds the FIFO's depth or more, RXRIS when it reaches the
//    UARTIFLS trigger level (1 with FEN clear) and until reads take it
//    below, RTRIS as soon as data arrives (a host burst has always been
//    followed by 32 idle bit periods from the guest's view) and until the
//    queue is empty. Both are cleared by UARTICR too; like the hardware,
//    they latch again only on the next transition. Changing FEN does not
//    flush the queue (QEMU flushes its 16 bytes; the TRM does not ask for
//    it, and our queue also holds what would wait on the host side).
//  - UARTEN, TXE and RXE are stored but do not gate the data paths: early
//    consoles (Linux's earlycon, kvm-unit-tests) write UARTDR without
//    enabling the UART, relying on firmware, and QEMU's model accepts
//    that too.
//  - Baud rate, word format, break, IrDA and DMA (UARTDMACR) are stored
//    and read back but have no effect. No framing, parity or break errors
//    occur: UARTDR reads bits 8-11 as 0. Overrun is reported (UARTRSR.OE,
//    OERIS) only when host input overflows the queue.
//  - The modem inputs are not connected: CTS, DSR, DCD and RI read 0 in
//    UARTFR and their interrupts never latch (as QEMU outside loopback).
//
// Accesses: the register file is 32 bits wide at word offsets and every
// register fits in bits 15:0. An access of 1, 2 or 4 bytes is applied to the
// word register that contains it: a read performs that register's read
// (with its side effects — a byte read of UARTDR pops a byte) and returns
// the bytes the access covers; a write writes the register with the access's
// bytes in their lanes and zeros elsewhere. So byte and halfword accesses at
// the register's offset (what earlycon's writeb and Linux's readw/writew
// do) act on the whole register. An 8-byte access or one that straddles a
// word boundary touches each register it covers once, in address order.
// Reserved offsets read as zero and ignore writes.
//
// Transmitted bytes go to the CharBackend under the device's lock, so the
// bytes of several vCPUs keep the order of their UARTDR writes; backends
// never block (char_backend.h). Host input arrives through CharInput.
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

// The device's MMIO region: one 4 KiB page.
inline constexpr uint64_t kPl011Size = 0x1000;

// Register offsets (TRM Table 3-1).
inline constexpr uint64_t kPl011Dr = 0x000;
inline constexpr uint64_t kPl011Rsr = 0x004;  // RSR (read) / ECR (write)
inline constexpr uint64_t kPl011Fr = 0x018;
inline constexpr uint64_t kPl011Ilpr = 0x020;
inline constexpr uint64_t kPl011Ibrd = 0x024;
inline constexpr uint64_t kPl011Fbrd = 0x028;
inline constexpr uint64_t kPl011LcrH = 0x02c;
inline constexpr uint64_t kPl011Cr = 0x030;
inline constexpr uint64_t kPl011Ifls = 0x034;
inline constexpr uint64_t kPl011Imsc = 0x038;
inline constexpr uint64_t kPl011Ris = 0x03c;
inline constexpr uint64_t kPl011Mis = 0x040;
inline constexpr uint64_t kPl011Icr = 0x044;
inline constexpr uint64_t kPl011Dmacr = 0x048;
inline constexpr uint64_t kPl011PeriphId0 = 0xfe0;  // ... PeriphID3 0xfec
inline constexpr uint64_t kPl011PCellId0 = 0xff0;   // ... PCellID3 0xffc

// UARTFR bits (TRM §3.3.3).
inline constexpr uint32_t kPl011FrCts = 1u << 0;
inline constexpr uint32_t kPl011FrDsr = 1u << 1;
inline constexpr uint32_t kPl011FrDcd = 1u << 2;
inline constexpr uint32_t kPl011FrBusy = 1u << 3;
inline constexpr uint32_t kPl011FrRxfe = 1u << 4;
inline constexpr uint32_t kPl011FrTxff = 1u << 5;
inline constexpr uint32_t kPl011FrRxff = 1u << 6;
inline constexpr uint32_t kPl011FrTxfe = 1u << 7;
inline constexpr uint32_t kPl011FrRi = 1u << 8;

// UARTRSR/UARTECR bits (TRM §3.3.2).
inline constexpr uint32_t kPl011RsrFe = 1u << 0;
inline constexpr uint32_t kPl011RsrPe = 1u << 1;
inline constexpr uint32_t kPl011RsrBe = 1u << 2;
inline constexpr uint32_t kPl011RsrOe = 1u << 3;

// UARTLCR_H bits (TRM §3.3.7).
inline constexpr uint32_t kPl011LcrHBrk = 1u << 0;
inline constexpr uint32_t kPl011LcrHFen = 1u << 4;

// UARTCR bits (TRM §3.3.8).
inline constexpr uint32_t kPl011CrUarten = 1u << 0;
inline constexpr uint32_t kPl011CrLbe = 1u << 7;
inline constexpr uint32_t kPl011CrTxe = 1u << 8;
inline constexpr uint32_t kPl011CrRxe = 1u << 9;

// UARTIFLS fields (TRM §3.3.9): TX trigger in bits 2:0, RX in 5:3.
inline constexpr uint32_t kPl011IflsRxShift = 3;

// Interrupt bits of UARTIMSC, UARTRIS, UARTMIS and UARTICR (TRM §3.3.10).
inline constexpr uint32_t kPl011IntRi = 1u << 0;
inline constexpr uint32_t kPl011IntCts = 1u << 1;
inline constexpr uint32_t kPl011IntDcd = 1u << 2;
inline constexpr uint32_t kPl011IntDsr = 1u << 3;
inline constexpr uint32_t kPl011IntRx = 1u << 4;
inline constexpr uint32_t kPl011IntTx = 1u << 5;
inline constexpr uint32_t kPl011IntRt = 1u << 6;
inline constexpr uint32_t kPl011IntFe = 1u << 7;
inline constexpr uint32_t kPl011IntPe = 1u << 8;
inline constexpr uint32_t kPl011IntBe = 1u << 9;
inline constexpr uint32_t kPl011IntOe = 1u << 10;
inline constexpr uint32_t kPl011IntAll = 0x7ff;

// FIFO depth with FEN set (r1p5: 32 entries; 1 with FEN clear).
inline constexpr uint32_t kPl011FifoDepth = 32;

enum class Pl011Access : uint8_t {
  kReadWrite,
  kReadOnly,   // writes ignored
  kWriteOnly,  // reads as 0
};

// One row of the register file. Behaviour beyond storage is noted; the
// device's Read/Write implement it.
struct Pl011Register {
  uint64_t offset;
  std::string_view name;
  uint32_t reset;       // value read after reset, with no input queued
  uint32_t write_mask;  // bits a write stores or acts on
  Pl011Access access;
};

// TRM Table 3-1 with the r1p5 identification values (TRM §3.3.14-3.3.21;
// QEMU's "pl011" gives the same).
inline constexpr Pl011Register kPl011Registers[] = {
    // Write: transmits bits 7:0. Read: pops a received byte (bits 8-11,
    // the byte's error flags, read 0); 0 when empty.
    {kPl011Dr, "UARTDR", 0x000, 0x0ff, Pl011Access::kReadWrite},
    // Read: error status. Write (UARTECR): any value clears it.
    {kPl011Rsr, "UARTRSR/ECR", 0x000, 0x000, Pl011Access::kReadWrite},
    // Flags, computed: TXFE | RXFE at reset.
    {kPl011Fr, "UARTFR", 0x090, 0x000, Pl011Access::kReadOnly},
    {kPl011Ilpr, "UARTILPR", 0x000, 0x0ff, Pl011Access::kReadWrite},
    {kPl011Ibrd, "UARTIBRD", 0x000, 0xffff, Pl011Access::kReadWrite},
    {kPl011Fbrd, "UARTFBRD", 0x000, 0x03f, Pl011Access::kReadWrite},
    // FEN selects the FIFO depth and the RX trigger level.
    {kPl011LcrH, "UARTLCR_H", 0x000, 0x0ff, Pl011Access::kReadWrite},
    // Bits 6:3 are reserved. TXE and RXE set at reset, UARTEN clear.
    {kPl011Cr, "UARTCR", 0x300, 0xff87, Pl011Access::kReadWrite},
    // Trigger levels: 1/2 full for both at reset.
    {kPl011Ifls, "UARTIFLS", 0x012, 0x03f, Pl011Access::kReadWrite},
    {kPl011Imsc, "UARTIMSC", 0x000, kPl011IntAll, Pl011Access::kReadWrite},
    {kPl011Ris, "UARTRIS", 0x000, 0x000, Pl011Access::kReadOnly},
    {kPl011Mis, "UARTMIS", 0x000, 0x000, Pl011Access::kReadOnly},
    // Write 1s: clears those latched interrupts.
    {kPl011Icr, "UARTICR", 0x000, kPl011IntAll, Pl011Access::kWriteOnly},
    {kPl011Dmacr, "UARTDMACR", 0x000, 0x007, Pl011Access::kReadWrite},
    {0xfe0, "UARTPeriphID0", 0x11, 0, Pl011Access::kReadOnly},  // part 0x011
    {0xfe4, "UARTPeriphID1", 0x10, 0, Pl011Access::kReadOnly},  // designer ARM
    {0xfe8, "UARTPeriphID2", 0x14, 0, Pl011Access::kReadOnly},  // revision r1p5
    {0xfec, "UARTPeriphID3", 0x00, 0, Pl011Access::kReadOnly},
    {0xff0, "UARTPCellID0", 0x0d, 0, Pl011Access::kReadOnly},
    {0xff4, "UARTPCellID1", 0xf0, 0, Pl011Access::kReadOnly},
    {0xff8, "UARTPCellID2", 0x05, 0, Pl011Access::kReadOnly},
    {0xffc, "UARTPCellID3", 0xb1, 0, Pl011Access::kReadOnly},
};

// The row for a word offset, or null for a reserved one.
const Pl011Register* FindPl011Register(uint64_t offset);

class Pl011 : public IoDevice, public CharInput, public Snapshottable {
 public:
  // Receive bytes held for the guest before further input overruns.
  static constexpr size_t kInputQueueCapacity = 4096;

  // backend receives transmitted bytes (null: discarded); irq is driven
  // with UARTINTR (null: none). Both must outlive the device.
  Pl011(CharBackend* backend, IrqLine* irq, std::string name = "pl011");

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return name_; }

  // Queues host input for the guest to read from UARTDR. Returns how many
  // bytes were taken: bytes beyond the queue's capacity are dropped and
  // flagged as an overrun. In loopback mode external input is discarded
  // (the TRM disconnects UARTRXD) but reported as taken.
  size_t PushInput(std::span<const uint8_t> data) override;
  // Bytes PushInput can take now without overrun.
  size_t InputRoom() const override;

  // Snapshots: the register file, the receive queue and the interrupt
  // line's level (the interrupt controller's copy of it is restored with
  // the controller, so a load does not drive the line).
  Status SaveState(StateWriter& out) override;
  Status LoadState(StateReader& in) override;

 private:
  uint32_t ReadRegister(uint64_t offset);               // mu_ held
  void WriteRegister(uint64_t offset, uint32_t value);  // mu_ held
  uint32_t Flags() const;                               // mu_ held
  size_t RxTrigger() const;                             // mu_ held
  // Re-derives RXRIS after the queue or the trigger level changed from
  // `before` bytes / `old_trigger`.
  void UpdateRx(size_t before, size_t old_trigger);     // mu_ held
  void ReceiveByte(uint8_t byte);                       // mu_ held
  void UpdateIrq();                                     // mu_ held

  CharBackend* const backend_;
  IrqLine* const irq_;
  const std::string name_;

  mutable std::mutex mu_;
  // All below guarded by mu_.
  std::deque<uint8_t> rx_;
  uint32_t rsr_ = 0;
  uint32_t ilpr_ = 0;
  uint32_t ibrd_ = 0;
  uint32_t fbrd_ = 0;
  uint32_t lcr_h_ = 0;
  uint32_t cr_ = 0x300;
  uint32_t ifls_ = 0x012;
  uint32_t imsc_ = 0;
  uint32_t ris_ = 0;  // latched raw interrupt status
  uint32_t dmacr_ = 0;
  bool irq_level_ = false;  // last level given to irq_
};

}  // namespace strata
