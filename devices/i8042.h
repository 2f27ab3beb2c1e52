// strata — Intel 8042 keyboard controller as on a PC/AT, with nothing
// attached to its keyboard or auxiliary port (IBM PC/AT Technical Reference
// "Keyboard Controller"; the command set as in the PS/2 Hardware Interface
// Technical Reference and QEMU's hw/input/pckbd.c). What it is here for:
// the reset line (the PC's classic reset through 0x64), and a controller
// that answers the probes of firmware and kernels honestly.
//
// Two ports: data at the platform's data port (0x60 on the pc) and
// status (read) / command (write) at another (0x64); each is a one-byte
// IoDevice (DataPort(), CommandPort()) so the platform registers them
// separately and 0x61-0x63 stay free.
//
// Emulated: the status register (OBF, IBF — always clear: commands finish
// at once —, SYS, CMD/DATA, the keyboard-inhibit switch reading "not
// inhibited", the general time-out); a one-byte output buffer; the
// controller RAM (command byte at byte 0: 0x20-0x3f read, 0x60-0x7f
// write); 0xa7/0xa8 disable/enable the auxiliary interface (command byte
// bit 5), 0xaa self-test (0x55; sets SYS), 0xab keyboard interface test
// (0x00), 0xad/0xae disable/enable the keyboard (command byte bit 4),
// 0xd0/0xd1 read/write the output port (bit 0 = 0 asserts reset; A20 in
// bit 1 is stored but has no effect: guest memory has no A20 gate), 0xd2
// (write the keyboard output buffer: the byte reads back as keyboard data),
// 0xf0-0xff (pulse output-port bits 0-3 low where the command's bits are
// 0; bit 0 pulsed resets). The keyboard interrupt (IRQ 1) is asserted while
// the output buffer holds a byte and command byte bit 0 enables it.
//
// The controller's own auxiliary-port functions work as on an 8042 with a
// PS/2 port: 0xa9 (auxiliary interface test: 0x00, no error), 0xd3 (the
// parameter comes back as auxiliary data: a loopback inside the controller),
// 0xd4 (send the parameter to the auxiliary device). Auxiliary data sets
// the status register's AUX_OBF and raises the auxiliary interrupt (IRQ
// 12) when command byte bit 1 enables it.
//
// Nothing is attached to either port: a byte sent to the keyboard (a data
// write that is not a command's parameter) or to the auxiliary device
// (after 0xd4) is answered as a controller answers a device that does not
// respond — the status register's time-out bit with 0xfe in the output
// buffer (as keyboard or auxiliary data), interrupting like any byte — so a
// driver learns at once that no device is there, instead of polling the
// status register through its own time-outs (Linux's i8042 probe would
// spin through two of them, some 20000 status reads, on a controller that
// stays silent). The time-out bit clears with the next write.
// Other commands are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/bus.h"
#include "devices/irq.h"

namespace strata {

inline constexpr uint64_t kI8042DataPort = 0x60;
inline constexpr uint64_t kI8042CommandPort = 0x64;

// Status register bits.
inline constexpr uint8_t kI8042StsObf = 0x01;      // output buffer full
inline constexpr uint8_t kI8042StsIbf = 0x02;      // input buffer full
inline constexpr uint8_t kI8042StsSys = 0x04;      // system flag
inline constexpr uint8_t kI8042StsCmd = 0x08;      // last write was 0x64
inline constexpr uint8_t kI8042StsUnlocked = 0x10; // keyboard not inhibited
inline constexpr uint8_t kI8042StsAuxObf = 0x20;
inline constexpr uint8_t kI8042StsTimeout = 0x40;
inline constexpr uint8_t kI8042StsParity = 0x80;

// Command byte (controller RAM byte 0) bits.
inline constexpr uint8_t kI8042CtrKbdInt = 0x01;
inline constexpr uint8_t kI8042CtrAuxInt = 0x02;
inline constexpr uint8_t kI8042CtrSys = 0x04;
inline constexpr uint8_t kI8042CtrKbdDisable = 0x10;
inline constexpr uint8_t kI8042CtrAuxDisable = 0x20;
inline constexpr uint8_t kI8042CtrTranslate = 0x40;

// Commands (written to the command port).
inline constexpr uint8_t kI8042CmdReadRam = 0x20;   // 0x20-0x3f
inline constexpr uint8_t kI8042CmdWriteRam = 0x60;  // 0x60-0x7f
inline constexpr uint8_t kI8042CmdAuxDisable = 0xa7;
inline constexpr uint8_t kI8042CmdAuxEnable = 0xa8;
inline constexpr uint8_t kI8042CmdSelfTest = 0xaa;
inline constexpr uint8_t kI8042CmdKbdTest = 0xab;
inline constexpr uint8_t kI8042CmdKbdDisable = 0xad;
inline constexpr uint8_t kI8042CmdKbdEnable = 0xae;
inline constexpr uint8_t kI8042CmdReadOutPort = 0xd0;
inline constexpr uint8_t kI8042CmdWriteOutPort = 0xd1;
inline constexpr uint8_t kI8042CmdWriteKbdOut = 0xd2;
inline constexpr uint8_t kI8042CmdWriteAuxOut = 0xd3;
inline constexpr uint8_t kI8042CmdWriteAux = 0xd4;
inline constexpr uint8_t kI8042CmdAuxTest = 0xa9;
inline constexpr uint8_t kI8042CmdPulseFirst = 0xf0;  // 0xf0-0xff
inline constexpr uint8_t kI8042CmdPulseReset = 0xfe;

inline constexpr uint8_t kI8042SelfTestOk = 0x55;
inline constexpr uint8_t kI8042KbdTestOk = 0x00;
inline constexpr uint8_t kI8042AuxTestOk = 0x00;
// What a controller puts in the output buffer, with the time-out bit, when
// the device it sent a byte to did not answer.
inline constexpr uint8_t kI8042NoDevice = 0xfe;

// Output port bits.
inline constexpr uint8_t kI8042OutReset = 0x01;  // 0 asserts system reset
inline constexpr uint8_t kI8042OutA20 = 0x02;
inline constexpr uint8_t kI8042OutKbdObf = 0x10;  // mirrors status OBF

// Create with std::make_shared (the ports hold a reference to it).
class I8042 : public std::enable_shared_from_this<I8042> {
 public:
  // Called, from the vCPU thread and without the device lock, when the
  // guest asserts the reset line.
  using ResetFn = std::function<void()>;

  // kbd_irq (IRQ 1) and aux_irq (IRQ 12) may be null; they must outlive
  // the device.
  explicit I8042(ResetFn on_reset, IrqLine* kbd_irq = nullptr,
                 IrqLine* aux_irq = nullptr);
  I8042(const I8042&) = delete;
  I8042& operator=(const I8042&) = delete;

  // The two one-byte devices to register (length 1 each); each keeps the
  // controller alive.
  std::shared_ptr<IoDevice> DataPort();
  std::shared_ptr<IoDevice> CommandPort();

  uint8_t ReadData();
  uint8_t ReadStatus();
  void WriteData(uint8_t v);
  void WriteCommand(uint8_t v);

 private:
  // mu_ held: fills the output buffer (as auxiliary data: AUX_OBF).
  void Output(uint8_t v, bool aux = false);
  void NoDevice(bool aux);  // mu_ held: the time-out answer
  void UpdateIrq();        // mu_ held
  void SetOutPort(uint8_t v, bool* reset);  // mu_ held

  const ResetFn on_reset_;
  IrqLine* const irq_;
  IrqLine* const aux_irq_;

  std::mutex mu_;
  // All below guarded by mu_.
  uint8_t ram_[32] = {};  // ram_[0]: the command byte
  uint8_t status_ = kI8042StsUnlocked;
  uint8_t out_ = 0;        // output buffer (valid while OBF)
  uint8_t out_port_ = kI8042OutReset | kI8042OutA20;
  uint8_t pending_ = 0;    // command waiting for its data byte, or 0
  bool irq_level_ = false;
  bool aux_irq_level_ = false;
};

}  // namespace strata
