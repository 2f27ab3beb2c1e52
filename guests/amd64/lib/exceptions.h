/*
 * The runtime IDT: 32 interrupt gates for the architectural exception
 * vectors (32-bit gates in 32-bit guests, 16-byte long-mode gates in 64-bit
 * ones), all entering one common handler; 64-bit guests also get gates for
 * the external-interrupt vectors (set_irq_handler below). A guest may
 * install a hook that claims an exception (e.g. to check it and resume
 * elsewhere); anything unclaimed is printed and ends the guest with exit
 * code 1, so a VMM bug shows as a message rather than a triple fault.
 */
#ifndef STRATA_GUEST_EXCEPTIONS_H
#define STRATA_GUEST_EXCEPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h" /* NUM_EXCEPTION_VECTORS */

#define DE_VECTOR 0
#define DB_VECTOR 1
#define BP_VECTOR 3
#define UD_VECTOR 6
#define GP_VECTOR 13
#define PF_VECTOR 14

/* Page-fault error code bits (SDM Vol. 3 §4.7). */
#define PF_ERR_P (1u << 0)
#define PF_ERR_W (1u << 1)

#if defined(__x86_64__)
/*
 * Layout pushed by the stubs in entry64.S: the GPRs, vector, error code and
 * the frame the CPU pushes in 64-bit mode, which always has RSP and SS
 * (SDM Vol. 3 §6.14.2).
 */
struct exception_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector;
  uint64_t error_code; /* 0 for vectors without one */
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};
#else
/* Layout pushed by the stubs in entry32.S: pushal, vector, error, iret frame. */
struct exception_frame {
  uint32_t edi, esi, ebp, esp_at_pushal, ebx, edx, ecx, eax;
  uint32_t vector;
  uint32_t error_code; /* 0 for vectors without one */
  uint32_t eip;
  uint32_t cs;
  uint32_t eflags;
};
#endif

/* Returns true if it handled the exception (it may change the saved
 * EIP/RIP; in 64-bit guests also the saved RSP). */
typedef bool (*exception_hook_fn)(struct exception_frame *frame);
void set_exception_hook(exception_hook_fn hook);

/* Loads the runtime IDT; the runtime calls it before guest_main. */
void idt_install(void);

#if defined(__x86_64__)
/*
 * External interrupts (64-bit guests): the runtime IDT also has gates for
 * vectors 32-255 (SDM Vol. 3 §6.2: 32-255 are for external interrupts and
 * INT n), each entering the same common handler with the vector in
 * frame->vector, on the current stack (no IST), IF cleared (interrupt
 * gates, §6.12.1.3). A vector without a handler prints "unexpected
 * interrupt: vector N" and ends the guest with exit code 1.
 *
 * The handler runs with interrupts off and returns through IRETQ. It must
 * acknowledge a LAPIC-delivered interrupt itself (lapic_eoi(), lapic.h).
 * Installing NULL removes the handler.
 */
#define NUM_IDT_VECTORS 256
#define FIRST_IRQ_VECTOR NUM_EXCEPTION_VECTORS
typedef void (*irq_handler_fn)(struct exception_frame *frame);
void set_irq_handler(uint8_t vector, irq_handler_fn fn);
#endif

#endif /* STRATA_GUEST_EXCEPTIONS_H */
