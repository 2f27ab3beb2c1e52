/*
 * exceptions64: the long-mode counterpart of `exceptions`. The runtime IDT
 * (16-byte 64-bit interrupt gates, SDM Vol. 3 §6.14.1) with the VMM's GDT
 * and identity page tables must see #DE, #BP, #UD, #GP and #PF with the
 * architectural vector, error code, saved RIP (faults: the faulting
 * instruction; traps: the next one), saved CS and RSP (always pushed in
 * 64-bit mode, §6.14.2) and, for #PF, CR2 (§6.15). Each check arms a
 * recovery address that the hook resumes at.
 *
 * The not-present #PF checks use the VMM's page tables as they are: they map
 * only [0, 4 GiB), so 4 GiB + 4 KiB is unmapped. The read-only checks switch
 * to a copy of them in which the 2 MiB page holding `ro_page` is split into
 * 4 KiB pages, `ro_page` read-only, and set CR0.WP; both are undone after.
 *
 * The speculation-control MSRs (IA32_SPEC_CTRL, IA32_PRED_CMD,
 * IA32_FLUSH_CMD) must #GP exactly when CPUID does not enumerate them
 * (SPEC_CTRL/FLUSH_L1D in leaf 7, AMD's IBRS/STIBP/SSBD/IBPB in 0x8000_0008),
 * as on hardware: the VMM filters them where the host KVM does not.
 *
 * On a host that instruction-emulates supervisor code (the paravirtual KVM
 * of the development machines; see host_emulates_supervisor_code()) #BP is
 * reported as SKIP with the reason: KVM's emulator has no INT3 outside real
 * mode, and a VM that tries stops with an emulation failure ("force-int3" on
 * the command line tries anyway). Elsewhere it is an ordinary check.
 *
 * One "PASS:"/"FAIL:"/"SKIP:" line per check, then "SUMMARY: ..."; exit code
 * 0 if nothing failed, else 1.
 */
#include "lib/exceptions.h"
#include "lib/runtime.h"
#include "lib/x86.h"

/* Nonzero while a check expects an exception: where to resume. */
static volatile uint64_t fixup_rip;

static volatile struct {
  bool seen;
  uint64_t vector;
  uint64_t error_code;
  uint64_t rip;
  uint64_t cs;
  uint64_t rsp;
  uint64_t cr2;
} hit;

static uint16_t kernel_cs;

static bool on_exception(struct exception_frame *frame) {
  if (fixup_rip == 0) return false;
  hit.seen = true;
  hit.vector = frame->vector;
  hit.error_code = frame->error_code;
  hit.rip = frame->rip;
  hit.cs = frame->cs;
  hit.rsp = frame->rsp;
  hit.cr2 = read_cr2();
  frame->rip = fixup_rip;
  fixup_rip = 0;
  return true;
}

static void arm(void) {
  hit.seen = false;
  hit.vector = hit.error_code = hit.rip = hit.cs = hit.rsp = hit.cr2 = ~0ull;
}

/* The state a check expects the handler to have recorded. */
struct expect {
  uint64_t vector, rip, rsp, error_code;
};

/* Checks vector, saved RIP/CS/RSP and error code; prints what arrived on
 * failure. */
static void check(const char *what, struct expect e) {
  bool ok = hit.seen && hit.vector == e.vector && hit.rip == e.rip && hit.cs == kernel_cs &&
            hit.rsp == e.rsp && hit.error_code == e.error_code;
  if (ok) {
    report(true, "%s", what);
  } else if (!hit.seen) {
    report(false, "%s (no exception)", what);
  } else {
    report(false,
           "%s (got vector %lu error 0x%lx rip 0x%lx cs 0x%lx rsp 0x%lx, expected vector %lu "
           "error 0x%lx rip 0x%lx cs 0x%x rsp 0x%lx)",
           what, (unsigned long)hit.vector, (unsigned long)hit.error_code,
           (unsigned long)hit.rip, (unsigned long)hit.cs, (unsigned long)hit.rsp,
           (unsigned long)e.vector, (unsigned long)e.error_code, (unsigned long)e.rip,
           kernel_cs, (unsigned long)e.rsp);
  }
  fixup_rip = 0;
}

/*
 * In each trigger, label 1 is the instruction under test and label 2 the
 * recovery point; the asm stores both addresses and RSP first. The handler
 * restores every GPR, so only the registers named as clobbers change.
 */
static void test_divide_error(void) {
  uint64_t at, sp;
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $1f, %[at]\n\t"
      "movq %%rsp, %[sp]\n\t"
      "xorl %%edx, %%edx\n\t"
      "movl $1, %%eax\n\t"
      "xorl %%ecx, %%ecx\n"
      "1:\tdivl %%ecx\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [at] "=&r"(at), [sp] "=&r"(sp)
      :
      : "eax", "ecx", "edx", "memory");
  check("#DE: divl by zero faults at the divl", (struct expect){DE_VECTOR, at, sp, 0});
}

static void test_breakpoint(bool run) {
  if (!run) {
    report_skip("#BP: int3 traps with rip after the int3 (this host instruction-emulates "
                "supervisor code and KVM's emulator has no long-mode INT3; "
                "\"force-int3\" on the command line runs it anyway)");
    return;
  }
  uint64_t after, sp;
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $2f, %[after]\n\t"
      "movq %%rsp, %[sp]\n"
      "1:\tint3\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [after] "=&r"(after), [sp] "=&r"(sp)
      :
      : "memory");
  check("#BP: int3 traps with rip after the int3", (struct expect){BP_VECTOR, after, sp, 0});
}

static void test_invalid_opcode(void) {
  uint64_t at, sp;
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $1f, %[at]\n\t"
      "movq %%rsp, %[sp]\n"
      "1:\tud2\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [at] "=&r"(at), [sp] "=&r"(sp)
      :
      : "memory");
  check("#UD: ud2 faults at the ud2", (struct expect){UD_VECTOR, at, sp, 0});
}

/* A load / store that is expected to fault: arms the handler, records the
 * instruction's address and the RSP at it, and resumes after it. */
static void faulting_load(uint64_t addr, uint64_t *at, uint64_t *sp) {
  uint64_t value;
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $1f, %[at]\n\t"
      "movq %%rsp, %[sp]\n"
      "1:\tmovq (%[addr]), %[val]\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [at] "=&r"(*at), [sp] "=&r"(*sp), [val] "=&r"(value)
      : [addr] "r"(addr)
      : "memory");
}

static void faulting_store(uint64_t addr, uint64_t *at, uint64_t *sp) {
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $1f, %[at]\n\t"
      "movq %%rsp, %[sp]\n"
      "1:\tmovq %[addr], (%[addr])\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [at] "=&r"(*at), [sp] "=&r"(*sp)
      : [addr] "r"(addr)
      : "memory");
}

/* The lowest non-canonical address with 48-bit linear addresses. */
#define NON_CANONICAL_ADDR 0x0000800000000000ull

static void test_general_protection(void) {
  uint64_t at, sp;
  faulting_load(NON_CANONICAL_ADDR, &at, &sp);
  check("#GP: read of a non-canonical address, error code 0",
        (struct expect){GP_VECTOR, at, sp, 0});

  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) gdtr;
  __asm__ volatile("sgdt %0" : "=m"(gdtr));
  /* The first selector whose descriptor lies past the GDT limit. */
  uint64_t selector = ((uint64_t)gdtr.limit + 1 + 7) & ~7ull;
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq $1f, %[at]\n\t"
      "movq %%rsp, %[sp]\n"
      "1:\tmov %k[sel], %%ds\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [at] "=&r"(at), [sp] "=&r"(sp)
      : [sel] "r"(selector)
      : "memory");
  check("#GP: DS load of a selector beyond the GDT limit, error code = selector",
        (struct expect){GP_VECTOR, at, sp, selector});
}

/* Accesses `msr` (a write of 0, or a read) and checks for #GP exactly when
 * `enumerated` is false. */
static void msr_check(const char *what, uint32_t msr, bool write, bool enumerated) {
  uint64_t at, sp;
  arm();
  if (write) {
    __asm__ volatile(
        "movq $2f, %[fix]\n\t"
        "movq $1f, %[at]\n\t"
        "movq %%rsp, %[sp]\n"
        "1:\twrmsr\n"
        "2:\n"
        : [fix] "=m"(fixup_rip), [at] "=&r"(at), [sp] "=&r"(sp)
        : "c"(msr), "a"(0), "d"(0)
        : "memory");
  } else {
    uint32_t lo, hi;
    __asm__ volatile(
        "movq $2f, %[fix]\n\t"
        "movq $1f, %[at]\n\t"
        "movq %%rsp, %[sp]\n"
        "1:\trdmsr\n"
        "2:\n"
        : [fix] "=m"(fixup_rip), [at] "=&r"(at), [sp] "=&r"(sp), "=a"(lo), "=d"(hi)
        : "c"(msr)
        : "memory");
  }
  if (!enumerated) {
    check(what, (struct expect){GP_VECTOR, at, sp, 0});
    return;
  }
  fixup_rip = 0;
  report(!hit.seen, "%s (enumerated: no fault%s)", what, hit.seen ? ", but it faulted" : "");
}

static void test_speculation_msrs(void) {
  bool spec_ctrl = false, flush_l1d = false, amd_ibpb = false, amd_ibrs_stibp_ssbd = false;
  if (cpuid(0, 0).eax >= 7) {
    uint32_t edx = cpuid(7, 0).edx;
    spec_ctrl = edx & (1u << 26);
    flush_l1d = edx & (1u << 28);
  }
  if (cpuid(0x80000000, 0).eax >= 0x80000008) {
    uint32_t ebx = cpuid(0x80000008, 0).ebx;
    amd_ibpb = ebx & (1u << 12);
    amd_ibrs_stibp_ssbd = ebx & ((1u << 14) | (1u << 15) | (1u << 24));
  }
  msr_check("MSR: RDMSR(IA32_SPEC_CTRL) #GP iff CPUID does not enumerate it", 0x48, false,
            spec_ctrl || amd_ibrs_stibp_ssbd);
  msr_check("MSR: WRMSR(IA32_SPEC_CTRL, 0) #GP iff CPUID does not enumerate it", 0x48, true,
            spec_ctrl || amd_ibrs_stibp_ssbd);
  msr_check("MSR: WRMSR(IA32_PRED_CMD, 0) #GP iff CPUID does not enumerate it", 0x49, true,
            spec_ctrl || amd_ibpb);
  msr_check("MSR: WRMSR(IA32_FLUSH_CMD, 0) #GP iff CPUID does not enumerate it", 0x10b, true,
            flush_l1d);
}

/* 4-level paging entries (SDM Vol. 3 §4.5, Tables 4-15 to 4-19). */
#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000FFFFFFFFFF000ull
#define PAGE_2M (1ull << 21)

#define UNMAPPED_READ_ADDR 0x100001000ull  /* 4 GiB + 4 KiB: past the identity map */
#define UNMAPPED_WRITE_ADDR 0x100002008ull

static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint64_t pt[512] __attribute__((aligned(4096)));
static volatile uint64_t ro_page[512] __attribute__((aligned(4096)));

static const char *const ro_checks[] = {
    "#PF: write to a read-only page with CR0.WP=0 does not fault",
    "#PF: write to a read-only 4 KiB page with CR0.WP=1, error code 0x3, cr2 = address",
    "#PF: read of a read-only page does not fault",
};
enum { kNumRoChecks = sizeof(ro_checks) / sizeof(ro_checks[0]) };

static void copy_table(uint64_t *dst, const uint64_t *src) {
  for (int i = 0; i < 512; ++i) ((volatile uint64_t *)dst)[i] = src[i];
}

/*
 * Builds the copy of the VMM's tables described at the top: our PML4, PDPT
 * and first PD, and a PT for the 2 MiB page holding ro_page. Returns false
 * (after printing why) if the VMM's tables are not the expected 2 MiB
 * identity map of the first GiB.
 */
static bool build_page_tables(uintptr_t vmm_cr3) {
  const uint64_t *vmm_pml4 = (const uint64_t *)(vmm_cr3 & PTE_ADDR);
  if (!(vmm_pml4[0] & PTE_P)) return false;
  const uint64_t *vmm_pdpt = (const uint64_t *)(vmm_pml4[0] & PTE_ADDR);
  if ((vmm_pdpt[0] & (PTE_P | PTE_PS)) != PTE_P) return false;
  const uint64_t *vmm_pd = (const uint64_t *)(vmm_pdpt[0] & PTE_ADDR);
  uintptr_t page = (uintptr_t)ro_page;
  unsigned pdi = (unsigned)(page >> 21) & 511;
  uint64_t pde = vmm_pd[pdi];
  if ((pde & (PTE_P | PTE_W | PTE_PS)) != (PTE_P | PTE_W | PTE_PS) ||
      (pde & PTE_ADDR) != (page & ~(PAGE_2M - 1))) {
    return false;
  }
  copy_table(pml4, vmm_pml4);
  copy_table(pdpt, vmm_pdpt);
  copy_table(pd, vmm_pd);
  uint64_t base = page & ~(PAGE_2M - 1);
  for (unsigned i = 0; i < 512; ++i) pt[i] = (base + i * 4096ull) | PTE_P | PTE_W;
  pt[(page >> 12) & 511] &= ~PTE_W;
  pd[pdi] = (uintptr_t)pt | PTE_P | PTE_W;
  pdpt[0] = (uintptr_t)pd | PTE_P | PTE_W;
  pml4[0] = (uintptr_t)pdpt | PTE_P | PTE_W;
  return true;
}

static void check_page_fault(const char *what, uint64_t at, uint64_t sp, uint64_t addr,
                             uint64_t error_code) {
  if (hit.seen && hit.vector == PF_VECTOR && hit.cr2 != addr) {
    report(false, "%s (cr2 0x%lx, expected 0x%lx)", what, (unsigned long)hit.cr2,
           (unsigned long)addr);
    fixup_rip = 0;
    return;
  }
  check(what, (struct expect){PF_VECTOR, at, sp, error_code});
}

/* A write of `value` to `addr` that must not fault. */
static void check_no_fault_write(const char *what, volatile uint64_t *addr, uint64_t value) {
  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq %[val], (%[addr])\n"
      "2:\n"
      : [fix] "=m"(fixup_rip)
      : [addr] "r"(addr), [val] "r"(value)
      : "memory");
  fixup_rip = 0;
  if (hit.seen) {
    report(false, "%s (got vector %lu error 0x%lx cr2 0x%lx)", what, (unsigned long)hit.vector,
           (unsigned long)hit.error_code, (unsigned long)hit.cr2);
  } else {
    report(*addr == value, "%s", what);
  }
}

static void test_page_faults(void) {
  uint64_t at, sp, value;

  faulting_load(UNMAPPED_READ_ADDR, &at, &sp);
  check_page_fault("#PF: read of an unmapped address above 4 GiB, error code 0x0, cr2 = address",
                   at, sp, UNMAPPED_READ_ADDR, 0);

  faulting_store(UNMAPPED_WRITE_ADDR, &at, &sp);
  check_page_fault("#PF: write to an unmapped address above 4 GiB, error code 0x2, cr2 = address",
                   at, sp, UNMAPPED_WRITE_ADDR, PF_ERR_W);

  uintptr_t vmm_cr3 = read_cr3(), cr0 = read_cr0();
  if (!build_page_tables(vmm_cr3)) {
    for (int i = 0; i < kNumRoChecks; ++i) {
      report(false, "%s (the VMM's page tables are not a 2 MiB identity map)", ro_checks[i]);
    }
    return;
  }
  write_cr3((uintptr_t)pml4);
  write_cr0(cr0 & ~(uintptr_t)CR0_WP);
  check_no_fault_write(ro_checks[0], &ro_page[1], 0x5A5A5A5A5A5A5A5Aull);

  write_cr0(cr0 | CR0_WP);
  volatile uint64_t *target = &ro_page[2];
  faulting_store((uintptr_t)target, &at, &sp);
  check_page_fault(ro_checks[1], at, sp, (uintptr_t)target, PF_ERR_P | PF_ERR_W);

  arm();
  __asm__ volatile(
      "movq $2f, %[fix]\n\t"
      "movq (%[addr]), %[val]\n"
      "2:\n"
      : [fix] "=m"(fixup_rip), [val] "=&r"(value)
      : [addr] "r"(&ro_page[1])
      : "memory");
  fixup_rip = 0;
  if (hit.seen) {
    report(false, "%s (got vector %lu error 0x%lx)", ro_checks[2], (unsigned long)hit.vector,
           (unsigned long)hit.error_code);
  } else {
    report(value == 0x5A5A5A5A5A5A5A5Aull && *target == 0, "%s", ro_checks[2]);
  }

  write_cr0(cr0);
  write_cr3(vmm_cr3);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  bool emulating_host = host_emulates_supervisor_code();
  bool run_int3 = str_has_word(cmdline, "force-int3") || !emulating_host;
  __asm__ volatile("mov %%cs, %0" : "=r"(kernel_cs));
  set_exception_hook(on_exception);
  test_divide_error();
  test_breakpoint(run_int3);
  test_invalid_opcode();
  test_general_protection();
  test_speculation_msrs();
  test_page_faults();
  set_exception_hook(NULL);
  return report_summary();
}
