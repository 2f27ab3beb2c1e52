// strata — what a Hyper-V device model needs from the machine's synthetic
// interrupt controller (SynIC), and the SynIC's guest-visible formats.
//
// Hyper-V Top-Level Functional Specification (TLFS), "Inter-Partition
// Communication" and "Synthetic Interrupt Controller": each virtual
// processor (VP, named by its VP index) has a SynIC with 16 synthetic
// interrupt sources (SINTs). The guest gives every VP a message page (SIMP)
// holding one 256-byte message slot per SINT, and an event-flags page
// (SIEFP) holding 2048 flags per SINT. A message or a flag is delivered by
// writing the slot or setting the bit, then asserting the SINT, which
// interrupts the VP with the vector the guest programmed in that SINT's
// register. A slot still holding an undelivered message is busy: the
// sender marks it MessagePending and delivers once the guest has emptied
// it and written end-of-message (EOM; "Message Buffer Management").
//
// The guest reaches devices through two hypercalls: HvPostMessage sends a
// message to a connection, HvSignalEvent signals one; a device model
// registers handlers for the connection ids it owns.
//
// The machine implements SynicService (arch/amd64/hyperv/synic.h on KVM);
// device models (devices/hyperv_testdev.h) use it through this header only,
// so they stay testable with a fake and independent of the hypervisor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/result.h"

namespace strata::hv {

// 16 SINTs per VP; the message and event-flags pages are 4 KiB.
inline constexpr uint32_t kSintCount = 16;
inline constexpr uint64_t kSynicPageSize = 4096;

// TLFS HV_MESSAGE: a 16-byte header and 240 bytes of payload.
inline constexpr uint32_t kMessageSize = 256;
inline constexpr uint32_t kMessagePayloadSize = 240;
// Message types with bit 31 set are the hypervisor's own (TLFS
// HV_MESSAGE_TYPE); HvMessageTypeNone marks an empty slot.
inline constexpr uint32_t kMessageTypeNone = 0;
inline constexpr uint32_t kMessageTypeHypervisorMask = 0x80000000u;
inline constexpr uint32_t kMessageTypeTimerExpired = 0x80000010u;
// HV_MESSAGE_FLAGS bit 0, MessagePending (TLFS HV_MESSAGE).
inline constexpr uint8_t kMessageFlagPending = 1u << 0;

// 2048 event flags (256 bytes) per SINT.
inline constexpr uint32_t kEventFlagsPerSint = 2048;
inline constexpr uint32_t kEventFlagsSlotSize = kEventFlagsPerSint / 8;

// TLFS HV_CONNECTION_ID: the low 24 bits name the connection.
inline constexpr uint32_t kConnectionIdMask = 0x00ffffffu;

// Hypercall status codes (TLFS, "Hypercall Interface", HV_STATUS).
enum class HvStatus : uint16_t {
  kSuccess = 0x0000,
  kInvalidHypercallCode = 0x0002,
  kInvalidHypercallInput = 0x0003,
  kInvalidAlignment = 0x0004,
  kInvalidParameter = 0x0005,
  kAccessDenied = 0x0006,
  kInvalidPortId = 0x0011,
  kInvalidConnectionId = 0x0012,
  kInsufficientBuffers = 0x0013,
  kInvalidSynicState = 0x0018,
};

// HV_MESSAGE (TLFS HV_MESSAGE), as it lies in a SIMP slot.
struct Message {
  uint32_t type = kMessageTypeNone;
  uint8_t payload_size = 0;
  uint8_t flags = 0;
  uint16_t reserved = 0;
  uint64_t origin = 0;  // sender: a port id or partition id
  uint8_t payload[kMessagePayloadSize] = {};
};
static_assert(sizeof(Message) == kMessageSize);
static_assert(offsetof(Message, flags) == 5);

// HvPostMessage's input block (TLFS HvPostMessage), as the guest passes it.
struct PostMessageInput {
  uint32_t connection_id = 0;
  uint32_t reserved = 0;
  uint32_t message_type = 0;
  uint32_t payload_size = 0;
  uint8_t payload[kMessagePayloadSize] = {};
};
static_assert(sizeof(PostMessageInput) == kMessageSize);

// The hypervisor's route to one SINT of one VP: asserting it interrupts the
// VP with the vector of its SINTx register, if unmasked.
class SintRoute {
 public:
  virtual ~SintRoute() = default;
  virtual uint32_t vp_index() const = 0;
  virtual uint32_t sint() const = 0;
  // Asserts the SINT once (an edge). Safe from any thread.
  virtual Status Assert() = 0;
};

class SynicService {
 public:
  virtual ~SynicService() = default;

  // A route to SINT `sint` (0-15) of VP `vp_index`. kOutOfRange for a SINT
  // or VP that does not exist.
  virtual Result<std::shared_ptr<SintRoute>> CreateSintRoute(
      uint32_t vp_index, uint32_t sint) = 0;

  // Delivers `msg` into the route's slot of its VP's message page, then
  // asserts the SINT. Asynchronous, as the hypervisor's message queue: the
  // message is staged and written on the VP's own thread; if the slot is
  // busy the slot is marked MessagePending and the message is written when
  // the guest acknowledges (EOM or EOI of the SINT vector). One message per
  // route at a time: kBusy while the previous one is still staged (TLFS
  // HV_STATUS_INSUFFICIENT_BUFFERS). kUnsupported when the VP's SynIC or its
  // message page is disabled, or the page is not guest RAM (TLFS
  // HV_STATUS_INVALID_SYNIC_STATE).
  virtual Status PostMessage(const std::shared_ptr<SintRoute>& route,
                             const Message& msg) = 0;

  // Sets event flag `flag` in the route's slot of its VP's event-flags page
  // and, if it was clear, asserts the SINT. kOutOfRange for a flag past
  // 2047; kUnsupported as for PostMessage.
  virtual Status SetEventFlag(const std::shared_ptr<SintRoute>& route,
                              uint32_t flag) = 0;

  // Handlers of the guest's HvPostMessage / HvSignalEvent for connection
  // `connection_id` (24 bits), called on the calling vCPU's thread with
  // that vCPU's VP index; they return the hypercall's status. Setting a
  // handler for a connection that has one is kAlreadyExists; clearing one
  // that has none is kNotFound.
  using MessageHandler =
      std::function<HvStatus(uint32_t caller_vp, const PostMessageInput&)>;
  using EventHandler = std::function<HvStatus(uint32_t caller_vp)>;
  virtual Status SetMessageHandler(uint32_t connection_id,
                                   MessageHandler handler) = 0;
  virtual Status ClearMessageHandler(uint32_t connection_id) = 0;
  virtual Status SetEventHandler(uint32_t connection_id,
                                 EventHandler handler) = 0;
  virtual Status ClearEventHandler(uint32_t connection_id) = 0;
};

}  // namespace strata::hv
