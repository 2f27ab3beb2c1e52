#include "devices/hyperv_testdev.h"

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

namespace strata {
namespace {

// A SynIC that records what the device asks of it.
class FakeSynic : public hv::SynicService {
 public:
  struct Route : hv::SintRoute {
    Route(FakeSynic* s, uint32_t vp, uint32_t sint)
        : synic(s), vp(vp), sint_(sint) {}
    uint32_t vp_index() const override { return vp; }
    uint32_t sint() const override { return sint_; }
    Status Assert() override {
      synic->asserted.push_back({vp, sint_});
      return Ok();
    }
    FakeSynic* synic;
    uint32_t vp, sint_;
  };

  Result<std::shared_ptr<hv::SintRoute>> CreateSintRoute(
      uint32_t vp, uint32_t sint) override {
    if (vp >= vps) {
      return MakeError(Errc::kOutOfRange, "VP {} does not exist", vp);
    }
    ++routes_created;
    return std::shared_ptr<hv::SintRoute>(
        std::make_shared<Route>(this, vp, sint));
  }
  Status PostMessage(const std::shared_ptr<hv::SintRoute>& route,
                     const hv::Message& msg) override {
    if (busy) return MakeError(Errc::kBusy, "a message is staged");
    posted.push_back({route->vp_index(), route->sint(), msg});
    return Ok();
  }
  Status SetEventFlag(const std::shared_ptr<hv::SintRoute>& route,
                      uint32_t flag) override {
    if (synic_disabled) return MakeError(Errc::kUnsupported, "disabled");
    flags.push_back({route->vp_index(), route->sint(), flag});
    return Ok();
  }
  Status SetMessageHandler(uint32_t conn, MessageHandler h) override {
    if (!msg_handlers.emplace(conn, std::move(h)).second) {
      return MakeError(Errc::kAlreadyExists, "connection {} taken", conn);
    }
    return Ok();
  }
  Status ClearMessageHandler(uint32_t conn) override {
    if (msg_handlers.erase(conn) == 0) {
      return MakeError(Errc::kNotFound, "no connection {}", conn);
    }
    return Ok();
  }
  Status SetEventHandler(uint32_t conn, EventHandler h) override {
    if (!evt_handlers.emplace(conn, std::move(h)).second) {
      return MakeError(Errc::kAlreadyExists, "connection {} taken", conn);
    }
    return Ok();
  }
  Status ClearEventHandler(uint32_t conn) override {
    if (evt_handlers.erase(conn) == 0) {
      return MakeError(Errc::kNotFound, "no connection {}", conn);
    }
    return Ok();
  }

  struct Posted {
    uint32_t vp, sint;
    hv::Message msg;
  };
  struct Flag {
    uint32_t vp, sint, flag;
  };
  uint32_t vps = 2;
  bool busy = false;
  bool synic_disabled = false;
  int routes_created = 0;
  std::vector<std::pair<uint32_t, uint32_t>> asserted;
  std::vector<Posted> posted;
  std::vector<Flag> flags;
  std::map<uint32_t, MessageHandler> msg_handlers;
  std::map<uint32_t, EventHandler> evt_handlers;
};

uint32_t Ctl(uint8_t cmd, uint8_t vp, uint8_t sint, uint8_t conn = 0) {
  return (uint32_t{conn} << 24) | (uint32_t{cmd} << 16) |
         (uint32_t{vp} << 8) | sint;
}

class HypervTestdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    synic_ = std::make_shared<FakeSynic>();
    dev_ = std::make_shared<HypervTestdev>(
        synic_, [this](const std::string& e) { errors_.push_back(e); },
        [this](const std::string& e) { ignored_.push_back(e); });
    ASSERT_TRUE(pio_.Register(kHypervTestdevPort, kHypervTestdevLength, dev_));
  }
  void Out(uint32_t value, uint32_t size = 4) {
    ASSERT_TRUE(pio_.Write({}, kHypervTestdevPort, size, value));
  }

  Bus pio_{BusKind::kPio};
  std::shared_ptr<FakeSynic> synic_;
  std::shared_ptr<HypervTestdev> dev_;
  std::vector<std::string> errors_, ignored_;
};

TEST_F(HypervTestdevTest, ReadsZero) {
  auto r = pio_.Read({}, kHypervTestdevPort, 4);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0u);
}

TEST_F(HypervTestdevTest, SintRouteCreateSetDestroy) {
  Out(Ctl(HypervTestdev::kSintRouteCreate, 1, 5));
  Out(Ctl(HypervTestdev::kSintRouteSetSint, 1, 5));
  Out(Ctl(HypervTestdev::kSintRouteSetSint, 1, 5));
  ASSERT_EQ(synic_->asserted.size(), 2u);
  EXPECT_EQ(synic_->asserted[0], std::make_pair(1u, 5u));
  Out(Ctl(HypervTestdev::kSintRouteDestroy, 1, 5));
  EXPECT_TRUE(errors_.empty());
  // Gone: setting it again is an error, reported, not a crash.
  Out(Ctl(HypervTestdev::kSintRouteSetSint, 1, 5));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("SINT_ROUTE_SET_SINT"), std::string::npos);
  EXPECT_NE(errors_[0].find("no such SINT route"), std::string::npos);
  EXPECT_EQ(synic_->asserted.size(), 2u);
}

TEST_F(HypervTestdevTest, RoutesAreKeyedByVpAndSint) {
  Out(Ctl(HypervTestdev::kSintRouteCreate, 0, 3));
  Out(Ctl(HypervTestdev::kSintRouteCreate, 1, 3));
  Out(Ctl(HypervTestdev::kSintRouteSetSint, 1, 3));
  ASSERT_EQ(synic_->asserted.size(), 1u);
  EXPECT_EQ(synic_->asserted[0].first, 1u);
  Out(Ctl(HypervTestdev::kSintRouteCreate, 0, 3));  // again
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("exists already"), std::string::npos);
}

TEST_F(HypervTestdevTest, BadVpIsReported) {
  Out(Ctl(HypervTestdev::kSintRouteCreate, 7, 0));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("VP 7 does not exist"), std::string::npos);
  EXPECT_NE(errors_[0].find("vp 7"), std::string::npos);
}

TEST_F(HypervTestdevTest, MessageConnectionPostsTheMessageBack) {
  Out(Ctl(HypervTestdev::kMsgConnCreate, 1, 8, 0x10));
  ASSERT_EQ(synic_->msg_handlers.count(0x10), 1u);
  hv::PostMessageInput in;
  in.connection_id = 0x10;
  in.message_type = 0x12345678;
  in.payload_size = 8;
  const uint64_t payload = 0x10000;
  std::memcpy(in.payload, &payload, sizeof(payload));
  EXPECT_EQ(synic_->msg_handlers[0x10](0, in), hv::HvStatus::kSuccess);
  ASSERT_EQ(synic_->posted.size(), 1u);
  const auto& p = synic_->posted[0];
  EXPECT_EQ(p.vp, 1u);
  EXPECT_EQ(p.sint, 8u);
  EXPECT_EQ(p.msg.type, 0x12345678u);
  EXPECT_EQ(p.msg.payload_size, 8u);
  uint64_t got;
  std::memcpy(&got, p.msg.payload, sizeof(got));
  EXPECT_EQ(got, payload);
  EXPECT_EQ(p.msg.flags, 0u);
  // A message still staged: HV_STATUS_INSUFFICIENT_BUFFERS.
  synic_->busy = true;
  EXPECT_EQ(synic_->msg_handlers[0x10](0, in),
            hv::HvStatus::kInsufficientBuffers);
  Out(Ctl(HypervTestdev::kMsgConnDestroy, 0, 0, 0x10));
  EXPECT_EQ(synic_->msg_handlers.count(0x10), 0u);
  EXPECT_TRUE(errors_.empty());
}

TEST_F(HypervTestdevTest, EventConnectionSetsTheConnectionsFlag) {
  Out(Ctl(HypervTestdev::kEvtConnCreate, 0, 9, 0x21));
  ASSERT_EQ(synic_->evt_handlers.count(0x21), 1u);
  EXPECT_EQ(synic_->evt_handlers[0x21](1), hv::HvStatus::kSuccess);
  ASSERT_EQ(synic_->flags.size(), 1u);
  EXPECT_EQ(synic_->flags[0].vp, 0u);
  EXPECT_EQ(synic_->flags[0].sint, 9u);
  EXPECT_EQ(synic_->flags[0].flag, 0x21u);
  synic_->synic_disabled = true;
  EXPECT_EQ(synic_->evt_handlers[0x21](1), hv::HvStatus::kInvalidSynicState);
  Out(Ctl(HypervTestdev::kEvtConnDestroy, 0, 0, 0x21));
  EXPECT_EQ(synic_->evt_handlers.count(0x21), 0u);
  Out(Ctl(HypervTestdev::kEvtConnDestroy, 0, 0, 0x21));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("no such event connection"), std::string::npos);
}

TEST_F(HypervTestdevTest, DuplicateConnectionIsReported) {
  Out(Ctl(HypervTestdev::kMsgConnCreate, 0, 8, 0x10));
  Out(Ctl(HypervTestdev::kMsgConnCreate, 1, 8, 0x10));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("MSG_CONN_CREATE"), std::string::npos);
  // A message and an event connection may share an id (different
  // hypercalls).
  Out(Ctl(HypervTestdev::kEvtConnCreate, 0, 9, 0x10));
  EXPECT_EQ(errors_.size(), 1u);
}

TEST_F(HypervTestdevTest, UnknownCommandsAndOtherWidthsAreIgnored) {
  Out(Ctl(0x42, 0, 0));
  Out(Ctl(HypervTestdev::kSintRouteCreate, 0, 1), 2);
  ASSERT_TRUE(pio_.Write({}, kHypervTestdevPort + 1, 1, 1));
  EXPECT_EQ(ignored_.size(), 3u);
  EXPECT_EQ(synic_->routes_created, 0);
  EXPECT_TRUE(errors_.empty());
}

TEST_F(HypervTestdevTest, DestroyingTheDeviceClearsItsConnections) {
  Out(Ctl(HypervTestdev::kMsgConnCreate, 0, 8, 0x10));
  Out(Ctl(HypervTestdev::kEvtConnCreate, 0, 9, 0x20));
  ASSERT_TRUE(pio_.Unregister(kHypervTestdevPort));
  dev_.reset();
  EXPECT_TRUE(synic_->msg_handlers.empty());
  EXPECT_TRUE(synic_->evt_handlers.empty());
}

}  // namespace
}  // namespace strata
