#include "devices/ioapic.h"

#include <cassert>
#include <utility>

#include "core/log.h"

namespace strata {

namespace {

// SDM Vol. 3 §11.11.1 (Figure 11-24): the MSI address.
constexpr uint64_t kMsiAddressBase = 0xfee00000;
constexpr uint32_t kMsiAddressDestShift = 12;       // bits 19:12
constexpr uint64_t kMsiAddressDestLogical = 1u << 2;  // DM
// §11.11.2 (Figure 11-25): the MSI data.
constexpr uint32_t kMsiDataDeliveryModeShift = 8;   // bits 10:8
constexpr uint32_t kMsiDataAssert = 1u << 14;       // level: assert
constexpr uint32_t kMsiDataLevel = 1u << 15;        // trigger mode

uint32_t DeliveryModeOf(uint64_t entry) {
  return static_cast<uint32_t>((entry & kIoapicRteDeliveryMode) >>
                               kIoapicRteDeliveryModeShift);
}

bool IsReservedMode(uint32_t mode) { return mode == 3 || mode == 6; }

// Fixed and lowest-priority interrupts honour the trigger bit; the others
// are edge-triggered by definition (§3.2.4, "Delivery Mode").
bool LevelCapable(uint32_t mode) {
  return mode == static_cast<uint32_t>(IoapicDeliveryMode::kFixed) ||
         mode == static_cast<uint32_t>(IoapicDeliveryMode::kLowestPriority);
}

bool EffectiveLevel(uint64_t entry) {
  return (entry & kIoapicRteLevel) != 0 && LevelCapable(DeliveryModeOf(entry));
}

}  // namespace

std::optional<md::MsiMessage> IoapicEntryToMsi(uint64_t entry) {
  uint32_t mode = DeliveryModeOf(entry);
  if (IsReservedMode(mode)) return std::nullopt;
  md::MsiMessage m;
  uint64_t dest = (entry >> kIoapicRteDestShift) & 0xff;
  m.address = kMsiAddressBase | (dest << kMsiAddressDestShift) |
              ((entry & kIoapicRteDestLogical) ? kMsiAddressDestLogical : 0);
  m.data = static_cast<uint32_t>(entry & kIoapicRteVector) |
           (mode << kMsiDataDeliveryModeShift);
  if (EffectiveLevel(entry)) m.data |= kMsiDataLevel | kMsiDataAssert;
  return m;
}

Ioapic::Ioapic(MsiFn send, RouteFn routes, std::string name)
    : send_(std::move(send)), routes_(std::move(routes)),
      name_(std::move(name)) {
  assert(send_ && "an IOAPIC needs somewhere to send its messages");
  for (uint32_t pin = 0; pin < kIoapicPinCount; ++pin) {
    inputs_[pin].ioapic = this;
    inputs_[pin].pin = pin;
    rte_[pin] = kIoapicRteMasked;  // §3.2.4: masked after reset
  }
}

IrqLine* Ioapic::input(uint32_t pin) {
  assert(pin < kIoapicPinCount);
  return &inputs_[pin];
}

void Ioapic::Service(uint32_t pin, Outbox* out) {
  // Level-triggered: send while asserted, unmasked and not in service.
  uint64_t& e = rte_[pin];
  if (!EffectiveLevel(e) || !asserted_[pin] || (e & kIoapicRteMasked) ||
      (e & kIoapicRteRemoteIrr)) {
    return;
  }
  std::optional<md::MsiMessage> m = IoapicEntryToMsi(e);
  if (!m) return;
  e |= kIoapicRteRemoteIrr;
  out->Add(*m);
}

void Ioapic::SetLevel(uint32_t pin, bool asserted) {
  if (pin >= kIoapicPinCount) return;
  Outbox out;
  {
    std::lock_guard lk(mu_);
    bool was = asserted_[pin];
    asserted_[pin] = asserted;
    uint64_t e = rte_[pin];
    if (EffectiveLevel(e)) {
      Service(pin, &out);
    } else if (asserted && !was && !(e & kIoapicRteMasked)) {
      // A rising edge; an edge on a masked pin is lost.
      if (auto m = IoapicEntryToMsi(e)) out.Add(*m);
    }
  }
  Send(out);
}

void Ioapic::Eoi(uint8_t vector) {
  eois_.fetch_add(1, std::memory_order_relaxed);
  Outbox out;
  {
    std::lock_guard lk(mu_);
    for (uint32_t pin = 0; pin < kIoapicPinCount; ++pin) {
      uint64_t& e = rte_[pin];
      if ((e & kIoapicRteVector) != vector || !(e & kIoapicRteRemoteIrr)) {
        continue;
      }
      e &= ~kIoapicRteRemoteIrr;
      remote_irr_cleared_.fetch_add(1, std::memory_order_relaxed);
      uint32_t before = out.count;
      Service(pin, &out);  // still asserted: the next message, at once
      if (out.count != before) {
        eoi_redeliveries_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  Send(out);
}

void Ioapic::Send(const Outbox& out) {
  for (uint32_t i = 0; i < out.count; ++i) {
    msis_.fetch_add(1, std::memory_order_relaxed);
    send_(out.msgs[i]);
  }
}

std::optional<md::MsiMessage> Ioapic::RouteOf(uint32_t pin) const {
  if (rte_[pin] & kIoapicRteMasked) return std::nullopt;
  return IoapicEntryToMsi(rte_[pin]);
}

void Ioapic::PublishRoute(uint32_t pin) {
  if (!routes_) return;
  std::lock_guard rl(route_mu_);
  std::optional<md::MsiMessage> now;
  {
    std::lock_guard lk(mu_);
    now = RouteOf(pin);
  }
  if (now == published_[pin]) return;
  published_[pin] = now;
  route_updates_.fetch_add(1, std::memory_order_relaxed);
  routes_(pin, now);
}

uint32_t Ioapic::ReadIndirect(uint32_t index) const {
  switch (index) {
    case kIoapicIndexId: return id_;
    case kIoapicIndexVersion: return kIoapicVersionValue;
    // §3.2.3: the arbitration id is loaded from the APIC id.
    case kIoapicIndexArb: return id_;
    default: break;
  }
  if (index >= kIoapicIndexRedirBase &&
      index < kIoapicIndexRedirBase + 2 * kIoapicPinCount) {
    uint64_t e = rte_[(index - kIoapicIndexRedirBase) / 2];
    return static_cast<uint32_t>((index & 1) ? e >> 32 : e);
  }
  return 0;  // unimplemented index
}

uint32_t Ioapic::WriteIndirect(uint32_t index, uint32_t value, Outbox* out) {
  if (index == kIoapicIndexId) {
    id_ = value & kIoapicIdMask;
    return kIoapicPinCount;
  }
  if (index < kIoapicIndexRedirBase ||
      index >= kIoapicIndexRedirBase + 2 * kIoapicPinCount) {
    return kIoapicPinCount;  // VER, ARB and unimplemented: read only
  }
  uint32_t pin = (index - kIoapicIndexRedirBase) / 2;
  uint64_t& e = rte_[pin];
  uint64_t half = (index & 1) ? uint64_t{value} << 32 : uint64_t{value};
  uint64_t half_mask = (index & 1) ? 0xffffffff00000000ull : 0xffffffffull;
  uint64_t writable = kIoapicRteWritable & half_mask;
  uint64_t next = (e & ~writable) | (half & writable);
  // KVM's and QEMU's IOAPICs do the same: an edge entry has no remote IRR.
  if (!EffectiveLevel(next)) next &= ~kIoapicRteRemoteIrr;
  e = next;
  // Unmasked (or turned level) with the line asserted: send now.
  Service(pin, out);
  return pin;
}

uint64_t Ioapic::Read(const IoContext&, uint64_t offset, uint32_t size) {
  if (size != 4 || (offset != kIoapicRegSel && offset != kIoapicWindow)) {
    BadAccess(false, offset, size);
    return 0;
  }
  std::lock_guard lk(mu_);
  return offset == kIoapicRegSel ? regsel_ : ReadIndirect(regsel_);
}

void Ioapic::Write(const IoContext&, uint64_t offset, uint32_t size,
                   uint64_t value) {
  if (size != 4 || (offset != kIoapicRegSel && offset != kIoapicWindow)) {
    BadAccess(true, offset, size);
    return;
  }
  Outbox out;
  uint32_t changed = kIoapicPinCount;
  {
    std::lock_guard lk(mu_);
    if (offset == kIoapicRegSel) {
      regsel_ = static_cast<uint32_t>(value) & 0xff;  // bits 31:8 reserved
    } else {
      changed = WriteIndirect(regsel_, static_cast<uint32_t>(value), &out);
    }
  }
  // The route first: KVM must know a level vector before its EOI comes.
  if (changed < kIoapicPinCount) PublishRoute(changed);
  Send(out);
}

void Ioapic::BadAccess(bool write, uint64_t offset, uint32_t size) {
  bad_accesses_.fetch_add(1, std::memory_order_relaxed);
  if (!bad_access_logged_.exchange(true)) {
    Log().warn("{}: {}-byte {} at offset {:#x} ignored: only aligned 32-bit "
               "accesses to IOREGSEL (0x00) and IOWIN (0x10) are defined "
               "(82093AA datasheet §3.1); further ones are counted only",
               name_, size, write ? "write" : "read", offset);
  }
}

uint64_t Ioapic::entry(uint32_t pin) const {
  assert(pin < kIoapicPinCount);
  std::lock_guard lk(mu_);
  return rte_[pin];
}

Ioapic::Stats Ioapic::stats() const {
  Stats s;
  s.msis = msis_.load(std::memory_order_relaxed);
  s.eois = eois_.load(std::memory_order_relaxed);
  s.remote_irr_cleared = remote_irr_cleared_.load(std::memory_order_relaxed);
  s.eoi_redeliveries = eoi_redeliveries_.load(std::memory_order_relaxed);
  s.route_updates = route_updates_.load(std::memory_order_relaxed);
  s.bad_accesses = bad_accesses_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace strata
