// strata — the per-host-thread "current guest" record and vCPU kicks.
//
// Theory. Every host thread that runs a vCPU owns one CurrentGuest record
// (thread-local). It names the VM and vCPU the thread is running and is set
// only inside the run window — the span around the hypervisor's "enter guest"
// call — and cleared right after it. The kick signal is blocked in that
// thread at all times in user space; the backend unblocks it only while the
// thread is in guest mode (KVM_SET_SIGNAL_MASK), the analogue of setting a
// pcpu field under critical_enter() in FreeBSD's vmm.
//
// A kick asks a vCPU to leave guest mode and pass through the top of its run
// loop at least once after the kick was issued. Kick(v) does three things,
// in this order:
//   1. v.kick_pending = true            (checked before every guest entry)
//   2. backend.RequestImmediateExit()   (KVM immediate_exit: an entry that
//                                        starts after this returns at once)
//   3. if v is running on a host thread, pthread_sigqueue() the kick signal
//      to that thread, carrying v's token (leaves guest mode if inside).
// The run loop clears immediate_exit, then consumes kick_pending, then
// enters. Whatever the interleaving, a kick issued before the consume is
// seen by it, and one issued after it hits the entry through (2) or (3), so
// no kick is lost.
//
// A signal can outlive its purpose: it may still be pending when the thread
// next enters the guest for a different vCPU (threads may run several vCPUs
// in turn). The loop consumes it with sigtimedwait() and compares its token
// with the thread's record: a match is a delivered kick, a mismatch a stray
// one that is counted and ignored. So a kick never lands on the wrong vCPU.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>

namespace strata {

class Vm;
class Vcpu;

struct CurrentGuest {
  Vm* vm = nullptr;
  Vcpu* vcpu = nullptr;
  uint64_t token = 0;  // Vcpu::token(), unique for the process lifetime
};

// The record of the calling thread, or nullptr outside a run window.
const CurrentGuest* CurrentGuestOfThisThread();

namespace internal {
// Used by the run loop only.
void SetCurrentGuest(const CurrentGuest* g);
}  // namespace internal

// The kick signal (default SIGUSR1, as QEMU's SIG_IPI). May be changed once,
// before the first VM is created.
int KickSignal();
bool SetKickSignal(int signo);

// Blocks the kick signal in the calling thread; returns the previous mask.
sigset_t BlockKickSignal();

// Process-wide counters, for tests and diagnostics.
struct KickStats {
  std::atomic<uint64_t> sent{0};       // signals queued
  std::atomic<uint64_t> delivered{0};  // consumed with a matching token
  std::atomic<uint64_t> stray{0};      // consumed with a stale token
};
KickStats& GlobalKickStats();

}  // namespace strata
