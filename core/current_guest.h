// strata — the per-host-thread "current guest" record and vCPU kicks.
//
// Theory. Every host thread that runs a vCPU has one CurrentGuest record,
// reached through a single thread-local pointer. Vcpu::Run sets it on entry
// and clears it on return, with the kick signal blocked (kicks masked — the
// analogue of setting a pcpu field under critical_enter() in FreeBSD's
// vmm). It has one meaning: "this thread is inside the run loop of this
// vCPU", in guest mode or handling one of its exits. So an exit handler, a
// device model called from one, or a lock can ask which vCPU (if any) the
// calling thread is acting for: CurrentVcpu().
//
// The record routes kicks. The kick signal stays blocked in the thread at
// all times in user space; the backend unblocks it only inside the
// hypervisor's "enter guest" call (KVM_SET_SIGNAL_MASK), the run window.
// A kick asks a vCPU to leave guest mode and pass through the top of its
// run loop at least once after the kick was issued. Vcpu::Kick does three
// things, in this order:
//   1. v.kick_pending = true            (checked before every guest entry)
//   2. backend.RequestImmediateExit()   (KVM immediate_exit: an entry that
//                                        starts after this returns at once)
//   3. if v has a runner thread, pthread_sigqueue() the kick signal to it,
//      carrying v's token (leaves guest mode if inside).
// The run loop clears immediate_exit, fences, then consumes kick_pending,
// then enters. Whatever the interleaving, a kick issued before the consume
// is seen by it, and one issued after it hits the entry through (2) or (3),
// so no kick is lost.
//
// A queued signal can outlive its purpose: threads may run several vCPUs in
// turn, and a signal sent just before a vCPU's runner left may still be
// pending when the thread next runs another vCPU. The loop consumes pending
// kick signals with sigtimedwait() and compares each token with the record:
// a match is a delivered kick, a mismatch a stray one that is counted and
// ignored. So a kick never lands on the wrong vCPU.
//
// The kick signal is chosen explicitly (SetKickSignal; default SIGRTMIN+4,
// a real-time signal so that every queued kick keeps its own token —
// the kernel merges pending instances of a standard signal such as QEMU's
// SIGUSR1, which still works but makes the accounting below approximate)
// and strata installs no handler for it: the signal is only
// ever queued to a thread that has it blocked (inside Vcpu::Run), and it is
// consumed synchronously, so its disposition never runs. Vcpu::Run refuses
// to start if the signal is ignored (SIG_IGN discards it at generation, so
// kicks could not interrupt guest mode).
#pragma once

#include <signal.h>

#include <cstdint>

#include "core/result.h"

namespace strata {

class Vm;
class Vcpu;

struct CurrentGuest {
  Vm* vm = nullptr;
  Vcpu* vcpu = nullptr;
  uint64_t token = 0;  // Vcpu::token(), unique for the process lifetime
};

// The record of the calling thread, or nullptr outside a vCPU run loop.
const CurrentGuest* CurrentGuestOfThisThread();
// The vCPU whose run loop the calling thread is in, or nullptr.
Vcpu* CurrentVcpu();

namespace internal {
// Used by Vcpu::Run only.
void SetCurrentGuest(const CurrentGuest* g);
}  // namespace internal

// The kick signal (default DefaultKickSignal() = SIGRTMIN+4). SetKickSignal
// may change it before the first vCPU runs in this process (kBusy
// afterwards; kInvalidArgument for a signal that cannot be blocked).
int KickSignal();
int DefaultKickSignal();
Status SetKickSignal(int signo);

// Blocks the kick signal in the calling thread; returns the previous mask.
sigset_t BlockKickSignal();

}  // namespace strata
