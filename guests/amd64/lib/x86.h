/* Inline helpers for x86 instructions: port I/O, MMIO, CPUID, MSRs, CRs. */
#ifndef STRATA_GUEST_X86_H
#define STRATA_GUEST_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
  __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
  __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/*
 * MMIO accessors. Each is a single mov of the named width so the VMM sees
 * exactly one access of that size (the compiler may not split or merge).
 */
static inline uint8_t mmio_read8(uintptr_t addr) {
  uint8_t v;
  __asm__ volatile("movb %1, %0" : "=q"(v) : "m"(*(volatile uint8_t *)addr));
  return v;
}
static inline uint16_t mmio_read16(uintptr_t addr) {
  uint16_t v;
  __asm__ volatile("movw %1, %0" : "=r"(v) : "m"(*(volatile uint16_t *)addr));
  return v;
}
static inline uint32_t mmio_read32(uintptr_t addr) {
  uint32_t v;
  __asm__ volatile("movl %1, %0" : "=r"(v) : "m"(*(volatile uint32_t *)addr));
  return v;
}
static inline void mmio_write8(uintptr_t addr, uint8_t v) {
  __asm__ volatile("movb %1, %0" : "=m"(*(volatile uint8_t *)addr) : "q"(v));
}
static inline void mmio_write16(uintptr_t addr, uint16_t v) {
  __asm__ volatile("movw %1, %0" : "=m"(*(volatile uint16_t *)addr) : "r"(v));
}
static inline void mmio_write32(uintptr_t addr, uint32_t v) {
  __asm__ volatile("movl %1, %0" : "=m"(*(volatile uint32_t *)addr) : "r"(v));
}

struct cpuid_regs {
  uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf) {
  struct cpuid_regs r;
  __asm__ volatile("cpuid"
                   : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                   : "a"(leaf), "c"(subleaf));
  return r;
}

/* CPUID.01H:EDX feature bits (SDM Vol. 2A, Table 3-11). */
#define CPUID_1_EDX_PSE (1u << 3)
#define CPUID_1_EDX_MSR (1u << 5)
#define CPUID_1_EDX_APIC (1u << 9)
#define CPUID_1_EDX_MMX (1u << 23)
/* CPUID.80000001H:EDX. */
#define CPUID_80000001_EDX_LM (1u << 29)

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

#define MSR_EFER 0xC0000080
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR0_TS (1u << 3)
#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)
#define CR4_PSE (1u << 4)
#define CR4_PAE (1u << 5)

#define DEFINE_CR_ACCESSORS(n)                                   \
  static inline uintptr_t read_cr##n(void) {                     \
    uintptr_t v;                                                 \
    __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));            \
    return v;                                                    \
  }                                                              \
  static inline void write_cr##n(uintptr_t v) {                  \
    __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory");   \
  }
DEFINE_CR_ACCESSORS(0)
DEFINE_CR_ACCESSORS(2)
DEFINE_CR_ACCESSORS(3)
DEFINE_CR_ACCESSORS(4)
#undef DEFINE_CR_ACCESSORS

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* RFLAGS.IF (SDM Vol. 3 §6.8.1). The "memory" clobbers keep the compiler
 * from moving accesses to data an interrupt handler shares across them. */
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }

/*
 * Enables interrupts and halts until one arrives, with no window between
 * the two: STI delays recognition until after the next instruction (SDM
 * Vol. 2B, STI), so an interrupt that became pending before the STI wakes
 * the HLT instead of being taken just before it. Returns with interrupts
 * enabled, after the handler ran. The caller checks its wake condition with
 * interrupts disabled first:
 *     irq_disable(); while (!done) { safe_halt(); irq_disable(); }
 */
static inline void safe_halt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

static inline __attribute__((noreturn)) void halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}

#endif /* STRATA_GUEST_X86_H */
