#include "devices/fw_cfg.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

namespace strata {

namespace {

// "QEMU", the signature firmware checks before trusting the device.
constexpr uint8_t kSignature[] = {'Q', 'E', 'M', 'U'};

// One FW_CFG_FILE_DIR entry: be32 size, be16 select, be16 reserved,
// char name[56].
constexpr size_t kFileDirEntrySize = 4 + 2 + 2 + kFwCfgMaxFilePath;

// Selectors in the file range must stay below the write-channel bit.
constexpr uint32_t kFileSelectorLimit = kFwCfgWriteChannel;

std::vector<uint8_t> LittleEndian(uint64_t value, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
  return out;
}

void PutBigEndian(std::vector<uint8_t>& out, uint64_t value, size_t bytes) {
  for (size_t i = bytes; i-- > 0;) {
    out.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
}

uint64_t BigEndian(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

FwCfg::FwCfg() {
  items_[kFwCfgSignature] =
      std::vector<uint8_t>(std::begin(kSignature), std::end(kSignature));
  // Bit 0 is "traditional interface present" and always set (fw_cfg.rst;
  // QEMU starts the ID at FW_CFG_VERSION); DMA is not offered.
  items_[kFwCfgId] = LittleEndian(kFwCfgVersionTraditional, 4);
}

uint64_t FwCfg::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  if (offset != kFwCfgDataOffset) return 0;  // selector is write-only
  std::lock_guard lock(mu_);
  auto it = items_.find(selector_);
  if (it == items_.end() || pos_ >= it->second.size()) return 0;
  return it->second[pos_++];
}

void FwCfg::Write(const IoContext& ctx, uint64_t offset, uint32_t size, uint64_t value) {
  if (offset != kFwCfgSelectorOffset || size != 2) return;
  std::lock_guard lock(mu_);
  selector_ = static_cast<uint16_t>(value);
  pos_ = 0;
}

void FwCfg::SetDmaAvailable() {
  SetItem(kFwCfgId,
          LittleEndian(kFwCfgVersionTraditional | kFwCfgVersionDma, 4));
}

void FwCfg::DmaTransfer(GuestMemory& memory, uint64_t desc) {
  uint8_t raw[kFwCfgDmaAccessSize];
  if (!memory.Read(desc, raw, sizeof(raw))) return;  // nowhere to report
  const uint32_t control = static_cast<uint32_t>(BigEndian(raw, 4));
  uint64_t length = BigEndian(raw + 4, 4);
  uint64_t address = BigEndian(raw + 8, 8);
  bool error = false;
  {
    std::lock_guard lock(mu_);
    if (control & kFwCfgDmaSelect) {
      selector_ = static_cast<uint16_t>(control >> 16);
      pos_ = 0;
    }
    // One operation per descriptor, in QEMU's order of precedence.
    const bool read = (control & kFwCfgDmaRead) != 0;
    const bool write = !read && (control & kFwCfgDmaWrite) != 0;
    if (!read && !write && !(control & kFwCfgDmaSkip)) length = 0;
    while (length > 0 && !error) {
      auto it = items_.find(selector_);
      const size_t avail = (it == items_.end() || pos_ >= it->second.size())
                               ? 0
                               : it->second.size() - pos_;
      uint64_t chunk = length;
      if (avail == 0) {
        // Past the end: reads see zeros, skips and writes consume nothing.
        if (read) error = !memory.Fill(address, 0, chunk);
      } else {
        chunk = std::min<uint64_t>(length, avail);
        if (read) {
          error = !memory.Write(address, it->second.data() + pos_, chunk);
        } else if (write) {
          error = true;  // no item is writable
        }
      }
      if (error) break;
      pos_ += chunk;
      address += chunk;
      length -= chunk;
    }
  }
  const uint32_t status = __builtin_bswap32(error ? kFwCfgDmaError : 0u);
  (void)memory.Write(desc, &status, sizeof(status));  // read above: in RAM
}

void FwCfg::SetItem(uint16_t key, std::vector<uint8_t> data) {
  std::lock_guard lock(mu_);
  items_[key] = std::move(data);
}

void FwCfg::SetU16(uint16_t key, uint16_t value) {
  SetItem(key, LittleEndian(value, 2));
}

void FwCfg::SetU32(uint16_t key, uint32_t value) {
  SetItem(key, LittleEndian(value, 4));
}

void FwCfg::SetU64(uint16_t key, uint64_t value) {
  SetItem(key, LittleEndian(value, 8));
}

Result<uint16_t> FwCfg::AddFile(std::string_view name,
                                std::vector<uint8_t> data) {
  if (name.empty() || name.size() >= kFwCfgMaxFilePath ||
      name.find('\0') != std::string_view::npos) {
    return MakeError(Errc::kInvalidArgument,
                     "fw_cfg file name '{}' must be 1 to {} bytes without NUL",
                     name, kFwCfgMaxFilePath - 1);
  }
  if (data.size() > UINT32_MAX) {
    return MakeError(Errc::kOutOfRange,
                     "fw_cfg file '{}' is {} bytes; the directory holds "
                     "32-bit sizes",
                     name, data.size());
  }
  std::lock_guard lock(mu_);
  if (files_.count(std::string(name)) != 0) {
    return MakeError(Errc::kAlreadyExists, "fw_cfg file '{}' already exists",
                     name);
  }
  if (next_file_ >= kFileSelectorLimit) {
    return MakeError(Errc::kOutOfRange,
                     "fw_cfg has no free file selectors for '{}'", name);
  }
  const uint16_t select = next_file_++;
  files_.emplace(std::string(name), select);
  items_[select] = std::move(data);
  RebuildFileDir();
  return select;
}

void FwCfg::RebuildFileDir() {
  std::vector<uint8_t> dir;
  dir.reserve(4 + files_.size() * kFileDirEntrySize);
  PutBigEndian(dir, files_.size(), 4);
  for (const auto& [name, select] : files_) {  // sorted by name
    PutBigEndian(dir, items_[select].size(), 4);
    PutBigEndian(dir, select, 2);
    PutBigEndian(dir, 0, 2);  // reserved
    std::string padded = name;
    padded.resize(kFwCfgMaxFilePath, '\0');
    dir.insert(dir.end(), padded.begin(), padded.end());
  }
  items_[kFwCfgFileDir] = std::move(dir);
}

FwCfgDma::FwCfgDma(std::shared_ptr<FwCfg> fw_cfg, GuestMemory& memory)
    : fw_cfg_(std::move(fw_cfg)), memory_(memory) {
  fw_cfg_->SetDmaAvailable();
}

uint64_t FwCfgDma::Read(const IoContext&, uint64_t offset, uint32_t size) {
  // The register's bytes in address order are the signature's, big-endian.
  uint64_t v = 0;
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t byte = kFwCfgDmaSignature >> (8 * (7 - (offset + i)));
    v |= (byte & 0xff) << (8 * i);
  }
  return v;
}

void FwCfgDma::Write(const IoContext&, uint64_t offset, uint32_t size,
                     uint64_t value) {
  uint64_t desc;
  if (offset == 0 && size == 4) {
    std::lock_guard lock(mu_);
    address_high_ = __builtin_bswap32(static_cast<uint32_t>(value));
    return;
  } else if (offset == 4 && size == 4) {
    std::lock_guard lock(mu_);
    desc = (uint64_t{address_high_} << 32) |
           __builtin_bswap32(static_cast<uint32_t>(value));
    address_high_ = 0;
  } else if (offset == 0 && size == 8) {
    desc = __builtin_bswap64(value);
  } else {
    return;  // other widths and offsets are not part of the interface
  }
  fw_cfg_->DmaTransfer(memory_, desc);
}

}  // namespace strata
