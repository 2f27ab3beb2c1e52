// Boots tiny ELF32 (Multiboot) and ELF64 kernels loaded by LoadKernel on the
// host's KVM, with exactly the register state BootInfo describes: KVM must
// accept the segment/CR/EFER state and the guest must see EAX = 0x2BADB002,
// EBX = the Multiboot info, and be able to read that info (through the
// identity map in 64-bit mode).
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#include "core/guest_memory_testing.h"
#include "core/unique_fd.h"
#include "arch/amd64/loader/elf_builder_testing.h"
#include "arch/amd64/loader/multiboot.h"

namespace strata::amd64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint16_t kReportPort = 0xf4;

// mov dx, 0xf4; out dx, eax; mov eax, ebx; out dx, eax;
// mov eax, [ebx] (64-bit: [rbx]); out dx, eax; hlt
// The same bytes decode identically in 32- and 64-bit mode.
const std::vector<uint8_t> kReportCode = {0x66, 0xba, 0xf4, 0x00, 0xef, 0x89,
                                          0xd8, 0xef, 0x8b, 0x03, 0xef, 0xf4};

kvm_segment ToKvm(const md::Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

void BootAndCheck(bool is64) {
  UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) {
    std::fprintf(stderr, "SKIPPED: /dev/kvm missing (%s)\n", std::strerror(errno));
    GTEST_SKIP() << "SKIPPED: /dev/kvm missing";
  }
  GuestMemory mem;
  auto seg = GuestMemoryTestPeer::AddSegment(mem, "low", 0, 64 * kMiB);
  ASSERT_TRUE(seg.has_value());
  testing::TestElf t;
  t.is64 = is64;
  t.entry = 0x400000;
  if (!is64) t.multiboot_flags = 0;
  t.segments = {{0x400000, std::nullopt, kReportCode, 0x1000}};
  BootParams p;
  p.cmdline = "boot test";
  auto bi = LoadKernel(testing::BuildElf(t), p, mem);
  ASSERT_TRUE(bi.has_value()) << bi.error().message();

  UniqueFd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
  ASSERT_TRUE(vm.valid()) << std::strerror(errno);
  kvm_userspace_memory_region region{};
  region.guest_phys_addr = (*seg)->gpa;
  region.memory_size = (*seg)->size;
  region.userspace_addr = reinterpret_cast<uint64_t>((*seg)->host);
  ASSERT_EQ(ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region), 0)
      << std::strerror(errno);
  UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  ASSERT_TRUE(vcpu.valid()) << std::strerror(errno);
  const int run_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  ASSERT_GT(run_size, 0);
  void* map = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   vcpu.get(), 0);
  ASSERT_NE(map, MAP_FAILED);
  auto* run = static_cast<kvm_run*>(map);

  kvm_sregs s{};
  ASSERT_EQ(ioctl(vcpu.get(), KVM_GET_SREGS, &s), 0);
  const md::VcpuState& st = bi->sregs;
  s.cs = ToKvm(st.cs);
  s.ds = ToKvm(st.ds);
  s.es = ToKvm(st.es);
  s.fs = ToKvm(st.fs);
  s.gs = ToKvm(st.gs);
  s.ss = ToKvm(st.ss);
  s.tr = ToKvm(st.tr);
  s.ldt = ToKvm(st.ldt);
  s.gdt.base = st.gdt.base;
  s.gdt.limit = st.gdt.limit;
  s.idt.base = st.idt.base;
  s.idt.limit = st.idt.limit;
  s.cr0 = st.cr0;
  s.cr3 = st.cr3;
  s.cr4 = st.cr4;
  s.efer = st.efer;
  s.apic_base = st.apic_base;
  ASSERT_EQ(ioctl(vcpu.get(), KVM_SET_SREGS, &s), 0) << std::strerror(errno);
  kvm_regs r{};
  r.rip = bi->entry;
  r.rax = bi->rax;
  r.rbx = bi->rbx;
  r.rsp = bi->rsp;
  r.rflags = bi->rflags;
  ASSERT_EQ(ioctl(vcpu.get(), KVM_SET_REGS, &r), 0) << std::strerror(errno);

  std::vector<uint32_t> seen;
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(ioctl(vcpu.get(), KVM_RUN, 0), 0) << std::strerror(errno);
    if (run->exit_reason == KVM_EXIT_HLT) break;
    ASSERT_EQ(run->exit_reason, KVM_EXIT_IO)
        << "unexpected exit " << run->exit_reason << " (fail_entry reason "
        << run->fail_entry.hardware_entry_failure_reason << ")";
    ASSERT_EQ(run->io.port, kReportPort);
    uint32_t v;
    std::memcpy(&v, reinterpret_cast<uint8_t*>(run) + run->io.data_offset,
                sizeof(v));
    seen.push_back(v);
  }
  munmap(map, run_size);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], kMultibootBootloaderMagic);
  EXPECT_EQ(seen[1], bi->rbx);
  EXPECT_EQ(seen[2], *mem.ReadObj<uint32_t>(bi->rbx));  // info.flags
  EXPECT_NE(seen[2] & kMbInfoMmap, 0u);
}

TEST(BootOnKvm, ProtectedMode32) { BootAndCheck(false); }
TEST(BootOnKvm, LongMode64) { BootAndCheck(true); }

}  // namespace
}  // namespace strata::amd64
