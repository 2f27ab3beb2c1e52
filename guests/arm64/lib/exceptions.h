/*
 * The EL1 vector table (Arm ARM D1.10.2): IRQs from the current EL with
 * SP_ELx go to the handler installed with set_irq_handler(); any other
 * exception prints ESR_EL1/FAR_EL1/ELR_EL1 and ends the guest with a
 * failure status.
 */
#ifndef STRATA_GUEST_ARM64_EXCEPTIONS_H
#define STRATA_GUEST_ARM64_EXCEPTIONS_H

#include <stdint.h>

struct exception_frame {
  uint64_t x[31];
  uint64_t elr, spsr, esr, far;
};

/* Loads VBAR_EL1 with the runtime's vector table (each CPU). */
void vectors_install(void);

/* Called for every IRQ taken at EL1h; NULL: IRQs are unexpected. */
typedef void (*irq_handler_t)(struct exception_frame *frame);
void set_irq_handler(irq_handler_t handler);

#endif /* STRATA_GUEST_ARM64_EXCEPTIONS_H */
