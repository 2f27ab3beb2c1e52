// strata — arm64 snapshots: a vCPU's registers and the in-kernel vGICv3
// and ITS, saved and loaded through KVM (core/snapshot.h).
//
// References: the KVM API document (KVM_GET_REG_LIST, KVM_{GET,SET}_ONE_REG,
// KVM_{GET,SET}_MP_STATE, KVM_{GET,SET}_VCPU_EVENTS) and its device pages
// devices/arm-vgic-v3.rst (KVM_DEV_ARM_VGIC_GRP_DIST_REGS, _REDIST_REGS,
// _CPU_SYSREGS, _LEVEL_INFO, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES) and
// devices/arm-vgic-its.rst (KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
// KVM_DEV_ARM_ITS_SAVE_TABLES / RESTORE_TABLES and the restore order); the
// register offsets are the GICv3 architecture's (IHI 0069, §12.8 GICD,
// §12.10-12.11 GICR RD_base and SGI_base, §12.19 GITS, §12.2 ICC).
//
// vCPU state. Every register KVM_GET_REG_LIST names is saved with its id
// and size — the core registers (X0-X30, SP, PC, PSTATE, SP_EL1, ELR_EL1,
// the SPSRs), V0-V31/FPSR/FPCR, the system registers KVM exposes (the EL1
// context, the debug registers DBGB*/DBGW*/MDSCR_EL1, the PMU's, the
// timer's CNTV_CTL/CNTV_CVAL/CNT, ID registers) and the firmware
// pseudo-registers (PSCI version, the hypercall bitmaps) — then the MP
// state (running, powered off, suspended) and the pending vCPU events (a
// pending SError). The restore writes them in the same order into a vCPU
// that has not run, after the vGIC's and the PMU's initialisation (which
// KVM wants before the first entry); writing KVM_REG_ARM_TIMER_CNT sets the
// virtual counter offset, so the guest's virtual time continues where it
// was saved. A saved register the new vCPU does not list is an error (a
// different host or kernel), never skipped. The register cache
// (kvm_machdep.h) is written back before the save and dropped after the
// restore.
//
// vGICv3 state, per the kernel's documents: before guest memory is saved,
// the ITS's tables (SAVE_TABLES: device, collection and translation
// tables into the guest's BASERs) and the LPI pending bits
// (SAVE_PENDING_TABLES: into each redistributor's pending table). Then the
// registers: GICD_CTLR; per vCPU the redistributor's GICR_PROPBASER,
// GICR_PENDBASER, GICR_CTLR (RD frame) and the SGI frame's group, enable,
// pending, active, priority and configuration registers of SGIs and PPIs;
// the distributor's registers of every SPI (IGROUPR, ISENABLER, ISPENDR,
// ISACTIVER, IPRIORITYR, ICFGR, IROUTER); the SPIs' line levels
// (LEVEL_INFO, for level-triggered inputs); each CPU interface's ICC_SRE,
// ICC_CTLR, ICC_IGRPEN0/1, ICC_PMR, ICC_BPR0/1 and the active-priority
// registers ICC_AP0R<n>/AP1R<n> its priority bits imply; the ITS's
// registers. The restore, into a VM whose vCPUs all exist and have their
// MPIDRs: GICD_CTLR (ARE), the redistributors (the base registers before
// GICR_CTLR, whose EnableLPIs freezes them), the distributor, the line
// levels, the CPU interfaces (ICC_SRE first), then the ITS in the order
// arm-vgic-its.rst gives: GITS_IIDR, GITS_CBASER, the other registers but
// GITS_CTLR, RESTORE_TABLES, GITS_CTLR. A fresh vGIC has everything
// clear, so set-registers (ISENABLER, ISPENDR, ISACTIVER) restore the
// bits without their clear counterparts.
//
// vGICv2 state (devices/arm-vgic.rst, the GICv2 architecture's offsets,
// IHI 0048B §4.3 GICD and §4.4 GICC): GICD_IIDR first — KVM's revision,
// written back first on restore as the document asks (a kernel whose
// revision differs refuses it, so the restore fails rather than changing
// behaviour under the guest) — then GICD_CTLR; per vCPU (the attribute's
// vcpu_index selects the banked copy) the SGI and PPI group, enable,
// pending (PPIs; SGIs' pending state is per source in GICD_SPENDSGIR),
// active, priority and PPI configuration registers; every SPI's group,
// priority, configuration, CPU targets, enable, pending and active bits;
// per vCPU the CPU interface's GICC_CTLR, GICC_PMR (KVM's 5-bit VMCR
// format, kept as read), GICC_BPR, GICC_ABPR and the four APRs KVM
// exposes. There are no line levels to save on v2 (no LEVEL_INFO group).
// MTE refuses the save with an error: the allocation tags are not saved.
#include <asm/kvm.h>
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstring>
#include <functional>
#include <span>

#include <fmt/format.h>

#include "core/kvm/kvm_abi.h"
#include "machine/kvm_machdep.h"

namespace strata::md {

namespace {

int Ioctl(int fd, unsigned long req, const void* arg) {
  return kvm::IoctlRetry(fd, req, arg);
}

// Version of this file's encoding of the arm64 state (inside the
// snapshot's format version): bump it when the layout below changes.
constexpr uint32_t kVcpuStateVersion = 1;
// 1: a vGICv3 (the layout below); 2: the GIC architecture (2 or 3) first.
constexpr uint32_t kGicStateVersion = 2;
// No register KVM lists for arm64 is wider (SVE Z registers are 256
// bytes; strata does not enable SVE, but the size field allows them).
constexpr uint32_t kMaxRegBytes = 256;
constexpr uint64_t kMaxRegs = 4096;

// GICv3 register offsets (IHI 0069 §12).
constexpr uint32_t kGicdCtlr = 0x0000;
constexpr uint32_t kGicdIgroupr = 0x0080;
constexpr uint32_t kGicdIsenabler = 0x0100;
constexpr uint32_t kGicdIspendr = 0x0200;
constexpr uint32_t kGicdIsactiver = 0x0300;
constexpr uint32_t kGicdIpriorityr = 0x0400;
constexpr uint32_t kGicdIcfgr = 0x0c00;
constexpr uint32_t kGicdIrouter = 0x6000;
constexpr uint32_t kGicrCtlr = 0x0000;
constexpr uint32_t kGicrPropbaser = 0x0070;
constexpr uint32_t kGicrPendbaser = 0x0078;
constexpr uint32_t kGicrSgi = 0x10000;  // SGI_base frame
constexpr uint32_t kGicrIgroupr0 = kGicrSgi + 0x0080;
constexpr uint32_t kGicrIsenabler0 = kGicrSgi + 0x0100;
constexpr uint32_t kGicrIspendr0 = kGicrSgi + 0x0200;
constexpr uint32_t kGicrIsactiver0 = kGicrSgi + 0x0300;
constexpr uint32_t kGicrIpriorityr = kGicrSgi + 0x0400;  // 8 words
constexpr uint32_t kGicrIcfgr0 = kGicrSgi + 0x0c00;      // 2 words
// GICv2 distributor and CPU interface (IHI 0048B §4.1.2, §4.1.3); the
// set/clear register pairs and IPRIORITYR/ICFGR share GICv3's offsets.
constexpr uint32_t kGicdIidr = 0x0008;
constexpr uint32_t kGicdItargetsr = 0x0800;
constexpr uint32_t kGicdSpendsgir = 0x0f20;  // 4 words
constexpr uint32_t kGiccCtlr = 0x0000;
constexpr uint32_t kGiccPmr = 0x0004;
constexpr uint32_t kGiccBpr = 0x0008;
constexpr uint32_t kGiccAbpr = 0x001c;
constexpr uint32_t kGiccApr = 0x00d0;  // 4 words (devices/arm-vgic.rst)
constexpr uint32_t kGitsCtlr = 0x0000;
constexpr uint32_t kGitsIidr = 0x0004;
constexpr uint32_t kGitsCbaser = 0x0080;
constexpr uint32_t kGitsCwriter = 0x0088;
constexpr uint32_t kGitsCreadr = 0x0090;
constexpr uint32_t kGitsBaser = 0x0100;  // 8 registers
constexpr uint32_t kGitsBasers = 8;

// ICC system registers (op0, op1, CRn, CRm, op2), ARM ARM D17.
constexpr uint64_t kIccPmr = SysRegId(3, 0, 4, 6, 0);
constexpr uint64_t kIccBpr0 = SysRegId(3, 0, 12, 8, 3);
constexpr uint64_t kIccAp0r0 = SysRegId(3, 0, 12, 8, 4);  // + n, n < 4
constexpr uint64_t kIccAp1r0 = SysRegId(3, 0, 12, 9, 0);  // + n, n < 4
constexpr uint64_t kIccBpr1 = SysRegId(3, 0, 12, 12, 3);
constexpr uint64_t kIccCtlr = SysRegId(3, 0, 12, 12, 4);
constexpr uint64_t kIccSre = SysRegId(3, 0, 12, 12, 5);
constexpr uint64_t kIccIgrpen0 = SysRegId(3, 0, 12, 12, 6);
constexpr uint64_t kIccIgrpen1 = SysRegId(3, 0, 12, 12, 7);

// The vGICv2's banked-register selector: the vCPU index in bits 39:32.
uint64_t AttrVcpu(uint32_t index) {
  return uint64_t{index} << KVM_DEV_ARM_VGIC_CPUID_SHIFT;
}

// KVM_DEV_ARM_VGIC_V3_MPIDR: Aff3.Aff2.Aff1.Aff0 in bits 63:32.
uint64_t AttrMpidr(uint64_t mpidr) {
  const uint64_t aff = (mpidr & 0xffffff) | ((mpidr >> 8) & 0xff000000);
  return aff << 32;
}

Status DevAttr(int fd, bool set, uint32_t group, uint64_t attr, void* value,
               std::string_view what) {
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(value);
  if (Ioctl(fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &a) < 0) {
    return SysError("{} {} (attr {:#x})", set ? "restoring" : "saving", what,
                    attr);
  }
  return Ok();
}

uint32_t RegBytes(uint64_t id) {
  return 1u << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

}  // namespace

// --------------------------------------------------------- KvmVcpuArch ----

Result<std::vector<uint64_t>> KvmVcpuArch::RegList() {
  kvm_reg_list probe{};
  probe.n = 0;
  if (Ioctl(fd_, KVM_GET_REG_LIST, &probe) == 0 || errno != E2BIG) {
    return SysError("KVM_GET_REG_LIST (count) on vCPU {}", index_);
  }
  if (probe.n > kMaxRegs) {
    return MakeError(Errc::kInternal, "vCPU {}: KVM lists {} registers",
                     index_, probe.n);
  }
  std::vector<uint64_t> buf(probe.n + 1);
  buf[0] = probe.n;
  if (Ioctl(fd_, KVM_GET_REG_LIST, buf.data()) < 0) {
    return SysError("KVM_GET_REG_LIST on vCPU {}", index_);
  }
  return std::vector<uint64_t>(buf.begin() + 1, buf.begin() + 1 + buf[0]);
}

Status KvmVcpuArch::SaveState(StateWriter& out) {
  // Registers set through the cache and not yet written back.
  STRATA_TRY(WriteBack());
  const std::vector<uint64_t> ids = STRATA_TRY(RegList());
  out.U32(kVcpuStateVersion);
  out.U64(ids.size());
  for (uint64_t id : ids) {
    const uint32_t n = RegBytes(id);
    if (n > kMaxRegBytes) {
      return MakeError(Errc::kUnsupported,
                       "vCPU {}: register {:#x} is {} bytes; strata saves at "
                       "most {}", index_, id, n, kMaxRegBytes);
    }
    alignas(16) uint8_t value[kMaxRegBytes] = {};
    kvm_one_reg r{id, reinterpret_cast<uint64_t>(value)};
    if (Ioctl(fd_, KVM_GET_ONE_REG, &r) < 0) {
      return SysError("vCPU {}: saving register {:#x}", index_, id);
    }
    out.U64(id);
    out.U32(n);
    out.Bytes(std::span<const uint8_t>(value, n));
  }
  kvm_mp_state mp{};
  if (Ioctl(fd_, KVM_GET_MP_STATE, &mp) < 0) {
    return SysError("KVM_GET_MP_STATE on vCPU {}", index_);
  }
  out.U32(mp.mp_state);
  kvm_vcpu_events ev{};
  const bool events = Ioctl(fd_, KVM_GET_VCPU_EVENTS, &ev) == 0;
  out.Bool(events);
  if (events) {
    out.Blob(std::span(reinterpret_cast<const uint8_t*>(&ev), sizeof ev));
  }
  return Ok();
}

Status KvmVcpuArch::LoadState(StateReader& in) {
  STRATA_TRY(InitOnce());
  const uint32_t version = STRATA_TRY(in.U32());
  if (version != kVcpuStateVersion) {
    return in.Fail(fmt::format("arm64 vCPU state version {}, expected {}",
                               version, kVcpuStateVersion));
  }
  const std::vector<uint64_t> have = STRATA_TRY(RegList());
  const uint64_t count = STRATA_TRY(in.U64());
  if (count > kMaxRegs) {
    return in.Fail(fmt::format("{} registers", count));
  }
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t id = STRATA_TRY(in.U64());
    const uint32_t n = STRATA_TRY(in.U32());
    if (n != RegBytes(id) || n > kMaxRegBytes) {
      return in.Fail(fmt::format("register {:#x} of {} bytes", id, n));
    }
    std::span<const uint8_t> bytes = STRATA_TRY(in.Bytes(n));
    bool listed = false;
    for (uint64_t h : have) listed = listed || h == id;
    if (!listed) {
      return MakeError(Errc::kUnsupported,
                       "vCPU {}: the snapshot has register {:#x}, which this "
                       "host's KVM does not offer (a snapshot restores on the "
                       "kind of host it was taken on)", index_, id);
    }
    alignas(16) uint8_t value[kMaxRegBytes] = {};
    std::memcpy(value, bytes.data(), n);
    kvm_one_reg r{id, reinterpret_cast<uint64_t>(value)};
    if (Ioctl(fd_, KVM_SET_ONE_REG, &r) < 0) {
      return SysError("vCPU {}: restoring register {:#x}", index_, id);
    }
  }
  kvm_mp_state mp{};
  mp.mp_state = STRATA_TRY(in.U32());
  if (Ioctl(fd_, KVM_SET_MP_STATE, &mp) < 0) {
    return SysError("KVM_SET_MP_STATE {} on vCPU {}", mp.mp_state, index_);
  }
  if (STRATA_TRY(in.Bool())) {
    std::span<const uint8_t> b = STRATA_TRY(in.Blob());
    kvm_vcpu_events ev{};
    if (b.size() != sizeof ev) {
      return in.Fail(fmt::format("vCPU events of {} bytes, expected {}",
                                 b.size(), sizeof ev));
    }
    std::memcpy(&ev, b.data(), sizeof ev);
    if (Ioctl(fd_, KVM_SET_VCPU_EVENTS, &ev) < 0) {
      return SysError("KVM_SET_VCPU_EVENTS on vCPU {}", index_);
    }
  }
  STRATA_TRY(in.ExpectEnd());
  valid_ = dirty_ = 0;  // the cache would hold the old vCPU's values
  return Ok();
}

// ----------------------------------------------------------- KvmVmArch ----

Result<uint64_t> KvmVmArch::VcpuMpidr(const VcpuRef& v) const {
  uint64_t mpidr = 0;
  kvm_one_reg r{KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG |
                    kSysRegMpidrEl1,
                reinterpret_cast<uint64_t>(&mpidr)};
  if (Ioctl(v.fd, KVM_GET_ONE_REG, &r) < 0) {
    return SysError("reading MPIDR_EL1 of vCPU {}", v.index);
  }
  return mpidr;
}

Status KvmVmArch::PrepareSave() {
  if (opts_.mte) {
    return MakeError(Errc::kUnsupported,
                     "snapshots of a VM with arm64.mte=true are not "
                     "supported: the guest's allocation tags would not be "
                     "saved");
  }
  STRATA_TRY(FinalizeIrqchip());
  if (opts_.gic_version == 2) return Ok();  // no ITS, no LPI tables
  if (its_fd_.valid()) {
    STRATA_TRY(DevAttr(its_fd_.get(), true, KVM_DEV_ARM_VGIC_GRP_CTRL,
                       KVM_DEV_ARM_ITS_SAVE_TABLES, nullptr,
                       "the ITS tables (KVM_DEV_ARM_ITS_SAVE_TABLES)"));
  }
  return DevAttr(gic_fd_.get(), true, KVM_DEV_ARM_VGIC_GRP_CTRL,
                 KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, nullptr,
                 "the LPI pending tables "
                 "(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES)");
}

Status KvmVmArch::SaveState(StateWriter& out) {
  STRATA_TRY(SaveGic(out));
  out.Bool(its_fd_.valid());
  if (its_fd_.valid()) STRATA_TRY(SaveIts(out));
  return Ok();
}

Status KvmVmArch::LoadState(StateReader& in) {
  STRATA_TRY(FinalizeIrqchip());
  STRATA_TRY(LoadGic(in));
  const bool its = STRATA_TRY(in.Bool());
  if (its != (its_fd_.valid())) {
    return in.Fail(its ? "the snapshot has an ITS, this VM has none"
                       : "this VM has an ITS, the snapshot none");
  }
  if (its) STRATA_TRY(LoadIts(in));
  return in.ExpectEnd();
}

namespace {

// One 32-bit register access on the vGIC device.
struct Gic {
  int fd;
  bool set;
  // attr: the offset, and on v2 a vCPU's banked copy (AttrVcpu).
  Status Dist(uint64_t attr, uint32_t* v) const {
    return DevAttr(fd, set, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, attr, v,
                   fmt::format("GICD register {:#x}", attr & 0xffffffff));
  }
  Status Redist(uint64_t mpidr_attr, uint32_t offset, uint32_t* v) const {
    return DevAttr(fd, set, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
                   mpidr_attr | offset, v,
                   fmt::format("GICR register {:#x}", offset));
  }
  Status Icc(uint64_t mpidr_attr, uint64_t reg, uint64_t* v) const {
    return DevAttr(fd, set, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
                   mpidr_attr | reg, v,
                   fmt::format("ICC system register {:#x}", reg));
  }
  Status Cpu(uint64_t vcpu_attr, uint32_t offset, uint32_t* v) const {
    return DevAttr(fd, set, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, vcpu_attr | offset,
                   v, fmt::format("GICC register {:#x}", offset));
  }
  Status Level(uint32_t intid, uint32_t* v) const {
    return DevAttr(fd, set, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
                   (uint64_t{VGIC_LEVEL_INFO_LINE_LEVEL}
                    << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) |
                       intid,
                   v, fmt::format("line levels of INTIDs {}+", intid));
  }
};

// Saves (out) or loads (in) one 32-bit value after an access.
struct Io {
  StateWriter* out = nullptr;
  StateReader* in = nullptr;
  Status U32(const std::function<Status(uint32_t*)>& access) {
    uint32_t v = 0;
    if (in != nullptr) {
      v = STRATA_TRY(in->U32());
      return access(&v);
    }
    STRATA_TRY(access(&v));
    out->U32(v);
    return Ok();
  }
  Status U64(const std::function<Status(uint64_t*)>& access) {
    uint64_t v = 0;
    if (in != nullptr) {
      v = STRATA_TRY(in->U64());
      return access(&v);
    }
    STRATA_TRY(access(&v));
    out->U64(v);
    return Ok();
  }
};

// The distributor's per-SPI registers: (base, bits per INTID).
struct SpiReg {
  uint32_t base;
  uint32_t bits;
};
constexpr SpiReg kSpiRegs[] = {
    {kGicdIgroupr, 1},    {kGicdIpriorityr, 8}, {kGicdIcfgr, 2},
    {kGicdIsenabler, 1},  {kGicdIspendr, 1},    {kGicdIsactiver, 1},
};

// The distributor's registers of every SPI (INTID 32 up), `bits` per
// INTID, in the order of `regs`; both GIC versions lay them out so.
Status WalkSpiRegs(const Gic& gic, Io& io, std::span<const SpiReg> regs,
                   uint32_t nr_irqs) {
  for (const SpiReg& r : regs) {
    const uint32_t per_word = 32 / r.bits;
    for (uint32_t intid = 32; intid < nr_irqs; intid += per_word) {
      const uint32_t off = r.base + intid / per_word * 4;
      STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Dist(off, v); }));
    }
  }
  return Ok();
}

// The RD and SGI frame registers of one redistributor, in restore order
// (the base registers before GICR_CTLR, GICR_CTLR before the SGI frame
// only by habit).
constexpr uint32_t kRedistRegs[] = {
    kGicrPropbaser, kGicrPropbaser + 4, kGicrPendbaser, kGicrPendbaser + 4,
    kGicrCtlr,
    kGicrIgroupr0,
    kGicrIpriorityr + 0x00, kGicrIpriorityr + 0x04, kGicrIpriorityr + 0x08,
    kGicrIpriorityr + 0x0c, kGicrIpriorityr + 0x10, kGicrIpriorityr + 0x14,
    kGicrIpriorityr + 0x18, kGicrIpriorityr + 0x1c,
    kGicrIcfgr0, kGicrIcfgr0 + 4,
    kGicrIsenabler0, kGicrIspendr0, kGicrIsactiver0,
};

// Both directions share one walk over the registers so save and restore
// cannot disagree on the layout.
Status WalkGic(const Gic& gic, Io& io, uint32_t nr_irqs,
               const std::vector<uint64_t>& mpidrs) {
  STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Dist(kGicdCtlr, v); }));
  for (uint64_t mpidr : mpidrs) {
    const uint64_t a = AttrMpidr(mpidr);
    for (uint32_t off : kRedistRegs) {
      STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Redist(a, off, v); }));
    }
  }
  STRATA_TRY(WalkSpiRegs(gic, io, kSpiRegs, nr_irqs));
  for (uint32_t intid = 32; intid < nr_irqs; ++intid) {
    for (uint32_t half = 0; half < 8; half += 4) {
      const uint32_t off = kGicdIrouter + intid * 8 + half;
      STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Dist(off, v); }));
    }
  }
  for (uint32_t intid = 32; intid < nr_irqs; intid += 32) {
    STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Level(intid, v); }));
  }
  for (uint64_t mpidr : mpidrs) {
    const uint64_t a = AttrMpidr(mpidr);
    uint64_t ctlr = 0;
    for (uint64_t reg : {kIccSre, kIccCtlr, kIccIgrpen0, kIccIgrpen1, kIccPmr,
                         kIccBpr0, kIccBpr1}) {
      STRATA_TRY(io.U64([&](uint64_t* v) {
        Status s = gic.Icc(a, reg, v);
        if (reg == kIccCtlr) ctlr = *v;
        return s;
      }));
    }
    // ICC_CTLR_EL1.PRIbits (bits 10:8) + 1 priority bits: 5 → one
    // active-priority register per group, 6 → two, 7 → four (§12.2).
    const uint32_t pri_bits = static_cast<uint32_t>((ctlr >> 8) & 7) + 1;
    const uint32_t aprs = pri_bits >= 7 ? 4 : pri_bits == 6 ? 2 : 1;
    for (uint32_t n = 0; n < aprs; ++n) {
      STRATA_TRY(io.U64([&](uint64_t* v) { return gic.Icc(a, kIccAp0r0 + n, v); }));
      STRATA_TRY(io.U64([&](uint64_t* v) { return gic.Icc(a, kIccAp1r0 + n, v); }));
    }
  }
  return Ok();
}

// The per-SPI registers of a GICv2 distributor, in restore order (CPU
// targets and configuration before the enables and the pending bits).
constexpr SpiReg kV2SpiRegs[] = {
    {kGicdIgroupr, 1},   {kGicdIpriorityr, 8}, {kGicdIcfgr, 2},
    {kGicdItargetsr, 8}, {kGicdIsenabler, 1},  {kGicdIspendr, 1},
    {kGicdIsactiver, 1},
};

// A vCPU's banked distributor registers (SGIs and PPIs, INTIDs 0-31). The
// SGIs' configuration (ICFGR0) and targets are fixed; their pending state
// is GICD_SPENDSGIR's, one byte of source CPUs per SGI.
constexpr uint32_t kV2BankedRegs[] = {
    kGicdIgroupr,
    kGicdIpriorityr + 0x00, kGicdIpriorityr + 0x04, kGicdIpriorityr + 0x08,
    kGicdIpriorityr + 0x0c, kGicdIpriorityr + 0x10, kGicdIpriorityr + 0x14,
    kGicdIpriorityr + 0x18, kGicdIpriorityr + 0x1c,
    kGicdIcfgr + 4,
    kGicdIsenabler, kGicdIspendr, kGicdIsactiver,
    kGicdSpendsgir + 0x0, kGicdSpendsgir + 0x4, kGicdSpendsgir + 0x8,
    kGicdSpendsgir + 0xc,
};

constexpr uint32_t kV2CpuRegs[] = {
    kGiccCtlr, kGiccPmr, kGiccBpr, kGiccAbpr,
    kGiccApr + 0x0, kGiccApr + 0x4, kGiccApr + 0x8, kGiccApr + 0xc,
};

// As WalkGic, for a vGICv2 of `vcpus` vCPUs.
Status WalkGicV2(const Gic& gic, Io& io, uint32_t nr_irqs, uint32_t vcpus) {
  STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Dist(kGicdIidr, v); }));
  STRATA_TRY(io.U32([&](uint32_t* v) { return gic.Dist(kGicdCtlr, v); }));
  for (uint32_t i = 0; i < vcpus; ++i) {
    for (uint32_t off : kV2BankedRegs) {
      STRATA_TRY(io.U32(
          [&](uint32_t* v) { return gic.Dist(AttrVcpu(i) | off, v); }));
    }
  }
  STRATA_TRY(WalkSpiRegs(gic, io, kV2SpiRegs, nr_irqs));
  for (uint32_t i = 0; i < vcpus; ++i) {
    for (uint32_t off : kV2CpuRegs) {
      STRATA_TRY(
          io.U32([&](uint32_t* v) { return gic.Cpu(AttrVcpu(i), off, v); }));
    }
  }
  return Ok();
}

}  // namespace

Status KvmVmArch::SaveGic(StateWriter& out) {
  const uint32_t nr_irqs = opts_.gic_spis + kGicFirstSpi;
  std::vector<uint64_t> mpidrs;
  for (const VcpuRef& v : vcpu_refs_) mpidrs.push_back(STRATA_TRY(VcpuMpidr(v)));
  out.U32(kGicStateVersion);
  out.U32(opts_.gic_version);
  out.U32(nr_irqs);
  out.U32(static_cast<uint32_t>(mpidrs.size()));
  for (uint64_t m : mpidrs) out.U64(m);
  Io io;
  io.out = &out;
  const Gic gic{gic_fd_.get(), false};
  if (opts_.gic_version == 2) {
    return WalkGicV2(gic, io, nr_irqs, static_cast<uint32_t>(mpidrs.size()));
  }
  return WalkGic(gic, io, nr_irqs, mpidrs);
}

Status KvmVmArch::LoadGic(StateReader& in) {
  const uint32_t version = STRATA_TRY(in.U32());
  if (version != 1 && version != kGicStateVersion) {
    return in.Fail(fmt::format("vGIC state version {}, expected 1 to {}",
                               version, kGicStateVersion));
  }
  // Version 1 was written only for a vGICv3.
  const uint32_t arch = version == 1 ? 3 : STRATA_TRY(in.U32());
  if (arch != opts_.gic_version) {
    return in.Fail(fmt::format("the snapshot has a vGICv{}, this VM a vGICv{} "
                               "(arm64.gic_version)",
                               arch, opts_.gic_version));
  }
  const uint32_t nr_irqs = STRATA_TRY(in.U32());
  if (nr_irqs != opts_.gic_spis + kGicFirstSpi) {
    return in.Fail(fmt::format("a vGIC of {} interrupts, this VM has {}",
                               nr_irqs, opts_.gic_spis + kGicFirstSpi));
  }
  const uint32_t n = STRATA_TRY(in.U32());
  if (n != vcpu_refs_.size()) {
    return in.Fail(fmt::format("{} redistributors, this VM has {} vCPUs", n,
                               vcpu_refs_.size()));
  }
  std::vector<uint64_t> mpidrs;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t saved = STRATA_TRY(in.U64());
    const uint64_t now = STRATA_TRY(VcpuMpidr(vcpu_refs_[i]));
    if (saved != now) {
      return in.Fail(fmt::format("vCPU {} had MPIDR {:#x}, now {:#x}", i,
                                 saved, now));
    }
    mpidrs.push_back(saved);
  }
  Io io;
  io.in = &in;
  const Gic gic{gic_fd_.get(), true};
  if (arch == 2) return WalkGicV2(gic, io, nr_irqs, n);
  return WalkGic(gic, io, nr_irqs, mpidrs);
}

Status KvmVmArch::SaveIts(StateWriter& out) {
  auto reg = [this, &out](uint32_t off) -> Status {
    uint64_t v = 0;
    STRATA_TRY(DevAttr(its_fd_.get(), false, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, &v,
                       fmt::format("GITS register {:#x}", off)));
    out.U64(v);
    return Ok();
  };
  STRATA_TRY(reg(kGitsIidr));
  STRATA_TRY(reg(kGitsCbaser));
  STRATA_TRY(reg(kGitsCreadr));
  STRATA_TRY(reg(kGitsCwriter));
  for (uint32_t n = 0; n < kGitsBasers; ++n) STRATA_TRY(reg(kGitsBaser + 8 * n));
  return reg(kGitsCtlr);
}

Status KvmVmArch::LoadIts(StateReader& in) {
  auto reg = [this, &in](uint32_t off) -> Status {
    uint64_t v = STRATA_TRY(in.U64());
    return DevAttr(its_fd_.get(), true, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, off, &v,
                   fmt::format("GITS register {:#x}", off));
  };
  // arm-vgic-its.rst: GITS_CBASER (which resets CREADR/CWRITER) before the
  // other registers, the tables after them, GITS_CTLR last.
  STRATA_TRY(reg(kGitsIidr));
  STRATA_TRY(reg(kGitsCbaser));
  STRATA_TRY(reg(kGitsCreadr));
  STRATA_TRY(reg(kGitsCwriter));
  for (uint32_t n = 0; n < kGitsBasers; ++n) STRATA_TRY(reg(kGitsBaser + 8 * n));
  STRATA_TRY(DevAttr(its_fd_.get(), true, KVM_DEV_ARM_VGIC_GRP_CTRL,
                     KVM_DEV_ARM_ITS_RESTORE_TABLES, nullptr,
                     "the ITS tables (KVM_DEV_ARM_ITS_RESTORE_TABLES)"));
  return reg(kGitsCtlr);
}

}  // namespace strata::md
