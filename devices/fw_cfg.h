// strata — QEMU's firmware configuration device, legacy I/O interface
// (QEMU docs/specs/fw_cfg.rst; keys from include/standard-headers/linux/
// qemu_fw_cfg.h).
//
// Emulated: the selector register (16-bit write at offset 0; the platform
// registers base 0x510) and the data register (offset 1, port 0x511): each
// byte read returns the next byte of the selected item, the read position
// resets on every select, and reads past the end return 0. Item 0x0000 is
// the "QEMU" signature and 0x0001 the feature bitmap with only bit 0
// (traditional interface) set. Unknown keys read as empty (0). Data-port
// writes are ignored, as in QEMU since 2.4; byte writes at offset 0 are
// QEMU's legacy data writes on the combined port and are ignored too.
// Reads at offset 0 (the write-only selector) return 0. The platform adds
// items with SetItem/SetU16/SetU32/SetU64 (little-endian, as fw_cfg integer
// items are) and named files with AddFile, which maintains the
// FW_CFG_FILE_DIR listing.
//
// The DMA interface (fw_cfg.rst "DMA interface") is a second device over the
// same item store, FwCfgDma, registered at 0x514 (8 bytes): its register is
// the big-endian guest-physical address of a FWCfgDmaAccess descriptor
// (be32 control, be32 length, be64 address). A 32-bit write at offset 0
// sets the high half, a 32-bit write at offset 4 sets the low half and runs
// the transfer (an 8-byte write at offset 0 does both); reads return the
// signature "QEMU CFG". Control bits: SELECT (selector in bits 31-16),
// READ, SKIP, WRITE, ERROR. Every guest address — the descriptor, its data
// buffer — goes through GuestMemory's bounds checks: a descriptor outside
// RAM is ignored (there is nowhere to report), a data buffer that leaves RAM
// stops the transfer with ERROR and copies nothing of that chunk. Reads past
// the end of an item fill the buffer with zeros, as in QEMU; WRITE is
// refused with ERROR (no item is writable). The transfer runs on the vCPU
// thread that wrote the register; the ID item gains the DMA bit.
//
// Missing: the write channel, and the MMIO variant used on arm64 (its
// register layout differs; a separate front end over the same item store
// would provide it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus.h"
#include "core/guest_memory.h"
#include "core/result.h"

namespace strata {

inline constexpr uint64_t kFwCfgIoPort = 0x510;
inline constexpr uint64_t kFwCfgIoLength = 2;
inline constexpr uint64_t kFwCfgSelectorOffset = 0;
inline constexpr uint64_t kFwCfgDataOffset = 1;
// The DMA address register (FwCfgDma), 8 bytes, big-endian.
inline constexpr uint64_t kFwCfgDmaIoPort = 0x514;
inline constexpr uint64_t kFwCfgDmaIoLength = 8;
// What reading the DMA register returns: "QEMU CFG", big-endian.
inline constexpr uint64_t kFwCfgDmaSignature = 0x51454d5520434647ull;

// FWCfgDmaAccess.control bits.
inline constexpr uint32_t kFwCfgDmaError = 0x01;
inline constexpr uint32_t kFwCfgDmaRead = 0x02;
inline constexpr uint32_t kFwCfgDmaSkip = 0x04;
inline constexpr uint32_t kFwCfgDmaSelect = 0x08;
inline constexpr uint32_t kFwCfgDmaWrite = 0x10;
inline constexpr size_t kFwCfgDmaAccessSize = 16;

// Selector keys (qemu_fw_cfg.h).
inline constexpr uint16_t kFwCfgSignature = 0x00;
inline constexpr uint16_t kFwCfgId = 0x01;
inline constexpr uint16_t kFwCfgUuid = 0x02;
inline constexpr uint16_t kFwCfgRamSize = 0x03;
inline constexpr uint16_t kFwCfgNoGraphic = 0x04;
inline constexpr uint16_t kFwCfgNbCpus = 0x05;
inline constexpr uint16_t kFwCfgMachineId = 0x06;
inline constexpr uint16_t kFwCfgKernelAddr = 0x07;
inline constexpr uint16_t kFwCfgKernelSize = 0x08;
inline constexpr uint16_t kFwCfgKernelCmdline = 0x09;
inline constexpr uint16_t kFwCfgInitrdAddr = 0x0a;
inline constexpr uint16_t kFwCfgInitrdSize = 0x0b;
inline constexpr uint16_t kFwCfgBootDevice = 0x0c;
inline constexpr uint16_t kFwCfgNuma = 0x0d;
inline constexpr uint16_t kFwCfgBootMenu = 0x0e;
inline constexpr uint16_t kFwCfgMaxCpus = 0x0f;
inline constexpr uint16_t kFwCfgKernelEntry = 0x10;
inline constexpr uint16_t kFwCfgKernelData = 0x11;
inline constexpr uint16_t kFwCfgInitrdData = 0x12;
inline constexpr uint16_t kFwCfgCmdlineAddr = 0x13;
inline constexpr uint16_t kFwCfgCmdlineSize = 0x14;
inline constexpr uint16_t kFwCfgCmdlineData = 0x15;
inline constexpr uint16_t kFwCfgSetupAddr = 0x16;
inline constexpr uint16_t kFwCfgSetupSize = 0x17;
inline constexpr uint16_t kFwCfgSetupData = 0x18;
inline constexpr uint16_t kFwCfgFileDir = 0x19;
inline constexpr uint16_t kFwCfgFileFirst = 0x20;
inline constexpr uint16_t kFwCfgWriteChannel = 0x4000;
inline constexpr uint16_t kFwCfgArchLocal = 0x8000;
inline constexpr uint16_t kFwCfgInvalid = 0xffff;

// Bits of the kFwCfgId item.
inline constexpr uint32_t kFwCfgVersionTraditional = 0x01;
inline constexpr uint32_t kFwCfgVersionDma = 0x02;

// A file name in the directory, including its terminating NUL.
inline constexpr size_t kFwCfgMaxFilePath = 56;

class FwCfg : public IoDevice {
 public:
  FwCfg();

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) override;
  std::string_view name() const override { return "fw_cfg"; }

  // Sets (or replaces) the item at key. Thread-safe; a guest mid-way
  // through reading the item continues at the same position in the new data.
  void SetItem(uint16_t key, std::vector<uint8_t> data);
  void SetU16(uint16_t key, uint16_t value);
  void SetU32(uint16_t key, uint32_t value);
  void SetU64(uint16_t key, uint64_t value);

  // Adds a named file (e.g. "etc/e820") at the next free selector from
  // kFwCfgFileFirst and lists it in the kFwCfgFileDir item (entries sorted by
  // name, big-endian fields, as QEMU does). Returns the selector. Errors:
  // empty or too long name (kInvalidArgument), a name already added
  // (kAlreadyExists), no selectors left (kOutOfRange).
  [[nodiscard]] Result<uint16_t> AddFile(std::string_view name,
                                         std::vector<uint8_t> data);

  // Runs the DMA transfer whose descriptor is at guest-physical `desc`
  // (FwCfgDma calls it). memory must be safe to access from the caller:
  // a vCPU thread handling an exit, or a holder of the VM read lock.
  void DmaTransfer(GuestMemory& memory, uint64_t desc);

 private:
  friend class FwCfgDma;
  void SetDmaAvailable();
  void RebuildFileDir();  // mu_ held

  std::mutex mu_;
  // All below guarded by mu_.
  std::map<uint16_t, std::vector<uint8_t>> items_;
  std::map<std::string, uint16_t> files_;  // name -> selector
  uint16_t next_file_ = kFwCfgFileFirst;
  uint16_t selector_ = kFwCfgSignature;
  size_t pos_ = 0;  // next byte of the selected item
};

// The DMA address register at 0x514 (see the file comment).
class FwCfgDma : public IoDevice {
 public:
  FwCfgDma(std::shared_ptr<FwCfg> fw_cfg, GuestMemory& memory);

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "fw_cfg-dma"; }

 private:
  const std::shared_ptr<FwCfg> fw_cfg_;
  GuestMemory& memory_;
  std::mutex mu_;
  uint32_t address_high_ = 0;  // guarded by mu_
};

}  // namespace strata
