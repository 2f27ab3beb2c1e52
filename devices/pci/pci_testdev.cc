#include "devices/pci/pci_testdev.h"

#include <array>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"

namespace strata {

namespace {

constexpr uint32_t kTestsPerBar = 3;
constexpr uint32_t kTestCount = 2 * kTestsPerBar;  // mmio, then portio
constexpr uint32_t kHeaderTest = 0x00;
constexpr uint32_t kHeaderWidth = 0x01;
constexpr uint32_t kHeaderOffset = 0x04;
constexpr uint32_t kHeaderData = 0x08;
constexpr uint32_t kHeaderCount = 0x0c;
constexpr uint32_t kHeaderName = 0x10;
constexpr uint8_t kAccessWidth = 1;
// Where the tests' target offsets start in each BAR (QEMU: IOTEST_MEMSIZE,
// IOTEST_IOSIZE: half of the BAR).
constexpr uint32_t kMemTestBase = 2048;
constexpr uint32_t kIoTestBase = 128;
constexpr const char* kTestNames[kTestsPerBar] = {
    "no-eventfd", "wildcard-eventfd", "datamatch-eventfd"};

// The function's state, shared by its two BARs.
class Testdev : public Snapshottable {
 public:
  Testdev() {
    for (uint32_t i = 0; i < kTestCount; ++i) {
      const bool io = i >= kTestsPerBar;
      Test& t = tests_[i];
      const std::string name = std::string(io ? "portio-" : "mmio-") +
                               kTestNames[i % kTestsPerBar];
      t.match = i % kTestsPerBar != 1;  // all but wildcard-eventfd
      t.offset = (io ? kIoTestBase : kMemTestBase) + i * kAccessWidth;
      t.header.assign(kHeaderName + name.size() + 1, 0);
      t.header[kHeaderTest] = static_cast<uint8_t>(i);
      t.header[kHeaderWidth] = kAccessWidth;
      Store32(t, kHeaderOffset, t.offset);
      t.header[kHeaderData] = t.match ? kPciTestdevDataMatch
                                      : kPciTestdevNoMatch;
      std::memcpy(&t.header[kHeaderName], name.data(), name.size());
    }
  }

  uint8_t ReadByte(uint64_t addr) {
    std::lock_guard<std::mutex> l(mu_);
    if (current_ < 0) return 0;
    const Test& t = tests_[current_];
    // QEMU: the last byte (the name's NUL) and beyond read as 0.
    if (addr + 1 >= t.header.size()) return 0;
    return t.header[addr];
  }

  void WriteByte(bool io, uint64_t addr, uint8_t value) {
    std::lock_guard<std::mutex> l(mu_);
    if (addr == kHeaderTest) {
      current_ = -1;
      if (value >= kTestsPerBar) return;
      current_ = static_cast<int>((io ? kTestsPerBar : 0) + value);
      Store32(tests_[current_], kHeaderCount, 0);
      return;
    }
    if (current_ < 0) return;
    Test& t = tests_[current_];
    if (addr != t.offset) return;
    if (t.match && value != t.header[kHeaderData]) return;
    Store32(t, kHeaderCount, Load32(t, kHeaderCount) + 1);
  }

  // The selected test and each test's count (the rest of a header is
  // fixed at construction).
  Status SaveState(StateWriter& out) override {
    std::lock_guard<std::mutex> l(mu_);
    out.U32(static_cast<uint32_t>(current_));
    for (const Test& t : tests_) out.U32(Load32(t, kHeaderCount));
    return Ok();
  }
  Status LoadState(StateReader& in) override {
    std::lock_guard<std::mutex> l(mu_);
    const auto cur = static_cast<int32_t>(STRATA_TRY(in.U32()));
    if (cur < -1 || cur >= static_cast<int32_t>(kTestCount)) {
      return in.Fail(fmt::format("pci-testdev test {}", cur));
    }
    current_ = cur;
    for (Test& t : tests_) Store32(t, kHeaderCount, STRATA_TRY(in.U32()));
    return Ok();
  }

 private:
  struct Test {
    bool match = false;
    uint32_t offset = 0;
    std::vector<uint8_t> header;  // what the BAR reads: header and name
  };
  static void Store32(Test& t, uint32_t at, uint32_t v) {
    for (uint32_t i = 0; i < 4; ++i) {
      t.header[at + i] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
  static uint32_t Load32(const Test& t, uint32_t at) {
    uint32_t v = 0;
    for (uint32_t i = 0; i < 4; ++i) v |= uint32_t{t.header[at + i]} << (8 * i);
    return v;
  }

  std::mutex mu_;
  std::array<Test, kTestCount> tests_;  // guarded by mu_
  int current_ = -1;                    // guarded by mu_
};

// One BAR: byte-wide registers, as QEMU's (max_access_size 1).
class TestdevBar final : public IoDevice {
 public:
  TestdevBar(std::shared_ptr<Testdev> dev, bool io, std::string name)
      : dev_(std::move(dev)), io_(io), name_(std::move(name)) {}
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t size) override {
    uint64_t v = 0;
    for (uint32_t i = 0; i < size; ++i) {
      v |= uint64_t{dev_->ReadByte(offset + i)} << (8 * i);
    }
    return v;
  }
  void Write(const IoContext&, uint64_t offset, uint32_t size,
             uint64_t value) override {
    for (uint32_t i = 0; i < size; ++i) {
      dev_->WriteByte(io_, offset + i, static_cast<uint8_t>(value >> (8 * i)));
    }
  }
  std::string_view name() const override { return name_; }

 private:
  std::shared_ptr<Testdev> dev_;
  const bool io_;
  const std::string name_;
};

}  // namespace

std::shared_ptr<PciDevice> MakePciTestdev(std::string name) {
  PciId id;
  id.vendor = kPciVendorRedHat;
  id.device = kPciDeviceRedHatTest;
  id.class_code = 0xff;  // PCI_CLASS_OTHERS
  id.subsystem_vendor = 0x1af4;  // QEMU's default subsystem ids
  id.subsystem = 0x1100;
  auto fn = std::make_shared<PciDevice>(id, name);
  auto state = std::make_shared<Testdev>();
  Status s = fn->AddBar(
      0, {PciBarKind::kMem32, kPciTestdevMemSize, false,
          std::make_shared<TestdevBar>(state, false, name + " BAR0")});
  if (s) {
    s = fn->AddBar(1, {PciBarKind::kIo, kPciTestdevIoSize, false,
                       std::make_shared<TestdevBar>(state, true,
                                                    name + " BAR1")});
  }
  fn->SetModelState(state);
  // Fixed, valid BARs: a failure is a programming error.
  STRATA_CHECK(static_cast<bool>(s), "pci-testdev BARs: {}",
               s.error().message());
  return fn;
}

}  // namespace strata
