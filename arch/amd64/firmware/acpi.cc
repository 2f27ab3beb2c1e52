#include "arch/amd64/firmware/acpi.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "arch/amd64/firmware/aml.h"
#include "arch/amd64/platform/pc_layout.h"
#include "devices/acpi_pm.h"
#include "devices/ioapic.h"

namespace strata::amd64::firmware {

namespace {

constexpr char kOemId[] = "STRATA";         // 6 bytes
constexpr char kOemTableId[] = "STRATAPC";  // 8 bytes
constexpr uint32_t kOemRevision = 1;
constexpr char kCreatorId[] = "STRA";
constexpr uint32_t kCreatorRevision = 1;

constexpr uint64_t kLocalApicAddress = 0xfee00000;
constexpr uint32_t kMadtPcatCompat = 1u << 0;
constexpr uint8_t kIoapicId = 0;
constexpr uint32_t kIoapicGsiBase = 0;
constexpr uint8_t kLint1 = 1;
constexpr uint8_t kNmiAllProcessors = 0xff;           // LAPIC NMI UID
constexpr uint32_t kNmiAllProcessorsX2 = 0xffffffff;  // x2APIC NMI UID
// MPS INTI flags (ACPI 6.5 §5.2.12.5, Table 5.26).
constexpr uint16_t kIntiConforms = 0;
constexpr uint16_t kIntiActiveHigh = 0x1;
constexpr uint16_t kIntiLevel = 0x3 << 2;
constexpr uint8_t kIsaBus = 0;
constexpr uint8_t kIrqPit = 0;

// Generic Address Structure (§5.2.3.2).
constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasAccessByte = 1;
constexpr uint8_t kGasAccessWord = 2;
constexpr uint8_t kGasAccessDword = 3;

// FADT fixed feature flags (§5.2.9, Table 5.10), QEMU's set for q35.
constexpr uint32_t kFadtWbinvd = 1u << 0;
constexpr uint32_t kFadtProcC1 = 1u << 2;
constexpr uint32_t kFadtSlpButton = 1u << 5;  // no fixed sleep button
constexpr uint32_t kFadtRtcS4 = 1u << 7;
constexpr uint32_t kFadtResetRegSup = 1u << 10;
constexpr uint32_t kFadtUsePlatformClock = 1u << 15;
constexpr uint32_t kFadtForceApicClusterModel = 1u << 18;
constexpr uint32_t kFlatLogicalMaxApics = 8;
// IA-PC boot architecture flags (Table 5.11).
constexpr uint16_t kBootArch8042 = 1u << 1;
constexpr uint8_t kResetValue = 6;       // 0xcf9: full reset, CPU reset
constexpr uint8_t kCenturyIndex = 0x32;  // CMOS century byte

using platform::pc::kSlpTypS3;
using platform::pc::kSlpTypS5;

constexpr uint32_t kPciSlots = 32;
constexpr uint32_t kPciPins = 4;

void Put(Bytes& b, size_t at, uint64_t v, size_t width) {
  assert(at + width <= b.size());
  for (size_t i = 0; i < width; ++i)
    b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put8(Bytes& b, size_t at, uint64_t v) { Put(b, at, v, 1); }
void Put16(Bytes& b, size_t at, uint64_t v) { Put(b, at, v, 2); }
void Put32(Bytes& b, size_t at, uint64_t v) { Put(b, at, v, 4); }
void Put64(Bytes& b, size_t at, uint64_t v) { Put(b, at, v, 8); }
void PutChars(Bytes& b, size_t at, std::string_view s) {
  std::memcpy(b.data() + at, s.data(), s.size());
}

void Push(Bytes& b, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A table of `length` bytes with its header (§5.2.6); the checksum is
// set by Finish once the table is complete.
Bytes Header(std::string_view sig, size_t length, uint8_t revision) {
  Bytes b(length, 0);
  PutChars(b, 0, sig);
  Put8(b, 8, revision);
  PutChars(b, 10, kOemId);
  PutChars(b, 16, kOemTableId);
  Put32(b, 24, kOemRevision);
  PutChars(b, 28, kCreatorId);
  Put32(b, 32, kCreatorRevision);
  return b;
}

Bytes Finish(Bytes b) {
  Put32(b, 4, b.size());
  b[9] = 0;
  b[9] = Checksum(b);
  return b;
}

void PutGas(Bytes& b, size_t at, uint8_t space, uint8_t bits, uint8_t access,
            uint64_t address) {
  Put8(b, at, space);
  Put8(b, at + 1, bits);
  Put8(b, at + 2, 0);
  Put8(b, at + 3, access);
  Put64(b, at + 4, address);
}

// _PRT (ACPI 6.5 §6.2.13): every slot's four pins, GSI sources (Source 0).
aml::Bytes PciRoutingTable() {
  std::vector<aml::Bytes> entries;
  for (uint32_t dev = 0; dev < kPciSlots; ++dev) {
    for (uint32_t pin = 0; pin < kPciPins; ++pin) {
      entries.push_back(aml::Package({
          aml::Integer((uint64_t{dev} << 16) | 0xffff),
          aml::Integer(pin),
          aml::Integer(0),
          aml::Integer(PciIntxGsi(dev, pin + 1)),
      }));
    }
  }
  return aml::Name("_PRT", aml::Package(entries));
}

aml::Bytes SleepPackage(std::string_view name, uint8_t slp_typ) {
  return aml::Name(name,
                   aml::Package({aml::Integer(slp_typ), aml::Integer(slp_typ),
                                 aml::Integer(0), aml::Integer(0)}));
}

}  // namespace

uint8_t Checksum(std::span<const uint8_t> data) {
  uint8_t sum = 0;
  for (uint8_t v : data) sum = static_cast<uint8_t>(sum + v);
  return static_cast<uint8_t>(-sum);
}

uint8_t MadtProcessorEntryType(uint32_t apic_id) {
  return apic_id <= kMaxXapicEntryId ? kMadtLocalApic : kMadtLocalX2apic;
}

Bytes BuildFacs() {
  // §5.2.10: no checksum; the waking vectors are the guest's to set.
  constexpr uint8_t kFacsVersion = 2;
  Bytes b(kFacsSize, 0);
  PutChars(b, 0, "FACS");
  Put32(b, 4, kFacsSize);
  Put8(b, 32, kFacsVersion);
  return b;
}

Bytes BuildDsdt(const MachineInfo& m) {
  namespace pc = platform::pc;
  using namespace aml;
  const uint64_t mmio64 = PciMmio64Base(m);
  Bytes pci0 = Concat({
      Name("_HID", EisaId("PNP0A08")),
      Name("_CID", EisaId("PNP0A03")),
      Name("_SEG", Integer(0)),
      Name("_BBN", Integer(0)),
      Name("_UID", Integer(0)),
      Name("_CRS",
           ResourceTemplate({
               WordBusNumber(0, pc::kPciBusLast),
               Io(pc::kPciConfigAddressPort, pc::kPciConfigAddressPort, 1, 8),
               WordIo(0, pc::kPciConfigAddressPort - 1),
               WordIo(0x0d00, 0xffff),
               DWordMemory(pc::kPciMmio32Base,
                           pc::kPciMmio32Base + pc::kPciMmio32Size - 1),
               QWordMemory(mmio64, mmio64 + pc::kPciMmio64Size - 1),
           })),
      // Device D pin P (1 = INTA) → GSI 16 + ((D + P - 1) % 4), the
      // swizzle the PCI host bridge implements.
      PciRoutingTable(),
  });
  // The ECAM window, claimed as a motherboard resource so that OSes trust
  // the MCFG (PCI Firmware Spec 3.2 §4.1.2).
  Bytes drac = Concat({
      Name("_HID", EisaId("PNP0C02")),
      Name("_UID", Integer(1)),
      Name("_CRS", ResourceTemplate({DWordMemory(
                       pc::kPciEcamBase,
                       pc::kPciEcamBase + ((pc::kPciBusLast + 1ull) << 20) - 1,
                       true)})),
  });
  Bytes com1 = Concat({
      Name("_HID", EisaId("PNP0501")),
      Name("_UID", Integer(1)),
      Name("_CRS", ResourceTemplate({
                       Io(0x3f8, 0x3f8, 1, 8),
                       IrqNoFlags(static_cast<uint8_t>(pc::kGsiCom1)),
                   })),
  });
  Bytes pwrb = Concat({
      Name("_HID", EisaId("PNP0C0C")), Name("_UID", Integer(0)),
      MethodReturn("_STA", Integer(0x0b)),  // present, enabled, functioning
  });
  Bytes sb = Concat({
      Device("PCI0", pci0),
      Device("MRES", drac),
      Device("COM1", com1),
      Device("PWRB", pwrb),
  });
  Bytes aml = Concat({
      Scope("\\_SB", sb),
      SleepPackage("\\_S3", kSlpTypS3),
      SleepPackage("\\_S5", kSlpTypS5),
  });
  constexpr uint8_t kDsdtRevision = 2;  // 64-bit integers
  Bytes b = Header("DSDT", kAcpiHeaderSize, kDsdtRevision);
  Append(b, aml);
  return Finish(std::move(b));
}

Bytes BuildFadt(const MachineInfo& m, uint64_t facs, uint64_t dsdt) {
  const uint64_t pm = kAcpiPmPort;
  Bytes b = Header("FACP", kFadtSize, kFadtRevision);
  Put32(b, 36, facs);
  Put32(b, 40, dsdt);
  Put16(b, 46, platform::pc::kGsiSci);
  Put32(b, 48, 0);  // SMI_CMD: always in ACPI mode (devices/acpi_pm.h)
  Put32(b, 56, pm + kAcpiPm1StsOffset);
  Put32(b, 64, pm + kAcpiPm1CntOffset);
  Put32(b, 76, pm + kAcpiPmTmrOffset);
  Put8(b, 88, kAcpiPm1EvtLength);
  Put8(b, 89, kAcpiPm1CntLength);
  Put8(b, 91, kAcpiPmTmrLength);
  Put16(b, 96, 0xfff);  // P_LVL2_LAT: C2 not supported
  Put16(b, 98, 0xfff);  // P_LVL3_LAT: C3 not supported
  Put8(b, 108, kCenturyIndex);
  Put16(b, 109, kBootArch8042);
  uint32_t flags = kFadtWbinvd | kFadtProcC1 | kFadtSlpButton | kFadtRtcS4 |
                   kFadtResetRegSup | kFadtUsePlatformClock;
  if (std::max(m.cpus, m.max_cpus) > kFlatLogicalMaxApics) {
    flags |= kFadtForceApicClusterModel;
  }
  Put32(b, 112, flags);
  PutGas(b, 116, kGasSystemIo, 8, kGasAccessByte,
         platform::pc::kResetControlPort);
  Put8(b, 128, kResetValue);
  Put8(b, 131, 0);  // FADT minor version
  Put64(b, 132, facs);
  Put64(b, 140, dsdt);
  PutGas(b, 148, kGasSystemIo, kAcpiPm1EvtLength * 8, kGasAccessWord,
         pm + kAcpiPm1StsOffset);
  PutGas(b, 172, kGasSystemIo, kAcpiPm1CntLength * 8, kGasAccessWord,
         pm + kAcpiPm1CntOffset);
  PutGas(b, 208, kGasSystemIo, kAcpiPmTmrLength * 8, kGasAccessDword,
         pm + kAcpiPmTmrOffset);
  PutChars(b, 268, "STRATA\0\0");  // hypervisor vendor identity
  return Finish(std::move(b));
}

Bytes BuildMadt(const MachineInfo& m) {
  Bytes b = Header("APIC", kAcpiHeaderSize + 8, kMadtRevision);
  Put32(b, 36, kLocalApicAddress);
  Put32(b, 40, kMadtPcatCompat);
  const uint32_t total = std::max(m.cpus, m.max_cpus);
  bool any_x2apic = false;
  for (uint32_t i = 0; i < total; ++i) {
    const uint32_t id = ApicIdFor(m.topo, i);
    const uint32_t flags = i < m.cpus ? kMadtEnabled : kMadtOnlineCapable;
    if (MadtProcessorEntryType(id) == kMadtLocalApic) {
      Push(b, kMadtLocalApic, 1);
      Push(b, 8, 1);
      Push(b, i, 1);  // ACPI processor UID: ids >= index, so i <= 254
      Push(b, id, 1);
      Push(b, flags, 4);
    } else {
      any_x2apic = true;
      Push(b, kMadtLocalX2apic, 1);
      Push(b, 16, 1);
      Push(b, 0, 2);
      Push(b, id, 4);
      Push(b, flags, 4);
      Push(b, i, 4);
    }
  }
  // The IOAPIC at its fixed base, GSIs from 0.
  Push(b, kMadtIoApic, 1);
  Push(b, 12, 1);
  Push(b, kIoapicId, 1);
  Push(b, 0, 1);
  Push(b, kIoapicMmioBase, 4);
  Push(b, kIoapicGsiBase, 4);
  // ISA IRQ 0 (the PIT) is on pin 2; the SCI is level, active high.
  struct Override {
    uint8_t irq;
    uint32_t gsi;
    uint16_t flags;
  };
  for (const Override& o :
       {Override{kIrqPit, platform::pc::kGsiTimer, kIntiConforms},
        Override{static_cast<uint8_t>(platform::pc::kGsiSci),
                 platform::pc::kGsiSci, kIntiActiveHigh | kIntiLevel}}) {
    Push(b, kMadtIntSourceOverride, 1);
    Push(b, 10, 1);
    Push(b, kIsaBus, 1);
    Push(b, o.irq, 1);
    Push(b, o.gsi, 4);
    Push(b, o.flags, 2);
  }
  // NMI on LINT1 of every processor.
  Push(b, kMadtLocalApicNmi, 1);
  Push(b, 6, 1);
  Push(b, kNmiAllProcessors, 1);
  Push(b, kIntiConforms, 2);
  Push(b, kLint1, 1);
  if (any_x2apic) {
    Push(b, kMadtLocalX2apicNmi, 1);
    Push(b, 12, 1);
    Push(b, kIntiConforms, 2);
    Push(b, kNmiAllProcessorsX2, 4);
    Push(b, kLint1, 1);
    Push(b, 0, 3);
  }
  return Finish(std::move(b));
}

Bytes BuildMcfg() {
  // PCI Firmware Spec 3.2 §4.1.2: one allocation, segment 0, buses 0 to
  // kPciBusLast (pc_layout.h).
  constexpr uint8_t kMcfgRevision = 1;
  Bytes b = Header("MCFG", kAcpiHeaderSize + 8 + 16, kMcfgRevision);
  Put64(b, 44, platform::pc::kPciEcamBase);
  Put16(b, 52, 0);
  Put8(b, 54, 0);
  Put8(b, 55, platform::pc::kPciBusLast);
  return Finish(std::move(b));
}

Bytes BuildRsdt(std::span<const uint64_t> tables) {
  Bytes b = Header("RSDT", kAcpiHeaderSize, 1);
  for (uint64_t t : tables) {
    assert(t <= 0xffffffff);
    Push(b, t, 4);
  }
  return Finish(std::move(b));
}

Bytes BuildXsdt(std::span<const uint64_t> tables) {
  Bytes b = Header("XSDT", kAcpiHeaderSize, 1);
  for (uint64_t t : tables) Push(b, t, 8);
  return Finish(std::move(b));
}

Bytes BuildRsdp(uint64_t rsdt, uint64_t xsdt) {
  // §5.2.5.3: the first 20 bytes (ACPI 1.0) and the whole structure each
  // sum to zero.
  constexpr uint8_t kRsdpRevision = 2;
  Bytes b(kRsdpSize, 0);
  PutChars(b, 0, "RSD PTR ");
  PutChars(b, 9, kOemId);
  Put8(b, 15, kRsdpRevision);
  Put32(b, 16, rsdt);
  Put32(b, 20, kRsdpSize);
  Put64(b, 24, xsdt);
  b[8] = Checksum(std::span(b).first(kRsdpV1ChecksumSize));
  b[32] = Checksum(b);
  return b;
}

}  // namespace strata::amd64::firmware
