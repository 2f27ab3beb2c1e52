#include "arch/amd64/platform/pc_hyperv.h"

#include "arch/amd64/hyperv/hyperv_cpuid.h"
#include "arch/amd64/hyperv/synic.h"
#include "core/log.h"
#include "core/vm.h"
#include "devices/hyperv_synic.h"
#include "devices/hyperv_testdev.h"

namespace strata::platform::pc {

namespace hyperv = amd64::hyperv;

namespace {

bool HasSynic(const hyperv::Request& r) {
  const auto i = static_cast<size_t>(hyperv::Feature::kSynic);
  return r.enabled && (r.passthrough || r.add[i]) && !r.remove[i];
}

}  // namespace

Status InitHypervConfig(Config& c) {
  STRATA_TRY(c.SetDefault("x86.hyperv", "off"));
  STRATA_TRY(
      c.SetDefault("x86.hyperv_vendor_id", std::string(hyperv::kDefaultVendorId)));
  return Ok();
}

Status CheckHypervConfig(const Config& c, bool hypervisor_bit) {
  const std::string text = STRATA_TRY(c.GetString("x86.hyperv", "off"));
  const hyperv::Request r = STRATA_TRY(hyperv::ParseRequest(text));
  const std::string vendor = STRATA_TRY(c.GetString(
      "x86.hyperv_vendor_id", std::string(hyperv::kDefaultVendorId)));
  if (vendor.size() > hyperv::kVendorIdMaxLength) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.hyperv_vendor_id '{}' is longer than {} characters",
                     vendor, hyperv::kVendorIdMaxLength);
  }
  // A list is checked whole now; what passthrough leaves depends on the
  // host.
  if (r.enabled && !r.passthrough) {
    STRATA_TRY(hyperv::CheckDependencies(r.add & ~r.remove));
  }
  if (r.enabled && !hypervisor_bit) {
    return MakeError(Errc::kInvalidArgument,
                     "x86.hyperv={} needs the hypervisor CPUID bit and leaves "
                     "(x86.hypervisor_bit=true)",
                     text);
  }
  return Ok();
}

Status InitHyperv(PlatformContext& m) {
  Vm& vm = m.vm;
  const hyperv::Request settled =
      STRATA_TRY(hyperv::ParseRequest(vm.machine_options().hyperv));
  if (!HasSynic(settled)) return Ok();
  // KVM reports a guest's acknowledgement of a SINT only through a
  // resampling irqfd, which needs its in-kernel IOAPIC (virt/kvm/
  // eventfd.c, kvm_arch_irqfd_allowed).
  const bool acks = vm.machine_options().irqchip == md::IrqchipMode::kKernel;
  std::shared_ptr<hyperv::Synic> synic =
      STRATA_TRY(hyperv::InstallSynic(vm, acks));
  DeviceHost& host = m.devices.host();
  host.OnStart([synic] { return synic->Start(); });
  host.OnStop([synic] { synic->Stop(); });
  host.SetService<hv::SynicService>(synic);
  vm.log().debug("Hyper-V SynIC: {} VPs, message acknowledgements {}",
                 vm.max_vcpus(), acks ? "on" : "off (x86.irqchip=split)");
  return Ok();
}

DeviceModel HypervTestdevModel() {
  DeviceModel m;
  m.name = "hyperv-testdev";
  m.help =
      "QEMU's Hyper-V test device: SynIC SINT routes, message and event "
      "connections for kvm-unit-tests (needs x86.hyperv with synic and "
      "x86.irqchip=kernel)";
  m.keys = {{"port", "I/O port of its control register (default 0x3000)"}};
  m.check = [](DeviceContext& ctx) -> Status {
    STRATA_TRY(ctx.GetUintInRange("port", kHypervTestdevPort, 0,
                                  kPioMaxPort + 1 - kHypervTestdevLength));
    const hyperv::Request r = STRATA_TRY(hyperv::ParseRequest(
        STRATA_TRY(ctx.config().GetString("x86.hyperv", "off"))));
    if (!HasSynic(r)) {
      return MakeError(Errc::kInvalidArgument,
                       "{} needs the Hyper-V SynIC: set x86.hyperv to "
                       "passthrough or a list with synic",
                       ctx.Describe());
    }
    const std::string irqchip =
        STRATA_TRY(ctx.config().GetString("x86.irqchip", "kernel"));
    if (md::ParseIrqchipMode(irqchip) != md::IrqchipMode::kKernel) {
      return MakeError(Errc::kInvalidArgument,
                       "{} needs x86.irqchip=kernel: its message connections "
                       "learn that the guest freed a slot from KVM's "
                       "resampling irqfds, which need KVM's in-kernel IOAPIC",
                       ctx.Describe());
    }
    return Ok();
  };
  m.create = [](DeviceContext& ctx) -> Result<std::shared_ptr<void>> {
    const uint64_t port = STRATA_TRY(
        ctx.GetUintInRange("port", kHypervTestdevPort, 0,
                           kPioMaxPort + 1 - kHypervTestdevLength));
    std::shared_ptr<hv::SynicService> synic =
        ctx.host().Service<hv::SynicService>();
    Vm& vm = ctx.vm();
    if (!synic) {
      // passthrough on a host whose KVM has no SynIC.
      return MakeError(Errc::kUnsupported,
                       "{} needs the Hyper-V synthetic interrupt controller "
                       "(synic), which is not supported by KVM on this host "
                       "(x86.hyperv settled on '{}')",
                       ctx.Describe(), vm.machine_options().hyperv);
    }
    auto ignored =
        std::make_shared<RateLimit>("hyperv-testdev write", ctx.logger());
    auto dev = std::make_shared<HypervTestdev>(
        synic,
        [&vm](const std::string& what) {
          vm.log().error("{}", what);
          vm.RequestStop(ExitStatus::VmmError(what));
        },
        [ignored](const std::string& what) {
          ignored->Warn("hyperv-testdev: ignored {}", what);
        });
    STRATA_TRY(vm.pio_bus().Register(port, kHypervTestdevLength, dev));
    return std::shared_ptr<void>(dev);
  };
  return m;
}

}  // namespace strata::platform::pc
