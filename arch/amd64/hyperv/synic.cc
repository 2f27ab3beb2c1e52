#include "arch/amd64/hyperv/synic.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/current_guest.h"
#include "core/vm.h"

namespace strata::amd64::hyperv {

using hv::HvStatus;

// A route's staged message (one message in flight per SINT: TLFS, "Message
// Buffer Management"): kStaged from PostMessage until Deliver runs on the
// VP's thread, kWaitingAck while the slot was busy and the message waits
// for the guest's EOM (or EOI of the SINT's vector).
struct Synic::RouteState {
  enum class Stage : uint8_t { kFree, kStaged, kWaitingAck };
  RouteState(uint32_t vp, uint32_t sint, std::unique_ptr<SintLine> line)
      : vp(vp), sint(sint), line(std::move(line)) {}
  const uint32_t vp;
  const uint32_t sint;
  const std::unique_ptr<SintLine> line;
  std::mutex mu;
  Stage stage = Stage::kFree;  // mu
  hv::Message msg;             // mu: the staged message
};

// What CreateSintRoute hands out: the route for its holder's lifetime.
class Synic::RouteHandle final : public hv::SintRoute {
 public:
  RouteHandle(std::weak_ptr<Synic> synic, uint64_t id,
              std::shared_ptr<RouteState> state)
      : synic_(std::move(synic)), id_(id), state_(std::move(state)) {}
  ~RouteHandle() override {
    if (std::shared_ptr<Synic> s = synic_.lock()) s->Forget(id_);
  }
  uint32_t vp_index() const override { return state_->vp; }
  uint32_t sint() const override { return state_->sint; }
  Status Assert() override { return state_->line->Assert(); }
  const std::shared_ptr<RouteState>& state() const { return state_; }

 private:
  const std::weak_ptr<Synic> synic_;
  const uint64_t id_;
  const std::shared_ptr<RouteState> state_;
};

std::shared_ptr<Synic> Synic::Create(std::unique_ptr<Host> host, bool acks) {
  return std::shared_ptr<Synic>(new Synic(std::move(host), acks));
}

Synic::Synic(std::unique_ptr<Host> host, bool acks)
    : host_(std::move(host)),
      acks_(acks),
      log_(host_->logger()),
      guest_log_("Hyper-V SynIC", log_),
      regs_(host_->vp_count()),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Synic::~Synic() {
  Stop();
}

Synic::Registers Synic::registers(uint32_t vp) const {
  std::lock_guard lock(mu_);
  return vp < regs_.size() ? regs_[vp] : Registers{};
}

// ------------------------------------------------------------- exits ----

void Synic::OnSynicExit(uint32_t vp, uint32_t msr, uint64_t control,
                        uint64_t evt_page, uint64_t msg_page) {
  Registers old;
  {
    std::lock_guard lock(mu_);
    if (vp >= regs_.size()) {
      log_->error("Hyper-V SynIC exit of VP {}, beyond the VM's {} VPs", vp,
                  regs_.size());
      return;
    }
    old = regs_[vp];
    regs_[vp] = Registers{control, evt_page, msg_page};
  }
  if (msr == kMsrSimp) {
    ClearPage(vp, "message page (SIMP)", old.msg_page, msg_page);
  } else if (msr == kMsrSiefp) {
    ClearPage(vp, "event-flags page (SIEFP)", old.evt_page, evt_page);
  }
}

// A page the guest has just enabled, or moved, starts empty (no message,
// no flag), as KVM_CAP_HYPERV_SYNIC (version 1) makes it (synic.h: strata
// uses the guest's page, not an overlay); version 2 leaves that to the VMM.
// Only guest RAM is written: any other address is reported, and
// UsablePage refuses it.
void Synic::ClearPage(uint32_t vp, const char* name, uint64_t old_reg,
                      uint64_t new_reg) {
  if ((new_reg & kSynicEnable) == 0) return;
  if ((old_reg & kSynicEnable) != 0 &&
      (old_reg & kSynicPageMask) == (new_reg & kSynicPageMask)) {
    return;
  }
  const uint64_t gpa = new_reg & kSynicPageMask;
  bool ram = false;
  host_->WithMemory([&](GuestMemory& m) {
    auto page = m.Translate(gpa, hv::kSynicPageSize);
    if (!page) return;
    std::memset(page->data(), 0, page->size());
    ram = true;
  });
  if (!ram) {
    guest_log_.Warn("VP {}: the SynIC {} is enabled at GPA {:#x}, which is "
                    "not guest RAM: nothing will be delivered through it",
                    vp, name, gpa);
  }
}

uint64_t Synic::OnHypercall(uint32_t vp, uint64_t input, uint64_t in_param,
                            uint64_t out_param) {
  (void)out_param;  // neither call has output
  const auto code = static_cast<uint16_t>(input & kHypercallCodeMask);
  const bool fast = (input & kHypercallFast) != 0;
  HvStatus status;
  if (code != kHvcallPostMessage && code != kHvcallSignalEvent) {
    // KVM answers the calls it implements; this is one strata does not
    // have either (an extended hypercall, a debugger call, ...).
    guest_log_.Info("VP {}: Hyper-V hypercall {:#06x} (input {:#x}) is not "
                    "implemented: HV_STATUS_INVALID_HYPERCALL_CODE",
                    vp, code, input);
    status = HvStatus::kInvalidHypercallCode;
  } else if ((input & kHypercallCountsMask) != 0) {
    // Neither is a rep call or has a variable header (TLFS, HvPostMessage
    // and HvSignalEvent).
    status = HvStatus::kInvalidHypercallInput;
  } else if (code == kHvcallPostMessage) {
    status = PostMessageCall(vp, in_param, fast);
  } else {
    status = SignalEventCall(vp, in_param, fast);
  }
  return static_cast<uint64_t>(status);
}

// HvPostMessage (TLFS, "Inter-Partition Communication"). The input block
// is 256 bytes at an 8-byte aligned GPA that must not cross a page (TLFS,
// "Hypercall Interface").
HvStatus Synic::PostMessageCall(uint32_t vp, uint64_t gpa, bool fast) {
  if (fast) return HvStatus::kInvalidHypercallCode;  // as QEMU: no fast form
  if (gpa % 8 != 0 ||
      (gpa % hv::kSynicPageSize) + sizeof(hv::PostMessageInput) >
          hv::kSynicPageSize) {
    return HvStatus::kInvalidAlignment;
  }
  hv::PostMessageInput in;
  bool ram = false;
  host_->WithMemory([&](GuestMemory& m) {
    ram = m.Read(gpa, &in, sizeof(in)).has_value();
  });
  if (!ram) return HvStatus::kInvalidParameter;
  // Payloads up to 240 bytes; message types with bit 31 set are the
  // hypervisor's (TLFS, HV_MESSAGE_TYPE).
  if (in.payload_size > hv::kMessagePayloadSize ||
      (in.message_type & hv::kMessageTypeHypervisorMask) != 0 ||
      in.message_type == hv::kMessageTypeNone) {
    return HvStatus::kInvalidParameter;
  }
  MessageHandler handler;
  {
    std::lock_guard lock(mu_);
    auto it = msg_handlers_.find(in.connection_id & hv::kConnectionIdMask);
    if (it == msg_handlers_.end()) return HvStatus::kInvalidConnectionId;
    handler = it->second;
  }
  return handler(vp, in);
}

// HvSignalEvent (TLFS, "Inter-Partition Communication"): connection id in
// bits 23:0, flag number in 47:32, the rest reserved; in memory for a slow
// call.
HvStatus Synic::SignalEventCall(uint32_t vp, uint64_t param, bool fast) {
  if (!fast) {
    const uint64_t gpa = param;
    if (gpa % 8 != 0) return HvStatus::kInvalidAlignment;
    bool ram = false;
    host_->WithMemory([&](GuestMemory& m) {
      ram = m.Read(gpa, &param, sizeof(param)).has_value();
    });
    if (!ram) return HvStatus::kInvalidParameter;
  }
  // strata's connections have one flag each (as KVM's and QEMU's): a flag
  // number is a port strata does not have.
  if ((param & 0x0000ffff00000000ull) != 0) return HvStatus::kInvalidPortId;
  if ((param & ~uint64_t{hv::kConnectionIdMask}) != 0) {
    return HvStatus::kInvalidHypercallInput;
  }
  EventHandler handler;
  {
    std::lock_guard lock(mu_);
    auto it = evt_handlers_.find(static_cast<uint32_t>(param));
    if (it == evt_handlers_.end()) return HvStatus::kInvalidConnectionId;
    handler = it->second;
  }
  return handler(vp);
}

// ------------------------------------------------------------ routes ----

Result<std::shared_ptr<hv::SintRoute>> Synic::CreateSintRoute(
    uint32_t vp_index, uint32_t sint) {
  if (vp_index >= host_->vp_count()) {
    return MakeError(Errc::kOutOfRange,
                     "VP {} does not exist (the VM has VPs 0-{})", vp_index,
                     host_->vp_count() - 1);
  }
  if (sint >= hv::kSintCount) {
    return MakeError(Errc::kOutOfRange, "SINT {}: a SynIC has SINTs 0-{}",
                     sint, hv::kSintCount - 1);
  }
  std::unique_ptr<SintLine> line =
      STRATA_TRY(host_->RouteSint(HvSint{vp_index, sint}, acks_));
  auto state = std::make_shared<RouteState>(vp_index, sint, std::move(line));
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_route_id_++;
    routes_[id] = state;
  }
  Wake();  // the watcher polls the new route's acks
  return std::shared_ptr<hv::SintRoute>(
      std::make_shared<RouteHandle>(weak_from_this(), id, std::move(state)));
}

void Synic::Forget(uint64_t route_id) {
  std::shared_ptr<RouteState> gone;  // let go of outside mu_
  {
    std::lock_guard lock(mu_);
    auto it = routes_.find(route_id);
    if (it == routes_.end()) return;
    gone = std::move(it->second);
    routes_.erase(it);
  }
  Wake();  // the watcher drops its reference, closing the route's fds
}

Result<std::shared_ptr<Synic::RouteState>> Synic::StateOf(
    const std::shared_ptr<hv::SintRoute>& route) const {
  auto handle = std::dynamic_pointer_cast<RouteHandle>(route);
  if (!handle) {
    return MakeError(Errc::kInvalidArgument,
                     "not a route of this SynIC (CreateSintRoute makes them)");
  }
  return handle->state();
}

Result<uint64_t> Synic::UsablePage(uint32_t vp, uint64_t Registers::*page,
                                   const char* name) const {
  const Registers regs = registers(vp);
  const uint64_t page_reg = regs.*page;
  if ((regs.control & kSynicEnable) == 0) {
    return MakeError(Errc::kUnsupported, "VP {}'s SynIC is disabled (SCONTROL)",
                     vp);
  }
  if ((page_reg & kSynicEnable) == 0) {
    return MakeError(Errc::kUnsupported, "VP {}'s SynIC {} is disabled", vp,
                     name);
  }
  const uint64_t gpa = page_reg & kSynicPageMask;
  bool ram = false;
  host_->WithMemory(
      [&](GuestMemory& m) { ram = m.IsRam(gpa, hv::kSynicPageSize); });
  if (!ram) {
    return MakeError(Errc::kUnsupported,
                     "VP {}'s SynIC {} at GPA {:#x} is not guest RAM", vp,
                     name, gpa);
  }
  return gpa;
}

Status Synic::PostMessage(const std::shared_ptr<hv::SintRoute>& route,
                          const hv::Message& msg) {
  if (!acks_) {
    return MakeError(Errc::kUnsupported,
                     "posting SynIC messages needs to learn when the guest "
                     "frees a slot, which KVM reports only with its "
                     "in-kernel IOAPIC (x86.irqchip=kernel)");
  }
  std::shared_ptr<RouteState> r = STRATA_TRY(StateOf(route));
  STRATA_TRY(UsablePage(r->vp, &Registers::msg_page, "message page (SIMP)"));
  {
    std::lock_guard lock(r->mu);
    if (r->stage != RouteState::Stage::kFree) {
      return MakeError(Errc::kBusy,
                       "a message to SINT {} of VP {} is still being "
                       "delivered",
                       r->sint, r->vp);
    }
    r->msg = msg;
    r->msg.flags = 0;
    r->stage = RouteState::Stage::kStaged;
  }
  if (!ScheduleDelivery(r)) {
    return MakeError(Errc::kOutOfRange, "VP {} has no vCPU", r->vp);
  }
  return Ok();
}

bool Synic::ScheduleDelivery(const std::shared_ptr<RouteState>& r) {
  std::weak_ptr<Synic> weak = weak_from_this();
  if (host_->RunOnVp(r->vp, [weak, r] {
        if (std::shared_ptr<Synic> s = weak.lock()) s->Deliver(r);
      })) {
    return true;
  }
  std::lock_guard lock(r->mu);
  r->stage = RouteState::Stage::kFree;
  return false;
}

void Synic::Deliver(const std::shared_ptr<RouteState>& r) {
  hv::Message msg;
  {
    std::lock_guard lock(r->mu);
    if (r->stage != RouteState::Stage::kStaged) return;
    msg = r->msg;
  }
  Result<uint64_t> page =
      UsablePage(r->vp, &Registers::msg_page, "message page (SIMP)");
  bool delivered = false, busy = false;
  if (page) {
    host_->WithMemory([&](GuestMemory& m) {
      auto slot = m.Translate(*page + r->sint * hv::kMessageSize,
                              hv::kMessageSize);
      if (!slot) return;
      uint8_t* p = slot->data();  // 256-byte aligned: the page is mapped so
      auto* type = reinterpret_cast<uint32_t*>(p);
      if (__atomic_load_n(type, __ATOMIC_ACQUIRE) != hv::kMessageTypeNone) {
        // The guest will write EOM after emptying the slot (TLFS,
        // "Message Buffer Management").
        __atomic_fetch_or(p + offsetof(hv::Message, flags),
                          hv::kMessageFlagPending, __ATOMIC_SEQ_CST);
        busy = true;
        return;
      }
      // Everything but the type, then the type: the guest polls the type.
      std::memcpy(p + sizeof(uint32_t),
                  reinterpret_cast<const uint8_t*>(&msg) + sizeof(uint32_t),
                  hv::kMessageSize - sizeof(uint32_t));
      __atomic_store_n(type, msg.type, __ATOMIC_RELEASE);
      delivered = true;
    });
  }
  {
    std::lock_guard lock(r->mu);
    r->stage =
        busy ? RouteState::Stage::kWaitingAck : RouteState::Stage::kFree;
  }
  if (!delivered && !busy) {
    guest_log_.Warn("dropping a SynIC message (type {:#x}) for SINT {} of VP "
                    "{}: {}",
                    msg.type, r->sint, r->vp,
                    page ? "its slot is not guest RAM"
                         : page.error().message());
    return;
  }
  if (delivered) {
    if (Status s = r->line->Assert(); !s) {
      log_->error("asserting SINT {} of VP {}: {}", r->sint, r->vp,
                  s.error().message());
    }
  }
}

Status Synic::SetEventFlag(const std::shared_ptr<hv::SintRoute>& route,
                           uint32_t flag) {
  if (flag >= hv::kEventFlagsPerSint) {
    return MakeError(Errc::kOutOfRange, "event flag {}: a SINT has flags 0-{}",
                     flag, hv::kEventFlagsPerSint - 1);
  }
  std::shared_ptr<RouteState> r = STRATA_TRY(StateOf(route));
  const uint64_t page = STRATA_TRY(
      UsablePage(r->vp, &Registers::evt_page, "event-flags page (SIEFP)"));
  const uint64_t gpa = page + r->sint * hv::kEventFlagsSlotSize +
                       (flag / 64) * sizeof(uint64_t);
  const uint64_t bit = uint64_t{1} << (flag % 64);
  bool was_set = false, ram = false;
  host_->WithMemory([&](GuestMemory& m) {
    auto word = m.Translate(gpa, sizeof(uint64_t));
    if (!word) return;
    ram = true;
    auto* w = reinterpret_cast<uint64_t*>(word->data());  // 8-byte aligned
    was_set = (__atomic_fetch_or(w, bit, __ATOMIC_SEQ_CST) & bit) != 0;
  });
  if (!ram) {
    return MakeError(Errc::kUnsupported, "VP {}'s event flags at GPA {:#x} "
                     "are not guest RAM", r->vp, gpa);
  }
  // A flag already set is an interrupt the guest has not yet seen to.
  if (was_set) return Ok();
  return r->line->Assert();
}

// ---------------------------------------------------------- handlers ----

template <typename Handler>
Status Synic::SetHandler(std::map<uint32_t, Handler>& handlers,
                         uint32_t connection_id, Handler handler,
                         const char* kind) {
  if ((connection_id & ~hv::kConnectionIdMask) != 0) {
    return MakeError(Errc::kInvalidArgument,
                     "connection id {:#x} has more than 24 bits",
                     connection_id);
  }
  std::lock_guard lock(mu_);
  // try_emplace leaves `handler` alone when the id is taken: it is
  // destroyed by our caller, outside mu_.
  if (!handlers.try_emplace(connection_id, std::move(handler)).second) {
    return MakeError(Errc::kAlreadyExists,
                     "{} connection {:#x} has a handler already", kind,
                     connection_id);
  }
  return Ok();
}

// A handler is destroyed outside mu_: what it holds (a route handle)
// calls back into the SynIC when it goes.
template <typename Handler>
Status Synic::ClearHandler(std::map<uint32_t, Handler>& handlers,
                           uint32_t connection_id, const char* kind) {
  Handler gone;
  {
    std::lock_guard lock(mu_);
    auto it = handlers.find(connection_id);
    if (it == handlers.end()) {
      return MakeError(Errc::kNotFound, "no {} connection {:#x}", kind,
                       connection_id);
    }
    gone = std::move(it->second);
    handlers.erase(it);
  }
  return Ok();
}

Status Synic::SetMessageHandler(uint32_t connection_id,
                                MessageHandler handler) {
  return SetHandler(msg_handlers_, connection_id, std::move(handler),
                    "message");
}

Status Synic::ClearMessageHandler(uint32_t connection_id) {
  return ClearHandler(msg_handlers_, connection_id, "message");
}

Status Synic::SetEventHandler(uint32_t connection_id, EventHandler handler) {
  return SetHandler(evt_handlers_, connection_id, std::move(handler),
                    "event");
}

Status Synic::ClearEventHandler(uint32_t connection_id) {
  return ClearHandler(evt_handlers_, connection_id, "event");
}

// ----------------------------------------------------------- watcher ----

Status Synic::Start() {
  if (!wake_fd_) {
    return MakeError(Errc::kIo, "the SynIC's eventfd could not be created");
  }
  if (watcher_.joinable()) return Ok();
  stop_.store(false);
  try {
    watcher_ = std::thread([this] { WatchAcks(); });
  } catch (const std::system_error& e) {
    return MakeError(Errc::kIo, "starting the SynIC's thread: {}", e.what());
  }
  return Ok();
}

void Synic::Stop() {
  stop_.store(true);
  Wake();
  if (watcher_.joinable()) watcher_.join();
}

void Synic::Wake() {
  const uint64_t one = 1;
  if (wake_fd_) {
    ssize_t n = write(wake_fd_.get(), &one, sizeof(one));
    (void)n;  // EAGAIN: a wake-up is pending already
  }
}

namespace {

void Drain(int fd) {
  uint64_t count;
  ssize_t n = read(fd, &count, sizeof(count));
  (void)n;  // EAGAIN: already drained
}

}  // namespace

void Synic::WatchAcks() {
  // Signals are the vCPU threads' and the front end's business.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  while (!stop_.load()) {
    // The routes are held while polled, so their fds stay open; Forget
    // wakes the poll so that a dropped route is let go.
    std::vector<std::shared_ptr<RouteState>> routes;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, r] : routes_) {
        if (r->line->ack_fd() >= 0) routes.push_back(r);
      }
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    for (const auto& r : routes) fds.push_back({r->line->ack_fd(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      log_->error("SynIC acknowledgement watcher: poll: {}", strerror(errno));
      return;
    }
    if (fds[0].revents != 0) Drain(wake_fd_.get());
    for (size_t i = 0; i < routes.size(); ++i) {
      if ((fds[i + 1].revents & POLLIN) == 0) continue;
      Drain(fds[i + 1].fd);
      const std::shared_ptr<RouteState>& r = routes[i];
      {
        std::lock_guard lock(r->mu);
        // Every EOI of the SINT's vector acknowledges; only a message
        // waiting for its slot cares.
        if (r->stage != RouteState::Stage::kWaitingAck) continue;
        r->stage = RouteState::Stage::kStaged;
      }
      (void)ScheduleDelivery(r);  // false: the VP is gone, and the message
    }
  }
}

// ---------------------------------------------------------- on a Vm ----

namespace {

class IrqFdLine final : public Synic::SintLine {
 public:
  explicit IrqFdLine(std::unique_ptr<IrqFd> fd) : fd_(std::move(fd)) {}
  Status Assert() override { return fd_->Trigger(); }
  int ack_fd() const override { return fd_->resample_fd(); }

 private:
  std::unique_ptr<IrqFd> fd_;
};

class VmHost final : public Synic::Host {
 public:
  explicit VmHost(Vm& vm) : vm_(vm) {}
  uint32_t vp_count() const override { return vm_.max_vcpus(); }
  void WithMemory(const std::function<void(GuestMemory&)>& fn) override {
    if (CurrentVcpu() != nullptr) {
      fn(vm_.memory());  // a vCPU handling an exit: writers quiesce it first
      return;
    }
    VmReadLock lock(vm_);
    fn(vm_.memory());
  }
  bool RunOnVp(uint32_t vp, std::function<void()> fn) override {
    Vcpu* v = vm_.vcpu(vp);
    if (v == nullptr) return false;
    v->Post([fn = std::move(fn)](Vcpu&) { fn(); });
    return true;
  }
  Result<std::unique_ptr<Synic::SintLine>> RouteSint(const HvSint& sint,
                                                     bool ack) override {
    std::unique_ptr<IrqFd> fd = STRATA_TRY(vm_.AddHvSintFd(sint, ack));
    return std::unique_ptr<Synic::SintLine>(
        std::make_unique<IrqFdLine>(std::move(fd)));
  }
  std::shared_ptr<spdlog::logger> logger() override {
    return vm_.options().logger ? vm_.options().logger : DefaultLogger();
  }

 private:
  Vm& vm_;
};

}  // namespace

Result<std::shared_ptr<Synic>> InstallSynic(Vm& vm, bool acks) {
  std::shared_ptr<Synic> synic =
      Synic::Create(std::make_unique<VmHost>(vm), acks);
  STRATA_TRY(vm.SetArchExitHandler(
      md::ArchExitReason::kHypervSynic, [synic](Vcpu& v, md::ArchExit& a) {
        synic->OnSynicExit(v.id(), a.hv_msr, a.hv_control, a.hv_evt_page,
                           a.hv_msg_page);
        return true;
      }));
  STRATA_TRY(vm.SetArchExitHandler(
      md::ArchExitReason::kHypervHcall, [synic](Vcpu& v, md::ArchExit& a) {
        *a.hv_result = synic->OnHypercall(v.id(), a.hv_input, a.hv_params[0],
                                          a.hv_params[1]);
        return true;
      }));
  return synic;
}

}  // namespace strata::amd64::hyperv
