/*
 * hello: the smallest end-to-end check of a boot path. Built twice from this
 * file: hello.elf (ELF64, entered in long mode) and hello32.elf (ELF32
 * Multiboot, entered in flat protected mode). Prints a greeting, proof of
 * the CPU mode, and what the loader passed in the Multiboot info; exits
 * through the debug-exit port with 0 (VMM status 1) if the entry state was
 * right, else 1 (VMM status 3).
 */
#include "lib/layout.h"
#include "lib/multiboot.h"
#include "lib/runtime.h"
#include "lib/x86.h"

static bool check_mode(void) {
  uintptr_t cr0 = read_cr0();
#if defined(__x86_64__)
  uint32_t efer = (uint32_t)rdmsr(MSR_EFER);
  bool lma = (efer & EFER_LMA) != 0;
  printf("mode: 64-bit long mode, EFER.LMA=%u (EFER=0x%x CR0=0x%lx CR4=0x%lx)\n",
         lma ? 1u : 0u, efer, (unsigned long)cr0, (unsigned long)read_cr4());
  if (!lma || !(cr0 & CR0_PG)) {
    printf("hello: FAIL: not in long mode with paging on\n");
    return false;
  }
#else
  printf("mode: 32-bit protected mode, CR0.PE=%u CR0.PG=%u (CR0=0x%x)\n",
         (cr0 & CR0_PE) ? 1u : 0u, (cr0 & CR0_PG) ? 1u : 0u, (uint32_t)cr0);
  /* EFER exists only on CPUs with long mode (or NX/SYSCALL). */
  if (cpuid(0x80000000, 0).eax >= 0x80000001 &&
      (cpuid(0x80000001, 0).edx & CPUID_80000001_EDX_LM)) {
    uint32_t efer = (uint32_t)rdmsr(MSR_EFER);
    printf("efer: 0x%x, LMA=%u\n", efer, (efer & EFER_LMA) ? 1u : 0u);
  }
  if (!(cr0 & CR0_PE) || (cr0 & CR0_PG)) {
    printf("hello: FAIL: Multiboot entry needs CR0.PE=1 and CR0.PG=0\n");
    return false;
  }
#endif
  return true;
}

static void print_boot_info(const struct multiboot_info *mbi) {
  if (mbi->flags & MB_INFO_CMDLINE) {
    printf("cmdline: %s\n", (const char *)mb_phys(mbi->cmdline));
  } else {
    printf("cmdline: (none)\n");
  }
  if (mbi->flags & MB_INFO_MEMORY) {
    printf("memory: lower %u KiB, upper %u KiB\n", mbi->mem_lower, mbi->mem_upper);
  }
  if (mbi->flags & MB_INFO_MEM_MAP) {
    uint32_t addr = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
    while (addr < end) {
      const struct multiboot_mmap_entry *e = mb_phys(addr);
      printf("mmap: 0x%llx-0x%llx type %u\n", (unsigned long long)e->base_addr,
             (unsigned long long)(e->base_addr + e->length - 1), e->type);
      addr += e->size + 4;
    }
  }
  if (mbi->flags & MB_INFO_MODS) {
    printf("modules: %u\n", mbi->mods_count);
    const struct multiboot_module *mods = mb_phys(mbi->mods_addr);
    for (uint32_t i = 0; i < mbi->mods_count; ++i) {
      printf("module %u: 0x%x-0x%x (%u bytes)\n", i, mods[i].mod_start, mods[i].mod_end,
             mods[i].mod_end - mods[i].mod_start);
    }
  }
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  printf("hello from strata guest\n");
  bool ok = check_mode();
  if (mb_magic != MB_BOOT_MAGIC) {
    printf("hello: FAIL: boot magic 0x%x, expected 0x%x\n", mb_magic, MB_BOOT_MAGIC);
    return 1;
  }
  print_boot_info(mbi);
  printf("hello: %s\n", ok ? "done" : "FAILED");
  return ok ? 0 : 1;
}
