// strata — the C ABI (frontends/capi/strata.h) over strata::Machine.
//
// Theory. A strata_machine is a strata::Machine (core/machine.h) plus what
// the C side needs and C++ callers get from RAII and types:
//
//   State      configuring → created → started → waited, an atomic so
//              that calls allowed on vCPU threads read it without a lock.
//              state_mu serialises the transitions and guards the config
//              while it may still change; machine is set once, before the
//              state says "created", and lives until the handle is freed.
//   Errors     one message per calling thread (errors, under errors_mu),
//              so a message is never overwritten by another thread while
//              its owner reads it.
//   Pause      VmWriteLock is an RAII object tied to the thread that took
//              it, and a C caller cannot hold an object across calls; so
//              strata_pause starts a Pauser thread that takes the write
//              lock and holds it until strata_resume. Calls that need the
//              VM read lock (memory, interrupts) would wait for that writer
//              forever if made by another thread, so while paused they run
//              on the Pauser thread, where the read lock is implied (the
//              writer may read its own map). Registers need no VcpuLock
//              then: the writer holds every vCPU. pause_mu (shared by the
//              calls that look at the pause, exclusive to change it) keeps
//              a resume from overtaking a call that relies on the pause.
//   Registers  from other threads: a VcpuLock per access while running.
//              Several threads may hold one vCPU parked at once (VcpuLocks
//              nest; a pause holds them all); the core serialises their
//              register accesses (Vcpu's register mutex).
//   vCPU threads
//              An I/O handler runs on a vCPU's thread. Everything that
//              would wait for a vCPU there — the write lock, a VcpuLock on
//              another vCPU, joining vCPU threads — is refused with
//              STRATA_E_BUSY before the C++ layer's checks would abort, and
//              nothing allowed there takes state_mu, pause_mu or wait_mu,
//              which other threads hold while they wait for vCPUs.
//   Handlers   each C handler is an IoDevice that counts its calls in
//              progress, so strata_remove_io_handler can wait for them and
//              the embedder may free the handler's data when it returns.
//
// No exception crosses the ABI: every entry point catches (std::bad_alloc,
// std::system_error from thread creation) and returns STRATA_E_INTERNAL or
// STRATA_E_IO with the message.
#include "frontends/capi/strata.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/current_guest.h"
#include "core/device_registry.h"
#include "core/machine.h"
#include "core/platform.h"
#include "core/result.h"
#include "core/vm.h"
#include "machine/irq_machdep.h"
#include "machine/vmmapi_machdep.h"

namespace strata::capi {
namespace {

// The stop reason strata_stop gives; strata_wait reports it as
// STRATA_EXIT_STOPPED (ExitStatus::Why::kStopped).
constexpr std::string_view kStopMessage =
    "stopped by the embedder (strata_stop)";

strata_status ToStatus(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return STRATA_E_INVALID_ARGUMENT;
    case Errc::kNotFound: return STRATA_E_NOT_FOUND;
    case Errc::kOutOfRange: return STRATA_E_OUT_OF_RANGE;
    case Errc::kAlreadyExists: return STRATA_E_ALREADY_EXISTS;
    case Errc::kUnsupported: return STRATA_E_UNSUPPORTED;
    case Errc::kBusy: return STRATA_E_BUSY;
    case Errc::kIo: return STRATA_E_IO;
    case Errc::kGuestFault: return STRATA_E_GUEST_FAULT;
    case Errc::kInternal: return STRATA_E_INTERNAL;
  }
  return STRATA_E_INTERNAL;
}

// Calls made with a NULL handle keep their message here.
thread_local std::string t_null_handle_error;

// Refuses a call that would wait for vCPUs when made on a vCPU's thread.
Status NotOnVcpuThread() {
  Vcpu* self = CurrentVcpu();
  if (self == nullptr) return Ok();
  return MakeError(Errc::kBusy,
                   "called on the thread of vCPU {} of VM '{}' (an I/O "
                   "handler?), where it would wait for vCPUs, this one "
                   "included; call it from another thread",
                   self->id(), self->vm().name());
}

// A thread of strata's own: every signal blocked from its first
// instruction (the embedder's handlers must not run on it).
template <typename F>
std::thread StartQuietThread(F&& fn) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  struct Restore {
    sigset_t* old;
    ~Restore() { pthread_sigmask(SIG_SETMASK, old, nullptr); }
  } restore{&old};
  return std::thread(std::forward<F>(fn));
}

// Holds the VM write lock on its own thread between strata_pause and
// strata_resume, and runs read-lock work for other threads meanwhile.
class Pauser {
 public:
  explicit Pauser(Vm& vm) : vm_(vm) {
    thread_ = StartQuietThread([this] { Body(); });
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return locked_; });
  }
  ~Pauser() {
    {
      std::lock_guard lk(mu_);
      release_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Pauser(const Pauser&) = delete;
  Pauser& operator=(const Pauser&) = delete;

  // Runs fn on the pause thread and waits for it.
  Status Run(const std::function<Status()>& fn) {
    std::lock_guard one(task_mu_);
    std::unique_lock lk(mu_);
    Status result;
    std::function<void()> task = [&] {
      try {
        result = fn();
      } catch (const std::exception& e) {
        result = MakeError(Errc::kInternal, "{}", e.what());
      }
    };
    task_ = &task;
    cv_.notify_all();
    cv_.wait(lk, [&] { return task_ == nullptr; });
    return result;
  }

 private:
  void Body() {
    VmWriteLock wl(vm_);
    std::unique_lock lk(mu_);
    locked_ = true;
    cv_.notify_all();
    for (;;) {
      cv_.wait(lk, [&] { return release_ || task_ != nullptr; });
      if (task_ == nullptr) break;  // released
      std::function<void()>* t = task_;
      lk.unlock();
      (*t)();
      lk.lock();
      task_ = nullptr;
      cv_.notify_all();
    }
  }  // lk, then the write lock

  Vm& vm_;
  std::mutex task_mu_;  // one task at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool locked_ = false;                   // mu_
  bool release_ = false;                  // mu_
  std::function<void()>* task_ = nullptr;  // mu_
  std::thread thread_;
};

// An embedder's I/O handler on a bus.
class CIoHandler : public IoDevice {
 public:
  CIoHandler(strata_space space, uint64_t base, strata_io_read_fn read,
             strata_io_write_fn write, void* opaque)
      : space_(space),
        name_(fmt::format("strata_add_io_handler({} {:#x})",
                          space == STRATA_SPACE_PIO ? "pio" : "mmio", base)),
        read_(read),
        write_(write),
        opaque_(opaque) {}

  uint64_t Read(const IoContext& ctx, uint64_t offset,
                uint32_t size) override {
    const uint64_t dflt = space_ == STRATA_SPACE_PIO ? ~uint64_t{0} : 0;
    if (read_ == nullptr || !Enter()) return dflt;
    const uint64_t v = read_(opaque_, VcpuId(ctx), offset, size);
    Leave();
    return v;
  }
  void Write(const IoContext& ctx, uint64_t offset, uint32_t size,
             uint64_t value) override {
    if (write_ == nullptr || !Enter()) return;
    write_(opaque_, VcpuId(ctx), offset, size, value);
    Leave();
  }
  std::string_view name() const override { return name_; }

  // No call starts after this, and it returns once none is in progress.
  void Retire() {
    std::unique_lock lk(mu_);
    retired_ = true;
    cv_.wait(lk, [&] { return in_flight_ == 0; });
  }

 private:
  static uint32_t VcpuId(const IoContext& ctx) {
    return ctx.vcpu != nullptr ? ctx.vcpu->id() : STRATA_NO_VCPU;
  }
  bool Enter() {
    std::lock_guard lk(mu_);
    if (retired_) return false;
    ++in_flight_;
    return true;
  }
  void Leave() {
    std::lock_guard lk(mu_);
    if (--in_flight_ == 0 && retired_) cv_.notify_all();
  }

  const strata_space space_;
  const std::string name_;
  const strata_io_read_fn read_;
  const strata_io_write_fn write_;
  void* const opaque_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t in_flight_ = 0;  // mu_
  bool retired_ = false;    // mu_
};

// The machine's log, to the embedder's function.
class CallbackSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  CallbackSink(strata_log_fn fn, void* opaque) : fn_(fn), opaque_(opaque) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text(msg.payload.data(), msg.payload.size());
    int level = static_cast<int>(msg.level);
    level = std::clamp(level, static_cast<int>(STRATA_LOG_TRACE),
                       static_cast<int>(STRATA_LOG_CRITICAL));
    fn_(opaque_, static_cast<strata_log_level>(level), text.c_str());
  }
  void flush_() override {}

 private:
  const strata_log_fn fn_;
  void* const opaque_;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<md::Reg> LookupRegister(const char* name) {
  if (name == nullptr) {
    return MakeError(Errc::kInvalidArgument, "register name is NULL");
  }
  const std::string want = Lower(name);
  if (want == "pc") return md::kRegPc;
  if (want == "sp") return md::kRegSp;
  std::string_view best = "pc";
  size_t best_d = EditDistance(want, "pc");
  if (size_t d = EditDistance(want, "sp"); d < best_d) {
    best = "sp";
    best_d = d;
  }
  for (size_t i = 0; i < static_cast<size_t>(md::Reg::kCount); ++i) {
    const auto r = static_cast<md::Reg>(i);
    if (md::RegName(r) == want) return r;
    if (size_t d = EditDistance(want, md::RegName(r)); d < best_d) {
      best = md::RegName(r);
      best_d = d;
    }
  }
  if (best_d <= 2) {
    return MakeError(Errc::kNotFound,
                     "no register '{}' on {} (did you mean '{}'?)", name,
                     md::kArchName, best);
  }
  return MakeError(Errc::kNotFound,
                   "no register '{}' on {} (strata_register_name lists them; "
                   "'pc' and 'sp' work everywhere)",
                   name, md::kArchName);
}

template <typename Msi>
Status SetMsiDevid(Msi& msi, uint32_t devid) {
  if constexpr (requires { msi.devid; msi.has_devid; }) {
    msi.has_devid = true;
    msi.devid = devid;
    return Ok();
  } else {
    (void)msi;
    return MakeError(Errc::kUnsupported,
                     "STRATA_MSI_DEVID: {} MSIs carry no device id (devid {})",
                     md::kArchName, devid);
  }
}

}  // namespace
}  // namespace strata::capi

using strata::Errc;
using strata::Error;
using strata::MakeError;
using strata::Ok;
using strata::Result;
using strata::Status;
namespace capi = strata::capi;

struct strata_machine {
  enum class State : uint8_t { kConfiguring, kCreated, kStarted, kWaited };

  // --- errors
  std::mutex errors_mu;
  std::map<std::thread::id, std::string> errors;  // errors_mu

  strata_status Fail(const char* fn, const Error& e) {
    std::lock_guard lk(errors_mu);
    errors[std::this_thread::get_id()] = fmt::format("{}: {}", fn, e.message());
    return capi::ToStatus(e.code());
  }

  // --- life cycle
  std::atomic<State> state{State::kConfiguring};
  std::mutex state_mu;       // transitions; the fields below until created
  strata::Config config;     // state_mu, configuring only
  std::string kvm_device = "/dev/kvm";
  strata_log_fn log_fn = nullptr;
  void* log_opaque = nullptr;
  std::unique_ptr<strata::Machine> machine;  // set once, at creation
  // One per vCPU: register access from threads other than the vCPU's own.
  // Several threads may hold a vCPU parked at once (VcpuLocks nest, and a
  // pause holds them all), but its register cache is one thread's at a
  // time.

  bool created() const { return state.load(std::memory_order_acquire) >= State::kCreated; }
  Status RequireCreated() const {
    if (created()) return Ok();
    return MakeError(Errc::kBusy,
                     "the machine is not created yet (strata_machine_create)");
  }
  strata::Vm& vm() { return machine->vm(); }

  // --- pause
  std::shared_mutex pause_mu;
  std::unique_ptr<capi::Pauser> pauser;  // pause_mu; set while paused

  // Runs fn where the VM read lock can be taken without waiting for a
  // pause: on a vCPU thread as is (the VM cannot be paused while one of
  // its vCPUs runs a handler), else on the Pauser thread while paused.
  Status WithReadAccess(const std::function<Status()>& fn) {
    if (strata::CurrentVcpu() != nullptr) return fn();
    std::shared_lock lk(pause_mu);
    if (pauser) return pauser->Run(fn);
    return fn();
  }
  // Drops a pause (strata_stop, strata_machine_free).
  void Unpause() {
    std::unique_lock lk(pause_mu);
    pauser.reset();
  }

  // --- exit
  std::mutex wait_mu;
  bool waited = false;  // wait_mu
  strata_exit exit{};   // wait_mu, once waited
  std::string exit_message;

  void RecordExit(const strata::ExitStatus& st) {
    using Why = strata::ExitStatus::Why;
    exit_message = st.message;
    exit.status = st.code;
    switch (st.why) {
      case Why::kPowerOff: exit.kind = STRATA_EXIT_POWER_OFF; break;
      case Why::kGuestExit: exit.kind = STRATA_EXIT_GUEST_EXIT; break;
      case Why::kReset: exit.kind = STRATA_EXIT_RESET; break;
      case Why::kGuestCrash: exit.kind = STRATA_EXIT_GUEST_CRASH; break;
      case Why::kVmmError: exit.kind = STRATA_EXIT_VMM_ERROR; break;
      case Why::kStopped:
        exit.kind = STRATA_EXIT_STOPPED;
        exit.status = 0;
        exit_message.clear();
        break;
    }
    exit.message = exit_message.c_str();
  }

  // --- I/O handlers
  std::mutex io_mu;
  std::map<std::pair<int, uint64_t>, std::shared_ptr<capi::CIoHandler>>
      handlers;  // io_mu
};

namespace {

strata_status NullHandle(const char* fn) {
  capi::t_null_handle_error = fmt::format("{}: the machine handle is NULL", fn);
  return STRATA_E_INVALID_ARGUMENT;
}

// Runs body; turns its Status (or an exception) into a strata_status and
// the calling thread's message.
template <typename F>
strata_status Call(strata_machine* m, const char* fn, F&& body) {
  if (m == nullptr) return NullHandle(fn);
  try {
    Status s = body();
    if (s) return STRATA_OK;
    return m->Fail(fn, s.error());
  } catch (const std::bad_alloc&) {
    return m->Fail(fn, Error(Errc::kInternal, "out of memory"));
  } catch (const std::system_error& e) {
    return m->Fail(fn, Error(Errc::kIo, e.what(), e.code().value()));
  } catch (const std::exception& e) {
    return m->Fail(fn, Error(Errc::kInternal, e.what()));
  } catch (...) {
    return m->Fail(fn, Error(Errc::kInternal, "unknown exception"));
  }
}

Status NotNull(const void* p, const char* what) {
  if (p != nullptr) return Ok();
  return MakeError(Errc::kInvalidArgument, "{} is NULL", what);
}

// Copies s, NUL-terminated, if it fits (see strata_config_get).
Status CopyOut(const std::string& s, char* buf, size_t size, size_t* needed) {
  if (needed != nullptr) *needed = s.size() + 1;
  if (buf == nullptr && size != 0) {
    return MakeError(Errc::kInvalidArgument, "buf is NULL but size is {}",
                     size);
  }
  if (size < s.size() + 1) {
    return MakeError(Errc::kOutOfRange,
                     "the buffer holds {} bytes, {} are needed", size,
                     s.size() + 1);
  }
  std::memcpy(buf, s.c_str(), s.size() + 1);
  return Ok();
}

// Locks state_mu and checks the handle is still configuring.
Status Configuring(strata_machine* m, std::unique_lock<std::mutex>& lk) {
  STRATA_TRY(capi::NotOnVcpuThread());
  lk = std::unique_lock(m->state_mu);
  if (m->state.load() != strata_machine::State::kConfiguring) {
    return MakeError(Errc::kBusy,
                     "the machine is created: its config is fixed (set keys "
                     "before strata_machine_create)");
  }
  return Ok();
}

// The config to read: the effective one once created, else what was set
// (state_mu held in *lk).
const strata::Config& ConfigToRead(strata_machine* m,
                                   std::unique_lock<std::mutex>* lk) {
  if (m->created()) return m->machine->config();
  *lk = std::unique_lock(m->state_mu);
  if (m->created()) return m->machine->config();
  return m->config;
}

// Runs fn on vCPU `id` under the access rules of strata_get_register.
Status WithVcpu(strata_machine* m, uint32_t id,
                const std::function<Status(strata::Vcpu&)>& fn) {
  STRATA_TRY(m->RequireCreated());
  strata::Vcpu* v = id < m->machine->cpus() ? m->vm().vcpu(id) : nullptr;
  if (v == nullptr) {
    return MakeError(Errc::kOutOfRange,
                     "no vCPU {}: the machine has vCPUs 0..{}", id,
                     m->machine->cpus() - 1);
  }
  if (strata::Vcpu* self = strata::CurrentVcpu()) {
    if (self != v) {
      return MakeError(Errc::kBusy,
                       "vCPU {}'s registers from the thread of vCPU {} (an "
                       "I/O handler?): a handler may only touch its own "
                       "vCPU's; a vCPU never waits for another",
                       id, self->id());
    }
    return fn(*v);
  }
  std::shared_lock lk(m->pause_mu);
  if (m->pauser) return fn(*v);  // the write lock holds every vCPU
  strata::VcpuLock hold(*v);
  return fn(*v);
}

Result<strata::Bus*> BusOf(strata_machine* m, strata_space space) {
  switch (space) {
    case STRATA_SPACE_PIO: return &m->vm().pio_bus();
    case STRATA_SPACE_MMIO: return &m->vm().mmio_bus();
    case STRATA_SPACE_RANGE_: break;
  }
  return MakeError(Errc::kInvalidArgument,
                   "space {} is neither STRATA_SPACE_PIO nor "
                   "STRATA_SPACE_MMIO",
                   static_cast<int>(space));
}

Status ChangeMemoryMap(strata_machine* m,
                       const std::function<Status()>& change) {
  STRATA_TRY(capi::NotOnVcpuThread());
  STRATA_TRY(m->RequireCreated());
  std::shared_lock lk(m->pause_mu);
  if (m->pauser) {
    return MakeError(Errc::kBusy,
                     "the machine is paused; the memory map changes only "
                     "while it is not (strata_resume first)");
  }
  return change();
}

}  // namespace

extern "C" {

uint32_t strata_abi_version(void) { return STRATA_ABI_VERSION; }

const char* strata_arch(void) {
  static const std::string arch(strata::md::kArchName);
  return arch.c_str();
}

const char* strata_status_name(strata_status status) {
  switch (status) {
    case STRATA_OK: return "STRATA_OK";
    case STRATA_E_INVALID_ARGUMENT: return "STRATA_E_INVALID_ARGUMENT";
    case STRATA_E_NOT_FOUND: return "STRATA_E_NOT_FOUND";
    case STRATA_E_OUT_OF_RANGE: return "STRATA_E_OUT_OF_RANGE";
    case STRATA_E_ALREADY_EXISTS: return "STRATA_E_ALREADY_EXISTS";
    case STRATA_E_UNSUPPORTED: return "STRATA_E_UNSUPPORTED";
    case STRATA_E_BUSY: return "STRATA_E_BUSY";
    case STRATA_E_IO: return "STRATA_E_IO";
    case STRATA_E_GUEST_FAULT: return "STRATA_E_GUEST_FAULT";
    case STRATA_E_INTERNAL: return "STRATA_E_INTERNAL";
    case STRATA_STATUS_RANGE_: break;
  }
  return "STRATA_E_?";
}

const char* strata_last_error(const strata_machine* m) {
  if (m == nullptr) return capi::t_null_handle_error.c_str();
  auto* mm = const_cast<strata_machine*>(m);
  std::lock_guard lk(mm->errors_mu);
  auto it = mm->errors.find(std::this_thread::get_id());
  return it == mm->errors.end() ? "" : it->second.c_str();
}

strata_machine* strata_machine_new(void) {
  return new (std::nothrow) strata_machine();
}

strata_status strata_machine_free(strata_machine* m) {
  if (m == nullptr) return STRATA_OK;
  const strata_status s = Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    if (m->created()) {
      m->machine->RequestStop(
          strata::ExitStatus::Stopped(std::string(capi::kStopMessage)));
      m->Unpause();
      std::lock_guard lk(m->wait_mu);
      if (m->state.load() == strata_machine::State::kStarted && !m->waited) {
        m->RecordExit(m->machine->Wait());
        m->waited = true;
      }
      m->machine.reset();  // every vCPU thread has returned
    }
    return Ok();
  });
  if (s != STRATA_OK) return s;
  delete m;
  return STRATA_OK;
}

strata_status strata_config_set(strata_machine* m, const char* key,
                                const char* value) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(key, "key"));
    STRATA_TRY(NotNull(value, "value"));
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    return m->config.Set(key, value);
  });
}

strata_status strata_config_merge_json(strata_machine* m, const char* json) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(json, "json"));
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    return m->config.MergeJson(json, "the JSON text");
  });
}

strata_status strata_config_merge_json_file(strata_machine* m,
                                            const char* path) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(path, "path"));
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    return m->config.MergeJsonFile(path);
  });
}

strata_status strata_config_get(strata_machine* m, const char* key,
                                char* buf, size_t size, size_t* needed) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(key, "key"));
    std::unique_lock<std::mutex> lk;
    const std::string v = STRATA_TRY(ConfigToRead(m, &lk).GetString(key));
    return CopyOut(v, buf, size, needed);
  });
}

strata_status strata_config_dump_json(strata_machine* m, char* buf,
                                      size_t size, size_t* needed) {
  return Call(m, __func__, [&]() -> Status {
    std::unique_lock<std::mutex> lk;
    return CopyOut(ConfigToRead(m, &lk).DumpJson(), buf, size, needed);
  });
}

strata_status strata_set_kvm_device(strata_machine* m, const char* path) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(path, "path"));
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    m->kvm_device = path;
    return Ok();
  });
}

strata_status strata_set_log_handler(strata_machine* m, strata_log_fn fn,
                                     void* opaque) {
  return Call(m, __func__, [&]() -> Status {
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    m->log_fn = fn;
    m->log_opaque = opaque;
    return Ok();
  });
}

strata_status strata_machine_create(strata_machine* m) {
  return Call(m, __func__, [&]() -> Status {
    std::unique_lock<std::mutex> lk;
    STRATA_TRY(Configuring(m, lk));
    strata::Machine::Options o;
    o.kvm_device = m->kvm_device;
    if (m->log_fn != nullptr) {
      auto sink = std::make_shared<capi::CallbackSink>(m->log_fn,
                                                       m->log_opaque);
      std::string name = STRATA_TRY(m->config.GetString("name", "strata"));
      o.logger = std::make_shared<spdlog::logger>(std::move(name), sink);
      o.logger->set_level(spdlog::level::warn);
    }
    auto machine = STRATA_TRY(strata::Machine::Create(m->config, std::move(o)));
    m->machine = std::move(machine);
    m->state.store(strata_machine::State::kCreated, std::memory_order_release);
    return Ok();
  });
}

uint32_t strata_vcpu_count(const strata_machine* m) {
  if (m == nullptr || !m->created()) return 0;
  return m->machine->cpus();
}

strata_status strata_add_memory(strata_machine* m, const char* name,
                                uint64_t gpa, uint64_t size) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(name, "name"));
    return ChangeMemoryMap(m, [&]() -> Status {
      STRATA_TRY(m->vm().AddMemory(name, gpa, size));
      return Ok();
    });
  });
}

strata_status strata_remove_memory(strata_machine* m, uint64_t gpa) {
  return Call(m, __func__, [&]() -> Status {
    return ChangeMemoryMap(m, [&] { return m->vm().RemoveMemory(gpa); });
  });
}

strata_status strata_read_memory(strata_machine* m, uint64_t gpa, void* dst,
                                 size_t len) {
  return Call(m, __func__, [&]() -> Status {
    if (len != 0) STRATA_TRY(NotNull(dst, "dst"));
    STRATA_TRY(m->RequireCreated());
    return m->WithReadAccess([&] { return m->vm().ReadMemory(gpa, dst, len); });
  });
}

strata_status strata_write_memory(strata_machine* m, uint64_t gpa,
                                  const void* src, size_t len) {
  return Call(m, __func__, [&]() -> Status {
    if (len != 0) STRATA_TRY(NotNull(src, "src"));
    STRATA_TRY(m->RequireCreated());
    return m->WithReadAccess(
        [&] { return m->vm().WriteMemory(gpa, src, len); });
  });
}

const char* strata_register_name(uint32_t index) {
  if (index >= static_cast<uint32_t>(strata::md::Reg::kCount)) return nullptr;
  // RegName's views point at string literals: NUL-terminated.
  return strata::md::RegName(static_cast<strata::md::Reg>(index)).data();
}

strata_status strata_get_register(strata_machine* m, uint32_t vcpu,
                                  const char* name, uint64_t* value) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(NotNull(value, "value"));
    const strata::md::Reg r = STRATA_TRY(capi::LookupRegister(name));
    return WithVcpu(m, vcpu, [&](strata::Vcpu& v) -> Status {
      *value = STRATA_TRY(v.GetRegister(r));
      return Ok();
    });
  });
}

strata_status strata_set_register(strata_machine* m, uint32_t vcpu,
                                  const char* name, uint64_t value) {
  return Call(m, __func__, [&]() -> Status {
    const strata::md::Reg r = STRATA_TRY(capi::LookupRegister(name));
    return WithVcpu(m, vcpu,
                    [&](strata::Vcpu& v) { return v.SetRegister(r, value); });
  });
}

strata_status strata_add_io_handler(strata_machine* m, strata_space space,
                                    uint64_t base, uint64_t length,
                                    strata_io_read_fn read,
                                    strata_io_write_fn write, void* opaque) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(m->RequireCreated());
    strata::Bus* bus = STRATA_TRY(BusOf(m, space));
    if (read == nullptr && write == nullptr) {
      return MakeError(Errc::kInvalidArgument,
                       "both read and write are NULL");
    }
    auto h = std::make_shared<capi::CIoHandler>(space, base, read, write,
                                                opaque);
    std::lock_guard lk(m->io_mu);
    STRATA_TRY(bus->Register(base, length, h));
    m->handlers[{space, base}] = std::move(h);
    return Ok();
  });
}

strata_status strata_remove_io_handler(strata_machine* m, strata_space space,
                                       uint64_t base) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    STRATA_TRY(m->RequireCreated());
    strata::Bus* bus = STRATA_TRY(BusOf(m, space));
    std::shared_ptr<capi::CIoHandler> h;
    {
      std::lock_guard lk(m->io_mu);
      auto it = m->handlers.find({space, base});
      if (it == m->handlers.end()) {
        return MakeError(Errc::kNotFound,
                         "no I/O handler of strata_add_io_handler's at {} "
                         "{:#x}",
                         space == STRATA_SPACE_PIO ? "pio" : "mmio", base);
      }
      STRATA_TRY(bus->Unregister(base));
      h = std::move(it->second);
      m->handlers.erase(it);
    }
    h->Retire();  // outside io_mu: a handler in progress may add handlers
    return Ok();
  });
}

strata_status strata_irq_line(strata_machine* m, uint32_t pin, int level) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(m->RequireCreated());
    const strata::md::IrqPin p = STRATA_TRY(strata::platform::IrqPin(pin));
    return m->WithReadAccess([&] { return m->vm().SetIrq(p, level != 0); });
  });
}

strata_status strata_msi(strata_machine* m, uint64_t address, uint32_t data,
                         uint32_t flags, uint32_t devid) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(m->RequireCreated());
    if ((flags & ~STRATA_MSI_DEVID) != 0) {
      return MakeError(Errc::kInvalidArgument,
                       "unknown flags {:#x} (only STRATA_MSI_DEVID)",
                       flags & ~STRATA_MSI_DEVID);
    }
    strata::md::MsiMessage msi;
    msi.address = address;
    msi.data = data;
    if (flags & STRATA_MSI_DEVID) STRATA_TRY(capi::SetMsiDevid(msi, devid));
    return m->WithReadAccess([&] { return m->vm().SignalMsi(msi); });
  });
}

strata_status strata_start(strata_machine* m) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    STRATA_TRY(m->RequireCreated());
    std::lock_guard lk(m->state_mu);
    if (m->state.load() != strata_machine::State::kCreated) {
      return MakeError(Errc::kBusy,
                       "the machine was started already (a machine runs "
                       "once)");
    }
    // From here the machine counts as started even if Start fails: its
    // Wait then reports why.
    m->state.store(strata_machine::State::kStarted, std::memory_order_release);
    return m->machine->Start();
  });
}

int strata_exit_fd(const strata_machine* m) {
  if (m == nullptr || !m->created()) return -1;
  return m->machine->exit_fd();
}

strata_status strata_wait(strata_machine* m, strata_exit* exit) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    STRATA_TRY(m->RequireCreated());
    if (m->state.load() < strata_machine::State::kStarted) {
      return MakeError(Errc::kBusy,
                       "the machine was not started (strata_start)");
    }
    std::lock_guard lk(m->wait_mu);
    if (!m->waited) {
      {
        std::shared_lock pl(m->pause_mu);
        if (m->pauser) {
          return MakeError(Errc::kBusy,
                           "the machine is paused and cannot stop: "
                           "strata_resume or strata_stop it first");
        }
      }
      m->RecordExit(m->machine->Wait());
      m->waited = true;
      m->state.store(strata_machine::State::kWaited,
                     std::memory_order_release);
    }
    if (exit != nullptr) *exit = m->exit;
    return Ok();
  });
}

strata_status strata_stop(strata_machine* m) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(m->RequireCreated());
    m->machine->RequestStop(
        strata::ExitStatus::Stopped(std::string(capi::kStopMessage)));
    // On a vCPU thread the machine is not paused (its vCPUs would be held).
    if (strata::CurrentVcpu() == nullptr) m->Unpause();
    return Ok();
  });
}

strata_status strata_pause(strata_machine* m) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    STRATA_TRY(m->RequireCreated());
    if (m->state.load() != strata_machine::State::kStarted) {
      return MakeError(Errc::kBusy,
                       "only a running machine can be paused (started and "
                       "not yet waited for)");
    }
    std::unique_lock lk(m->pause_mu);
    if (m->pauser) {
      return MakeError(Errc::kBusy, "the machine is paused already");
    }
    m->pauser = std::make_unique<capi::Pauser>(m->vm());
    return Ok();
  });
}

strata_status strata_resume(strata_machine* m) {
  return Call(m, __func__, [&]() -> Status {
    STRATA_TRY(capi::NotOnVcpuThread());
    std::unique_lock lk(m->pause_mu);
    if (!m->pauser) return MakeError(Errc::kBusy, "the machine is not paused");
    m->pauser.reset();
    return Ok();
  });
}

}  // extern "C"
