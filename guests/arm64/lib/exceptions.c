/*
 * Exception dispatch for entry.S's vector table. Vector n: 0-3 current EL
 * with SP_EL0, 4-7 current EL with SP_ELx, 8-11 lower EL AArch64, 12-15
 * lower EL AArch32; within each group sync, IRQ, FIQ, SError (Arm ARM
 * D1.10.2). Only vector 5 (IRQ at EL1h) is ever expected.
 */
#include "exceptions.h"

#include "arm64.h"
#include "runtime.h"
#include "smp.h"

#define VECTOR_EL1H_IRQ 5
/* The exit code an unexpected exception ends the guest with. */
#define EXIT_UNEXPECTED_EXCEPTION 1

extern const char vector_table[];
void exception_dispatch(uint64_t vector, struct exception_frame *frame);

static volatile irq_handler_t irq_handler;
static volatile uint32_t in_fatal_exception;

void vectors_install(void) {
  write_sysreg(vbar_el1, (uintptr_t)vector_table);
  isb();
}

void set_irq_handler(irq_handler_t handler) { irq_handler = handler; }

static const char *vector_name(uint64_t v) {
  static const char *const kinds[] = {"sync", "IRQ", "FIQ", "SError"};
  static const char *const from[] = {"EL1t", "EL1h", "EL0 AArch64", "EL0 AArch32"};
  static char buf[32];
  /* Not reentrant, but only the fatal path below uses it. */
  const char *a = from[(v >> 2) & 3], *b = kinds[v & 3];
  size_t n = 0;
  while (*a && n < sizeof(buf) - 1) buf[n++] = *a++;
  if (n < sizeof(buf) - 1) buf[n++] = ' ';
  while (*b && n < sizeof(buf) - 1) buf[n++] = *b++;
  buf[n] = '\0';
  return buf;
}

/* ESR_ELx.EC (Arm ARM D17.2.37), the classes a test guest may meet. */
static const char *ec_name(uint32_t ec) {
  switch (ec) {
    case 0x00: return "unknown reason";
    case 0x01: return "WFI/WFE trap";
    case 0x0e: return "illegal execution state";
    case 0x15: return "SVC (AArch64)";
    case 0x16: return "HVC (AArch64)";
    case 0x17: return "SMC (AArch64)";
    case 0x18: return "MSR/MRS trap";
    case 0x20: return "instruction abort, lower EL";
    case 0x21: return "instruction abort, same EL";
    case 0x22: return "PC alignment fault";
    case 0x24: return "data abort, lower EL";
    case 0x25: return "data abort, same EL";
    case 0x26: return "SP alignment fault";
    case 0x2f: return "SError";
    case 0x3c: return "BRK";
    default: return "other";
  }
}

void exception_dispatch(uint64_t vector, struct exception_frame *frame) {
  if (vector == VECTOR_EL1H_IRQ && irq_handler != NULL) {
    irq_handler(frame);
    return;
  }
  if (__atomic_exchange_n(&in_fatal_exception, 1u, __ATOMIC_ACQ_REL) != 0) {
    /* A second fatal exception (maybe while printing the first, maybe on
     * another CPU): the first one is already ending the guest. */
    halt_forever();
  }
  uint32_t ec = (uint32_t)(frame->esr >> 26) & 0x3f;
  printf("unexpected exception: %s on cpu %u (mpidr 0x%lx): ESR 0x%lx (EC 0x%x, %s) "
         "FAR 0x%lx ELR 0x%lx SPSR 0x%lx\n",
         vector_name(vector), smp_cpu_index(), (unsigned long)read_mpidr(),
         (unsigned long)frame->esr, ec, ec_name(ec), (unsigned long)frame->far,
         (unsigned long)frame->elr, (unsigned long)frame->spsr);
  guest_exit(EXIT_UNEXPECTED_EXCEPTION);
}
