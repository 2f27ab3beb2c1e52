// strata — PCI bus 0 and its host bridge: configuration mechanism #1,
// PCIe ECAM, INTx sharing and a firmware-like BAR allocator. Arch-neutral:
// the machine chooses the ports, the ECAM base, the windows and the INTx
// routing (on pc: arch/amd64/platform/pc_pci.h).
//
// Theory. A PciBus holds 32 devices x 8 functions (PciDevice) of bus 0.
// Configuration cycles reach it two ways, both IoDevices over it:
//   PciConfigIo — configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2):
//     CONFIG_ADDRESS, a 32-bit register at offset 0 (0xcf8; only dword
//     accesses address it), enable bit 31, bus 23:16, device 15:11,
//     function 10:8, register 7:2; CONFIG_DATA at offsets 4-7 (0xcfc-0xcff),
//     byte/word/dword accesses at the byte lanes they name. A one-byte
//     access at offset 1 (0xcf9) is the reset control register of the
//     PIIX/ICH chipsets (ICH9 datasheet §13.7.5): bit 1 SYS_RST, bit 2
//     RST_CPU; a write with RST_CPU set asks for a reset through a
//     callback. Other accesses to 0-3 read as all-ones and are dropped.
//     0xcf9 lies inside the 0xcf8 dword, and the bus rejects overlapping
//     ranges, so one device serves 0xcf8-0xcff.
//   PciEcam — PCIe enhanced configuration access (PCIe Base 4.0 §7.2.2):
//     offset = bus << 20 | device << 15 | function << 12 | register.
// A cycle to an absent function (or to a bus other than 0) reads as
// all-ones and its writes are ignored, which is how software finds the
// empty slots. A function-0 header type read shows the multi-function bit
// when the slot has other functions.
//
// INTx: function F of device D asserting pin P drives the machine's
// interrupt intx_route(D, P). Several functions may share one: the bus ORs
// their levels (a level-triggered, shared line, PCI Local Bus 3.0 §2.2.6).
//
// BAR allocation (firmware's job on real hardware): a bus given windows
// places each BAR of a function it adds, naturally aligned, bottom up,
// enables the function's decode, and writes the interrupt line register,
// so a guest that does not reprogram the BARs finds them usable.
//
// Locking: the slot table is written before the VM runs (Add) and only
// read afterwards; PciConfigIo guards CONFIG_ADDRESS with its own mutex;
// each function locks itself.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/bus.h"
#include "core/result.h"
#include "devices/irq.h"
#include "devices/pci/pci_device.h"

namespace spdlog {
class logger;
}

namespace strata {

class RateLimit;

inline constexpr uint32_t kPciSlots = 32;
inline constexpr uint32_t kPciFunctions = 8;

// QEMU q35's host bridge (the MCH): 8086:29c0, class 06 00 00.
inline constexpr uint16_t kPciVendorIntel = 0x8086;
inline constexpr uint16_t kPciDeviceQ35Mch = 0x29c0;
// QEMU's generic PCIe host (gpex, hw/pci-host/gpex.c; the virt machine's):
// 1b36:0008, class 06 00 00.
inline constexpr uint16_t kPciDeviceRedHatGpex = 0x0008;
inline constexpr uint8_t kPciClassBridge = 0x06;
inline constexpr uint8_t kPciSubclassHostBridge = 0x00;

// The reset control register (ICH9 datasheet §13.7.5).
inline constexpr uint8_t kResetControlSysRst = 1u << 1;
inline constexpr uint8_t kResetControlRstCpu = 1u << 2;

class PciBus : public Snapshottable {
 public:
  struct Window {
    uint64_t base = 0;
    uint64_t size = 0;
  };
  struct Options {
    Bus* pio = nullptr;
    Bus* mmio = nullptr;
    // Messages from the functions (the platform passes Vm::SignalMsi).
    PciMsiFn msi;
    // Set instead of msi: messages with the requester id of the function
    // that sent them (PCIe Base 4.0 §2.2.6.2: bus << 8 | device << 3 |
    // function), for an interrupt controller that translates by it (a
    // GICv3 ITS takes it as the device id, GICv3 spec §5.2). Takes
    // precedence over msi.
    std::function<void(uint16_t requester_id, const md::MsiMessage&)>
        msi_with_requester;
    // INTx routing: the machine's interrupt number for (device, pin 1-4),
    // and the line that drives a number. Both unset: no INTx.
    std::function<uint32_t(uint32_t slot, uint32_t pin)> intx_route;
    std::function<std::shared_ptr<IrqLine>(uint32_t irq)> irq_line;
    // Where Add places BARs; unset: BARs start unassigned.
    std::optional<Window> io_window;
    std::optional<Window> mmio_window;
    // Whether BARs at address 0 decode (PciAttachment::allow_zero_address):
    // a machine whose I/O space is a window of its own (arm64 virt).
    bool allow_zero_bar_address = false;
    std::shared_ptr<spdlog::logger> logger;
  };

  explicit PciBus(Options options);
  PciBus(const PciBus&) = delete;
  PciBus& operator=(const PciBus&) = delete;

  // Puts fn at slot.func of bus 0: attaches it (buses, INTx line, MSI sink)
  // and, with windows, assigns its BARs and enables its decode.
  // kAlreadyExists if the function is taken (the message names the
  // occupant), kOutOfRange for a bad address or a full
  // window.
  Status Add(uint32_t slot, uint32_t func, std::shared_ptr<PciDevice> fn);
  PciDevice* Find(uint32_t slot, uint32_t func) const;

  // A configuration cycle (any size 1, 2, 4 within the function's space).
  uint32_t ConfigRead(uint32_t bus, uint32_t slot, uint32_t func,
                      uint32_t reg, uint32_t size) const;
  void ConfigWrite(uint32_t bus, uint32_t slot, uint32_t func, uint32_t reg,
                   uint32_t size, uint32_t value);

  // Snapshots: every function on the bus (PciDevice::SaveState), by
  // address; a restore needs the same functions at the same addresses.
  Status SaveState(StateWriter& out) override;
  Status LoadState(StateReader& in) override;

 private:
  class SharedLine;
  Status AssignBars(PciDevice& fn);

  Options options_;
  std::array<std::shared_ptr<PciDevice>, kPciSlots * kPciFunctions> fns_;
  std::map<uint32_t, std::shared_ptr<SharedLine>> lines_;  // by irq
  uint64_t io_next_ = 0;
  uint64_t mmio_next_ = 0;
};

// The host bridge function (00:00.0), a type-0 header and nothing more;
// the ids of q35's MCH unless told (the virt machine's is gpex's).
std::shared_ptr<PciDevice> MakePciHostBridge(
    uint16_t vendor = kPciVendorIntel, uint16_t device = kPciDeviceQ35Mch);

// Configuration mechanism #1 and the reset control register, for 8 ports
// from CONFIG_ADDRESS (0xcf8-0xcff).
inline constexpr uint64_t kPciConfigIoLength = 8;
class PciConfigIo final : public IoDevice {
 public:
  // reset: called when the guest writes RST_CPU to the reset control
  // register (null: ignored).
  PciConfigIo(PciBus* bus, std::function<void()> reset);
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "pci-config-io"; }

 private:
  PciBus* const bus_;
  const std::function<void()> reset_;
  std::mutex mu_;
  uint32_t address_ = 0;       // guarded by mu_
  uint8_t reset_control_ = 0;  // guarded by mu_
};

// PCIe ECAM for buses 0..(length >> 20) - 1.
class PciEcam final : public IoDevice {
 public:
  explicit PciEcam(PciBus* bus) : bus_(bus) {}
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "pci-ecam"; }

 private:
  PciBus* const bus_;
};

// The PCI I/O space as an MMIO window, for a machine whose CPU has no port
// I/O (arm64: QEMU virt's VIRT_PCIE_PIO, the "ranges" entry of type
// 0x01000000 in the host bridge's DT node). An access at offset o of the
// window is an I/O cycle at port o, dispatched on the pio bus the PCI
// functions' I/O BARs are registered on; 8-byte accesses become two
// dword cycles (PCI I/O transactions are at most a dword). The window is
// at most kPioMaxPort + 1 bytes. An unclaimed port reads as all-ones like
// any PIO; if the pio bus makes unclaimed accesses fatal the error cannot
// cross the IoDevice interface, so it is logged here (rate-limited) and
// the access completes with the unclaimed value.
inline constexpr uint64_t kPciIoWindowMaxSize = kPioMaxPort + 1;
class PciIoWindow final : public IoDevice {
 public:
  PciIoWindow(Bus* pio, std::shared_ptr<spdlog::logger> logger);
  ~PciIoWindow() override;
  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "pci-io-window"; }

 private:
  Bus* const pio_;
  std::unique_ptr<RateLimit> error_log_;
};

}  // namespace strata
