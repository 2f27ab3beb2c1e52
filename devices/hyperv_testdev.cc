#include "devices/hyperv_testdev.h"

#include <algorithm>
#include <cstring>

namespace strata {

namespace {

const char* CommandName(uint8_t c) {
  switch (c) {
    case HypervTestdev::kSintRouteCreate: return "SINT_ROUTE_CREATE";
    case HypervTestdev::kSintRouteDestroy: return "SINT_ROUTE_DESTROY";
    case HypervTestdev::kSintRouteSetSint: return "SINT_ROUTE_SET_SINT";
    case HypervTestdev::kMsgConnCreate: return "MSG_CONN_CREATE";
    case HypervTestdev::kMsgConnDestroy: return "MSG_CONN_DESTROY";
    case HypervTestdev::kEvtConnCreate: return "EVT_CONN_CREATE";
    case HypervTestdev::kEvtConnDestroy: return "EVT_CONN_DESTROY";
    default: return "unknown";
  }
}

// The status HvPostMessage / HvSignalEvent returns for what the SynIC said
// (TLFS HvPostMessage, HvSignalEvent).
hv::HvStatus ToHvStatus(const Status& s) {
  if (s) return hv::HvStatus::kSuccess;
  switch (s.error().code()) {
    case Errc::kBusy: return hv::HvStatus::kInsufficientBuffers;
    case Errc::kUnsupported: return hv::HvStatus::kInvalidSynicState;
    default: return hv::HvStatus::kInvalidHypercallInput;
  }
}

}  // namespace

HypervTestdev::HypervTestdev(std::shared_ptr<hv::SynicService> synic,
                             ErrorFn on_error, IgnoredFn on_ignored)
    : synic_(std::move(synic)),
      on_error_(std::move(on_error)),
      on_ignored_(std::move(on_ignored)) {}

HypervTestdev::~HypervTestdev() {
  // The SynIC outlives the device's connections: nothing may call their
  // handlers once the device is gone.
  std::lock_guard lock(mu_);
  for (const auto& [conn, route] : msg_conns_) {
    (void)synic_->ClearMessageHandler(conn);
  }
  for (const auto& [conn, route] : evt_conns_) {
    (void)synic_->ClearEventHandler(conn);
  }
}

uint64_t HypervTestdev::Read(const IoContext&, uint64_t, uint32_t) {
  return 0;
}

void HypervTestdev::Write(const IoContext&, uint64_t offset, uint32_t size,
                          uint64_t value) {
  if (offset != 0 || size != 4) {
    if (on_ignored_) {
      on_ignored_(fmt::format("{}-byte write at offset {} (the control "
                              "register takes 4-byte writes)",
                              size, offset));
    }
    return;
  }
  Status s = Execute(static_cast<uint32_t>(value));
  if (!s && on_error_) {
    on_error_(fmt::format("hyperv-testdev: {}", s.error().message()));
  }
}

Status HypervTestdev::Execute(uint32_t value) {
  const uint8_t sint = value & 0xff;
  const uint8_t vp = (value >> 8) & 0xff;
  const uint8_t command = (value >> 16) & 0xff;
  const uint8_t conn = (value >> 24) & 0xff;
  std::lock_guard lock(mu_);
  Status s;
  switch (command) {
    case kSintRouteCreate:
      s = CreateSintRoute(vp, sint);
      break;
    case kSintRouteDestroy:
      if (routes_.erase(Key{vp, sint}) == 0) {
        s = MakeError(Errc::kNotFound, "no such SINT route");
      }
      break;
    case kSintRouteSetSint: {
      auto it = routes_.find(Key{vp, sint});
      s = it == routes_.end()
              ? Status(MakeError(Errc::kNotFound, "no such SINT route"))
              : it->second->Assert();
      break;
    }
    case kMsgConnCreate:
      s = CreateMessageConnection(vp, sint, conn);
      break;
    case kMsgConnDestroy:
      s = DestroyConnection(msg_conns_, conn, "message",
                            &hv::SynicService::ClearMessageHandler);
      break;
    case kEvtConnCreate:
      s = CreateEventConnection(vp, sint, conn);
      break;
    case kEvtConnDestroy:
      s = DestroyConnection(evt_conns_, conn, "event",
                            &hv::SynicService::ClearEventHandler);
      break;
    default:
      if (on_ignored_) {
        on_ignored_(fmt::format("unknown command {} (value {:#010x})",
                                command, value));
      }
      break;
  }
  if (!s) {
    return s.error().Wrap(fmt::format("{} (vp {}, sint {}, connection {:#x})",
                                      CommandName(command), vp, sint, conn));
  }
  return Ok();
}

Status HypervTestdev::DestroyConnection(Connections& conns, uint8_t conn,
                                        const char* kind,
                                        Status (hv::SynicService::*clear)(
                                            uint32_t)) {
  if (conns.erase(conn) == 0) {
    return MakeError(Errc::kNotFound, "no such {} connection", kind);
  }
  return (synic_.get()->*clear)(conn);
}

Status HypervTestdev::CreateSintRoute(uint8_t vp, uint8_t sint) {
  if (routes_.count(Key{vp, sint}) != 0) {
    return MakeError(Errc::kAlreadyExists, "the SINT route exists already");
  }
  routes_[Key{vp, sint}] = STRATA_TRY(synic_->CreateSintRoute(vp, sint));
  return Ok();
}

Status HypervTestdev::CreateMessageConnection(uint8_t vp, uint8_t sint,
                                              uint8_t conn) {
  if (msg_conns_.count(conn) != 0) {
    return MakeError(Errc::kAlreadyExists,
                     "the message connection exists already");
  }
  std::shared_ptr<hv::SintRoute> route =
      STRATA_TRY(synic_->CreateSintRoute(vp, sint));
  // The handler holds the route, not the device: it may run (on a vCPU
  // thread, from the SynIC) until ClearMessageHandler has returned.
  hv::SynicService* synic = synic_.get();
  STRATA_TRY(synic_->SetMessageHandler(
      conn, [synic, route](uint32_t, const hv::PostMessageInput& in) {
        // "Post the same message we've got" (QEMU's msg_handler): type,
        // size and payload; the SynIC has checked the size.
        hv::Message msg;
        msg.type = in.message_type;
        msg.payload_size = static_cast<uint8_t>(
            std::min<uint32_t>(in.payload_size, hv::kMessagePayloadSize));
        std::memcpy(msg.payload, in.payload, msg.payload_size);
        return ToHvStatus(synic->PostMessage(route, msg));
      }));
  msg_conns_[conn] = std::move(route);
  return Ok();
}

Status HypervTestdev::CreateEventConnection(uint8_t vp, uint8_t sint,
                                            uint8_t conn) {
  if (evt_conns_.count(conn) != 0) {
    return MakeError(Errc::kAlreadyExists,
                     "the event connection exists already");
  }
  std::shared_ptr<hv::SintRoute> route =
      STRATA_TRY(synic_->CreateSintRoute(vp, sint));
  hv::SynicService* synic = synic_.get();
  STRATA_TRY(synic_->SetEventHandler(conn, [synic, route, conn](uint32_t) {
    // The flag is the connection id, as QEMU's evt_conn_handler sets it.
    return ToHvStatus(synic->SetEventFlag(route, conn));
  }));
  evt_conns_[conn] = std::move(route);
  return Ok();
}

}  // namespace strata
