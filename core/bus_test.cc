#include "core/bus.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "core/log.h"

namespace strata {
namespace {

// Records every access; reads return (offset << 8) | size so tests can see
// which offset the bus computed.
class FakeDevice : public IoDevice {
 public:
  explicit FakeDevice(std::string name) : name_(std::move(name)) {}
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t size) override {
    reads.fetch_add(1);
    last_offset.store(offset);
    return (offset << 8) | size;
  }
  void Write(const IoContext&, uint64_t offset, uint32_t size, uint64_t value) override {
    writes.fetch_add(1);
    last_offset.store(offset);
    last_value.store(value);
  }
  std::string_view name() const override { return name_; }

  std::atomic<int> reads{0};
  std::atomic<int> writes{0};
  std::atomic<uint64_t> last_offset{0};
  std::atomic<uint64_t> last_value{0};

 private:
  std::string name_;
};

// Returns a constant wider than any access, to check the bus masks reads.
class WideDevice : public IoDevice {
 public:
  uint64_t Read(const IoContext&, uint64_t, uint32_t) override { return ~uint64_t{0}; }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t value) override { last = value; }
  std::string_view name() const override { return "wide"; }
  uint64_t last = 0;
};

// Diverts the strata logger's output into a string for the life of the
// object (replacing its sinks keeps the test log readable).
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    sink_->set_pattern("%v");
    saved_ = Log().sinks();
    Log().sinks() = {sink_};
  }
  ~LogCapture() { Log().sinks() = saved_; }
  std::string text() {
    Log().flush();
    return out_.str();
  }
  int Count(const std::string& needle) {
    std::string t = text();
    int n = 0;
    for (size_t pos = t.find(needle); pos != std::string::npos;
         pos = t.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::vector<spdlog::sink_ptr> saved_;
};

TEST(BusTest, RegisterAndDispatch) {
  Bus bus(BusKind::kPio);
  auto dev = std::make_shared<FakeDevice>("dev");
  ASSERT_TRUE(bus.Register(0x3f8, 8, dev));
  auto r = bus.Read({}, 0x3fa, 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (2u << 8) | 2u);
  ASSERT_TRUE(bus.Write({}, 0x3ff, 1, 0x41));
  EXPECT_EQ(dev->last_offset.load(), 7u);
  EXPECT_EQ(dev->last_value.load(), 0x41u);
  EXPECT_EQ(bus.unclaimed_count(), 0u);
  EXPECT_EQ(bus.kind(), BusKind::kPio);
}

TEST(BusTest, RejectsZeroLengthNullAndWrap) {
  Bus mmio(BusKind::kMmio);
  auto dev = std::make_shared<FakeDevice>("dev");
  auto s = mmio.Register(0x1000, 0, dev);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(s.error().message().find("length 0"), std::string::npos);

  s = mmio.Register(0x1000, 0x10, nullptr);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument);

  s = mmio.Register(0xffff'ffff'ffff'f000, 0x2000, dev);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kOutOfRange);
  EXPECT_NE(s.error().message().find("wraps"), std::string::npos);

  // Ending exactly at the top of the address space does not wrap.
  ASSERT_TRUE(mmio.Register(0xffff'ffff'ffff'f000, 0x1000, dev));
  auto r = mmio.Read({}, 0xffff'ffff'ffff'fff8, 8);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (0xff8u << 8) | 8u);
  // An access that itself wraps is unclaimed, not a crash.
  r = mmio.Read({}, 0xffff'ffff'ffff'fffc, 8);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(mmio.unclaimed_count(), 1u);
}

TEST(BusTest, PioRejectsRangesBeyond64K) {
  Bus pio(BusKind::kPio);
  auto dev = std::make_shared<FakeDevice>("dev");
  auto s = pio.Register(0xfff8, 9, dev);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kOutOfRange);
  s = pio.Register(0x10000, 1, dev);
  ASSERT_FALSE(s);
  EXPECT_TRUE(pio.Register(0xfff8, 8, dev));
  // MMIO has no such limit.
  Bus mmio(BusKind::kMmio);
  EXPECT_TRUE(mmio.Register(0x10000, 1, dev));
}

TEST(BusTest, AdjacentRangesAreAccepted) {
  Bus bus(BusKind::kMmio);
  auto a = std::make_shared<FakeDevice>("a");
  auto b = std::make_shared<FakeDevice>("b");
  auto c = std::make_shared<FakeDevice>("c");
  ASSERT_TRUE(bus.Register(0x1000, 0x100, a));
  ASSERT_TRUE(bus.Register(0x1100, 0x100, b));  // touches a's end
  ASSERT_TRUE(bus.Register(0x0f00, 0x100, c));  // touches a's start
  ASSERT_TRUE(bus.Read({}, 0x10ff, 1));
  EXPECT_EQ(a->reads.load(), 1);
  ASSERT_TRUE(bus.Read({}, 0x1100, 1));
  EXPECT_EQ(b->reads.load(), 1);
  ASSERT_TRUE(bus.Read({}, 0x0fff, 1));
  EXPECT_EQ(c->reads.load(), 1);
}

TEST(BusTest, OneByteOverlapsAreRejectedNamingBothDevices) {
  Bus bus(BusKind::kMmio);
  auto a = std::make_shared<FakeDevice>("alpha");
  auto b = std::make_shared<FakeDevice>("beta");
  ASSERT_TRUE(bus.Register(0x1000, 0x100, a));

  // Overlaps the last byte of alpha.
  auto s = bus.Register(0x10ff, 0x10, b);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kAlreadyExists);
  const std::string& m = s.error().message();
  EXPECT_NE(m.find("alpha"), std::string::npos) << m;
  EXPECT_NE(m.find("beta"), std::string::npos) << m;
  EXPECT_NE(m.find("[0x1000, 0x10ff]"), std::string::npos) << m;
  EXPECT_NE(m.find("[0x10ff, 0x110e]"), std::string::npos) << m;

  // Overlaps the first byte of alpha.
  s = bus.Register(0xff0, 0x11, b);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kAlreadyExists);
  // Inside, and enclosing.
  EXPECT_FALSE(bus.Register(0x1010, 1, b));
  EXPECT_FALSE(bus.Register(0x0, 0x10000, b));
  // Same base.
  EXPECT_FALSE(bus.Register(0x1000, 1, b));
  EXPECT_EQ(bus.Ranges().size(), 1u);
}

TEST(BusTest, UnregisterNeedsExactBase) {
  Bus bus(BusKind::kPio);
  auto dev = std::make_shared<FakeDevice>("dev");
  ASSERT_TRUE(bus.Register(0x60, 4, dev));
  auto s = bus.Unregister(0x61);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kNotFound);
  ASSERT_TRUE(bus.Unregister(0x60));
  EXPECT_TRUE(bus.Ranges().empty());
  EXPECT_FALSE(bus.Unregister(0x60));
  // The range is free again.
  EXPECT_TRUE(bus.Register(0x62, 1, dev));
}

TEST(BusTest, Boundaries) {
  Bus bus(BusKind::kMmio);
  auto dev = std::make_shared<FakeDevice>("dev");
  ASSERT_TRUE(bus.Register(0x2000, 0x10, dev));
  // First and last bytes are claimed.
  ASSERT_TRUE(bus.Read({}, 0x2000, 1));
  ASSERT_TRUE(bus.Read({}, 0x200f, 1));
  ASSERT_TRUE(bus.Read({}, 0x2008, 8));  // ends exactly at the last byte
  EXPECT_EQ(dev->reads.load(), 3);
  EXPECT_EQ(dev->last_offset.load(), 8u);
  // One before and one after are not.
  ASSERT_TRUE(bus.Read({}, 0x1fff, 1));
  ASSERT_TRUE(bus.Read({}, 0x2010, 1));
  EXPECT_EQ(dev->reads.load(), 3);
  EXPECT_EQ(bus.unclaimed_count(), 2u);
}

TEST(BusTest, StraddlingAccessesAreUnclaimed) {
  Bus bus(BusKind::kPio);
  auto a = std::make_shared<FakeDevice>("a");
  auto b = std::make_shared<FakeDevice>("b");
  ASSERT_TRUE(bus.Register(0x70, 2, a));
  ASSERT_TRUE(bus.Register(0x72, 2, b));
  // Crosses from a into b: neither device sees it.
  auto r = bus.Read({}, 0x71, 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0xffffu);
  ASSERT_TRUE(bus.Write({}, 0x70, 4, 0x12345678));
  // Runs off the end of b into nothing.
  ASSERT_TRUE(bus.Read({}, 0x73, 2));
  // Starts before a.
  ASSERT_TRUE(bus.Read({}, 0x6f, 2));
  EXPECT_EQ(a->reads.load() + a->writes.load(), 0);
  EXPECT_EQ(b->reads.load() + b->writes.load(), 0);
  EXPECT_EQ(bus.unclaimed_count(), 4u);
}

TEST(BusTest, DefaultValuesPerKindAndSize) {
  Bus pio(BusKind::kPio);
  Bus mmio(BusKind::kMmio);
  const uint64_t expected_pio[] = {0xff, 0xffff, 0xffff'ffff,
                                   0xffff'ffff'ffff'ffff};
  const uint32_t sizes[] = {1, 2, 4, 8};
  for (int i = 0; i < 4; ++i) {
    auto r = pio.Read({}, 0x80, sizes[i]);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, expected_pio[i]) << "size " << sizes[i];
    r = mmio.Read({}, 0xfee0'0000, sizes[i]);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 0u) << "size " << sizes[i];
  }
  // Unclaimed writes are accepted and dropped.
  EXPECT_TRUE(pio.Write({}, 0x80, 1, 0xaa));
  EXPECT_TRUE(mmio.Write({}, 0xfee0'0000, 4, 0xaa));
  EXPECT_EQ(pio.unclaimed_count(), 5u);
  EXPECT_EQ(mmio.unclaimed_count(), 5u);
}

TEST(BusTest, InvalidSizesAreRejected) {
  Bus bus(BusKind::kMmio);
  auto dev = std::make_shared<FakeDevice>("dev");
  ASSERT_TRUE(bus.Register(0, 0x100, dev));
  for (uint32_t size : {0u, 3u, 5u, 6u, 7u, 16u}) {
    auto r = bus.Read({}, 0, size);
    ASSERT_FALSE(r) << size;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    auto w = bus.Write({}, 0, size, 0);
    ASSERT_FALSE(w) << size;
    EXPECT_EQ(w.error().code(), Errc::kInvalidArgument);
  }
  EXPECT_EQ(dev->reads.load() + dev->writes.load(), 0);
  EXPECT_EQ(bus.unclaimed_count(), 0u);
}

TEST(BusTest, ValuesAreMaskedToAccessSize) {
  Bus bus(BusKind::kMmio);
  auto dev = std::make_shared<WideDevice>();
  ASSERT_TRUE(bus.Register(0x100, 8, dev));
  auto r = bus.Read({}, 0x100, 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0xffffu);
  ASSERT_TRUE(bus.Write({}, 0x100, 1, 0x1234));
  EXPECT_EQ(dev->last, 0x34u);
  ASSERT_TRUE(bus.Write({}, 0x100, 8, 0x1122334455667788));
  EXPECT_EQ(dev->last, 0x1122334455667788u);
}

TEST(BusTest, UnclaimedIsLoggedOncePerAddressButAlwaysCounted) {
  LogCapture cap;
  Bus bus(BusKind::kPio);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus.Read({}, 0x1234, 1));
  ASSERT_TRUE(bus.Write({}, 0x1234, 2, 7));  // same address, other direction
  EXPECT_EQ(bus.unclaimed_count(), 6u);
  EXPECT_EQ(cap.Count("unclaimed"), 1) << cap.text();
  EXPECT_NE(cap.text().find("0x1234"), std::string::npos);
  ASSERT_TRUE(bus.Write({}, 0x1235, 1, 7));
  EXPECT_EQ(bus.unclaimed_count(), 7u);
  EXPECT_EQ(cap.Count("unclaimed"), 2) << cap.text();
}

TEST(BusTest, UnclaimedLoggingIsBounded) {
  LogCapture cap;
  Bus bus(BusKind::kMmio);
  for (uint64_t a = 0; a < 2000; ++a) ASSERT_TRUE(bus.Read({}, a * 4, 4));
  EXPECT_EQ(bus.unclaimed_count(), 2000u);
  // A sweep of 2000 addresses: the first 32 lines, then one line saying the
  // rest are suppressed.
  EXPECT_EQ(cap.Count("unclaimed"), 32 + 1) << cap.text();
  EXPECT_EQ(cap.Count("suppressing further"), 1) << cap.text();
}

TEST(BusTest, FatalModeReturnsGuestFault) {
  Bus bus(BusKind::kMmio);
  bus.set_unclaimed_fatal(true);
  auto r = bus.Read({}, 0xdead'b000, 4);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kGuestFault);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("mmio"), std::string::npos) << m;
  EXPECT_NE(m.find("0xdeadb000"), std::string::npos) << m;
  EXPECT_NE(m.find("4-byte"), std::string::npos) << m;
  EXPECT_NE(m.find("read"), std::string::npos) << m;

  auto w = bus.Write({}, 0x10, 2, 0xbeef);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Errc::kGuestFault);
  EXPECT_NE(w.error().message().find("write"), std::string::npos);
  EXPECT_NE(w.error().message().find("2-byte"), std::string::npos);
  EXPECT_EQ(bus.unclaimed_count(), 2u);

  // Claimed accesses are unaffected; turning it off restores defaults.
  auto dev = std::make_shared<FakeDevice>("dev");
  ASSERT_TRUE(bus.Register(0x10, 2, dev));
  EXPECT_TRUE(bus.Write({}, 0x10, 2, 0xbeef));
  bus.set_unclaimed_fatal(false);
  EXPECT_TRUE(bus.Read({}, 0xdead'b000, 4));
}

TEST(BusTest, RangesListsRegistrationsInOrder) {
  Bus bus(BusKind::kPio);
  ASSERT_TRUE(bus.Register(0x3f8, 8, std::make_shared<FakeDevice>("com1")));
  ASSERT_TRUE(bus.Register(0x2f8, 8, std::make_shared<FakeDevice>("com2")));
  auto ranges = bus.Ranges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], std::make_tuple(uint64_t{0x2f8}, uint64_t{8},
                                       std::string("com2")));
  EXPECT_EQ(ranges[1], std::make_tuple(uint64_t{0x3f8}, uint64_t{8},
                                       std::string("com1")));
}

TEST(BusTest, SameDeviceAtTwoRanges) {
  Bus bus(BusKind::kPio);
  auto dev = std::make_shared<FakeDevice>("latch");
  ASSERT_TRUE(bus.Register(0xe0, 4, dev));
  ASSERT_TRUE(bus.Register(0xe8, 4, dev));
  ASSERT_TRUE(bus.Read({}, 0xe9, 1));
  EXPECT_EQ(dev->last_offset.load(), 1u);
  EXPECT_EQ(dev->reads.load(), 1);
}

// Several vCPU-like threads dispatch while another thread registers and
// unregisters a device; meant to be run under TSan as well.
TEST(BusTest, ConcurrentDispatchWhileRegistering) {
  Bus bus(BusKind::kMmio);
  auto fixed = std::make_shared<FakeDevice>("fixed");
  ASSERT_TRUE(bus.Register(0x1000, 0x1000, fixed));

  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::atomic<bool> failed{false};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      started.fetch_add(1);
      for (int i = 0; i < kIterations; ++i) {
        uint64_t off = static_cast<uint64_t>((i * 8 + t) % 0x1000) & ~7u;
        auto r = bus.Read({}, 0x1000 + off, 8);
        if (!r || *r != ((off << 8) | 8)) failed = true;
        if (!bus.Write({}, 0x1000 + off, 4, i)) failed = true;
        // The churned range: either claimed or unclaimed, never an error.
        if (!bus.Read({}, 0x8000, 4)) failed = true;
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  for (int i = 0; i < 200; ++i) {
    auto churn = std::make_shared<FakeDevice>("churn");
    ASSERT_TRUE(bus.Register(0x8000, 0x100, churn));
    (void)bus.Ranges();
    ASSERT_TRUE(bus.Unregister(0x8000));
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(fixed->reads.load(), kThreads * kIterations);
  EXPECT_EQ(fixed->writes.load(), kThreads * kIterations);
}

// A BAR relocation done from inside an access: the device moves its own
// range, registers a neighbour and removes another — all while the bus is
// dispatching to it. No bus lock is held across the device call, so none
// of this deadlocks, and the moved range answers at its new base.
class RelocatingDevice : public IoDevice {
 public:
  explicit RelocatingDevice(Bus& bus) : bus_(bus) {}
  uint64_t Read(const IoContext&, uint64_t offset, uint32_t) override {
    return offset;
  }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t value) override {
    // "config space": value is the new base.
    last = bus_.Move(base, value);
    if (last) base = value;
    extra = bus_.Register(0x9000, 0x10, std::make_shared<FakeDevice>("extra"));
    removed = bus_.Unregister(0x7000);
  }
  std::string_view name() const override { return "bar"; }
  Bus& bus_;
  uint64_t base = 0x1000;
  Status last = Ok(), extra = Ok(), removed = Ok();
};

TEST(BusTest, DevicesMayChangeTheBusFromInsideAnAccess) {
  Bus bus(BusKind::kMmio);
  auto bar = std::make_shared<RelocatingDevice>(bus);
  ASSERT_TRUE(bus.Register(0x1000, 0x100, bar));
  ASSERT_TRUE(bus.Register(0x7000, 0x10, std::make_shared<FakeDevice>("old")));
  ASSERT_TRUE(bus.Write({}, 0x1000, 4, 0x5000));
  EXPECT_TRUE(bar->last.has_value());
  EXPECT_TRUE(bar->extra.has_value());
  EXPECT_TRUE(bar->removed.has_value());
  EXPECT_EQ(*bus.Read({}, 0x5010, 4), 0x10u);  // new base, same offsets
  EXPECT_EQ(*bus.Read({}, 0x1010, 4), 0u);     // old base now unclaimed
  // A move onto another device is refused and changes nothing.
  ASSERT_TRUE(bus.Write({}, 0x5000, 4, 0x9008));
  ASSERT_FALSE(bar->last.has_value());
  EXPECT_EQ(bar->last.error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(*bus.Read({}, 0x5010, 4), 0x10u);
  // Moving onto ranges that touch, or onto part of its own old range, works.
  ASSERT_TRUE(bus.Write({}, 0x5000, 4, 0x5080));
  EXPECT_TRUE(bar->last.has_value());
  EXPECT_EQ(*bus.Read({}, 0x5080, 4), 0u);
  ASSERT_TRUE(bus.Write({}, 0x5080, 4, 0x8f00));  // ends at 0x8fff, 0x9000 taken
  EXPECT_TRUE(bar->last.has_value());
  EXPECT_FALSE(bus.Move(0x1234, 0x2000).has_value());
}

// The context reaches the device unchanged.
TEST(BusTest, TheAccessContextReachesTheDevice) {
  class ContextDevice : public IoDevice {
   public:
    uint64_t Read(const IoContext& ctx, uint64_t, uint32_t) override {
      seen = ctx.vcpu;
      return 0;
    }
    void Write(const IoContext& ctx, uint64_t, uint32_t, uint64_t) override {
      seen = ctx.vcpu;
    }
    std::string_view name() const override { return "ctx"; }
    Vcpu* seen = reinterpret_cast<Vcpu*>(1);
  };
  Bus bus(BusKind::kPio);
  auto dev = std::make_shared<ContextDevice>();
  ASSERT_TRUE(bus.Register(0x10, 1, dev));
  auto* fake = reinterpret_cast<Vcpu*>(0x1234);
  ASSERT_TRUE(bus.Read(IoContext{fake}, 0x10, 1));
  EXPECT_EQ(dev->seen, fake);
  ASSERT_TRUE(bus.Write(IoContext::Device(), 0x10, 1, 0));
  EXPECT_EQ(dev->seen, nullptr);
}

// Unregister does not wait for in-flight accesses: a device that
// unregisters itself and is then dropped stays alive until its access ends.
TEST(BusTest, AnUnregisteredDeviceLivesUntilItsAccessEnds) {
  class SelfRemoving : public IoDevice {
   public:
    SelfRemoving(Bus& b, std::atomic<bool>* alive) : bus_(b), alive_(alive) {}
    ~SelfRemoving() override { alive_->store(false); }
    uint64_t Read(const IoContext&, uint64_t, uint32_t) override {
      EXPECT_TRUE(bus_.Unregister(0x40).has_value());
      EXPECT_TRUE(alive_->load());  // still alive: the bus holds a reference
      return 7;
    }
    void Write(const IoContext&, uint64_t, uint32_t, uint64_t) override {}
    std::string_view name() const override { return "self-removing"; }
    Bus& bus_;
    std::atomic<bool>* alive_;
  };
  Bus bus(BusKind::kPio);
  std::atomic<bool> alive{true};
  ASSERT_TRUE(bus.Register(0x40, 1, std::make_shared<SelfRemoving>(bus, &alive)));
  EXPECT_EQ(*bus.Read({}, 0x40, 1), 7u);
  EXPECT_FALSE(alive.load());  // freed once the access finished
  EXPECT_EQ(*bus.Read({}, 0x40, 1), 0xffu);
}

// A vCPU's one-entry cache: hits skip the table, and every change of the
// table (register, move, unregister) invalidates it.
TEST(BusTest, TheLookupCacheFollowsEveryChangeOfTheTable) {
  Bus bus(BusKind::kMmio);
  auto a = std::make_shared<FakeDevice>("a");
  auto b = std::make_shared<FakeDevice>("b");
  ASSERT_TRUE(bus.Register(0x1000, 0x100, a));
  BusCache cache;
  EXPECT_EQ(*bus.Read({}, 0x1010, 4, &cache), (0x10u << 8) | 4);
  EXPECT_EQ(cache.dev.get(), a.get());
  EXPECT_EQ(*bus.Read({}, 0x1020, 2, &cache), (0x20u << 8) | 2);  // hit
  EXPECT_EQ(a->reads.load(), 2);
  // Outside the cached range: a miss that refills it.
  ASSERT_TRUE(bus.Register(0x2000, 0x100, b));
  EXPECT_EQ(*bus.Read({}, 0x2004, 4, &cache), (0x4u << 8) | 4);
  EXPECT_EQ(cache.dev.get(), b.get());
  // Moved: the cached base is stale, the access lands at the new offset.
  ASSERT_TRUE(bus.Move(0x2000, 0x3000));
  EXPECT_EQ(*bus.Read({}, 0x2004, 4, &cache), 0u);  // unclaimed now
  EXPECT_EQ(*bus.Read({}, 0x3008, 4, &cache), (0x8u << 8) | 4);
  // Unregistered: no hit on the old entry.
  ASSERT_TRUE(bus.Unregister(0x3000));
  EXPECT_EQ(*bus.Read({}, 0x3008, 4, &cache), 0u);
  EXPECT_EQ(b->reads.load(), 2);
  // An access straddling the end of the cached range is not a hit.
  EXPECT_EQ(*bus.Read({}, 0x1010, 4, &cache), (0x10u << 8) | 4);
  EXPECT_EQ(*bus.Read({}, 0x10fe, 4, &cache), 0u);
  EXPECT_EQ(bus.unclaimed_count(), 3u);
}

// The cache also remembers the gap an unclaimed access fell in (so a guest
// polling an absent port takes no lock), and a device registered in that
// gap later is found at once.
TEST(BusTest, TheLookupCacheRemembersUnclaimedGapsUntilTheTableChanges) {
  LogCapture cap;
  Bus bus(BusKind::kPio);
  auto a = std::make_shared<FakeDevice>("a");
  auto b = std::make_shared<FakeDevice>("b");
  ASSERT_TRUE(bus.Register(0x10, 0x10, a));
  ASSERT_TRUE(bus.Register(0x40, 0x10, b));
  BusCache cache;
  EXPECT_EQ(*bus.Read({}, 0x30, 4, &cache), 0xffffffffu);
  EXPECT_EQ(cache.dev, nullptr);
  EXPECT_EQ(cache.base, 0x20u);  // the whole gap between a and b
  EXPECT_EQ(cache.last, 0x3fu);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*bus.Read({}, 0x30, 4, &cache), 0xffffffffu);
  // From inside the gap into b: not a hit, and still unclaimed.
  EXPECT_EQ(*bus.Read({}, 0x3e, 4, &cache), 0xffffffffu);
  EXPECT_EQ(bus.unclaimed_count(), 5u);
  EXPECT_EQ(cap.Count("unclaimed"), 2) << cap.text();  // 0x30 and 0x3e
  // Below the first range and above the last: gaps to either end.
  EXPECT_EQ(*bus.Read({}, 0x2, 1, &cache), 0xffu);
  EXPECT_EQ(cache.base, 0u);
  EXPECT_EQ(cache.last, 0xfu);
  EXPECT_EQ(*bus.Read({}, 0x9000, 2, &cache), 0xffffu);
  EXPECT_EQ(cache.base, 0x50u);
  EXPECT_EQ(cache.last, ~uint64_t{0});
  // A device registered where the cache holds a gap is reached.
  auto c = std::make_shared<FakeDevice>("c");
  ASSERT_TRUE(bus.Register(0x9000, 0x10, c));
  EXPECT_EQ(*bus.Read({}, 0x9000, 2, &cache), (0u << 8) | 2);
  EXPECT_EQ(c->reads.load(), 1);
  EXPECT_EQ(a->reads.load() + b->reads.load(), 0);
}

// The quiet address a cache keeps changes nothing of what is logged: each
// address is still logged once, whichever thread (cache) touches it.
TEST(BusTest, UnclaimedLoggingIsPerAddressWithCachesToo) {
  LogCapture cap;
  Bus bus(BusKind::kPio);
  BusCache one, two;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(bus.Read({}, 0x1234, 4, &one));
  ASSERT_TRUE(bus.Read({}, 0x1234, 4, &two));
  ASSERT_TRUE(bus.Read({}, 0x1236, 2, &one));  // same gap, new address
  ASSERT_TRUE(bus.Read({}, 0x1234, 4, &one));  // logged before: quiet
  ASSERT_TRUE(bus.Write({}, 0x1236, 2, 5, &two));
  EXPECT_EQ(bus.unclaimed_count(), 8u);
  EXPECT_EQ(cap.Count("unclaimed"), 2) << cap.text();
  EXPECT_EQ(cap.Count("0x1234"), 1) << cap.text();
  EXPECT_EQ(cap.Count("0x1236"), 1) << cap.text();
  // Fatal mode is checked before the quiet address.
  bus.set_unclaimed_fatal(true);
  Result<uint64_t> r = bus.Read({}, 0x1234, 4, &one);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kGuestFault);
}

}  // namespace
}  // namespace strata
