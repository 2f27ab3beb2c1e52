#include "arch/amd64/hyperv/synic.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "core/guest_memory_testing.h"

namespace strata::amd64::hyperv {
namespace {

constexpr uint64_t kRamSize = 1 << 20;  // 1 MiB of RAM at 0
constexpr uint64_t kSimp0 = 0x10000;
constexpr uint64_t kSiefp0 = 0x11000;
constexpr uint64_t kSimp1 = 0x12000;
constexpr uint64_t kSiefp1 = 0x13000;
constexpr uint64_t kInput = 0x20000;
constexpr uint64_t kNotRam = 0xd0000000;

struct FakeLine : Synic::SintLine {
  FakeLine() : ack(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~FakeLine() override { close(ack); }
  Status Assert() override {
    ++*asserts;
    return Ok();
  }
  int ack_fd() const override { return with_ack ? ack : -1; }
  int ack;
  bool with_ack = true;
  std::shared_ptr<int> asserts;
};

// Guest RAM, two VPs whose "vCPU threads" are queues the test drains, and
// lines that count assertions.
struct World {
  GuestMemory mem;
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint32_t, std::deque<std::function<void()>>> queued;  // mu
  std::map<std::pair<uint32_t, uint32_t>, std::shared_ptr<int>> asserts;
  std::map<std::pair<uint32_t, uint32_t>, int> ack_fds;

  World() {
    EXPECT_TRUE(GuestMemoryTestPeer::AddSegment(mem, "ram", 0, kRamSize));
  }
  int Asserts(uint32_t vp, uint32_t sint) {
    auto it = asserts.find({vp, sint});
    return it == asserts.end() ? 0 : *it->second;
  }
  // Runs what was posted to VP vp (its loop top); waits up to `wait` for
  // at least `want` items (the ack watcher posts from its thread).
  size_t RunVp(uint32_t vp, size_t want = 0,
               std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    std::deque<std::function<void()>> q;
    {
      std::unique_lock lock(mu);
      cv.wait_for(lock, wait,
                  [&] { return queued[vp].size() >= want; });
      q.swap(queued[vp]);
    }
    for (auto& fn : q) fn();
    return q.size();
  }
  uint8_t* Host(uint64_t gpa) { return mem.Translate(gpa, 1)->data(); }
};

class TestHost : public Synic::Host {
 public:
  explicit TestHost(World* w) : w_(w) {}
  uint32_t vp_count() const override { return 2; }
  void WithMemory(const std::function<void(GuestMemory&)>& fn) override {
    fn(w_->mem);
  }
  bool RunOnVp(uint32_t vp, std::function<void()> fn) override {
    if (vp >= 2) return false;
    std::lock_guard lock(w_->mu);
    w_->queued[vp].push_back(std::move(fn));
    w_->cv.notify_all();
    return true;
  }
  Result<std::unique_ptr<Synic::SintLine>> RouteSint(const HvSint& s,
                                                     bool ack) override {
    auto line = std::make_unique<FakeLine>();
    line->with_ack = ack;
    auto& count = w_->asserts[{s.vp_index, s.sint}];
    if (!count) count = std::make_shared<int>(0);
    line->asserts = count;
    w_->ack_fds[{s.vp_index, s.sint}] = line->ack;
    return std::unique_ptr<Synic::SintLine>(std::move(line));
  }
  std::shared_ptr<spdlog::logger> logger() override { return DefaultLogger(); }

 private:
  World* w_;
};

class SynicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    synic_ = Synic::Create(std::make_unique<TestHost>(&w_), /*acks=*/true);
    ASSERT_TRUE(synic_->Start());
  }
  // What KVM reports after the guest of VP vp enables everything.
  void EnableVp(uint32_t vp, uint64_t simp, uint64_t siefp) {
    synic_->OnSynicExit(vp, kMsrSimp, 0, 0, simp | kSynicEnable);
    synic_->OnSynicExit(vp, kMsrSiefp, 0, siefp | kSynicEnable,
                        simp | kSynicEnable);
    synic_->OnSynicExit(vp, kMsrScontrol, kSynicEnable, siefp | kSynicEnable,
                        simp | kSynicEnable);
  }
  hv::Message* Slot(uint64_t simp, uint32_t sint) {
    return reinterpret_cast<hv::Message*>(w_.Host(simp + sint * 256));
  }
  uint64_t FlagWord(uint64_t siefp, uint32_t sint, uint32_t flag) {
    uint64_t v;
    std::memcpy(&v, w_.Host(siefp + sint * 256 + flag / 64 * 8), 8);
    return v;
  }
  std::shared_ptr<hv::SintRoute> Route(uint32_t vp, uint32_t sint) {
    auto r = synic_->CreateSintRoute(vp, sint);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return r ? *r : nullptr;
  }
  static hv::Message Msg(uint32_t type, uint64_t payload) {
    hv::Message m;
    m.type = type;
    m.payload_size = 8;
    std::memcpy(m.payload, &payload, 8);
    return m;
  }
  void Ack(uint32_t vp, uint32_t sint) {
    const uint64_t one = 1;
    ASSERT_EQ(write(w_.ack_fds[{vp, sint}], &one, 8), 8);
  }

  World w_;
  std::shared_ptr<Synic> synic_;
};

TEST_F(SynicTest, ExitsRecordTheRegistersAndClearNewPages) {
  std::memset(w_.Host(kSimp0), 0xaa, 4096);
  std::memset(w_.Host(kSiefp0), 0xbb, 4096);
  EnableVp(0, kSimp0, kSiefp0);
  const Synic::Registers r = synic_->registers(0);
  EXPECT_EQ(r.control, kSynicEnable);
  EXPECT_EQ(r.msg_page, kSimp0 | kSynicEnable);
  EXPECT_EQ(r.evt_page, kSiefp0 | kSynicEnable);
  for (uint64_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(w_.Host(kSimp0)[i], 0) << i;
    ASSERT_EQ(w_.Host(kSiefp0)[i], 0) << i;
  }
  // Rewriting the same enabled page leaves its contents alone.
  w_.Host(kSimp0)[0] = 1;
  synic_->OnSynicExit(0, kMsrSimp, kSynicEnable, kSiefp0 | kSynicEnable,
                      kSimp0 | kSynicEnable);
  EXPECT_EQ(w_.Host(kSimp0)[0], 1);
  // VP 1 untouched.
  EXPECT_EQ(synic_->registers(1).msg_page, 0u);
}

TEST_F(SynicTest, PagesOutsideRamAreNeverWrittenAndRefused) {
  synic_->OnSynicExit(0, kMsrSimp, 0, 0, kNotRam | kSynicEnable);
  synic_->OnSynicExit(0, kMsrSiefp, 0, kNotRam | kSynicEnable,
                      kNotRam | kSynicEnable);
  synic_->OnSynicExit(0, kMsrScontrol, kSynicEnable, kNotRam | kSynicEnable,
                      kNotRam | kSynicEnable);
  EXPECT_EQ(synic_->registers(0).msg_page, kNotRam | kSynicEnable);
  auto route = Route(0, 2);
  Status p = synic_->PostMessage(route, Msg(0x1234, 1));
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), Errc::kUnsupported);
  EXPECT_NE(p.error().message().find("not guest RAM"), std::string::npos);
  Status f = synic_->SetEventFlag(route, 3);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), Errc::kUnsupported);
  EXPECT_EQ(w_.Asserts(0, 2), 0);
  // The last page straddling the end of RAM is refused too.
  synic_->OnSynicExit(0, kMsrSimp, kSynicEnable, 0,
                      (kRamSize - 4096 + 4096) | kSynicEnable);
  EXPECT_FALSE(synic_->PostMessage(route, Msg(0x1234, 1)).has_value());
}

TEST_F(SynicTest, DisabledSynicOrPageIsRefused) {
  auto route = Route(1, 4);
  Status s = synic_->PostMessage(route, Msg(0x1234, 1));
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("SCONTROL"), std::string::npos);
  synic_->OnSynicExit(1, kMsrScontrol, kSynicEnable, 0, 0);
  s = synic_->SetEventFlag(route, 0);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("SIEFP"), std::string::npos);
}

TEST_F(SynicTest, MessageIsWrittenOnTheTargetVpAndAsserted) {
  EnableVp(1, kSimp1, kSiefp1);
  auto route = Route(1, 8);
  ASSERT_TRUE(synic_->PostMessage(route, Msg(0x12345678, 0x10001)));
  // Nothing until VP 1's thread runs it.
  EXPECT_EQ(Slot(kSimp1, 8)->type, 0u);
  EXPECT_EQ(w_.RunVp(0), 0u);
  ASSERT_EQ(w_.RunVp(1, 1), 1u);
  const hv::Message* m = Slot(kSimp1, 8);
  EXPECT_EQ(m->type, 0x12345678u);
  EXPECT_EQ(m->payload_size, 8u);
  EXPECT_EQ(m->flags, 0u);
  uint64_t payload;
  std::memcpy(&payload, m->payload, 8);
  EXPECT_EQ(payload, 0x10001u);
  EXPECT_EQ(w_.Asserts(1, 8), 1);
}

TEST_F(SynicTest, BusySlotWaitsForTheGuestsAck) {
  EnableVp(0, kSimp0, kSiefp0);
  auto route = Route(0, 8);
  ASSERT_TRUE(synic_->PostMessage(route, Msg(0x1111, 1)));
  w_.RunVp(0, 1);
  ASSERT_EQ(w_.Asserts(0, 8), 1);
  // The guest has not emptied the slot: the next message marks it pending
  // and waits; a third finds the route's one buffer taken.
  ASSERT_TRUE(synic_->PostMessage(route, Msg(0x2222, 2)));
  w_.RunVp(0, 1);
  hv::Message* m = Slot(kSimp0, 8);
  EXPECT_EQ(m->type, 0x1111u);
  EXPECT_EQ(m->flags & hv::kMessageFlagPending, hv::kMessageFlagPending);
  EXPECT_EQ(w_.Asserts(0, 8), 1);
  Status third = synic_->PostMessage(route, Msg(0x3333, 3));
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code(), Errc::kBusy);
  // An acknowledgement while the slot is still full re-marks it.
  Ack(0, 8);
  ASSERT_EQ(w_.RunVp(0, 1), 1u);
  EXPECT_EQ(m->type, 0x1111u);
  EXPECT_EQ(w_.Asserts(0, 8), 1);
  // The guest empties the slot and writes EOM: the waiting message lands.
  m->type = 0;
  m->flags = 0;
  Ack(0, 8);
  ASSERT_EQ(w_.RunVp(0, 1), 1u);
  EXPECT_EQ(m->type, 0x2222u);
  EXPECT_EQ(m->flags, 0u);
  EXPECT_EQ(w_.Asserts(0, 8), 2);
  // The buffer is free again.
  m->type = 0;
  ASSERT_TRUE(synic_->PostMessage(route, Msg(0x3333, 3)));
  w_.RunVp(0, 1);
  EXPECT_EQ(m->type, 0x3333u);
}

TEST_F(SynicTest, SpuriousAcksAreIgnored) {
  EnableVp(0, kSimp0, kSiefp0);
  auto route = Route(0, 1);
  Ack(0, 1);
  // Nothing waits, so nothing is posted.
  EXPECT_EQ(w_.RunVp(0, 1, std::chrono::milliseconds(200)), 0u);
}

TEST_F(SynicTest, EventFlagSetOnceAssertsOnce) {
  EnableVp(1, kSimp1, kSiefp1);
  auto route = Route(1, 9);
  ASSERT_TRUE(synic_->SetEventFlag(route, 0x21));
  EXPECT_EQ(FlagWord(kSiefp1, 9, 0x21), uint64_t{1} << 0x21);
  EXPECT_EQ(w_.Asserts(1, 9), 1);
  ASSERT_TRUE(synic_->SetEventFlag(route, 0x21));
  EXPECT_EQ(w_.Asserts(1, 9), 1);  // already set
  ASSERT_TRUE(synic_->SetEventFlag(route, 2047));
  EXPECT_EQ(FlagWord(kSiefp1, 9, 2047), uint64_t{1} << 63);
  EXPECT_EQ(w_.Asserts(1, 9), 2);
  EXPECT_EQ(FlagWord(kSiefp1, 8, 0x21), 0u);  // other SINTs untouched
  Status bad = synic_->SetEventFlag(route, 2048);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kOutOfRange);
}

TEST_F(SynicTest, RoutesNeedAnExistingVpAndSint) {
  auto vp = synic_->CreateSintRoute(2, 0);
  ASSERT_FALSE(vp.has_value());
  EXPECT_EQ(vp.error().code(), Errc::kOutOfRange);
  auto sint = synic_->CreateSintRoute(0, 16);
  ASSERT_FALSE(sint.has_value());
  EXPECT_EQ(sint.error().code(), Errc::kOutOfRange);
}

void WriteInput(World& w, uint64_t gpa, uint32_t conn, uint32_t type,
                uint32_t size) {
  hv::PostMessageInput in;
  in.connection_id = conn;
  in.message_type = type;
  in.payload_size = size;
  in.payload[0] = 0x5a;
  ASSERT_TRUE(w.mem.Write(gpa, &in, sizeof(in)));
}

TEST_F(SynicTest, PostMessageHypercall) {
  uint32_t seen_vp = 99;
  uint32_t seen_type = 0;
  ASSERT_TRUE(synic_->SetMessageHandler(
      0x10, [&](uint32_t vp, const hv::PostMessageInput& in) {
        seen_vp = vp;
        seen_type = in.message_type;
        return hv::HvStatus::kSuccess;
      }));
  WriteInput(w_, kInput, 0x10, 0x12345678, 8);
  EXPECT_EQ(synic_->OnHypercall(1, kHvcallPostMessage, kInput, 0), 0u);
  EXPECT_EQ(seen_vp, 1u);
  EXPECT_EQ(seen_type, 0x12345678u);
  // The connection id's top byte is not part of it (TLFS HV_CONNECTION_ID).
  WriteInput(w_, kInput, 0xff000010, 0x1, 8);
  EXPECT_EQ(synic_->OnHypercall(0, kHvcallPostMessage, kInput, 0), 0u);
  auto status = [&](uint64_t input, uint64_t param) {
    return static_cast<hv::HvStatus>(synic_->OnHypercall(0, input, param, 0));
  };
  WriteInput(w_, kInput, 0x11, 0x1, 8);
  EXPECT_EQ(status(kHvcallPostMessage, kInput),
            hv::HvStatus::kInvalidConnectionId);
  WriteInput(w_, kInput, 0x10, 0x1, 241);
  EXPECT_EQ(status(kHvcallPostMessage, kInput),
            hv::HvStatus::kInvalidParameter);
  WriteInput(w_, kInput, 0x10, 0x80000010, 8);  // the hypervisor's type
  EXPECT_EQ(status(kHvcallPostMessage, kInput),
            hv::HvStatus::kInvalidParameter);
  EXPECT_EQ(status(kHvcallPostMessage, kInput + 4),
            hv::HvStatus::kInvalidAlignment);
  EXPECT_EQ(status(kHvcallPostMessage, kInput + 4096 - 128),
            hv::HvStatus::kInvalidAlignment);  // crosses a page
  EXPECT_EQ(status(kHvcallPostMessage, kNotRam),
            hv::HvStatus::kInvalidParameter);
  EXPECT_EQ(status(kHvcallPostMessage | kHypercallFast, kInput),
            hv::HvStatus::kInvalidHypercallCode);
  EXPECT_EQ(status(kHvcallPostMessage | (uint64_t{1} << 32), kInput),
            hv::HvStatus::kInvalidHypercallInput);  // a rep count
  ASSERT_TRUE(synic_->ClearMessageHandler(0x10));
  WriteInput(w_, kInput, 0x10, 0x1, 8);
  EXPECT_EQ(status(kHvcallPostMessage, kInput),
            hv::HvStatus::kInvalidConnectionId);
}

TEST_F(SynicTest, SignalEventHypercall) {
  int calls = 0;
  ASSERT_TRUE(synic_->SetEventHandler(0x21, [&](uint32_t) {
    ++calls;
    return hv::HvStatus::kSuccess;
  }));
  auto status = [&](uint64_t input, uint64_t param) {
    return static_cast<hv::HvStatus>(synic_->OnHypercall(0, input, param, 0));
  };
  EXPECT_EQ(status(kHvcallSignalEvent | kHypercallFast, 0x21),
            hv::HvStatus::kSuccess);
  EXPECT_EQ(calls, 1);
  // kvm-unit-tests' probe: an unknown connection is not an unknown call.
  EXPECT_EQ(status(kHvcallSignalEvent | kHypercallFast, 0x1234),
            hv::HvStatus::kInvalidConnectionId);
  EXPECT_EQ(status(kHvcallSignalEvent | kHypercallFast, (1ull << 32) | 0x21),
            hv::HvStatus::kInvalidPortId);  // a flag number
  EXPECT_EQ(status(kHvcallSignalEvent | kHypercallFast, (1ull << 24) | 0x21),
            hv::HvStatus::kInvalidHypercallInput);  // reserved bits
  const uint64_t param = 0x21;
  ASSERT_TRUE(w_.mem.Write(kInput, &param, 8));
  EXPECT_EQ(status(kHvcallSignalEvent, kInput), hv::HvStatus::kSuccess);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(status(kHvcallSignalEvent, kInput + 1),
            hv::HvStatus::kInvalidAlignment);
  EXPECT_EQ(status(kHvcallSignalEvent, kNotRam),
            hv::HvStatus::kInvalidParameter);
}

TEST_F(SynicTest, OtherHypercallsAreInvalidCodes) {
  for (uint64_t code : {0x0001ull, 0x0044ull, 0x8001ull, 0x0069ull}) {
    EXPECT_EQ(synic_->OnHypercall(0, code, 0, 0),
              static_cast<uint64_t>(hv::HvStatus::kInvalidHypercallCode))
        << code;
  }
}

TEST_F(SynicTest, HandlersAreOnePerConnection) {
  auto ok = [](uint32_t) { return hv::HvStatus::kSuccess; };
  ASSERT_TRUE(synic_->SetEventHandler(5, ok));
  EXPECT_EQ(synic_->SetEventHandler(5, ok).error().code(),
            Errc::kAlreadyExists);
  EXPECT_EQ(synic_->ClearEventHandler(6).error().code(), Errc::kNotFound);
  EXPECT_EQ(synic_->SetEventHandler(1u << 24, ok).error().code(),
            Errc::kInvalidArgument);
}

// A handler that holds the last reference to its route (as hyperv-testdev's
// do) is destroyed without the SynIC's lock: the route calls back to it.
TEST_F(SynicTest, HandlersHoldingTheirRouteAreClearedWithoutDeadlock) {
  auto route = Route(0, 5);
  ASSERT_TRUE(synic_->SetMessageHandler(
      7, [route](uint32_t, const hv::PostMessageInput&) {
        return route ? hv::HvStatus::kSuccess : hv::HvStatus::kAccessDenied;
      }));
  ASSERT_TRUE(synic_->SetEventHandler(7, [route](uint32_t) {
    return hv::HvStatus::kSuccess;
  }));
  // A second handler for the same connection is refused, and dropped
  // outside the lock too.
  auto other = Route(1, 5);
  EXPECT_FALSE(synic_->SetEventHandler(7, [other](uint32_t) {
    return hv::HvStatus::kSuccess;
  }));
  other.reset();
  route.reset();
  EXPECT_TRUE(synic_->ClearMessageHandler(7));
  EXPECT_TRUE(synic_->ClearEventHandler(7));
}

TEST(SynicNoAcksTest, MessagesNeedAcks) {
  World w;
  auto synic = Synic::Create(std::make_unique<TestHost>(&w), /*acks=*/false);
  auto route = synic->CreateSintRoute(0, 1);
  ASSERT_TRUE(route.has_value());
  Status s = synic->PostMessage(*route, hv::Message{});
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("x86.irqchip=kernel"), std::string::npos);
}

}  // namespace
}  // namespace strata::amd64::hyperv
