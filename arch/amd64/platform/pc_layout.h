// strata — the pc machine's physical address map and fixed resources, in
// one place: the PCI host bridge, the firmware tables, the interrupt
// controllers and the loaders all read it from here.
//
//   0x00000000  RAM (low), up to min(memory, 3 GiB)
//     0x0009fc00-0x000fffff  the legacy hole (e820 reserved, backed by RAM):
//     0x000e0000-0x000fffff  the firmware area: FACS first, then the RSDP
//                            (found by scanning 0xE0000-0xFFFFF on 16-byte
//                            boundaries), the SMBIOS 3.0 entry point and
//                            every other ACPI and SMBIOS table
//   0xc0000000  the 32-bit PCI MMIO window (BARs), 512 MiB
//   0xe0000000  PCIe ECAM (MMCONFIG), buses 0-255, 256 MiB (MCFG)
//   0xfec00000  IOAPIC
//   0xfee00000  LAPIC
//   0xff000000  pc-testdev's MMIO window
//   0x100000000 RAM (high): whatever did not fit below 3 GiB
//   above RAM   the 64-bit PCI MMIO window, 1 GiB aligned
//
// I/O ports: 0x60/0x64 keyboard controller (reset), 0x70/0x71 RTC/CMOS,
// 0x3f8 COM1, 0x510-0x51b fw_cfg (0x514: DMA), 0x600-0x60b ACPI PM,
// 0xcf8/0xcfc PCI configuration mechanism #1, 0xcf9 reset control,
// 0xf4 isa-debug-exit. GSIs: 0-15 ISA (keyboard 1, timer on pin 2, COM1 4, RTC 8,
// SCI 9), 16-23 PCI INTx.
#pragma once

#include <cstdint>

namespace strata::platform::pc {

inline constexpr uint64_t kLowMemLimit = 3ull << 30;
inline constexpr uint64_t kHighMemBase = 4ull << 30;

inline constexpr uint64_t kFirmwareBase = 0xe0000;
inline constexpr uint64_t kFirmwareSize = 0x20000;  // to 0x100000
// FACS: 64-byte aligned, at the start of the firmware area. The S3 resume
// path reads the guest's waking vector from here.
inline constexpr uint64_t kFacsAddress = kFirmwareBase;

inline constexpr uint64_t kPciMmio32Base = 0xc0000000;
inline constexpr uint64_t kPciMmio32Size = 0x20000000;
inline constexpr uint64_t kPciEcamBase = 0xe0000000;
inline constexpr uint64_t kPciEcamSize = 0x10000000;  // 256 buses x 1 MiB
// The buses the firmware tables describe (MCFG, the root bridge's _CRS):
// bus 0 only, where every function is; the ECAM window decodes all 256 and
// the others read all-ones. Describing 0-255 would make Linux's x86 PCI
// code probe every bus for peer bridges (pcibios_last_bus from the MCFG:
// 255 buses x 32 slots through 0xcf8, about 16000 exits per boot).
inline constexpr uint8_t kPciBusLast = 0;
inline constexpr uint64_t kPciMmio64Align = 1ull << 30;
inline constexpr uint64_t kPciMmio64Size = 64ull << 30;

inline constexpr uint16_t kPciConfigAddressPort = 0xcf8;
inline constexpr uint16_t kPciConfigDataPort = 0xcfc;
inline constexpr uint16_t kResetControlPort = 0xcf9;
inline constexpr uint16_t kKbdDataPort = 0x60;
inline constexpr uint16_t kKbdCommandPort = 0x64;
inline constexpr uint16_t kRtcPort = 0x70;  // index 0x70, data 0x71
// PCI I/O BARs are placed from here to 0xffff.
inline constexpr uint16_t kPciIoBase = 0xc000;

inline constexpr uint32_t kGsiKbd = 1;    // the i8042's keyboard output
inline constexpr uint32_t kGsiMouse = 12;  // the i8042's auxiliary output
// SLP_TYP values of the DSDT's \_S3 and \_S5 packages (as QEMU's): what
// the guest writes to PM1a_CNT to suspend to RAM or power off.
inline constexpr uint32_t kSlpTypS3 = 1;
inline constexpr uint32_t kSlpTypS5 = 0;
// FACS fields (ACPI 6.5 §5.2.10, Table 5.14): the 32-bit real-mode waking
// vector and the 64-bit one.
inline constexpr uint64_t kFacsWakingVectorOffset = 12;
inline constexpr uint64_t kFacsXWakingVectorOffset = 24;

inline constexpr uint32_t kGsiTimer = 2;  // the PIT, through override 0 -> 2
inline constexpr uint32_t kGsiCom1 = 4;
inline constexpr uint32_t kGsiRtc = 8;
inline constexpr uint32_t kGsiSci = 9;
inline constexpr uint32_t kGsiPciIntxFirst = 16;  // INTA-INTD: 16-19 ...
inline constexpr uint32_t kGsiPciIntxCount = 8;   // ... 16-23, swizzled
inline constexpr uint32_t kPciIntxPins = 4;        // INTA#-INTD#
static_assert(kPciIntxPins <= kGsiPciIntxCount);

// INTx routing of bus 0, the one definition the PCI bus (pc_pci) and the
// DSDT's _PRT (arch/amd64/firmware) both use: device D's pin P (1-4 =
// INTA#-INTD#) drives GSI 16 + (D + P - 1) mod 4, the usual rotation of
// pins across devices (GSIs 16-19; 20-23 stay free). Level-triggered,
// active high at the IOAPIC pins.
constexpr uint32_t PciIntxGsi(uint32_t device, uint32_t pin) {
  return kGsiPciIntxFirst + (device + pin - 1) % kPciIntxPins;
}

}  // namespace strata::platform::pc
