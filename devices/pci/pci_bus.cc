#include "devices/pci/pci_bus.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/log.h"

namespace strata {

namespace {

// CONFIG_ADDRESS (PCI Local Bus 3.0 §3.2.2.3.2): enable, bus, device,
// function, dword register; bits 30:24 and 1:0 read as zero.
constexpr uint32_t kConfigAddressEnable = 1u << 31;
constexpr uint32_t kConfigAddressMask = 0x80fffffcu;
constexpr uint64_t kConfigDataOffset = 4;
constexpr uint64_t kResetControlOffset = 1;

uint32_t AllOnes(uint32_t size) {
  return static_cast<uint32_t>(MaskToSize(~uint64_t{0}, size));
}

}  // namespace

// One interrupt shared by several functions: asserted while any of them
// asserts it (wired-OR).
class PciBus::SharedLine {
 public:
  explicit SharedLine(std::shared_ptr<IrqLine> out) : out_(std::move(out)) {}

  // One function's view of the line.
  class Source final : public IrqLine {
   public:
    explicit Source(std::shared_ptr<SharedLine> line)
        : line_(std::move(line)) {}
    void SetLevel(bool asserted) override { line_->Set(this, asserted); }

   private:
    friend class SharedLine;
    std::shared_ptr<SharedLine> line_;
    bool level_ = false;  // guarded by line_->mu_
  };

 private:
  void Set(Source* src, bool asserted) {
    std::lock_guard<std::mutex> l(mu_);
    if (src->level_ == asserted) return;
    src->level_ = asserted;
    const uint32_t before = asserted_;
    asserted_ = asserted ? asserted_ + 1 : asserted_ - 1;
    if ((before == 0) != (asserted_ == 0) && out_) out_->SetLevel(asserted_ > 0);
  }

  std::shared_ptr<IrqLine> out_;
  std::mutex mu_;
  uint32_t asserted_ = 0;  // guarded by mu_
};

PciBus::PciBus(Options options) : options_(std::move(options)) {
  if (options_.io_window) io_next_ = options_.io_window->base;
  if (options_.mmio_window) mmio_next_ = options_.mmio_window->base;
}

PciDevice* PciBus::Find(uint32_t slot, uint32_t func) const {
  if (slot >= kPciSlots || func >= kPciFunctions) return nullptr;
  return fns_[slot * kPciFunctions + func].get();
}

Status PciBus::Add(uint32_t slot, uint32_t func,
                   std::shared_ptr<PciDevice> fn) {
  if (slot >= kPciSlots || func >= kPciFunctions || !fn) {
    return MakeError(Errc::kOutOfRange, "no PCI function 00:{:02x}.{}", slot,
                     func);
  }
  if (PciDevice* taken = Find(slot, func)) {
    return MakeError(Errc::kAlreadyExists,
                     "PCI function 00:{:02x}.{} is taken by {}", slot, func,
                     taken->name());
  }
  PciAttachment att;
  att.pio = options_.pio;
  att.mmio = options_.mmio;
  att.msi = options_.msi;
  if (options_.msi_with_requester) {
    // Bus 0: the requester id is the devfn.
    const auto rid = static_cast<uint16_t>(slot << 3 | func);
    att.msi = [f = options_.msi_with_requester, rid](
                  const md::MsiMessage& m) { f(rid, m); };
  }
  att.allow_zero_address = options_.allow_zero_bar_address;
  att.logger = options_.logger;
  const uint32_t pin = fn->ConfigRead(pcicfg::kInterruptPin, 1);
  std::optional<uint32_t> irq;
  if (pin >= 1 && pin <= 4 && options_.intx_route && options_.irq_line) {
    irq = options_.intx_route(slot, pin);
    auto& shared = lines_[*irq];
    if (!shared) {
      std::shared_ptr<IrqLine> out = options_.irq_line(*irq);
      if (!out) {
        return MakeError(Errc::kInvalidArgument,
                         "PCI 00:{:02x}.{}: no interrupt line {} for INT{}#",
                         slot, func, *irq, static_cast<char>('A' + pin - 1));
      }
      shared = std::make_shared<SharedLine>(std::move(out));
    }
    att.intx = std::make_shared<SharedLine::Source>(shared);
  }
  if (options_.io_window || options_.mmio_window) {
    STRATA_TRY_CTX(AssignBars(*fn), fmt::format("PCI function 00:{:02x}.{}",
                                                slot, func));
  }
  if (irq) fn->ConfigWrite(pcicfg::kInterruptLine, 1, *irq & 0xff);
  fn->Attach(std::move(att));
  fns_[slot * kPciFunctions + func] = std::move(fn);
  return Ok();
}

Status PciBus::AssignBars(PciDevice& fn) {
  uint16_t decode = 0;
  // Largest first keeps the natural alignment from wasting the window.
  std::vector<std::pair<uint32_t, PciDevice::BarInfo>> bars;
  for (uint32_t i = 0; i < pcicfg::kBarCount; ++i) {
    if (auto b = fn.Bar(i)) bars.emplace_back(i, *b);
  }
  std::stable_sort(bars.begin(), bars.end(), [](const auto& a, const auto& b) {
    return a.second.size > b.second.size;
  });
  for (const auto& [index, bar] : bars) {
    const bool io = bar.kind == PciBarKind::kIo;
    const std::optional<Window>& w =
        io ? options_.io_window : options_.mmio_window;
    if (!w) continue;
    uint64_t& next = io ? io_next_ : mmio_next_;
    const uint64_t at = (next + bar.size - 1) & ~(bar.size - 1);
    if (at < next || at + bar.size > w->base + w->size) {
      return MakeError(Errc::kOutOfRange,
                       "BAR {} ({:#x} bytes of {}) does not fit in the window "
                       "[{:#x}, {:#x})",
                       index, bar.size, io ? "I/O" : "memory", w->base,
                       w->base + w->size);
    }
    fn.SetBarAddress(index, at);
    next = at + bar.size;
    decode |= io ? pcicfg::kCommandIo : pcicfg::kCommandMemory;
  }
  if (decode != 0) {
    const uint32_t cmd = fn.ConfigRead(pcicfg::kCommand, 2);
    fn.ConfigWrite(pcicfg::kCommand, 2, cmd | decode);
  }
  return Ok();
}

uint32_t PciBus::ConfigRead(uint32_t bus, uint32_t slot, uint32_t func,
                            uint32_t reg, uint32_t size) const {
  PciDevice* fn = bus == 0 ? Find(slot, func) : nullptr;
  if (fn == nullptr) return AllOnes(size);
  uint32_t v = fn->ConfigRead(reg, size);
  if (func == 0 && reg <= pcicfg::kHeaderType &&
      pcicfg::kHeaderType < reg + size) {
    bool multi = false;
    for (uint32_t f = 1; f < kPciFunctions; ++f) {
      multi = multi || Find(slot, f) != nullptr;
    }
    if (multi) {
      v |= uint32_t{pcicfg::kHeaderMultiFunction}
           << (8 * (pcicfg::kHeaderType - reg));
    }
  }
  return v;
}

void PciBus::ConfigWrite(uint32_t bus, uint32_t slot, uint32_t func,
                         uint32_t reg, uint32_t size, uint32_t value) {
  PciDevice* fn = bus == 0 ? Find(slot, func) : nullptr;
  if (fn != nullptr) fn->ConfigWrite(reg, size, value);
}

std::shared_ptr<PciDevice> MakePciHostBridge(uint16_t vendor,
                                             uint16_t device) {
  PciId id;
  id.vendor = vendor;
  id.device = device;
  id.class_code = kPciClassBridge;
  id.subclass = kPciSubclassHostBridge;
  return std::make_shared<PciDevice>(id, "pci-host-bridge");
}

// --- Configuration mechanism #1 ---------------------------------------------

PciConfigIo::PciConfigIo(PciBus* bus, std::function<void()> reset)
    : bus_(bus), reset_(std::move(reset)) {}

uint64_t PciConfigIo::Read(const IoContext&, uint64_t offset, uint32_t size) {
  std::unique_lock<std::mutex> l(mu_);
  if (offset == 0 && size == 4) return address_;
  if (offset == kResetControlOffset && size == 1) return reset_control_;
  if (offset < kConfigDataOffset) return AllOnes(size);
  const uint32_t a = address_;
  l.unlock();
  if ((a & kConfigAddressEnable) == 0) return AllOnes(size);
  const uint32_t reg =
      (a & 0xfc) + static_cast<uint32_t>(offset - kConfigDataOffset);
  return bus_->ConfigRead((a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 7,
                          reg, size);
}

void PciConfigIo::Write(const IoContext&, uint64_t offset, uint32_t size,
                        uint64_t value) {
  std::unique_lock<std::mutex> l(mu_);
  if (offset == 0 && size == 4) {
    address_ = static_cast<uint32_t>(value) & kConfigAddressMask;
    return;
  }
  if (offset == kResetControlOffset && size == 1) {
    reset_control_ =
        static_cast<uint8_t>(value) & (kResetControlSysRst | kResetControlRstCpu);
    const bool reset = (value & kResetControlRstCpu) != 0;
    l.unlock();
    if (reset && reset_) reset_();
    return;
  }
  if (offset < kConfigDataOffset) return;
  const uint32_t a = address_;
  l.unlock();
  if ((a & kConfigAddressEnable) == 0) return;
  const uint32_t reg =
      (a & 0xfc) + static_cast<uint32_t>(offset - kConfigDataOffset);
  bus_->ConfigWrite((a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 7, reg,
                    size, static_cast<uint32_t>(value));
}

// --- ECAM -------------------------------------------------------------------

uint64_t PciEcam::Read(const IoContext& ctx, uint64_t offset, uint32_t size) {
  if (size == 8) {
    return Read(ctx, offset, 4) | Read(ctx, offset + 4, 4) << 32;
  }
  const uint32_t reg = offset & 0xfff;
  if (reg + size > pcicfg::kSize) return AllOnes(size);
  return bus_->ConfigRead(static_cast<uint32_t>(offset >> 20),
                          (offset >> 15) & 0x1f, (offset >> 12) & 7, reg,
                          size);
}

void PciEcam::Write(const IoContext& ctx, uint64_t offset, uint32_t size,
                    uint64_t value) {
  if (size == 8) {
    Write(ctx, offset, 4, value & 0xffffffffu);
    Write(ctx, offset + 4, 4, value >> 32);
    return;
  }
  const uint32_t reg = offset & 0xfff;
  if (reg + size > pcicfg::kSize) return;
  bus_->ConfigWrite(static_cast<uint32_t>(offset >> 20), (offset >> 15) & 0x1f,
                    (offset >> 12) & 7, reg, size,
                    static_cast<uint32_t>(value));
}

// --- I/O window -------------------------------------------------------------

PciIoWindow::PciIoWindow(Bus* pio, std::shared_ptr<spdlog::logger> logger)
    : pio_(pio),
      error_log_(std::make_unique<RateLimit>("PCI I/O window",
                                             std::move(logger))) {}

PciIoWindow::~PciIoWindow() = default;

uint64_t PciIoWindow::Read(const IoContext& ctx, uint64_t offset,
                           uint32_t size) {
  if (size == 8) {
    return Read(ctx, offset, 4) | Read(ctx, offset + 4, 4) << 32;
  }
  Result<uint64_t> v = pio_->Read(ctx, offset, size);
  if (!v) {
    error_log_->Warn("I/O read of port {:#x} ({} bytes): {}", offset, size,
                     v.error().message());
    return AllOnes(size);
  }
  return *v;
}

void PciIoWindow::Write(const IoContext& ctx, uint64_t offset, uint32_t size,
                        uint64_t value) {
  if (size == 8) {
    Write(ctx, offset, 4, value & 0xffffffffu);
    Write(ctx, offset + 4, 4, value >> 32);
    return;
  }
  if (Status s = pio_->Write(ctx, offset, size, value); !s) {
    error_log_->Warn("I/O write of port {:#x} ({} bytes, {:#x}): {}", offset,
                     size, value, s.error().message());
  }
}

Status PciBus::SaveState(StateWriter& out) {
  uint32_t count = 0;
  for (const auto& fn : fns_) count += fn ? 1 : 0;
  out.U32(count);
  for (size_t i = 0; i < fns_.size(); ++i) {
    if (!fns_[i]) continue;
    out.U32(static_cast<uint32_t>(i));
    out.Str(fns_[i]->name());
    STRATA_TRY(fns_[i]->SaveState(out));
  }
  return Ok();
}

Status PciBus::LoadState(StateReader& in) {
  uint32_t count = 0;
  for (const auto& fn : fns_) count += fn ? 1 : 0;
  const uint32_t saved = STRATA_TRY(in.U32());
  if (saved != count) {
    return in.Fail(fmt::format("{} PCI functions saved, this bus has {}",
                               saved, count));
  }
  for (uint32_t n = 0; n < saved; ++n) {
    const uint32_t i = STRATA_TRY(in.U32());
    const std::string name = STRATA_TRY(in.Str());
    if (i >= fns_.size() || !fns_[i] || fns_[i]->name() != name) {
      return in.Fail(fmt::format("PCI function {} at 00:{:02x}.{} is not on "
                                 "this bus", name, i / kPciFunctions,
                                 i % kPciFunctions));
    }
    STRATA_TRY(fns_[i]->LoadState(in));
  }
  return in.ExpectEnd();
}

}  // namespace strata
