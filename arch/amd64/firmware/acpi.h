// strata — the pc machine's ACPI tables (ACPI 6.5 §5): RSDP, RSDT, XSDT,
// FADT (revision 6), FACS, DSDT, MADT, MCFG.
//
// Each builder returns one table's bytes with its checksum set; the
// addresses the pointers hold are the caller's (firmware.cc lays the tables
// out in the firmware area). The fixed resources come from pc_layout.h,
// devices/acpi_pm.h and devices/ioapic.h, the APIC ids from cpuid.h's
// ApicIdFor — the numbers the CPUID policy gives each vCPU.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "arch/amd64/firmware/machine_info.h"
#include "arch/amd64/platform/pc_layout.h"

namespace strata::amd64::firmware {

using platform::pc::PciIntxGsi;  // the _PRT follows pc_layout.h

using Bytes = std::vector<uint8_t>;

inline constexpr size_t kAcpiHeaderSize = 36;
inline constexpr size_t kRsdpSize = 36;
inline constexpr size_t kRsdpV1ChecksumSize = 20;
inline constexpr size_t kFacsSize = 64;
inline constexpr size_t kFadtSize = 276;  // revision 6
inline constexpr uint8_t kFadtRevision = 6;
inline constexpr uint8_t kMadtRevision = 5;  // the online-capable flag

// The largest APIC id a Processor Local APIC entry carries: the entry's id
// is a byte and 0xff is the broadcast id, so ids from 255 on take Processor
// Local x2APIC entries (ACPI 6.5 §5.2.12.12).
inline constexpr uint32_t kMaxXapicEntryId = 254;

// MADT structure types (ACPI 6.5 §5.2.12, Table 5.21).
inline constexpr uint8_t kMadtLocalApic = 0;
inline constexpr uint8_t kMadtIoApic = 1;
inline constexpr uint8_t kMadtIntSourceOverride = 2;
inline constexpr uint8_t kMadtLocalApicNmi = 4;
inline constexpr uint8_t kMadtLocalX2apic = 9;
inline constexpr uint8_t kMadtLocalX2apicNmi = 0xa;
// Local APIC flags (Table 5.23).
inline constexpr uint32_t kMadtEnabled = 1u << 0;
inline constexpr uint32_t kMadtOnlineCapable = 1u << 1;

// The 8-bit sum of `data` is 0 when this byte is stored at the checksum.
uint8_t Checksum(std::span<const uint8_t> data);

// Which MADT structure describes a processor with this APIC id.
uint8_t MadtProcessorEntryType(uint32_t apic_id);

Bytes BuildFacs();
Bytes BuildDsdt(const MachineInfo& m);
// More than 8 possible vCPUs: FORCE_APIC_CLUSTER_MODEL, as QEMU sets it
// (flat logical destination mode addresses at most 8 local APICs).
Bytes BuildFadt(const MachineInfo& m, uint64_t facs, uint64_t dsdt);
Bytes BuildMadt(const MachineInfo& m);
Bytes BuildMcfg();
Bytes BuildRsdt(std::span<const uint64_t> tables);
Bytes BuildXsdt(std::span<const uint64_t> tables);
Bytes BuildRsdp(uint64_t rsdt, uint64_t xsdt);


}  // namespace strata::amd64::firmware
