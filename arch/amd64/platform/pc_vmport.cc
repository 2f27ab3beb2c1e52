#include "arch/amd64/platform/pc_vmport.h"

#include <memory>
#include <optional>

#include "core/vm.h"

namespace strata::platform::pc {

std::optional<uint32_t> VmportCall(VmportRegs& regs) {
  if (regs.eax != kVmportMagic) return std::nullopt;
  switch (static_cast<uint8_t>(regs.ecx)) {  // the command is CL
    case kVmportGetVersion:
      regs.ebx = kVmportMagic;
      regs.ecx = kVmportVmxType;
      return kVmportVersion;
    default:
      return std::nullopt;
  }
}

uint64_t Vmport::Read(const IoContext& ctx, uint64_t, uint32_t size) {
  if (ctx.vcpu == nullptr) return ~uint64_t{0};
  Vcpu& vcpu = *ctx.vcpu;
  // Each register the call reads; an error (which the register cache does
  // not give on the vCPU's own thread) leaves the call unmade.
  auto reg = [&vcpu](md::Reg r) -> std::optional<uint32_t> {
    Result<uint64_t> v = vcpu.GetRegister(r);
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(*v);
  };
  const std::optional<uint32_t> eax = reg(md::Reg::kRax);
  if (!eax) return ~uint64_t{0};
  if (size != 4) return *eax;
  VmportRegs in{*eax, reg(md::Reg::kRbx).value_or(0),
                reg(md::Reg::kRcx).value_or(0),
                reg(md::Reg::kRdx).value_or(0)};
  VmportRegs out = in;
  const std::optional<uint32_t> answer = VmportCall(out);
  if (!answer) return *eax;
  // 32-bit results zero-extend into the 64-bit registers, as the
  // instructions that write them would.
  if (out.ebx != in.ebx) (void)vcpu.SetRegister(md::Reg::kRbx, out.ebx);
  if (out.ecx != in.ecx) (void)vcpu.SetRegister(md::Reg::kRcx, out.ecx);
  if (out.edx != in.edx) (void)vcpu.SetRegister(md::Reg::kRdx, out.edx);
  return *answer;
}

DeviceModel VmportModel() {
  DeviceModel m;
  m.name = "vmport";
  m.help =
      "VMware's backdoor I/O port 0x5658 (QEMU's -machine vmport=on): "
      "GETVERSION; kvm-unit-tests' vmware_backdoors also needs KVM's "
      "enable_vmware_backdoor";
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    auto dev = std::make_shared<Vmport>();
    STRATA_TRY(ctx.vm().pio_bus().Register(kVmportPort, 4, dev));
    return std::shared_ptr<void>(dev);
  };
  return m;
}

}  // namespace strata::platform::pc
