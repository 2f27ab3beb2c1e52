// strata — QEMU's pci-testdev (hw/misc/pci-testdev.c; QEMU's
// docs/specs/pci-testdev.rst), the PCI function kvm-unit-tests' pci test
// drives (lib/pci-testdev.c).
//
// Emulated: vendor 1b36 device 0005, class ff (other), subsystem 1af4:1100,
// no interrupt pin; BAR0 a 4 KiB 32-bit memory BAR, BAR1 a 256-byte I/O
// BAR. Each BAR holds a test header:
//   0x00  test    (write) select test N (0-2) and zero its count; any
//                 other number selects none
//   0x01  width   (read) the width of the access the test counts (1)
//   0x04  offset  (read, 32-bit) where in this BAR to write
//   0x08  data    (read) the value a matching test wants
//   0x0c  count   (read, 32-bit) writes counted since the test started
//   0x10  name    (read) NUL-terminated: mmio-no-eventfd, mmio-wildcard-
//                 eventfd, mmio-datamatch-eventfd (BAR0), portio-... (BAR1)
// Test t of BAR b (i = 3b + t) counts one-byte writes at offset
// size + i (2048 + i in BAR0, 128 + i in BAR1); "wildcard" counts any
// value, the other two only 0xfa. Like QEMU the registers are byte-wide:
// a wider access is split into byte accesses at consecutive offsets.
// What is missing is only QEMU's eventfd acceleration: every test counts in
// user space ("no-eventfd" behaviour), which kvm-unit-tests accepts (it
// wants 0 or all of its 16 writes counted). QEMU's optional BAR2
// ("membar") is not emulated. With no test selected, reads give 0.
#pragma once

#include <memory>

#include "devices/pci/pci_device.h"

namespace strata {

inline constexpr uint16_t kPciDeviceRedHatTest = 0x0005;
inline constexpr uint64_t kPciTestdevMemSize = 4096;  // BAR0
inline constexpr uint64_t kPciTestdevIoSize = 256;    // BAR1
inline constexpr uint8_t kPciTestdevDataMatch = 0xfa;
inline constexpr uint8_t kPciTestdevNoMatch = 0xce;

// A pci-testdev function with its BARs (unassigned until a bus or the
// guest places them).
std::shared_ptr<PciDevice> MakePciTestdev(std::string name = "pci-testdev");

}  // namespace strata
