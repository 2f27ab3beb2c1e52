/*
 * exceptions: the runtime's GDT and IDT (32-bit interrupt gates) must see
 * #DE, #BP, #UD, #GP and #PF with the architectural vector, error code,
 * saved EIP (faults: the faulting instruction; traps: the next one) and, for
 * #PF, CR2 (SDM Vol. 3 §6.15). Each check arms a recovery address that the
 * hook resumes at. The #PF checks enable paging with 4 MiB (PSE) pages:
 *   0-8 MiB   identity, writable (the image, bss and stacks are here)
 *   8-12 MiB  not present
 *   12-16 MiB identity, read-only, with CR0.WP set
 *
 * On a host that instruction-emulates supervisor code (the paravirtual KVM
 * of the development machines; see host_emulates_supervisor_code()) two
 * groups cannot run and are reported as SKIP with the reason: #BP (KVM's
 * emulator has no protected-mode INT3; a VM that tries stops with an
 * emulation failure, so "force-int3" on the command line is needed to try)
 * and #PF (setting CR0.PG outside long mode raises #GP there, which is
 * caught). Elsewhere both are ordinary checks.
 *
 * One "PASS:"/"FAIL:"/"SKIP:" line per check, then "SUMMARY: ..."; exit code
 * 0 if nothing failed, else 1.
 */
#include "lib/exceptions.h"
#include "lib/runtime.h"
#include "lib/x86.h"

/* Nonzero while a check expects an exception: where to resume. */
static volatile uint32_t fixup_eip;

static volatile struct {
  bool seen;
  uint32_t vector;
  uint32_t error_code;
  uint32_t eip;
  uint32_t cr2;
} hit;

static bool on_exception(struct exception_frame *frame) {
  if (fixup_eip == 0) return false;
  hit.seen = true;
  hit.vector = frame->vector;
  hit.error_code = frame->error_code;
  hit.eip = frame->eip;
  hit.cr2 = (uint32_t)read_cr2();
  frame->eip = fixup_eip;
  fixup_eip = 0;
  return true;
}

static void arm(void) {
  hit.seen = false;
  hit.vector = hit.error_code = hit.eip = hit.cr2 = 0xFFFFFFFF;
}

/* Checks vector, saved EIP and error code; prints what arrived on failure. */
static void check(const char *what, uint32_t vector, uint32_t eip, uint32_t error_code) {
  bool ok = hit.seen && hit.vector == vector && hit.eip == eip && hit.error_code == error_code;
  if (ok) {
    report(true, "%s", what);
  } else if (!hit.seen) {
    report(false, "%s (no exception)", what);
  } else {
    report(false, "%s (got vector %u error 0x%x eip 0x%x, expected vector %u error 0x%x eip 0x%x)",
           what, hit.vector, hit.error_code, hit.eip, vector, error_code, eip);
  }
  fixup_eip = 0;
}

/*
 * In each trigger, label 1 is the instruction under test and label 2 the
 * recovery point; the asm stores both addresses first. The handler restores
 * every GPR, so only the registers named as clobbers change.
 */
static void test_divide_error(void) {
  uint32_t at;
  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n\t"
      "xorl %%edx, %%edx\n\t"
      "movl $1, %%eax\n\t"
      "xorl %%ecx, %%ecx\n"
      "1:\tdivl %%ecx\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at)
      :
      : "eax", "ecx", "edx", "memory");
  check("#DE: divl by zero faults at the divl", DE_VECTOR, at, 0);
}

static void test_breakpoint(bool run) {
  if (!run) {
    report_skip("#BP: int3 traps with eip after the int3 (this host instruction-emulates "
                "supervisor code and KVM's emulator has no protected-mode INT3; "
                "\"force-int3\" on the command line runs it anyway)");
    return;
  }
  uint32_t after;
  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $2f, %[after]\n"
      "1:\tint3\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [after] "=&r"(after)
      :
      : "memory");
  check("#BP: int3 traps with eip after the int3", BP_VECTOR, after, 0);
}

static void test_invalid_opcode(void) {
  uint32_t at;
  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n"
      "1:\tud2\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at)
      :
      : "memory");
  check("#UD: ud2 faults at the ud2", UD_VECTOR, at, 0);
}

static void test_general_protection(void) {
  struct {
    uint16_t limit;
    uint32_t base;
  } __attribute__((packed)) gdtr;
  __asm__ volatile("sgdt %0" : "=m"(gdtr));
  /* The first selector whose descriptor lies past the GDT limit. */
  uint32_t selector = ((uint32_t)gdtr.limit + 1 + 7) & ~7u;
  uint32_t at;
  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n"
      "1:\tmov %[sel], %%ds\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at)
      : [sel] "r"(selector)
      : "memory");
  if (hit.seen && hit.vector == GP_VECTOR && hit.error_code != selector) {
    report(false, "#GP: DS load of selector 0x%x (GDT limit 0x%x): error code 0x%x", selector,
           gdtr.limit, hit.error_code);
    return;
  }
  check("#GP: DS load of a selector beyond the GDT limit, error code = selector", GP_VECTOR,
        at, selector);
}

/* Page directory entry bits for 4 MiB pages (SDM Vol. 3 §4.3, Table 4-4). */
#define PDE_P (1u << 0)
#define PDE_RW (1u << 1)
#define PDE_PS (1u << 7)
#define LARGE_PAGE (4u << 20)

#define UNMAPPED_READ_ADDR 0x00800123u
#define UNMAPPED_WRITE_ADDR 0x00800456u
#define READ_ONLY_ADDR 0x00C00010u

static uint32_t page_dir[1024] __attribute__((aligned(4096)));

/*
 * Returns false if setting CR0.PG raised an exception (then paging is off
 * and CR3/CR4 are restored). The paravirtual KVM of the development hosts
 * allows paging only in long mode and answers #GP here.
 */
static bool paging_on(void) {
  page_dir[0] = 0 * LARGE_PAGE | PDE_P | PDE_RW | PDE_PS;
  page_dir[1] = 1 * LARGE_PAGE | PDE_P | PDE_RW | PDE_PS;
  page_dir[3] = 3 * LARGE_PAGE | PDE_P | PDE_PS; /* read-only */
  uintptr_t cr4 = read_cr4();
  write_cr3((uintptr_t)page_dir);
  write_cr4(cr4 | CR4_PSE);
  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "mov %[cr0], %%cr0\n"
      "2:\n"
      : [fix] "=m"(fixup_eip)
      : [cr0] "r"(read_cr0() | CR0_PG | CR0_WP)
      : "memory");
  fixup_eip = 0;
  if (hit.seen) {
    write_cr4(cr4);
    write_cr3(0);
    return false;
  }
  return true;
}

static void paging_off(void) {
  write_cr0(read_cr0() & ~(uintptr_t)(CR0_PG | CR0_WP));
  write_cr4(read_cr4() & ~(uintptr_t)CR4_PSE);
  write_cr3(0);
}

static void check_page_fault(const char *what, uint32_t at, uint32_t addr, uint32_t error_code) {
  if (hit.seen && hit.vector == PF_VECTOR && hit.cr2 != addr) {
    report(false, "%s (cr2 0x%x, expected 0x%x)", what, hit.cr2, addr);
    fixup_eip = 0;
    return;
  }
  check(what, PF_VECTOR, at, error_code);
}

static void test_page_faults(bool emulating_host) {
  static const char *const checks[] = {
      "#PF: read of a not-present page, error code 0x0, cr2 = address",
      "#PF: write to a not-present page, error code 0x2, cr2 = address",
      "#PF: write to a read-only page with CR0.WP, error code 0x3",
      "#PF: read of a read-only page does not fault",
  };
  enum { kNumChecks = sizeof(checks) / sizeof(checks[0]) };
  if (!(cpuid(1, 0).edx & CPUID_1_EDX_PSE)) {
    for (int i = 0; i < kNumChecks; ++i) report_skip("%s (no PSE)", checks[i]);
    return;
  }
  if (!paging_on()) {
    for (int i = 0; i < kNumChecks; ++i) {
      if (emulating_host) {
        report_skip("%s (this host instruction-emulates supervisor code and allows paging "
                    "only in long mode: setting CR0.PG raised #GP)",
                    checks[i]);
      } else {
        report(false, "%s (setting CR0.PG raised vector %u error 0x%x)", checks[i], hit.vector,
               hit.error_code);
      }
    }
    return;
  }
  uint32_t at, value;

  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n"
      "1:\tmovl (%[addr]), %[val]\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at), [val] "=&r"(value)
      : [addr] "r"(UNMAPPED_READ_ADDR)
      : "memory");
  check_page_fault(checks[0], at, UNMAPPED_READ_ADDR, 0);

  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n"
      "1:\tmovl %[addr], (%[addr])\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at)
      : [addr] "r"(UNMAPPED_WRITE_ADDR)
      : "memory");
  check_page_fault(checks[1], at, UNMAPPED_WRITE_ADDR, PF_ERR_W);

  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl $1f, %[at]\n"
      "1:\tmovl %[addr], (%[addr])\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [at] "=&r"(at)
      : [addr] "r"(READ_ONLY_ADDR)
      : "memory");
  check_page_fault(checks[2], at, READ_ONLY_ADDR, PF_ERR_P | PF_ERR_W);

  arm();
  __asm__ volatile(
      "movl $2f, %[fix]\n\t"
      "movl (%[addr]), %[val]\n"
      "2:\n"
      : [fix] "=m"(fixup_eip), [val] "=&r"(value)
      : [addr] "r"(READ_ONLY_ADDR)
      : "memory");
  fixup_eip = 0;
  if (hit.seen) {
    report(false, "%s (got vector %u error 0x%x)", checks[3], hit.vector, hit.error_code);
  } else {
    report(true, "%s", checks[3]);
  }

  paging_off();
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  bool emulating_host = host_emulates_supervisor_code();
  bool run_int3 = str_has_word(cmdline, "force-int3") || !emulating_host;
  set_exception_hook(on_exception);
  test_divide_error();
  test_breakpoint(run_int3);
  test_invalid_opcode();
  test_general_protection();
  test_page_faults(emulating_host);
  set_exception_hook(NULL);
  return report_summary();
}
