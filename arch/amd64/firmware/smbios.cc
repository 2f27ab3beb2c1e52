#include "arch/amd64/firmware/smbios.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <string_view>

#include "arch/amd64/firmware/acpi.h"  // Checksum
#include "arch/amd64/platform/pc_layout.h"

namespace strata::amd64::firmware {

namespace {

constexpr uint8_t kTypeBios = 0;
constexpr uint8_t kTypeSystem = 1;
constexpr uint8_t kTypeChassis = 3;
constexpr uint8_t kTypeProcessor = 4;
constexpr uint8_t kTypeMemoryArray = 16;
constexpr uint8_t kTypeMemoryDevice = 17;
constexpr uint8_t kTypeArrayMappedAddress = 19;
constexpr uint8_t kTypeBootInfo = 32;
constexpr uint8_t kTypeEnd = 127;

// Handles by type, as QEMU numbers them.
constexpr uint16_t kHandleBios = 0x000;
constexpr uint16_t kHandleSystem = 0x100;
constexpr uint16_t kHandleChassis = 0x300;
constexpr uint16_t kHandleProcessor = 0x400;
constexpr uint16_t kHandleMemoryArray = 0x1000;
constexpr uint16_t kHandleMemoryDevice = 0x1100;
constexpr uint16_t kHandleMappedAddress = 0x1300;
constexpr uint16_t kHandleBootInfo = 0x2000;
constexpr uint16_t kHandleEnd = 0x7f00;
constexpr uint16_t kHandleNone = 0xffff;
constexpr uint16_t kHandleNoErrorInfo = 0xfffe;

constexpr char kVendor[] = "strata";
constexpr char kVersion[] = "strata 0.1";
constexpr char kReleaseDate[] = "01/01/2026";  // mm/dd/yyyy (§7.1)
constexpr char kProduct[] = "strata pc";

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

// One structure: the formatted area, then its strings (§6.1.3).
class Structure {
 public:
  Structure(uint8_t type, uint8_t length, uint16_t handle) : b_(length, 0) {
    b_[0] = type;
    b_[1] = length;
    Put(2, handle, 2);
  }
  void Put(size_t at, uint64_t v, size_t width) {
    assert(at + width <= b_.size());
    for (size_t i = 0; i < width; ++i)
      b_[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  // Stores the number of the string `s` at `at` (an empty string is 0).
  void PutString(size_t at, std::string_view s) {
    if (s.empty()) return;
    strings_.emplace_back(s);
    Put(at, strings_.size(), 1);
  }
  void AppendTo(std::vector<uint8_t>& out) const {
    out.insert(out.end(), b_.begin(), b_.end());
    for (const std::string& s : strings_) {
      out.insert(out.end(), s.begin(), s.end());
      out.push_back(0);
    }
    if (strings_.empty()) out.push_back(0);
    out.push_back(0);
  }

 private:
  std::vector<uint8_t> b_;
  std::vector<std::string> strings_;
};

}  // namespace

uint32_t SmbiosSockets(const MachineInfo& m) {
  const uint64_t per_socket =
      uint64_t{std::max(m.topo.cores, 1u)} * std::max(m.topo.threads, 1u);
  return static_cast<uint32_t>((std::max(m.cpus, m.max_cpus) + per_socket - 1) /
                               per_socket);
}

std::vector<uint8_t> BuildSmbiosTable(const MachineInfo& m) {
  std::vector<uint8_t> out;

  {  // Type 0, BIOS information (§7.1), the 2.4 layout.
    Structure s(kTypeBios, 0x18, kHandleBios);
    s.PutString(4, kVendor);
    s.PutString(5, kVersion);
    s.Put(6, 0xe800, 2);  // BIOS starting address segment
    s.PutString(8, kReleaseDate);
    s.Put(9, 0, 1);           // ROM size: 64 KiB
    s.Put(0xa, 1u << 3, 8);   // characteristics not supported
    s.Put(0x13, 1u << 4, 1);  // ext. byte 2: a virtual machine
    s.Put(0x14, 0, 1);        // system BIOS major release
    s.Put(0x15, 1, 1);        // minor release
    s.Put(0x16, 0xff, 1);     // no embedded controller firmware
    s.Put(0x17, 0xff, 1);
    s.AppendTo(out);
  }
  {  // Type 1, system information (§7.2).
    Structure s(kTypeSystem, 0x1b, kHandleSystem);
    s.PutString(4, kVendor);
    s.PutString(5, kProduct);
    s.PutString(6, kVersion);
    for (size_t i = 0; i < m.uuid.size(); ++i) s.Put(8 + i, m.uuid[i], 1);
    s.Put(0x18, 0x06, 1);         // wake-up type: power switch
    s.PutString(0x1a, "strata");  // family
    s.AppendTo(out);
  }
  {  // Type 3, chassis (§7.4).
    Structure s(kTypeChassis, 0x15, kHandleChassis);
    s.PutString(4, kVendor);
    s.Put(5, 0x01, 1);    // type: other
    s.Put(9, 0x03, 1);    // boot-up state: safe
    s.Put(0xa, 0x03, 1);  // power supply state: safe
    s.Put(0xb, 0x03, 1);  // thermal state: safe
    s.Put(0xc, 0x03, 1);  // security status: none
    s.AppendTo(out);
  }
  // Type 4, one per socket (§7.5, the 3.0 layout with the 16-bit counts).
  const uint32_t sockets = SmbiosSockets(m);
  const uint32_t cores = std::max(m.topo.cores, 1u);
  const uint32_t threads = std::max(m.topo.threads, 1u);
  for (uint32_t sock = 0; sock < sockets; ++sock) {
    // Present vCPUs of this socket, and the cores with at least one.
    const uint64_t first = uint64_t{sock} * cores * threads;
    const uint64_t present =
        m.cpus > first
            ? std::min<uint64_t>(m.cpus - first, uint64_t{cores} * threads)
            : 0;
    const uint64_t cores_enabled = (present + threads - 1) / threads;
    Structure s(kTypeProcessor, 0x30,
                static_cast<uint16_t>(kHandleProcessor + sock));
    s.PutString(4, "CPU " + std::to_string(sock));
    s.Put(5, 0x03, 1);  // central processor
    s.Put(6, 0xfe, 1);  // family: see family 2
    s.PutString(7, kVendor);
    s.Put(0x11, 0, 1);     // voltage: unknown
    s.Put(0x14, 2000, 2);  // max speed, MHz
    s.Put(0x16, 2000, 2);  // current speed
    // Socket populated; CPU enabled, or a socket left for hot-plug.
    s.Put(0x18, present ? 0x41 : 0x00, 1);
    s.Put(0x19, 0x01, 1);  // upgrade: other
    s.Put(0x1a, kHandleNone, 2);
    s.Put(0x1c, kHandleNone, 2);
    s.Put(0x1e, kHandleNone, 2);
    const uint64_t thread_count = uint64_t{cores} * threads;
    auto byte_count = [](uint64_t n) { return n > 0xff ? 0xff : n; };
    s.Put(0x23, byte_count(cores), 1);
    s.Put(0x24, byte_count(cores_enabled), 1);
    s.Put(0x25, byte_count(thread_count), 1);
    s.Put(0x26, 1u << 2, 2);  // 64-bit capable
    s.Put(0x28, 0x01, 2);     // family 2: other
    s.Put(0x2a, std::min<uint64_t>(cores, 0xffff), 2);
    s.Put(0x2c, std::min<uint64_t>(cores_enabled, 0xffff), 2);
    s.Put(0x2e, std::min<uint64_t>(thread_count, 0xffff), 2);
    s.AppendTo(out);
  }
  const uint64_t ram = m.memory_size;
  const uint32_t dimms =
      static_cast<uint32_t>((ram + kSmbiosDimmSize - 1) / kSmbiosDimmSize);
  {  // Type 16, physical memory array (§7.17).
    Structure s(kTypeMemoryArray, 0x17, kHandleMemoryArray);
    s.Put(4, 0x01, 1);  // location: other
    s.Put(5, 0x03, 1);  // use: system memory
    s.Put(6, 0x03, 1);  // error correction: none
    const uint64_t kib = ram / kKiB;
    if (kib < 0x80000000) {
      s.Put(7, kib, 4);
    } else {
      s.Put(7, 0x80000000, 4);  // see the extended capacity
      s.Put(0xf, ram, 8);
    }
    s.Put(0xb, kHandleNoErrorInfo, 2);
    s.Put(0xd, dimms, 2);
    s.AppendTo(out);
  }
  for (uint32_t d = 0; d < dimms; ++d) {  // Type 17, memory device (§7.18).
    const uint64_t size =
        std::min(kSmbiosDimmSize, ram - uint64_t{d} * kSmbiosDimmSize);
    Structure s(kTypeMemoryDevice, 0x28,
                static_cast<uint16_t>(kHandleMemoryDevice + d));
    s.Put(4, kHandleMemoryArray, 2);
    s.Put(6, kHandleNoErrorInfo, 2);
    s.Put(8, 0xffff, 2);    // total width: unknown
    s.Put(0xa, 0xffff, 2);  // data width: unknown
    const uint64_t mib = size / kMiB;
    if (mib < 0x7fff) {
      s.Put(0xc, mib, 2);
    } else {
      s.Put(0xc, 0x7fff, 2);
      s.Put(0x1c, mib, 4);  // extended size
    }
    s.Put(0xe, 0x09, 1);  // form factor: DIMM
    s.PutString(0x10, "DIMM " + std::to_string(d));
    s.Put(0x12, 0x07, 1);     // type: RAM
    s.Put(0x13, 1u << 1, 2);  // type detail: other
    s.PutString(0x17, kVendor);
    s.AppendTo(out);
  }
  // Type 19, array mapped addresses (§7.20): low RAM from 0, high RAM from
  // 4 GiB. Addresses in KiB, inclusive; past 4 TiB the extended fields.
  struct Range {
    uint64_t start, size;
  };
  uint16_t mapped = 0;
  for (const Range& r : {Range{0, LowRamSize(m)},
                         Range{platform::pc::kHighMemBase, HighRamSize(m)}}) {
    if (r.size == 0) continue;
    Structure s(kTypeArrayMappedAddress, 0x1f,
                static_cast<uint16_t>(kHandleMappedAddress + mapped++));
    const uint64_t end = r.start + r.size - 1;
    if (end / kKiB < 0xffffffff) {
      s.Put(4, r.start / kKiB, 4);
      s.Put(8, end / kKiB, 4);
    } else {
      s.Put(4, 0xffffffff, 4);
      s.Put(8, 0xffffffff, 4);
      s.Put(0xf, r.start, 8);
      s.Put(0x17, end, 8);
    }
    s.Put(0xc, kHandleMemoryArray, 2);
    s.Put(0xe, dimms, 1);  // partition width
    s.AppendTo(out);
  }
  {  // Type 32, system boot information (§7.33): no errors.
    Structure s(kTypeBootInfo, 0x0b, kHandleBootInfo);
    s.AppendTo(out);
  }
  Structure(kTypeEnd, 4, kHandleEnd).AppendTo(out);
  return out;
}

std::vector<uint8_t> BuildSmbiosEntryPoint(uint64_t table_address,
                                           uint32_t table_size) {
  // §5.2.2, Table 2.
  std::vector<uint8_t> b(kSmbios3EntryPointSize, 0);
  const std::string_view anchor = "_SM3_";
  std::copy(anchor.begin(), anchor.end(), b.begin());
  b[6] = kSmbios3EntryPointSize;
  b[7] = 3;    // major
  b[8] = 0;    // minor
  b[9] = 0;    // docrev
  b[0xa] = 1;  // entry point revision: 3.0
  for (size_t i = 0; i < 4; ++i)
    b[0xc + i] = static_cast<uint8_t>(table_size >> (8 * i));
  for (size_t i = 0; i < 8; ++i)
    b[0x10 + i] = static_cast<uint8_t>(table_address >> (8 * i));
  b[5] = Checksum(b);
  return b;
}

}  // namespace strata::amd64::firmware
