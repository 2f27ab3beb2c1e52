// strata — QEMU's hyperv-testdev (hw/misc/hyperv_testdev.c), the control
// port kvm-unit-tests' Hyper-V tests (x86/hyperv.c: hyperv_synic,
// hyperv_connections) use to make the hypervisor raise SynIC interrupts
// and to connect the HvPostMessage / HvSignalEvent hypercalls to something.
//
// Emulated: one 32-bit write-only register (4 I/O ports; QEMU's at 0x3000,
// reads give 0). A write of
//     (conn_id << 24) | (command << 16) | (vp_index << 8) | sint
// does:
//   1 SINT_ROUTE_CREATE   a route to SINT `sint` of VP `vp_index`
//   2 SINT_ROUTE_DESTROY  removes that route
//   3 SINT_ROUTE_SET_SINT asserts it (the guest's SINTx vector fires)
//   4 MSG_CONN_CREATE     connection `conn_id`: an HvPostMessage to it is
//                         posted back, unchanged (type, size, payload), to
//                         SINT `sint` of VP `vp_index` (one message in
//                         flight: a second is HV_STATUS_INSUFFICIENT_BUFFERS
//                         until the first is in the slot)
//   5 MSG_CONN_DESTROY    removes connection `conn_id`
//   6 EVT_CONN_CREATE     connection `conn_id`: an HvSignalEvent to it sets
//                         event flag `conn_id` of SINT `sint` of VP
//                         `vp_index`, asserting the SINT if it was clear
//   7 EVT_CONN_DESTROY    removes connection `conn_id`
// (Hyper-V TLFS, "Inter-Partition Communication"; the SynIC side is
// devices/hyperv_synic.h.)
// Other commands are ignored, as in QEMU. Accesses other than 4-byte
// writes are ignored (QEMU's region accepts only those).
//
// Where QEMU asserts, this model reports: a command the SynIC refuses (a
// VP that does not exist, a route or connection that already exists or
// does not) goes to the error callback, which the machine turns into a VM
// stop with that message.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/bus.h"
#include "devices/hyperv_synic.h"

namespace strata {

inline constexpr uint64_t kHypervTestdevPort = 0x3000;
inline constexpr uint64_t kHypervTestdevLength = 4;

class HypervTestdev : public IoDevice {
 public:
  enum Command : uint8_t {
    kSintRouteCreate = 1,
    kSintRouteDestroy = 2,
    kSintRouteSetSint = 3,
    kMsgConnCreate = 4,
    kMsgConnDestroy = 5,
    kEvtConnCreate = 6,
    kEvtConnDestroy = 7,
  };
  // Called with a message naming the command that failed and why.
  using ErrorFn = std::function<void(const std::string& what)>;
  // Called for writes the model ignores (unknown command, wrong width);
  // the machine rate-limits them.
  using IgnoredFn = std::function<void(const std::string& what)>;

  HypervTestdev(std::shared_ptr<hv::SynicService> synic, ErrorFn on_error,
                IgnoredFn on_ignored = nullptr);
  ~HypervTestdev() override;

  uint64_t Read(const IoContext& ctx, uint64_t offset, uint32_t size) override;
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override;
  std::string_view name() const override { return "hyperv-testdev"; }

  // Runs one command (what a 4-byte write does); for tests and messages.
  Status Execute(uint32_t value);

 private:
  struct Key {
    uint8_t vp_index;
    uint8_t sint;
    auto operator<=>(const Key&) const = default;
  };
  // The routes the connections post through, by connection id.
  using Connections = std::map<uint8_t, std::shared_ptr<hv::SintRoute>>;
  Status CreateSintRoute(uint8_t vp, uint8_t sint);
  Status CreateMessageConnection(uint8_t vp, uint8_t sint, uint8_t conn);
  Status CreateEventConnection(uint8_t vp, uint8_t sint, uint8_t conn);
  // Drops connection `conn` of `conns` and its handler (`clear`).
  Status DestroyConnection(Connections& conns, uint8_t conn, const char* kind,
                           Status (hv::SynicService::*clear)(uint32_t));

  const std::shared_ptr<hv::SynicService> synic_;
  const ErrorFn on_error_;
  const IgnoredFn on_ignored_;
  std::mutex mu_;
  std::map<Key, std::shared_ptr<hv::SintRoute>> routes_;  // mu_
  Connections msg_conns_;  // mu_
  Connections evt_conns_;  // mu_
};

}  // namespace strata
