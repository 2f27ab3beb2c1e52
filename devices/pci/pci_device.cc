#include "devices/pci/pci_device.h"

#include <cstring>

#include <algorithm>
#include <bit>
#include <utility>

#include "core/log.h"

namespace strata {

using namespace pcicfg;  // NOLINT: the register names read better bare

namespace {

// MSI capability, 64-bit layout (PCI Local Bus 3.0 §6.8.1, Figure 6-9).
constexpr uint32_t kMsiControl = 0x02;
constexpr uint32_t kMsiAddressLo = 0x04;
constexpr uint32_t kMsiAddressHi = 0x08;
constexpr uint32_t kMsiData = 0x0c;
constexpr uint32_t kMsiMask = 0x10;
constexpr uint32_t kMsiPending = 0x14;
constexpr uint32_t kMsiLength = 0x0e;
constexpr uint32_t kMsiLengthMasking = 0x18;
constexpr uint16_t kMsiControlEnable = 1u << 0;
constexpr uint16_t kMsiControl64 = 1u << 7;
constexpr uint16_t kMsiControlMaskable = 1u << 8;

// MSI-X capability and table (PCI Local Bus 3.0 §6.8.2).
constexpr uint32_t kMsixControl = 0x02;
constexpr uint32_t kMsixTable = 0x04;
constexpr uint32_t kMsixPba = 0x08;
constexpr uint32_t kMsixLength = 0x0c;
constexpr uint16_t kMsixControlFunctionMask = 1u << 14;
constexpr uint16_t kMsixControlEnable = 1u << 15;
constexpr uint32_t kMsixEntrySize = 16;
constexpr uint32_t kMsixMaxVectors = 2048;
constexpr uint32_t kMsixEntryMasked = 1u << 0;

constexpr uint16_t kCommandWritable = kCommandIo | kCommandMemory |
                                      kCommandMaster | kCommandParity |
                                      kCommandSerr | kCommandIntxDisable;
constexpr uint32_t kCacheLineSize = 0x0c;

bool Overlaps(uint32_t off, uint32_t size, uint32_t start, uint32_t len) {
  return off < start + len && start < off + size;
}

}  // namespace

// The MSI-X table and PBA BAR. Holds the function weakly: the bus may keep
// a handler a little past the function's life (core/bus.h).
class PciDevice::MsixBar final : public IoDevice {
 public:
  MsixBar(std::weak_ptr<PciDevice> fn, std::string name)
      : fn_(std::move(fn)), name_(std::move(name)) {}
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t size) override {
    auto fn = fn_.lock();
    return fn ? fn->MsixRead(offset, size) : 0;
  }
  void Write(const IoContext&, uint64_t offset, uint32_t size,
             uint64_t value) override {
    if (auto fn = fn_.lock()) fn->MsixWrite(offset, size, value);
  }
  std::string_view name() const override { return name_; }

 private:
  std::weak_ptr<PciDevice> fn_;
  std::string name_;
};

PciDevice::PciDevice(const PciId& id, std::string name)
    : name_(std::move(name)) {
  Put(kVendorId, 2, id.vendor);
  Put(kDeviceId, 2, id.device);
  Put(kRevision, 1, id.revision);
  Put(kProgIf, 1, id.prog_if);
  Put(kSubclass, 1, id.subclass);
  Put(kClass, 1, id.class_code);
  Put(kSubsystemVendorId, 2, id.subsystem_vendor);
  Put(kSubsystemId, 2, id.subsystem);
  Put(kInterruptPin, 1, id.interrupt_pin);
  SetWritable(kCommand, 2, kCommandWritable);
  SetWriteOneToClear(kStatus, 2, kStatusW1c);
  SetWritable(kCacheLineSize, 1, 0xff);
  SetWritable(kInterruptLine, 1, 0xff);
}

PciDevice::~PciDevice() = default;

uint32_t PciDevice::Get(uint32_t offset, uint32_t size) const {
  uint32_t v = 0;
  for (uint32_t i = 0; i < size; ++i) {
    if (offset + i < kSize) v |= uint32_t{cfg_[offset + i]} << (8 * i);
  }
  return v;
}

void PciDevice::Put(uint32_t offset, uint32_t size, uint32_t value) {
  for (uint32_t i = 0; i < size && offset + i < kSize; ++i) {
    cfg_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

void PciDevice::SetConfig(uint32_t offset, uint32_t size, uint32_t value) {
  std::lock_guard<std::mutex> l(mu_);
  Put(offset, size, value);
}

void PciDevice::SetWritable(uint32_t offset, uint32_t size, uint32_t mask) {
  for (uint32_t i = 0; i < size && offset + i < kSize; ++i) {
    wmask_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
  }
}

void PciDevice::SetWriteOneToClear(uint32_t offset, uint32_t size,
                                   uint32_t mask) {
  for (uint32_t i = 0; i < size && offset + i < kSize; ++i) {
    w1cmask_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
  }
}

// --- Building -------------------------------------------------------------

Status PciDevice::AddBar(uint32_t index, const PciBarSpec& spec) {
  const bool is64 = spec.kind == PciBarKind::kMem64;
  if (index >= kBarCount || (is64 && index + 1 >= kBarCount)) {
    return MakeError(Errc::kInvalidArgument, "{}: no BAR {}{}", name_, index,
                     is64 ? " for a 64-bit BAR (needs two)" : "");
  }
  if (bars_[index].size != 0 || bars_[index].upper ||
      (is64 && (bars_[index + 1].size != 0 || bars_[index + 1].upper))) {
    return MakeError(Errc::kInvalidArgument, "{}: BAR {} is already in use",
                     name_, index);
  }
  if (!spec.handler) {
    return MakeError(Errc::kInvalidArgument, "{}: BAR {} has no handler",
                     name_, index);
  }
  const bool io = spec.kind == PciBarKind::kIo;
  const uint64_t min = io ? 4 : 16;
  const uint64_t max = io ? 256 : spec.kind == PciBarKind::kMem32
                                      ? uint64_t{1} << 31
                                      : uint64_t{1} << 62;
  if (!std::has_single_bit(spec.size) || spec.size < min ||
      spec.size > max) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: BAR {} size {:#x} is not a power of two in "
                     "[{:#x}, {:#x}]",
                     name_, index, spec.size, min, max);
  }
  BarState& b = bars_[index];
  b.kind = spec.kind;
  b.size = spec.size;
  b.prefetchable = spec.prefetchable && !io;
  b.handler = spec.handler;
  const uint32_t reg = kBar0 + 4 * index;
  const uint64_t addr_mask = ~(spec.size - 1);
  std::lock_guard<std::mutex> l(mu_);
  if (io) {
    // 32-bit I/O decode, as QEMU's devices: sizing reads back every upper
    // bit (kvm-unit-tests' arm allocator sizes BARs with all 32 bits); an
    // address past the machine's port space decodes nothing (BarAddress).
    Put(reg, 4, kBarIo);
    SetWritable(reg, 4, static_cast<uint32_t>(addr_mask) & 0xfffffffcu);
  } else {
    Put(reg, 4, (is64 ? kBarMem64 : 0) | (b.prefetchable ? kBarPrefetch : 0));
    SetWritable(reg, 4, static_cast<uint32_t>(addr_mask) & 0xfffffff0u);
    if (is64) {
      bars_[index + 1].upper = true;
      SetWritable(reg + 4, 4, static_cast<uint32_t>(addr_mask >> 32));
    }
  }
  return Ok();
}

Result<uint32_t> PciDevice::AddCapability(uint8_t id, uint32_t length) {
  std::lock_guard<std::mutex> l(mu_);
  const uint32_t at = (next_cap_ + 3) & ~3u;
  if (length < 2 || at + length > kCapEnd) {
    return MakeError(Errc::kOutOfRange,
                     "{}: no room for a {}-byte capability {:#x} at {:#x}",
                     name_, length, id, at);
  }
  Put(at, 1, id);
  Put(at + 1, 1, 0);
  if (last_cap_ == 0) {
    Put(kCapPtr, 1, at);
  } else {
    Put(last_cap_ + 1, 1, at);
  }
  Put(kStatus, 2, Get(kStatus, 2) | kStatusCapList);
  last_cap_ = at;
  next_cap_ = at + length;
  return at;
}

Result<uint32_t> PciDevice::AddMsi(bool per_vector_mask) {
  if (msi_cap_ != 0) {
    return MakeError(Errc::kInvalidArgument, "{}: MSI added twice", name_);
  }
  const uint32_t at = STRATA_TRY(
      AddCapability(kCapIdMsi, per_vector_mask ? kMsiLengthMasking
                                               : kMsiLength));
  std::lock_guard<std::mutex> l(mu_);
  msi_cap_ = at;
  msi_masking_ = per_vector_mask;
  Put(at + kMsiControl, 2,
      kMsiControl64 | (per_vector_mask ? kMsiControlMaskable : 0));
  SetWritable(at + kMsiControl, 2, kMsiControlEnable);
  SetWritable(at + kMsiAddressLo, 4, 0xfffffffcu);
  SetWritable(at + kMsiAddressHi, 4, 0xffffffffu);
  SetWritable(at + kMsiData, 2, 0xffff);
  if (per_vector_mask) SetWritable(at + kMsiMask, 4, 0x1);
  return at;
}

Result<uint32_t> PciDevice::AddMsix(uint32_t bar, uint32_t vectors) {
  if (msix_cap_ != 0) {
    return MakeError(Errc::kInvalidArgument, "{}: MSI-X added twice", name_);
  }
  if (vectors == 0 || vectors > kMsixMaxVectors) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: MSI-X wants 1-{} vectors, not {}", name_,
                     kMsixMaxVectors, vectors);
  }
  const uint64_t table = uint64_t{vectors} * kMsixEntrySize;
  const uint64_t pba = (table + 7) & ~uint64_t{7};
  const uint64_t pba_len = ((vectors + 63) / 64) * 8;
  const uint64_t size = std::max<uint64_t>(4096, std::bit_ceil(pba + pba_len));
  auto handler = std::make_shared<MsixBar>(weak_from_this(), name_ + " MSI-X");
  STRATA_TRY(AddBar(bar, {PciBarKind::kMem32, size, false, handler}));
  const uint32_t at = STRATA_TRY(AddCapability(kCapIdMsix, kMsixLength));
  std::lock_guard<std::mutex> l(mu_);
  msix_cap_ = at;
  msix_bar_ = bar;
  msix_pba_offset_ = pba;
  msix_table_.assign(vectors, MsixEntry{});
  msix_pending_.assign(vectors, false);
  Put(at + kMsixControl, 2, vectors - 1);
  SetWritable(at + kMsixControl, 2,
              kMsixControlEnable | kMsixControlFunctionMask);
  Put(at + kMsixTable, 4, bar);  // offset 0
  Put(at + kMsixPba, 4, static_cast<uint32_t>(pba) | bar);
  return at;
}

// --- Configuration cycles ---------------------------------------------------

void PciDevice::Attach(PciAttachment attachment) {
  std::lock_guard<std::mutex> l(mu_);
  att_ = std::move(attachment);
  conflict_log_ = std::make_unique<RateLimit>("PCI BAR placement", att_.logger);
  attached_ = true;
  UpdateMappings();
}

uint32_t PciDevice::ConfigRead(uint32_t offset, uint32_t size) {
  std::lock_guard<std::mutex> l(mu_);
  return Get(offset, size);
}

void PciDevice::ConfigWrite(uint32_t offset, uint32_t size, uint32_t value) {
  std::vector<md::MsiMessage> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (uint32_t i = 0; i < size && offset + i < kSize; ++i) {
      const uint32_t o = offset + i;
      const uint8_t v = static_cast<uint8_t>(value >> (8 * i));
      uint8_t n = static_cast<uint8_t>((cfg_[o] & ~wmask_[o]) | (v & wmask_[o]));
      n = static_cast<uint8_t>(n & ~(v & w1cmask_[o]));
      cfg_[o] = n;
    }
    if (Overlaps(offset, size, kCommand, 2) ||
        Overlaps(offset, size, kBar0, 4 * kBarCount)) {
      UpdateMappings();
    }
    if (msi_cap_ != 0) MsiWritten(&due);
    if (msix_cap_ != 0) MsixWritten(&due);
    UpdateIntx();
  }
  Deliver(due);
  ConfigWritten(offset, size);
}

// --- BARs -------------------------------------------------------------------

std::optional<uint64_t> PciDevice::BarAddress(uint32_t index) const {
  const BarState& b = bars_[index];
  const uint32_t lo = Get(kBar0 + 4 * index, 4);
  uint64_t addr = 0;
  uint64_t top = 0;  // the space's last address
  switch (b.kind) {
    case PciBarKind::kIo:
      addr = lo & ~uint32_t{3};
      top = kPioMaxPort;
      break;
    case PciBarKind::kMem32:
      addr = lo & ~uint32_t{0xf};
      top = 0xffffffffu;
      break;
    case PciBarKind::kMem64:
      addr = (uint64_t{Get(kBar0 + 4 * index + 4, 4)} << 32) |
             (lo & ~uint32_t{0xf});
      top = UINT64_MAX;
      break;
  }
  // QEMU's pci_bar_address: 0 (unless the machine allows it) and a range
  // reaching the top of the space (what a sizing write leaves) are not
  // decoded.
  if ((addr == 0 && !att_.allow_zero_address) || addr + (b.size - 1) >= top ||
      addr + (b.size - 1) < addr) {
    return std::nullopt;
  }
  return addr;
}

void PciDevice::UpdateMappings() {
  if (!attached_) return;
  const uint16_t cmd = command();
  for (uint32_t i = 0; i < kBarCount; ++i) {
    BarState& b = bars_[i];
    if (b.size == 0 || b.upper) continue;
    const bool io = b.kind == PciBarKind::kIo;
    const bool decode = (cmd & (io ? kCommandIo : kCommandMemory)) != 0;
    const std::optional<uint64_t> want =
        decode ? BarAddress(i) : std::nullopt;
    if (want == b.mapped) continue;
    Bus* bus = io ? att_.pio : att_.mmio;
    if (bus == nullptr) continue;
    if (b.mapped && want) {
      Status s = bus->Move(*b.mapped, *want);
      if (s) {
        b.mapped = want;
        continue;
      }
      conflict_log_->Warn("{}: BAR {} cannot move from {:#x} to {:#x}, "
                          "leaving it unmapped: {}",
                          name_, i, *b.mapped, *want, s.error().message());
      (void)bus->Unregister(*b.mapped);
      b.mapped.reset();
      continue;
    }
    if (b.mapped) {
      (void)bus->Unregister(*b.mapped);
      b.mapped.reset();
      continue;
    }
    Status s = bus->Register(*want, b.size, b.handler);
    if (s) {
      b.mapped = want;
    } else {
      conflict_log_->Warn("{}: BAR {} cannot be placed at {:#x}, leaving it "
                          "unmapped: {}",
                          name_, i, *want, s.error().message());
    }
  }
}

std::optional<PciDevice::BarInfo> PciDevice::Bar(uint32_t index) {
  std::lock_guard<std::mutex> l(mu_);
  if (index >= kBarCount || bars_[index].size == 0) return std::nullopt;
  return BarInfo{bars_[index].kind, bars_[index].size, bars_[index].mapped};
}

void PciDevice::SetBarAddress(uint32_t index, uint64_t address) {
  if (index >= kBarCount) return;
  ConfigWrite(kBar0 + 4 * index, 4, static_cast<uint32_t>(address));
  if (bars_[index].kind == PciBarKind::kMem64) {
    ConfigWrite(kBar0 + 4 * index + 4, 4,
                static_cast<uint32_t>(address >> 32));
  }
}

// --- Interrupts -------------------------------------------------------------

bool PciDevice::MsiEnabledLocked() const {
  return msi_cap_ != 0 &&
         (Get(msi_cap_ + kMsiControl, 2) & kMsiControlEnable) != 0;
}

bool PciDevice::MsixEnabledLocked() const {
  return msix_cap_ != 0 &&
         (Get(msix_cap_ + kMsixControl, 2) & kMsixControlEnable) != 0;
}

bool PciDevice::MsixFunctionMasked() const {
  return (Get(msix_cap_ + kMsixControl, 2) & kMsixControlFunctionMask) != 0;
}

bool PciDevice::msi_enabled() {
  std::lock_guard<std::mutex> l(mu_);
  return MsiEnabledLocked();
}

bool PciDevice::msix_enabled() {
  std::lock_guard<std::mutex> l(mu_);
  return MsixEnabledLocked();
}

void PciDevice::UpdateIntx() {
  const bool out = intx_level_ &&
                   (command() & kCommandIntxDisable) == 0 &&
                   !MsiEnabledLocked() && !MsixEnabledLocked();
  if (out == intx_out_) return;
  intx_out_ = out;
  if (att_.intx) att_.intx->SetLevel(out);
}

void PciDevice::SetIntx(bool asserted) {
  std::lock_guard<std::mutex> l(mu_);
  intx_level_ = asserted;
  uint16_t status = static_cast<uint16_t>(Get(kStatus, 2));
  status = asserted ? (status | kStatusIntx) : (status & ~kStatusIntx);
  Put(kStatus, 2, status);
  UpdateIntx();
}

void PciDevice::MsiWritten(std::vector<md::MsiMessage>* out) {
  if (!msi_pending_ || !MsiEnabledLocked()) return;
  if (msi_masking_ && (Get(msi_cap_ + kMsiMask, 4) & 1) != 0) return;
  msi_pending_ = false;
  Put(msi_cap_ + kMsiPending, 4, 0);
  if ((command() & kCommandMaster) == 0) return;
  out->push_back({.address = (uint64_t{Get(msi_cap_ + kMsiAddressHi, 4)} << 32) |
                             Get(msi_cap_ + kMsiAddressLo, 4),
                  .data = Get(msi_cap_ + kMsiData, 2)});
}

void PciDevice::MsixWritten(std::vector<md::MsiMessage>* out) {
  if (!MsixEnabledLocked() || MsixFunctionMasked()) return;
  const bool master = (command() & kCommandMaster) != 0;
  for (size_t v = 0; v < msix_table_.size(); ++v) {
    const MsixEntry& e = msix_table_[v];
    if (!msix_pending_[v] || (e.control & kMsixEntryMasked) != 0) continue;
    msix_pending_[v] = false;
    if (master) out->push_back({.address = e.address, .data = e.data});
  }
}

void PciDevice::Notify(uint32_t vector) {
  std::vector<md::MsiMessage> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    const bool master = (command() & kCommandMaster) != 0;
    if (MsixEnabledLocked()) {
      if (vector >= msix_table_.size()) return;
      const MsixEntry& e = msix_table_[vector];
      if (MsixFunctionMasked() || (e.control & kMsixEntryMasked) != 0) {
        msix_pending_[vector] = true;
      } else if (master) {
        due.push_back({.address = e.address, .data = e.data});
      }
    } else if (MsiEnabledLocked()) {
      if (vector != 0) return;  // one message
      if (msi_masking_ && (Get(msi_cap_ + kMsiMask, 4) & 1) != 0) {
        msi_pending_ = true;
        Put(msi_cap_ + kMsiPending, 4, 1);
      } else if (master) {
        due.push_back(
            {.address = (uint64_t{Get(msi_cap_ + kMsiAddressHi, 4)} << 32) |
                        Get(msi_cap_ + kMsiAddressLo, 4),
             .data = Get(msi_cap_ + kMsiData, 2)});
      }
    }
  }
  Deliver(due);
}

void PciDevice::Deliver(const std::vector<md::MsiMessage>& msgs) {
  if (!att_.msi) return;
  for (const md::MsiMessage& m : msgs) att_.msi(m);
}

// --- The MSI-X BAR ----------------------------------------------------------

uint64_t PciDevice::MsixRead(uint64_t offset, uint32_t size) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t table_len = msix_table_.size() * kMsixEntrySize;
  uint64_t v = 0;
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t o = offset + i;
    uint8_t byte = 0;
    if (o < table_len) {
      const MsixEntry& e = msix_table_[o / kMsixEntrySize];
      const uint64_t f = o % kMsixEntrySize;
      const uint64_t words[2] = {e.address,
                                 uint64_t{e.data} | uint64_t{e.control} << 32};
      byte = static_cast<uint8_t>(words[f / 8] >> (8 * (f % 8)));
    } else if (o >= msix_pba_offset_) {
      const uint64_t bit0 = (o - msix_pba_offset_) * 8;
      for (uint64_t b = 0; b < 8; ++b) {
        if (bit0 + b < msix_pending_.size() && msix_pending_[bit0 + b]) {
          byte = static_cast<uint8_t>(byte | (1u << b));
        }
      }
    }
    v |= uint64_t{byte} << (8 * i);
  }
  return v;
}

void PciDevice::MsixWrite(uint64_t offset, uint32_t size, uint64_t value) {
  std::vector<md::MsiMessage> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    const uint64_t table_len = msix_table_.size() * kMsixEntrySize;
    for (uint32_t i = 0; i < size; ++i) {
      const uint64_t o = offset + i;
      if (o >= table_len) continue;  // the PBA is read-only
      MsixEntry& e = msix_table_[o / kMsixEntrySize];
      const uint64_t f = o % kMsixEntrySize;
      const uint64_t byte = (value >> (8 * i)) & 0xff;
      const uint32_t shift = 8 * (f % 8);
      if (f < 8) {
        e.address = (e.address & ~(uint64_t{0xff} << shift)) | byte << shift;
      } else if (f < 12) {
        e.data = static_cast<uint32_t>((e.data & ~(0xffu << shift)) |
                                       byte << shift);
      } else {
        const uint32_t s = 8 * static_cast<uint32_t>(f - 12);
        // Only the mask bit is writable (§6.8.2.9).
        const uint32_t c = static_cast<uint32_t>(
            (e.control & ~(0xffu << s)) | byte << s);
        e.control = c & kMsixEntryMasked;
      }
    }
    MsixWritten(&due);
  }
  Deliver(due);
}

// --- Snapshots ---------------------------------------------------------------

Status PciDevice::SaveState(StateWriter& out) {
  {
    std::lock_guard<std::mutex> l(mu_);
    out.U32(1);  // this encoding's version
    out.Bytes(cfg_);
    out.Bool(intx_level_);
    out.Bool(intx_out_);
    out.Bool(msi_pending_);
    out.U64(msix_table_.size());
    for (size_t i = 0; i < msix_table_.size(); ++i) {
      out.U64(msix_table_[i].address);
      out.U32(msix_table_[i].data);
      out.U32(msix_table_[i].control);
      out.Bool(msix_pending_[i]);
    }
  }
  out.Bool(model_state_ != nullptr);
  if (model_state_) {
    StateWriter m;
    STRATA_TRY_CTX(model_state_->SaveState(m), name_);
    out.Blob(m.data());
  }
  return Ok();
}

Status PciDevice::LoadState(StateReader& in) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (STRATA_TRY(in.U32()) != 1) {
      return in.Fail("unknown PCI function state version");
    }
    std::span<const uint8_t> cfg = STRATA_TRY(in.Bytes(cfg_.size()));
    // The read-only parts must be this function's: a snapshot restores
    // into the same machine.
    if (std::memcmp(cfg.data(), cfg_.data(), 4) != 0) {
      return in.Fail(fmt::format("the saved function at this address is not "
                                 "a {}", name_));
    }
    std::memcpy(cfg_.data(), cfg.data(), cfg_.size());
    intx_level_ = STRATA_TRY(in.Bool());
    const bool intx_out = STRATA_TRY(in.Bool());
    msi_pending_ = STRATA_TRY(in.Bool());
    const uint64_t n = STRATA_TRY(in.U64());
    if (n != msix_table_.size()) {
      return in.Fail(fmt::format("{} MSI-X vectors, {} has {}", n, name_,
                                 msix_table_.size()));
    }
    for (size_t i = 0; i < n; ++i) {
      msix_table_[i].address = STRATA_TRY(in.U64());
      msix_table_[i].data = STRATA_TRY(in.U32());
      msix_table_[i].control = STRATA_TRY(in.U32());
      msix_pending_[i] = STRATA_TRY(in.Bool());
    }
    UpdateMappings();
    // The line is shared (wired-OR on the bus): drive it as saved so the
    // bus's count matches the interrupt controller's restored level.
    intx_out_ = false;
    if (intx_out && att_.intx) {
      intx_out_ = true;
      att_.intx->SetLevel(true);
    }
  }
  const bool has_model = STRATA_TRY(in.Bool());
  if (has_model != (model_state_ != nullptr)) {
    return in.Fail(fmt::format("model state {} in the snapshot for {}",
                               has_model ? "present" : "missing", name_));
  }
  if (model_state_) {
    std::span<const uint8_t> b = STRATA_TRY(in.Blob());
    StateReader m(b, in.what() + " (" + name_ + ")");
    STRATA_TRY(model_state_->LoadState(m));
    STRATA_TRY(m.ExpectEnd());
  }
  return Ok();
}

}  // namespace strata
