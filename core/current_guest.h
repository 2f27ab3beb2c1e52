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
// The record routes kicks. A kick asks a vCPU to leave guest mode and pass
// through the top of its run loop at least once after the kick was issued.
// Vcpu::Kick does three things, in this order:
//   1. v.kick_pending = true            (checked before every guest entry)
//   2. backend.RequestImmediateExit()   (KVM immediate_exit: an entry that
//                                        starts after this returns at once)
//   3. if v has a runner thread, pthread_sigqueue() the kick signal to it,
//      carrying v's token (leaves guest mode if inside: KVM_RUN -EINTR).
// The run loop clears immediate_exit, fences, then consumes kick_pending,
// then enters. Whatever the interleaving, a kick issued before the consume
// is seen by it, and one issued after it hits the entry through (2) or (3),
// so no kick is lost. This is QEMU's protocol with immediate_exit: the
// signal is unblocked for the whole run loop, and no KVM_SET_SIGNAL_MASK
// swaps masks around every entry (on a nested host that swap was a third of
// strata's margin over a raw KVM_RUN loop, bench/mmio_exit_bench_arm64).
//
// Vcpu::Run installs the handler once per process (SA_SIGINFO|SA_RESTART,
// so a kick landing while an exit handler is in a system call restarts the
// call) and refuses to start if the signal is ignored (SIG_IGN discards it
// at generation, so kicks could not interrupt guest mode) or already has
// someone else's handler. The signal is blocked while Run publishes the
// runner and this record, unblocked for the loop, and blocked again before
// the record is withdrawn; pending kicks left then are taken with
// sigtimedwait(). The handler does nothing but count: it compares the
// signal's token with the record, a match being a delivered kick and a
// mismatch a stray one (threads may run several vCPUs in turn, and a signal
// sent just before a vCPU's runner left may arrive while the thread runs
// another), so a kick never lands on the wrong vCPU.
//
// The kick signal is chosen explicitly (SetKickSignal; default SIGRTMIN+4,
// a real-time signal so that every queued kick keeps its own token —
// the kernel merges pending instances of a standard signal such as QEMU's
// SIGUSR1, which still works but makes the accounting approximate).
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

// Blocks (unblocks) the kick signal in the calling thread; Block returns
// the previous mask.
sigset_t BlockKickSignal();
void UnblockKickSignal();

}  // namespace strata
