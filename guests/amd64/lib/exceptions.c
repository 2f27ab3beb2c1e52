/* The runtime IDT and the common exception handler (32- and 64-bit guests). */
#include "exceptions.h"

#include "layout.h"
#include "runtime.h"
#include "x86.h"

#if defined(__x86_64__)
/* 64-bit interrupt gate (SDM Vol. 3 §6.14.1, Figure 6-8): 16 bytes. */
struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist; /* bits 2:0; 0 = no stack switch */
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "long-mode gates are 16 bytes");

/* Present, DPL 0, type 0xE: 64-bit interrupt gate; IF is cleared on entry. */
#define IDT_INTERRUPT_GATE 0x8E
#else
struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t zero;
  uint8_t type_attr;
  uint16_t offset_hi;
} __attribute__((packed));

/* Present, DPL 0, 32-bit interrupt gate (SDM Vol. 3 §6.11, Figure 6-2):
 * IF is cleared on entry. */
#define IDT_INTERRUPT_GATE 0x8E
#endif

#if defined(__x86_64__)
static struct idt_gate idt[NUM_IDT_VECTORS] __attribute__((aligned(16)));
#else
static struct idt_gate idt[NUM_EXCEPTION_VECTORS] __attribute__((aligned(16)));
#endif

/* Also loaded by each AP in entry32.S. */
struct {
  uint16_t limit;
  uintptr_t base;
} __attribute__((packed)) idt_descr;

extern const uintptr_t isr_stub_table[NUM_EXCEPTION_VECTORS];

static exception_hook_fn exception_hook;

#if defined(__x86_64__)
/* entry64.S: one 16-byte stub per vector from FIRST_IRQ_VECTOR on. */
extern const char irq_stubs[];
#define IRQ_STUB_SIZE 16

static irq_handler_fn irq_handlers[NUM_IDT_VECTORS - FIRST_IRQ_VECTOR];

void set_irq_handler(uint8_t vector, irq_handler_fn fn) {
  if (vector < FIRST_IRQ_VECTOR) {
    printf("set_irq_handler: vector %u is an exception vector\n", vector);
    guest_exit(1);
  }
  irq_handlers[vector - FIRST_IRQ_VECTOR] = fn;
}
#endif

void set_exception_hook(exception_hook_fn hook) { exception_hook = hook; }

void idt_install(void) {
#if defined(__x86_64__)
  /* 64-bit guests keep the VMM's GDT: the gates use whatever CS we run on. */
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
#else
  const uint16_t cs = KERNEL_CS;
#endif
  for (int v = 0; v < (int)(sizeof(idt) / sizeof(idt[0])); ++v) {
#if defined(__x86_64__)
    uintptr_t handler = v < FIRST_IRQ_VECTOR
                            ? isr_stub_table[v]
                            : (uintptr_t)irq_stubs + (uintptr_t)(v - FIRST_IRQ_VECTOR) * IRQ_STUB_SIZE;
#else
    uintptr_t handler = isr_stub_table[v];
#endif
    idt[v] = (struct idt_gate){
        .offset_lo = (uint16_t)handler,
        .selector = cs,
        .type_attr = IDT_INTERRUPT_GATE,
#if defined(__x86_64__)
        .offset_mid = (uint16_t)(handler >> 16),
        .offset_hi = (uint32_t)(handler >> 32),
#else
        .offset_hi = (uint16_t)(handler >> 16),
#endif
    };
  }
  idt_descr.limit = sizeof(idt) - 1;
  idt_descr.base = (uintptr_t)idt;
  __asm__ volatile("lidt %0" : : "m"(idt_descr));
}

static const char *const vector_names[NUM_EXCEPTION_VECTORS] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "22",  "23",  "24",  "25",  "26",  "27",  "#HV", "#VC", "#SX", "31",
};

/* Called by isr_common in entry32.S / entry64.S. */
void exception_dispatch(struct exception_frame *frame);

void exception_dispatch(struct exception_frame *frame) {
#if defined(__x86_64__)
  if (frame->vector >= FIRST_IRQ_VECTOR && frame->vector < NUM_IDT_VECTORS) {
    irq_handler_fn fn = irq_handlers[frame->vector - FIRST_IRQ_VECTOR];
    if (fn != NULL) {
      fn(frame);
      return;
    }
    printf("unexpected interrupt: vector %lu (0x%lx), rip 0x%lx\n", (unsigned long)frame->vector,
           (unsigned long)frame->vector, (unsigned long)frame->rip);
    guest_exit(1);
  }
#endif
  if (exception_hook != NULL && exception_hook(frame)) return;
  const char *name = frame->vector < NUM_EXCEPTION_VECTORS ? vector_names[frame->vector] : "?";
#if defined(__x86_64__)
  printf("unexpected exception: vector %lu (%s), error code 0x%lx, rip 0x%lx, cr2 0x%lx\n",
         (unsigned long)frame->vector, name, (unsigned long)frame->error_code,
         (unsigned long)frame->rip, (unsigned long)read_cr2());
#else
  printf("unexpected exception: vector %u (%s), error code 0x%x, eip 0x%08x, cr2 0x%08x\n",
         frame->vector, name, frame->error_code, frame->eip, (uint32_t)read_cr2());
#endif
  guest_exit(1);
}
