// amd64 arch-exit handling on real KVM: user-space MSR exits reach the
// arch handler table, an exit with no handler stops the VM with a
// register dump instead of resuming, and a Hyper-V SynIC register write
// (x86.hyperv) arrives as a hyperv-synic exit.
#include <gtest/gtest.h>

#include "core/vmmapi.h"
#include "tests/kvm_testing.h"

namespace strata {
namespace {

constexpr uint64_t kCode = 0x1000;
constexpr uint32_t kBogusMsr = 0x4b564d99;  // not an MSR KVM implements

// Real mode: mov ecx, kBogusMsr; rdmsr; out 0x80, al; jmp .
const uint8_t kRdmsrProgram[] = {
    0x66, 0xb9, 0x99, 0x4d, 0x56, 0x4b,  // mov ecx, 0x4b564d99
    0x0f, 0x32,                          // rdmsr
    0xe6, 0x80,                          // out 0x80, al
    0xeb, 0xfe,                          // jmp .
};

class Port80 : public IoDevice {
 public:
  explicit Port80(Vm& vm) : vm_(vm) {}
  uint64_t Read(const IoContext&, uint64_t, uint32_t) override { return 0; }
  void Write(const IoContext&, uint64_t, uint32_t, uint64_t v) override {
    value_ = v;
    vm_.RequestStop(ExitStatus::PowerOff());
  }
  std::string_view name() const override { return "port80"; }
  uint64_t value_ = ~0ull;

 private:
  Vm& vm_;
};

std::unique_ptr<Vm> MakeRdmsrVm(std::shared_ptr<Port80>* port) {
  VmOptions o;
  auto vm = CreateKvmVm(o);
  EXPECT_TRUE(vm.has_value()) << vm.error().message();
  EXPECT_TRUE((*vm)->AddMemory("ram", 0, 1 << 20).has_value());
  EXPECT_TRUE((*vm)->memory().Write(kCode, kRdmsrProgram, sizeof(kRdmsrProgram)).has_value());
  *port = std::make_shared<Port80>(**vm);
  EXPECT_TRUE((*vm)->pio_bus().Register(0x80, 1, *port).has_value());
  Vcpu* v = *(*vm)->CreateVcpu(0);
  auto s = v->GetState();
  s->cs.selector = 0;
  s->cs.base = 0;
  EXPECT_TRUE(v->SetState(*s).has_value());
  EXPECT_TRUE(v->SetRegister(md::Reg::kRip, kCode).has_value());
  return std::move(*vm);
}

TEST(Amd64ExitTest, UserSpaceMsrReadGoesThroughTheArchTable) {
  STRATA_REQUIRE_KVM();
  std::shared_ptr<Port80> port;
  auto vm = MakeRdmsrVm(&port);
  uint32_t seen = 0;
  ASSERT_TRUE(vm->SetArchExitHandler(md::ArchExitReason::kRdmsr,
                                     [&](Vcpu&, md::ArchExit& a) {
                                       seen = a.msr_index;
                                       *a.msr_reply = 0x42;  // EAX:EDX = 0x42
                                       return true;
                                     })
                  .has_value());
  ASSERT_TRUE(vm->vcpu(0)->Run().has_value());
  EXPECT_EQ(seen, kBogusMsr);
  EXPECT_EQ(port->value_, 0x42u);  // the guest got our value in AL
  EXPECT_EQ(vm->exit_status()->why, ExitStatus::Why::kPowerOff);
  EXPECT_EQ(vm->vcpu(0)->stats().arch_exits[static_cast<size_t>(
                md::ArchExitReason::kRdmsr)],
            1u);
}

TEST(Amd64ExitTest, ExitWithoutAHandlerStopsTheVmWithARegisterDump) {
  STRATA_REQUIRE_KVM();
  std::shared_ptr<Port80> port;
  auto vm = MakeRdmsrVm(&port);
  ASSERT_TRUE(
      vm->SetArchExitHandler(md::ArchExitReason::kRdmsr, nullptr).has_value());
  ASSERT_TRUE(vm->vcpu(0)->Run().has_value());
  // The table is fixed once a vCPU has run.
  auto late = vm->SetArchExitHandler(md::ArchExitReason::kRdmsr, nullptr);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), Errc::kBusy);
  ASSERT_TRUE(vm->exit_status().has_value());
  const ExitStatus st = *vm->exit_status();  // exit_status() returns a copy
  EXPECT_EQ(st.why, ExitStatus::Why::kVmmError);
  EXPECT_NE(st.message.find("unhandled amd64 exit rdmsr"), std::string::npos)
      << st.message;
  EXPECT_NE(st.message.find("rip="), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("rcx=0x000000004b564d99"), std::string::npos)
      << st.message;
  EXPECT_EQ(port->value_, ~0ull);  // never resumed past the rdmsr
}

// Real mode: wrmsr HV_X64_MSR_SIMP <- 0x3000 | enable; out 0x80, al; jmp .
const uint8_t kSimpProgram[] = {
    0x66, 0xb9, 0x83, 0x00, 0x00, 0x40,  // mov ecx, 0x40000083
    0x66, 0xb8, 0x01, 0x30, 0x00, 0x00,  // mov eax, 0x3001
    0x66, 0x31, 0xd2,                    // xor edx, edx
    0x0f, 0x30,                          // wrmsr
    0xe6, 0x80,                          // out 0x80, al
    0xeb, 0xfe,                          // jmp .
};

TEST(Amd64ExitTest, HypervSynicWriteIsAnArchExit) {
  STRATA_REQUIRE_KVM();
  VmOptions o;
  o.machine.hyperv = "passthrough";
  auto made = CreateKvmVm(o);
  if (!made.has_value() &&
      made.error().message().find("is not supported by KVM on this host") !=
          std::string::npos) {
    GTEST_SKIP() << made.error().message();
  }
  ASSERT_TRUE(made.has_value()) << made.error().message();
  std::unique_ptr<Vm> vm = std::move(*made);
  ASSERT_TRUE(vm->AddMemory("ram", 0, 1 << 20).has_value());
  ASSERT_TRUE(
      vm->memory().Write(kCode, kSimpProgram, sizeof(kSimpProgram)).has_value());
  auto port = std::make_shared<Port80>(*vm);
  ASSERT_TRUE(vm->pio_bus().Register(0x80, 1, port).has_value());
  md::ArchExit seen;
  ASSERT_TRUE(vm->SetArchExitHandler(md::ArchExitReason::kHypervSynic,
                                     [&](Vcpu&, md::ArchExit& a) {
                                       seen = a;
                                       return true;
                                     })
                  .has_value());
  Vcpu* v = *vm->CreateVcpu(0);
  auto st = v->GetState();
  st->cs.selector = 0;
  st->cs.base = 0;
  ASSERT_TRUE(v->SetState(*st).has_value());
  ASSERT_TRUE(v->SetRegister(md::Reg::kRip, kCode).has_value());
  // The VP index is the vCPU index.
  auto vp = v->GetSysReg(0x40000002);
  ASSERT_TRUE(vp.has_value()) << vp.error().message();
  EXPECT_EQ(*vp, 0u);
  ASSERT_TRUE(v->Run().has_value());
  EXPECT_EQ(seen.reason, md::ArchExitReason::kHypervSynic);
  EXPECT_EQ(seen.hv_msr, 0x40000083u);
  EXPECT_EQ(seen.hv_msg_page, 0x3001u);
  EXPECT_EQ(port->value_, 0x01u);  // resumed after the wrmsr
  EXPECT_EQ(vm->machine_options().hyperv.find("passthrough"),
            std::string::npos);  // settled into the feature list
  EXPECT_NE(vm->machine_options().hyperv.find("synic"), std::string::npos);
}

}  // namespace
}  // namespace strata
