// The amd64 backend's decoding of Hyper-V exits (KVM_EXIT_HYPERV, KVM API
// doc) from a kvm_run laid out by hand: no /dev/kvm needed.
#include <linux/kvm.h>

#include <gtest/gtest.h>

#include "machine/kvm_machdep.h"

namespace strata::md {
namespace {

TEST(Amd64DecodeExit, HypervSynic) {
  KvmVcpuArch arch(-1, 0, 0, false);
  kvm_run run{};
  run.exit_reason = KVM_EXIT_HYPERV;
  run.hyperv.type = KVM_EXIT_HYPERV_SYNIC;
  run.hyperv.u.synic.msr = 0x40000082;
  run.hyperv.u.synic.control = 1;
  run.hyperv.u.synic.evt_page = 0x5001;
  run.hyperv.u.synic.msg_page = 0x6001;
  VmExit exit;
  ASSERT_TRUE(arch.DecodeExit(&run, &exit));
  EXPECT_EQ(exit.kind, ExitKind::kArch);
  EXPECT_EQ(exit.arch.reason, ArchExitReason::kHypervSynic);
  EXPECT_EQ(exit.arch.hv_msr, 0x40000082u);
  EXPECT_EQ(exit.arch.hv_control, 1u);
  EXPECT_EQ(exit.arch.hv_evt_page, 0x5001u);
  EXPECT_EQ(exit.arch.hv_msg_page, 0x6001u);
  // KVM has done the MSR write: nothing to complete on re-entry.
  EXPECT_FALSE(arch.ExitNeedsCompletion(&run));
  EXPECT_EQ(ArchExitName(exit.arch.reason), "hyperv-synic");
}

TEST(Amd64DecodeExit, HypervHcallResultGoesBackThroughKvmRun) {
  KvmVcpuArch arch(-1, 0, 0, false);
  kvm_run run{};
  run.exit_reason = KVM_EXIT_HYPERV;
  run.hyperv.type = KVM_EXIT_HYPERV_HCALL;
  run.hyperv.u.hcall.input = 0x5c;
  run.hyperv.u.hcall.params[0] = 0x3000;
  run.hyperv.u.hcall.params[1] = 0x4000;
  VmExit exit;
  ASSERT_TRUE(arch.DecodeExit(&run, &exit));
  EXPECT_EQ(exit.arch.reason, ArchExitReason::kHypervHcall);
  EXPECT_EQ(exit.arch.hv_input, 0x5cu);
  EXPECT_EQ(exit.arch.hv_params[0], 0x3000u);
  EXPECT_EQ(exit.arch.hv_params[1], 0x4000u);
  *exit.arch.hv_result = 0x12;
  EXPECT_EQ(run.hyperv.u.hcall.result, 0x12u);
  // KVM puts the result in RAX on the next KVM_RUN.
  EXPECT_TRUE(arch.ExitNeedsCompletion(&run));
}

TEST(Amd64DecodeExit, TheSyntheticDebuggerIsNotDecoded) {
  // strata offers no syndbg; an exit for it is unknown, so the VM stops.
  KvmVcpuArch arch(-1, 0, 0, false);
  kvm_run run{};
  run.exit_reason = KVM_EXIT_HYPERV;
  run.hyperv.type = KVM_EXIT_HYPERV_SYNDBG;
  VmExit exit;
  EXPECT_FALSE(arch.DecodeExit(&run, &exit));
}

}  // namespace
}  // namespace strata::md
