/* The runtime IDT and the common exception handler (32-bit guests). */
#include "exceptions.h"

#include "layout.h"
#include "runtime.h"
#include "x86.h"

struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t zero;
  uint8_t type_attr;
  uint16_t offset_hi;
} __attribute__((packed));

/* Present, DPL 0, 32-bit interrupt gate (SDM Vol. 3 §6.11, Figure 6-2):
 * IF is cleared on entry. */
#define IDT_INTERRUPT_GATE32 0x8E

static struct idt_gate idt[NUM_EXCEPTION_VECTORS] __attribute__((aligned(8)));

/* Also loaded by each AP in entry32.S. */
struct {
  uint16_t limit;
  uint32_t base;
} __attribute__((packed)) idt_descr;

extern const uint32_t isr_stub_table[NUM_EXCEPTION_VECTORS];

static exception_hook_fn exception_hook;

void set_exception_hook(exception_hook_fn hook) { exception_hook = hook; }

void idt_install(void) {
  for (int v = 0; v < NUM_EXCEPTION_VECTORS; ++v) {
    uint32_t handler = isr_stub_table[v];
    idt[v] = (struct idt_gate){
        .offset_lo = (uint16_t)handler,
        .selector = KERNEL_CS,
        .zero = 0,
        .type_attr = IDT_INTERRUPT_GATE32,
        .offset_hi = (uint16_t)(handler >> 16),
    };
  }
  idt_descr.limit = sizeof(idt) - 1;
  idt_descr.base = (uint32_t)(uintptr_t)idt;
  __asm__ volatile("lidt %0" : : "m"(idt_descr));
}

static const char *const vector_names[NUM_EXCEPTION_VECTORS] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "22",  "23",  "24",  "25",  "26",  "27",  "#HV", "#VC", "#SX", "31",
};

/* Called by isr_common in entry32.S. */
void exception_dispatch(struct exception_frame *frame);

void exception_dispatch(struct exception_frame *frame) {
  if (exception_hook != NULL && exception_hook(frame)) return;
  printf("unexpected exception: vector %u (%s), error code 0x%x, eip 0x%08x, cr2 0x%08x\n",
         frame->vector,
         frame->vector < NUM_EXCEPTION_VECTORS ? vector_names[frame->vector] : "?",
         frame->error_code, frame->eip, (uint32_t)read_cr2());
  guest_exit(1);
}
