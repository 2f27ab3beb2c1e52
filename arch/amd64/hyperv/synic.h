// strata — the VMM's half of the Hyper-V SynIC on KVM.
//
// Theory (Hyper-V TLFS, "Inter-Partition Communication" and "Synthetic
// Interrupt Controller"; KVM API doc, "KVM_CAP_HYPERV_SYNIC2" and
// "KVM_EXIT_HYPERV"). KVM emulates each VP's SynIC registers (SINTx, EOM,
// the synthetic timers, which post their own messages) and raises SINTs
// routed to it (KVM_IRQ_ROUTING_HV_SINT). What KVM leaves to user space:
//   - SynIC exits: after each guest write of SCONTROL, SIEFP or SIMP, the
//     VP's three registers. Synic keeps them per VP, because posting a
//     message or setting an event flag writes the guest's message page
//     (SIMP) or event-flags page (SIEFP).
//   - Hyper-V hypercall exits: HvPostMessage and HvSignalEvent (when no
//     in-kernel eventfd took the event) are dispatched to the handlers
//     device models registered for the connection id; any other hypercall
//     KVM hands over is answered HV_STATUS_INVALID_HYPERCALL_CODE.
// The pages. The TLFS makes SIMP and SIEFP overlay pages: hypervisor pages
// that hide the guest page at that GPA while enabled and keep their own
// contents across disable and enable (QEMU maps such pages over guest
// RAM). strata uses the guest page itself, as KVM_CAP_HYPERV_SYNIC
// (version 1) does: the page is cleared when the guest enables it or moves
// it (version 2 of the capability leaves that to the VMM). Guests give the
// SynIC pages of their own, so both work alike for them. Only guest RAM is
// ever written, through GuestMemory: an address elsewhere is reported and
// the page counts as disabled.
// Messages follow the one-deep queue per SINT ("Message Buffer
// Management"): a message is staged and written into its slot on the
// target VP's own vCPU thread (Vcpu::Post: the guest of that VP is not
// running, as with QEMU's run_on_cpu); a busy slot gets MessagePending and
// the message waits for the guest's acknowledgement (EOM, or EOI of the
// SINT vector), which KVM signals on the route's resampling irqfd; a thread
// started with the VM watches those and re-stages the waiting message.
// Event flags are set with an atomic OR on the page from the calling
// thread, as hardware would.
//
// VP index = vCPU index (the KVM backend sets HV_X64_MSR_VP_INDEX so).
// Synic reaches the VM through Host, so it is unit-tested without one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/guest_memory.h"
#include "core/irq.h"
#include "core/log.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "devices/hyperv_synic.h"

namespace strata {
class Vm;
}

namespace strata::amd64::hyperv {

// SynIC MSRs (TLFS, "Synthetic Interrupt Controller").
inline constexpr uint32_t kMsrScontrol = 0x40000080;
inline constexpr uint32_t kMsrSiefp = 0x40000082;
inline constexpr uint32_t kMsrSimp = 0x40000083;
// Bit 0 enables the SynIC (SCONTROL) or the page (SIEFP, SIMP); the page's
// GPA is bits 63:12.
inline constexpr uint64_t kSynicEnable = 1;
inline constexpr uint64_t kSynicPageMask = ~uint64_t{0xfff};

// The hypercall input value (TLFS, "Hypercall Interface"): call code 15:0,
// fast 16, variable header size 26:17, rep count 43:32, rep start 59:48.
inline constexpr uint64_t kHypercallCodeMask = 0xffff;
inline constexpr uint64_t kHypercallFast = uint64_t{1} << 16;
inline constexpr uint64_t kHypercallCountsMask =
    (uint64_t{0x3ff} << 17) | (uint64_t{0xfff} << 32) |
    (uint64_t{0xfff} << 48);
// Call codes (TLFS appendix "Hypercall Code Reference").
inline constexpr uint16_t kHvcallPostMessage = 0x005c;
inline constexpr uint16_t kHvcallSignalEvent = 0x005d;

class Synic final : public hv::SynicService,
                    public std::enable_shared_from_this<Synic> {
 public:
  // The hypervisor's line to one SINT.
  class SintLine {
   public:
    virtual ~SintLine() = default;
    virtual Status Assert() = 0;
    // Readable (an eventfd count) after each acknowledgement of the SINT;
    // -1 if the line has none.
    virtual int ack_fd() const = 0;
  };

  // How the SynIC reaches the VM.
  class Host {
   public:
    virtual ~Host() = default;
    // Number of VPs (the VM's vCPU limit): VP indexes are 0..vp_count-1.
    virtual uint32_t vp_count() const = 0;
    // Runs fn with guest RAM, under whatever the calling thread needs to
    // touch it (nothing on a vCPU thread, the VM read lock elsewhere).
    virtual void WithMemory(const std::function<void(GuestMemory&)>& fn) = 0;
    // Runs fn on VP vp's vCPU thread at its loop top; false if the vCPU
    // does not exist.
    virtual bool RunOnVp(uint32_t vp, std::function<void()> fn) = 0;
    // The route to `sint`; with `ack`, a line whose ack_fd() works.
    virtual Result<std::unique_ptr<SintLine>> RouteSint(const HvSint& sint,
                                                        bool ack) = 0;
    virtual std::shared_ptr<spdlog::logger> logger() = 0;
  };

  // `acks`: whether routes can report acknowledgements (KVM: resampling
  // irqfds need its in-kernel IOAPIC); without, PostMessage is refused.
  static std::shared_ptr<Synic> Create(std::unique_ptr<Host> host, bool acks);
  ~Synic() override;

  // The SynIC exit of VP `vp` (on its vCPU thread): the register written
  // and the three registers after the write.
  void OnSynicExit(uint32_t vp, uint32_t msr, uint64_t control,
                   uint64_t evt_page, uint64_t msg_page);
  // A Hyper-V hypercall of VP `vp` that KVM left to user space (on its
  // vCPU thread); returns the hypercall result (status in bits 15:0).
  uint64_t OnHypercall(uint32_t vp, uint64_t input, uint64_t in_param,
                       uint64_t out_param);

  // The acknowledgement watcher (a thread), started before the vCPUs run
  // and stopped after they have; Stop is idempotent and also run by the
  // destructor.
  Status Start();
  void Stop();

  // hv::SynicService.
  Result<std::shared_ptr<hv::SintRoute>> CreateSintRoute(
      uint32_t vp_index, uint32_t sint) override;
  Status PostMessage(const std::shared_ptr<hv::SintRoute>& route,
                     const hv::Message& msg) override;
  Status SetEventFlag(const std::shared_ptr<hv::SintRoute>& route,
                      uint32_t flag) override;
  Status SetMessageHandler(uint32_t connection_id,
                           MessageHandler handler) override;
  Status ClearMessageHandler(uint32_t connection_id) override;
  Status SetEventHandler(uint32_t connection_id,
                         EventHandler handler) override;
  Status ClearEventHandler(uint32_t connection_id) override;

  // One VP's SynIC control registers as the guest last wrote them.
  struct Registers {
    uint64_t control = 0;
    uint64_t evt_page = 0;  // SIEFP
    uint64_t msg_page = 0;  // SIMP
  };
  Registers registers(uint32_t vp) const;

 private:
  struct RouteState;
  class RouteHandle;
  Synic(std::unique_ptr<Host> host, bool acks);

  Result<std::shared_ptr<RouteState>> StateOf(
      const std::shared_ptr<hv::SintRoute>& route) const;
  // The GPA of VP vp's page `page` (SIMP or SIEFP) if its SynIC and the
  // page are enabled and the page is guest RAM; else kUnsupported saying
  // which is not.
  Result<uint64_t> UsablePage(uint32_t vp, uint64_t Registers::*page,
                              const char* name) const;
  // On the route's VP thread: writes the staged message or marks the slot
  // pending.
  void Deliver(const std::shared_ptr<RouteState>& r);
  // Runs Deliver on the route's VP thread; false, with the staged message
  // dropped, if that VP has no vCPU.
  bool ScheduleDelivery(const std::shared_ptr<RouteState>& r);
  void Forget(uint64_t route_id);
  void ClearPage(uint32_t vp, const char* name, uint64_t old_reg,
                 uint64_t new_reg);
  hv::HvStatus PostMessageCall(uint32_t vp, uint64_t gpa, bool fast);
  hv::HvStatus SignalEventCall(uint32_t vp, uint64_t param, bool fast);
  void WatchAcks();
  void Wake();
  // The connection handler tables (message or event, named by `kind`).
  template <typename Handler>
  Status SetHandler(std::map<uint32_t, Handler>& handlers,
                    uint32_t connection_id, Handler handler, const char* kind);
  template <typename Handler>
  Status ClearHandler(std::map<uint32_t, Handler>& handlers,
                      uint32_t connection_id, const char* kind);

  const std::unique_ptr<Host> host_;
  const bool acks_;
  const std::shared_ptr<spdlog::logger> log_;
  RateLimit guest_log_;  // guest-triggerable warnings
  mutable std::mutex mu_;
  std::vector<Registers> regs_;                               // mu_
  std::map<uint64_t, std::shared_ptr<RouteState>> routes_;    // mu_
  uint64_t next_route_id_ = 1;                                // mu_
  std::map<uint32_t, MessageHandler> msg_handlers_;           // mu_
  std::map<uint32_t, EventHandler> evt_handlers_;             // mu_
  UniqueFd wake_fd_;  // eventfd: the route set changed, or stop
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

// Creates the VM's Synic and installs its exit handlers (kHypervSynic,
// kHypervHcall); before any vCPU runs. `acks`: see Synic::Create.
Result<std::shared_ptr<Synic>> InstallSynic(Vm& vm, bool acks);

}  // namespace strata::amd64::hyperv
