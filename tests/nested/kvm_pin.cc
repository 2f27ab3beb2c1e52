// strata — kvm_pin: holds the nested SVM L1's KVM static keys steady
// (scripts/nested.sh starts it in the amd64 L1, tests/nested/init.sh).
//
// Why: the L1 is QEMU's multi-threaded TCG, and its kernel patches its own
// text (text_poke_bp: an int3 over the site, an IPI to sync the other CPU,
// the new bytes, the int3 removed) whenever a static key flips. KVM flips
// some on every VM's life cycle when no other VM holds them:
//   - preempt_notifier_key, by KVM_CREATE_VM and the VM's destruction
//     (it guards __schedule's preempt notifiers);
//   - apic_sw_disabled, by each vCPU's creation (its APIC starts software-
//     disabled) and its guest enabling the APIC;
//   - kvm_has_noapic_vcpu, by a vCPU created without an in-kernel APIC.
// (apic_hw_disabled, flipped by a guest that disables its APIC in MSR
// 0x1b, is not held: this L1's KVM refuses that write from here, and only
// kvm-unit-tests' apic tests do it.)
// Under that TCG a CPU has been caught looping for good in exc_int3 on a
// site that had already been restored (a stale translation of the int3;
// Linux backs up over a vanished int3 and runs it again), while the other
// CPU spins on the lock it holds: the L1 goes silent and nested.sh must run
// it again (scripts/nested_stall.py shows where: exc_int3 inside
// __schedule, with the other CPU in KVM_CREATE_VM).
//
// Holding one VM of each kind for the L1's whole life keeps every one of
// those counts above zero, so no VM that a test creates or destroys patches
// text. It is the same for every VMM the L1 runs (strata, QEMU): KVM takes
// the same paths for them, and it no longer enables and disables SVM on
// every CPU around each VM either (kvm_usage_count stays above zero).
//
// The first VM still flips them; init.sh keeps CPU 1 offline until this
// holds them, so that flip (and the modules' patching) runs on one CPU.
//
// Prints one line saying what it holds, then sleeps until killed.
// Exit status 1 (with the failing step) if KVM refuses any of it.

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

int Fail(const char* what) {
  std::printf("nested: kvm_pin: %s: %s\n", what, std::strerror(errno));
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main() {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return Fail("open /dev/kvm");

  // A VM with the in-kernel irqchip and one vCPU that never runs: its
  // APIC stays software-disabled (apic_sw_disabled).
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return Fail("KVM_CREATE_VM");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) return Fail("KVM_CREATE_IRQCHIP");
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return Fail("KVM_CREATE_VCPU (irqchip)");

  // A VM without it, and a vCPU there (kvm_has_noapic_vcpu).
  int vm2 = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm2 < 0) return Fail("KVM_CREATE_VM (no irqchip)");
  if (ioctl(vm2, KVM_CREATE_VCPU, 0) < 0) return Fail("KVM_CREATE_VCPU (no irqchip)");

  std::printf("nested: kvm_pin: holding 2 VMs (one with the in-kernel irqchip "
              "and a vCPU whose APIC stays disabled, one without): KVM's static keys "
              "stay put\n");
  std::fflush(stdout);
  for (;;) pause();
}
