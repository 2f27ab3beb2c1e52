// strata — amd64 machine-dependent half of vmmapi.h.
//
// core/vmmapi.h includes <machine/vmmapi_machdep.h>; the build puts exactly
// one architecture's include/ directory on the path, so MI code written
// against md::Reg, md::VcpuState, md::FpuState and md::ArchExit gets the
// amd64 meanings here and the arm64 meanings under arch/arm64/include/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "machine/vcpu_state.h"

namespace strata::md {

inline constexpr std::string_view kArchName = "amd64";

// Scalar registers reachable through Vcpu::GetRegister/SetRegister.
enum class Reg : uint16_t {
  kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kRsp,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15,
  kRip, kRflags,
  kCr0, kCr2, kCr3, kCr4, kCr8, kEfer,
  kCount,
};

std::string_view RegName(Reg r);

// The program counter and stack pointer under their MI names.
inline constexpr Reg kRegPc = Reg::kRip;
inline constexpr Reg kRegSp = Reg::kRsp;

// "System registers" are MSRs on amd64 (Vcpu::GetSysReg(id) with id = MSR
// index). SDM Vol. 4 §2.1.
inline constexpr uint32_t kMsrIa32Tsc = 0x10;
inline constexpr uint32_t kMsrIa32ApicBase = 0x1b;
inline constexpr uint32_t kMsrIa32FeatureControl = 0x3a;
inline constexpr uint32_t kMsrIa32TscAdjust = 0x3b;
inline constexpr uint32_t kMsrIa32SysenterCs = 0x174;
inline constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
inline constexpr uint32_t kMsrIa32SysenterEip = 0x176;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint32_t kMsrIa32Pat = 0x277;
inline constexpr uint32_t kMsrIa32TscDeadline = 0x6e0;
inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrCstar = 0xc0000083;
inline constexpr uint32_t kMsrSfmask = 0xc0000084;
inline constexpr uint32_t kMsrFsBase = 0xc0000100;
inline constexpr uint32_t kMsrGsBase = 0xc0000101;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint32_t kMsrTscAux = 0xc0000103;

// Where the interrupt controllers live.
enum class IrqchipMode : uint8_t {
  // KVM's PIC pair, IOAPIC and LAPICs, and its i8254 PIT on GSI 0
  // (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2). Pins are raised with
  // Vm::SetIrq (KVM_IRQ_LINE).
  kKernel,
  // KVM's LAPICs only (KVM_CAP_SPLIT_IRQCHIP, like QEMU's
  // kernel-irqchip=split): the IOAPIC is the VMM's (devices/ioapic.h) and
  // signals MSIs; there is no PIC and no PIT. Vm::SetIrq refuses pins;
  // INIT/SIPI, the LAPIC timer, MSIs and irqfd MSIs work as in kKernel.
  // EOIs of the IOAPIC's level-triggered vectors exit as kIoapicEoi.
  kSplit,
};

// "kernel" / "split".
std::string_view IrqchipModeName(IrqchipMode m);
// The x86.irqchip config value: "kernel" or "split", or a boolean
// (true/yes/on/1 = kernel, false/no/off/0 = split, as before the split
// mode existed); case-insensitive. nullopt for anything else.
std::optional<IrqchipMode> ParseIrqchipMode(std::string_view text);

// Machine options fixed at VM creation (the MD part of VmOptions; the CPU
// topology is MI, VmOptions::topology). Config keys under `x86.` set them
// (see arch/amd64/platform/).
struct MachineOptions {
  std::string cpu_vendor = "host";  // "host", "intel" or "amd"
  // "host": KVM's supported CPUID (filtered by the vendor policy); or a
  // named model (amd64/cpu_models.h, QEMU's names: Opteron_G1, IvyBridge,
  // ...) whose vendor applies unless cpu_vendor names one.
  std::string cpu_model = "host";
  IrqchipMode irqchip = IrqchipMode::kKernel;
  bool x2apic = true;           // advertise x2APIC in CPUID
  bool tsc_deadline = true;     // advertise TSC-deadline timer
  bool hypervisor_bit = true;   // CPUID.1:ECX[31] and leaf 0x4000_0000
  bool pit = true;              // KVM's i8254 PIT with the in-kernel irqchip
  // The guest's HLT, PAUSE, MWAIT and C-states run without exits
  // (x86.cpu_pm, QEMU's -overcommit cpu-pm=on; KVM_CAP_X86_DISABLE_EXITS,
  // those of them KVM offers): for vCPUs pinned to their own host CPUs —
  // an idle vCPU then spins on its CPU instead of sleeping in the host.
  bool cpu_pm = false;
  // Named CPUID feature overrides, "+pcid,-xsave" (amd64/cpuid.h,
  // ParseCpuFeatures; checked against KVM's table when the VM is created).
  std::string cpu_features;
  // What a "+name" KVM does not support does: refuse the VM (false), or,
  // as QEMU does, drop it with a warning (x86.cpu_features_missing=drop).
  bool drop_missing_features = false;
  // Hyper-V enlightenments (x86.hyperv; arch/amd64/hyperv/hyperv_cpuid.h):
  // "off", "passthrough" or a feature list. As the backend settles it
  // (Vm::machine_options()): "off" or the list of features the VM has.
  std::string hyperv = "off";
  // 0x4000_0000's vendor id with Hyper-V (x86.hyperv_vendor_id, QEMU's
  // hv-vendor-id), at most 12 characters.
  std::string hyperv_vendor_id = "Microsoft Hv";
};

// Architecture-specific exits that the MI loop hands to the amd64 table.
enum class ArchExitReason : uint16_t {
  kNone,
  kRdmsr,          // user-space MSR read (KVM_CAP_X86_USER_SPACE_MSR)
  kWrmsr,          // user-space MSR write
  kHypercall,      // KVM_EXIT_HYPERCALL
  kDebug,          // #DB / #BP intercepted for the debugger
  kTprAccess,      // KVM_EXIT_TPR_ACCESS
  kSetTpr,         // KVM_EXIT_SET_TPR
  kIoapicEoi,      // KVM_EXIT_IOAPIC_EOI (split irqchip): a LAPIC EOI of a
                   // vector the user-space IOAPIC sent level-triggered
  kHypervSynic,    // KVM_EXIT_HYPERV_SYNIC: the guest wrote a SynIC
                   // control register (x86.hyperv with synic)
  kHypervHcall,    // KVM_EXIT_HYPERV_HCALL: a Hyper-V hypercall KVM leaves
                   // to user space
  kCount,
};

std::string_view ArchExitName(ArchExitReason r);

struct ArchExit {
  ArchExitReason reason = ArchExitReason::kNone;
  uint32_t msr_index = 0;         // kRdmsr / kWrmsr
  uint64_t msr_data = 0;          // kWrmsr: value; kRdmsr: filled by handler
  uint8_t* msr_error = nullptr;   // kRdmsr/kWrmsr: set to 1 to inject #GP
  uint64_t* msr_reply = nullptr;  // kRdmsr: where the handler stores data
  uint64_t hypercall_nr = 0;      // kHypercall
  uint64_t hypercall_args[6] = {};
  uint64_t* hypercall_ret = nullptr;
  uint64_t debug_pc = 0;          // kDebug
  uint32_t debug_exception = 0;
  uint8_t eoi_vector = 0;         // kIoapicEoi
  // kHypervSynic: the register written (HV_X64_MSR_SCONTROL, _SIEFP or
  // _SIMP) and the VP's three registers after the write (Hyper-V TLFS,
  // "Synthetic Interrupt Controller"). KVM has completed the write.
  uint32_t hv_msr = 0;
  uint64_t hv_control = 0;
  uint64_t hv_evt_page = 0;
  uint64_t hv_msg_page = 0;
  // kHypervHcall: the hypercall input value (call code, fast bit, counts:
  // TLFS, "Hypercall Interface") and its two parameters (input and output
  // GPA, or the values of a fast call); the handler stores the result
  // (status in bits 15:0), which KVM puts in RAX on the next entry.
  uint64_t hv_input = 0;
  uint64_t hv_params[2] = {};
  uint64_t* hv_result = nullptr;
};

}  // namespace strata::md
