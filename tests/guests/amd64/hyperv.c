/*
 * hyperv: the Hyper-V enlightenments as a guest sees them (bhyverun's
 * x86.hyperv; Hyper-V TLFS). ELF64, on the BSP (VP 0) unless noted;
 * the SynIC checks need `-o platform.<name>.device=hyperv-testdev`
 * (QEMU's control port at 0x3000).
 *
 * Default (x86.hyperv=passthrough, or a list with synic and stimer);
 * the TLFS section each check follows is named in [brackets]:
 *  - CPUID 0x40000000 names "Microsoft Hv" and reaches 0x40000005;
 *    0x40000001 is the "Hv#1" interface; 0x40000003 offers the
 *    hypercall, VP_INDEX and TIME_REF_COUNT MSRs [Feature Discovery].
 *    KVM's own signature is at 0x40000100 with its features at
 *    0x40000101.
 *  - HV_X64_MSR_VP_INDEX is each CPU's index [Virtual Processor Index]:
 *    0 here, and on every AP (started with INIT/SIPI into a real-mode
 *    trampoline that reads the MSR and its initial APIC id, then parks)
 *    its APIC id, which is its index with bhyverun's default topology.
 *  - HV_X64_MSR_TIME_REF_COUNT advances at 10 MHz against the ACPI PM
 *    timer, within a factor of 2 [Partition Reference Counter]; the
 *    reference TSC page is enabled and read back [Partition Reference
 *    TSC Mechanism]: when KVM marks it valid its time brackets
 *    TIME_REF_COUNT, when invalid (sequence 0: the host has no stable
 *    TSC clock) that check is SKIP with the reason.
 *  - The SynIC [Synthetic Interrupt Controller]: SIMP, SIEFP and
 *    SCONTROL enabled, SVERSION 1, EOM reads 0; a SINT route of the
 *    hyperv-testdev to SINT 2 (EOI'd vector) and SINT 3 (auto-EOI)
 *    delivers its vector once per SET_SINT.
 *  - A synthetic timer in message mode posts HVMSG_TIMER_EXPIRED for
 *    timer 0 to SINT 4 with an expiration time no earlier than asked;
 *    in direct mode (when 0x40000003.EDX bit 19 offers it) it raises
 *    its APIC vector [Synthetic Timers].
 *  - Hypercalls through the hypercall page [Hypercall Interface]:
 *    HvSignalEvent to a connection nobody owns is
 *    HV_STATUS_INVALID_CONNECTION_ID (answered, not ignored);
 *    HvPostMessage over the testdev's message connection lands in
 *    SINT 5's slot and interrupts; posted again into the still full
 *    slot it sets MessagePending and waits, a third finds no buffer
 *    (HV_STATUS_INSUFFICIENT_BUFFERS), and after the guest empties the
 *    slot and writes EOM the waiting message arrives [Message Buffer
 *    Management]; HvSignalEvent over the event connection sets its flag
 *    in SINT 6's event page and interrupts once (a flag still set does
 *    not interrupt again); a flag number is HV_STATUS_INVALID_PORT_ID, a
 *    241-byte payload HV_STATUS_INVALID_PARAMETER; with SIMP disabled,
 *    or SIMP and SIEFP at a GPA past RAM, posting and signalling are
 *    HV_STATUS_INVALID_SYNIC_STATE and the VMM goes on.
 * With the word `nosynic` (a list without synic): the leaves, VP index and
 * clock checks, and that 0x40000003 offers no SynIC.
 * With the word `off` (no x86.hyperv): 0x40000001 is not "Hv#1", nothing
 * is at 0x40000100, and HV_X64_MSR_VP_INDEX raises #GP.
 *
 * PASS:/FAIL:/SKIP: lines, then "SUMMARY: ..."; exit code 0 if nothing
 * failed.
 */
#include "lib/exceptions.h"
#include "lib/fw_cfg.h"
#include "lib/lapic.h"
#include "lib/platform.h"
#include "lib/runtime.h"
#include "lib/x86.h"

/* CPUID leaves and bits (TLFS, Feature Discovery). */
#define HV_LEAF_VENDOR 0x40000000u
#define HV_LEAF_INTERFACE 0x40000001u
#define HV_LEAF_FEATURES 0x40000003u
#define HV_LEAF_LIMITS 0x40000005u
#define HV_INTERFACE_HV1 0x31237648u /* "Hv#1" */
#define KVM_LEAF_WITH_HYPERV 0x40000100u
#define HV_FEAT_TIME_REF_COUNT (1u << 1)
#define HV_FEAT_SYNIC (1u << 2)
#define HV_FEAT_STIMER (1u << 3)
#define HV_FEAT_HYPERCALL (1u << 5)
#define HV_FEAT_VP_INDEX (1u << 6)
#define HV_FEAT_REFERENCE_TSC (1u << 9)
#define HV_FEAT_EDX_STIMER_DIRECT (1u << 19)

/* MSRs (TLFS appendix "Hyper-V MSRs"). */
#define HV_MSR_GUEST_OS_ID 0x40000000u
#define HV_MSR_HYPERCALL 0x40000001u
#define HV_MSR_VP_INDEX 0x40000002u
#define HV_MSR_TIME_REF_COUNT 0x40000020u
#define HV_MSR_REFERENCE_TSC 0x40000021u
#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SVERSION 0x40000081u
#define HV_MSR_SIEFP 0x40000082u
#define HV_MSR_SIMP 0x40000083u
#define HV_MSR_EOM 0x40000084u
#define HV_MSR_SINT0 0x40000090u
#define HV_MSR_STIMER0_CONFIG 0x400000B0u
#define HV_MSR_STIMER0_COUNT 0x400000B1u
#define HV_ENABLE 1u
#define HV_SINT_MASKED (1ull << 16)
#define HV_SINT_AUTO_EOI (1ull << 17)
/* Synthetic timer config (TLFS, Synthetic Timers): enable, direct mode,
 * APIC vector, SINT. */
#define HV_STIMER_ENABLE 1ull
#define HV_STIMER_DIRECT (1ull << 12)
#define HV_STIMER_VECTOR(v) ((uint64_t)(v) << 4)
#define HV_STIMER_SINT(s) ((uint64_t)(s) << 16)

/* Hypercalls (TLFS, Hypercall Interface; Hypercall Code Reference). */
#define HVCALL_POST_MESSAGE 0x005c
#define HVCALL_SIGNAL_EVENT 0x005d
#define HVCALL_FAST (1ull << 16)
#define HV_STATUS_SUCCESS 0x00
#define HV_STATUS_INVALID_PARAMETER 0x05
#define HV_STATUS_INVALID_PORT_ID 0x11
#define HV_STATUS_INVALID_CONNECTION_ID 0x12
#define HV_STATUS_INSUFFICIENT_BUFFERS 0x13
#define HV_STATUS_INVALID_SYNIC_STATE 0x18

#define HVMSG_TIMER_EXPIRED 0x80000010u
#define HV_MSG_PENDING 1u

/* QEMU's hyperv-testdev (devices/hyperv_testdev.h). */
#define TESTDEV_PORT 0x3000
#define TD_SINT_ROUTE_CREATE 1
#define TD_SINT_ROUTE_DESTROY 2
#define TD_SINT_ROUTE_SET_SINT 3
#define TD_MSG_CONN_CREATE 4
#define TD_MSG_CONN_DESTROY 5
#define TD_EVT_CONN_CREATE 6
#define TD_EVT_CONN_DESTROY 7

/* Pages of ours, past the image (linked at 2 MiB) and the boot data. */
#define SIMP_PAGE 0x800000u
#define SIEFP_PAGE 0x801000u
#define HCALL_PAGE 0x802000u
#define INPUT_PAGE 0x803000u
#define TSC_PAGE 0x804000u

/* SINTs, their vectors, and the testdev's connections. */
#define SINT_ROUTE 2
#define SINT_ROUTE_AEOI 3
#define SINT_TIMER 4
#define SINT_MSG 5
#define SINT_EVT 6
#define VEC_ROUTE 0x50
#define VEC_ROUTE_AEOI 0x51
#define VEC_TIMER 0x52
#define VEC_MSG 0x53
#define VEC_EVT 0x54
#define VEC_DIRECT 0x55
#define CONN_MSG 0x10
#define CONN_EVT 0x20
#define WAIT_MS 2000
#define QUIET_MS 50

struct hv_message {
  volatile uint32_t type;
  volatile uint8_t payload_size;
  volatile uint8_t flags;
  uint16_t reserved;
  uint64_t origin;
  volatile uint64_t payload[30];
};

struct hv_post_message_input {
  uint32_t connection_id;
  uint32_t reserved;
  uint32_t message_type;
  uint32_t payload_size;
  uint64_t payload[30];
};

struct hv_tsc_page {
  volatile uint32_t sequence;
  uint32_t reserved;
  volatile uint64_t scale;
  volatile int64_t offset;
};

static volatile uint32_t irqs[256];

static void on_irq(struct exception_frame *frame) {
  irqs[frame->vector & 0xff] = irqs[frame->vector & 0xff] + 1;
  lapic_eoi();
}

/* Auto-EOI SINTs: the hypervisor has done the EOI (TLFS, Synthetic
 * Interrupt Controller). */
static void on_irq_aeoi(struct exception_frame *frame) {
  irqs[frame->vector & 0xff] = irqs[frame->vector & 0xff] + 1;
}

/* Waits (interrupts on) until vector `v` has been taken `want` times. */
static bool wait_irqs(uint8_t v, uint32_t want, uint32_t ms) {
  struct deadline d;
  deadline_start(&d, ms);
  irq_enable();
  while (irqs[v] < want && !deadline_expired(&d)) cpu_relax();
  irq_disable();
  return irqs[v] >= want;
}

static void testdev(uint8_t cmd, uint8_t vp, uint8_t sint, uint8_t conn) {
  outl(TESTDEV_PORT, ((uint32_t)conn << 24) | ((uint32_t)cmd << 16) |
                         ((uint32_t)vp << 8) | sint);
}

static uint64_t hypercall(uint64_t control, uint64_t in, uint64_t out) {
  uint64_t status;
  register uint64_t r8 __asm__("r8") = out;
  /* The page holds KVM's vmcall/vmmcall; ret (TLFS, Hypercall Interface). */
  __asm__ volatile("call *%[page]"
                   : "=a"(status), "+c"(control), "+d"(in), "+r"(r8)
                   : [page] "r"((uint64_t)HCALL_PAGE)
                   : "memory", "cc");
  return status & 0xffff;
}

static struct hv_message *slot(uint32_t sint) {
  return (struct hv_message *)(uintptr_t)(SIMP_PAGE + sint * 256);
}

static volatile uint64_t *flags_word(uint32_t sint, uint32_t flag) {
  return (volatile uint64_t *)(uintptr_t)(SIEFP_PAGE + sint * 256 + flag / 64 * 8);
}

static uint32_t post(uint32_t conn, uint32_t type, uint32_t size, uint64_t payload) {
  struct hv_post_message_input *in = (struct hv_post_message_input *)(uintptr_t)INPUT_PAGE;
  in->connection_id = conn;
  in->reserved = 0;
  in->message_type = type;
  in->payload_size = size;
  in->payload[0] = payload;
  return (uint32_t)hypercall(HVCALL_POST_MESSAGE, INPUT_PAGE, 0);
}

static uint32_t signal_event(uint64_t param) {
  return (uint32_t)hypercall(HVCALL_SIGNAL_EVENT | HVCALL_FAST, param, 0);
}

static bool same_string(uint32_t b, uint32_t c, uint32_t d, const char *s) {
  char got[13];
  memcpy(got, &b, 4);
  memcpy(got + 4, &c, 4);
  memcpy(got + 8, &d, 4);
  got[12] = 0;
  return memcmp(got, s, 12) == 0;
}

/* --- #GP probe for `off` --- */
static volatile uint64_t gp_fixup;
static volatile bool gp_seen;

static bool on_exception(struct exception_frame *frame) {
  if (gp_fixup == 0 || frame->vector != GP_VECTOR) return false;
  gp_seen = true;
  frame->rip = gp_fixup;
  gp_fixup = 0;
  return true;
}

static bool rdmsr_faults(uint32_t msr) {
  gp_seen = false;
  uint32_t lo, hi;
  __asm__ volatile(
      "leaq 1f(%%rip), %%rax\n\t"
      "movq %%rax, %[fix]\n\t"
      "rdmsr\n"
      "1:"
      : "=&a"(lo), "=d"(hi), [fix] "=m"(gp_fixup)
      : "c"(msr)
      : "memory");
  (void)lo;
  (void)hi;
  gp_fixup = 0;
  return gp_seen;
}

/* --- VP indexes of the APs --- */

/* Each AP enters in real mode at AP_TRAMPOLINE_ADDR (CS = 0x800, IP = 0),
 * reads HV_X64_MSR_VP_INDEX and its initial APIC id (CPUID.01H:EBX[31:24];
 * both work at CPL 0 in real mode), stores the index at the table slot of
 * its APIC id and counts itself in, then parks. */
#define AP_MAX 64
extern const char hv_ap_start[], hv_ap_count[], hv_ap_table[], hv_ap_end[];
__asm__(
    "  .pushsection .text\n"
    "  .code16\n"
    "  .globl hv_ap_start, hv_ap_count, hv_ap_table, hv_ap_end\n"
    "hv_ap_start:\n"
    "  cli\n"
    "  movw %cs, %ax\n"
    "  movw %ax, %ds\n"
    "  movl $0x40000002, %ecx\n"
    "  rdmsr\n"
    "  movl %eax, %esi\n"
    "  movl $1, %eax\n"
    "  cpuid\n"
    "  shrl $24, %ebx\n"
    "  cmpl $64, %ebx\n"
    "  jae 2f\n"
    "  addr32 movl %esi, (hv_ap_table - hv_ap_start)(,%ebx,4)\n"
    "  lock incl (hv_ap_count - hv_ap_start)\n"
    "2: hlt\n"
    "  jmp 2b\n"
    "  .balign 4\n"
    "hv_ap_count:\n"
    "  .long 0\n"
    "hv_ap_table:\n"
    "  .fill 64, 4, 0xffffffff\n"
    "hv_ap_end:\n"
    "  .code64\n"
    "  .popsection\n");

static void check_ap_vp_indexes(uint32_t ncpus) {
  if (ncpus < 2) {
    report_skip("VP_INDEX on the APs: one vCPU (run with -c 2 or more)");
    return;
  }
  if (ncpus > AP_MAX) ncpus = AP_MAX;
  volatile uint8_t *tramp = (volatile uint8_t *)(uintptr_t)AP_TRAMPOLINE_ADDR;
  memcpy((void *)tramp, hv_ap_start, (size_t)(hv_ap_end - hv_ap_start));
  volatile uint32_t *count = (volatile uint32_t *)(tramp + (hv_ap_count - hv_ap_start));
  volatile uint32_t *table = (volatile uint32_t *)(tramp + (hv_ap_table - hv_ap_start));
  lapic_enable(); /* as smp.c: the BSP's APIC is software-enabled to send */
  const uint32_t init = LAPIC_ICR_DELIVERY_INIT | LAPIC_ICR_LEVEL_ASSERT;
  const uint32_t sipi = LAPIC_ICR_DELIVERY_STARTUP | LAPIC_ICR_LEVEL_ASSERT | AP_SIPI_VECTOR;
  for (uint32_t id = 1; id < ncpus; ++id) {
    lapic_send_ipi(id, init);
    lapic_send_ipi(id, sipi);
  }
  struct deadline d;
  deadline_start(&d, 5000);
  bool resent = false;
  while (*count + 1 < ncpus && !deadline_expired(&d)) {
    if (!resent && d.elapsed_ticks >= 10 * 3580u) {
      /* A second SIPI (MP spec §B.4); ignored by an AP already started. */
      for (uint32_t id = 1; id < ncpus; ++id) lapic_send_ipi(id, sipi);
      resent = true;
    }
    cpu_relax();
  }
  uint32_t right = 0;
  for (uint32_t id = 1; id < ncpus; ++id) {
    if (table[id] == id) {
      ++right;
    } else {
      printf("hyperv: AP with APIC id %u has VP index 0x%x\n", id, table[id]);
    }
  }
  report(*count + 1 == ncpus && right == ncpus - 1,
         "VP_INDEX is the vCPU index on every AP (%u of %u APs checked in, %u right)",
         *count, ncpus - 1, right);
}

/* --- clocks --- */

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* ((tsc * scale) >> 64) + offset (TLFS, Partition Reference TSC
 * Mechanism). */
static uint64_t tsc_page_time(const struct hv_tsc_page *p, bool *valid) {
  uint32_t seq;
  uint64_t scale, t;
  int64_t offset;
  do {
    seq = p->sequence;
    __asm__ volatile("" ::: "memory");
    scale = p->scale;
    offset = p->offset;
    uint64_t hi, lo;
    __asm__ volatile("mulq %3" : "=d"(hi), "=a"(lo) : "a"(rdtsc()), "rm"(scale));
    (void)lo;
    t = hi + (uint64_t)offset;
    __asm__ volatile("" ::: "memory");
  } while (p->sequence != seq);
  *valid = seq != 0 && seq != 0xffffffffu;
  return t;
}

static void check_clocks(void) {
  const uint64_t t0 = rdmsr(HV_MSR_TIME_REF_COUNT);
  const uint32_t pm0 = pmtimer_read();
  udelay(20000);
  const uint64_t t1 = rdmsr(HV_MSR_TIME_REF_COUNT);
  const uint32_t pm1 = pmtimer_read();
  /* 100 ns units against the 3.579545 MHz PM timer. */
  const uint64_t pm_ticks = (pm1 - pm0) & ACPI_PM_TMR_MASK;
  const uint64_t want = pm_ticks * 10000000ull / ACPI_PM_TMR_HZ;
  const uint64_t got = t1 - t0;
  report(t1 > t0 && got * 2 >= want && got <= want * 2,
         "TIME_REF_COUNT advances at 10 MHz: %lu units in %lu PM-timer ticks (%lu expected)",
         (unsigned long)got, (unsigned long)pm_ticks, (unsigned long)want);

  const struct hv_tsc_page *page = (const struct hv_tsc_page *)(uintptr_t)TSC_PAGE;
  wrmsr(HV_MSR_REFERENCE_TSC, TSC_PAGE | HV_ENABLE);
  report(rdmsr(HV_MSR_REFERENCE_TSC) == (TSC_PAGE | HV_ENABLE),
         "the reference TSC page MSR reads back");
  bool valid;
  const uint64_t p0 = tsc_page_time(page, &valid);
  const uint64_t m = rdmsr(HV_MSR_TIME_REF_COUNT);
  const uint64_t p1 = tsc_page_time(page, &valid);
  if (!valid) {
    report_skip("the reference TSC page is marked invalid (sequence %u): the host "
                "has no stable TSC clock, so TIME_REF_COUNT is the clock",
                page->sequence);
  } else {
    report(p0 <= m && m <= p1,
           "the reference TSC page's time brackets TIME_REF_COUNT (%lu <= %lu <= %lu)",
           (unsigned long)p0, (unsigned long)m, (unsigned long)p1);
  }
  wrmsr(HV_MSR_REFERENCE_TSC, 0);
}

/* --- the SynIC --- */

static void sint(uint32_t n, uint8_t vector, bool auto_eoi) {
  wrmsr(HV_MSR_SINT0 + n, vector | (auto_eoi ? HV_SINT_AUTO_EOI : 0));
  set_irq_handler(vector, auto_eoi ? on_irq_aeoi : on_irq);
}

static void check_sint_routes(void) {
  sint(SINT_ROUTE, VEC_ROUTE, false);
  sint(SINT_ROUTE_AEOI, VEC_ROUTE_AEOI, true);
  testdev(TD_SINT_ROUTE_CREATE, 0, SINT_ROUTE, 0);
  testdev(TD_SINT_ROUTE_CREATE, 0, SINT_ROUTE_AEOI, 0);
  testdev(TD_SINT_ROUTE_SET_SINT, 0, SINT_ROUTE, 0);
  testdev(TD_SINT_ROUTE_SET_SINT, 0, SINT_ROUTE_AEOI, 0);
  bool a = wait_irqs(VEC_ROUTE, 1, WAIT_MS);
  bool b = wait_irqs(VEC_ROUTE_AEOI, 1, WAIT_MS);
  report(a && b, "a testdev SINT route raises SINT %u's vector (%u) and auto-EOI SINT %u's (%u)",
         SINT_ROUTE, irqs[VEC_ROUTE], SINT_ROUTE_AEOI, irqs[VEC_ROUTE_AEOI]);
  testdev(TD_SINT_ROUTE_SET_SINT, 0, SINT_ROUTE, 0);
  report(wait_irqs(VEC_ROUTE, 2, WAIT_MS) && irqs[VEC_ROUTE_AEOI] == 1,
         "again: once more, on that SINT only");
  testdev(TD_SINT_ROUTE_DESTROY, 0, SINT_ROUTE, 0);
  testdev(TD_SINT_ROUTE_DESTROY, 0, SINT_ROUTE_AEOI, 0);
}

static void check_stimer(bool direct) {
  sint(SINT_TIMER, VEC_TIMER, false);
  uint64_t when = rdmsr(HV_MSR_TIME_REF_COUNT) + 10000; /* 1 ms */
  wrmsr(HV_MSR_STIMER0_COUNT, when);
  wrmsr(HV_MSR_STIMER0_CONFIG, HV_STIMER_ENABLE | HV_STIMER_SINT(SINT_TIMER));
  bool fired = wait_irqs(VEC_TIMER, 1, WAIT_MS);
  struct hv_message *m = slot(SINT_TIMER);
  const uint32_t type = m->type;
  const uint32_t index = (uint32_t)m->payload[0];
  const uint64_t expired = m->payload[1];
  report(fired && type == HVMSG_TIMER_EXPIRED && index == 0 && expired >= when,
         "synthetic timer 0 posts HVMSG_TIMER_EXPIRED to SINT %u (type 0x%x, timer %u, "
         "expired at %lu for %lu)",
         SINT_TIMER, type, index, (unsigned long)expired, (unsigned long)when);
  wrmsr(HV_MSR_STIMER0_CONFIG, 0);
  m->type = 0;
  wrmsr(HV_MSR_EOM, 0);
  if (!direct) {
    report_skip("synthetic timers in direct mode: not offered (0x40000003.EDX[19])");
    return;
  }
  set_irq_handler(VEC_DIRECT, on_irq);
  when = rdmsr(HV_MSR_TIME_REF_COUNT) + 10000;
  wrmsr(HV_MSR_STIMER0_COUNT, when);
  wrmsr(HV_MSR_STIMER0_CONFIG, HV_STIMER_ENABLE | HV_STIMER_DIRECT | HV_STIMER_VECTOR(VEC_DIRECT));
  report(wait_irqs(VEC_DIRECT, 1, WAIT_MS) && slot(SINT_TIMER)->type == 0,
         "a direct-mode synthetic timer raises its APIC vector, posting no message");
  wrmsr(HV_MSR_STIMER0_CONFIG, 0);
}

static void check_messages(void) {
  sint(SINT_MSG, VEC_MSG, true);
  testdev(TD_MSG_CONN_CREATE, 0, SINT_MSG, CONN_MSG);
  struct hv_message *m = slot(SINT_MSG);
  uint32_t s = post(CONN_MSG, 0x12345678, 8, 0x1111);
  bool got = wait_irqs(VEC_MSG, 1, WAIT_MS);
  report(s == HV_STATUS_SUCCESS && got && m->type == 0x12345678 && m->payload_size == 8 &&
             m->payload[0] == 0x1111 && (m->flags & HV_MSG_PENDING) == 0,
         "HvPostMessage reaches SINT %u's slot and interrupts (status 0x%x, type 0x%x)",
         SINT_MSG, s, m->type);
  /* The slot is still full: the next message waits (TLFS, Message Buffer
   * Management). */
  s = post(CONN_MSG, 0x12345678, 8, 0x2222);
  bool quiet = !wait_irqs(VEC_MSG, 2, QUIET_MS);
  report(s == HV_STATUS_SUCCESS && quiet && m->payload[0] == 0x1111 &&
             (m->flags & HV_MSG_PENDING) != 0,
         "into the full slot: MessagePending is set and nothing is delivered");
  s = post(CONN_MSG, 0x12345678, 8, 0x3333);
  report(s == HV_STATUS_INSUFFICIENT_BUFFERS,
         "a third message finds no buffer (status 0x%x)", s);
  m->type = 0;
  __asm__ volatile("mfence" ::: "memory");
  wrmsr(HV_MSR_EOM, 0);
  got = wait_irqs(VEC_MSG, 2, WAIT_MS);
  report(got && m->type == 0x12345678 && m->payload[0] == 0x2222 &&
             (m->flags & HV_MSG_PENDING) == 0,
         "after EOM the waiting message arrives (payload 0x%lx)", (unsigned long)m->payload[0]);
  m->type = 0;
  wrmsr(HV_MSR_EOM, 0);
  report(post(CONN_MSG, 0x12345678, 241, 0) == HV_STATUS_INVALID_PARAMETER,
         "a 241-byte payload is HV_STATUS_INVALID_PARAMETER");
}

static void check_events(void) {
  sint(SINT_EVT, VEC_EVT, true);
  testdev(TD_EVT_CONN_CREATE, 0, SINT_EVT, CONN_EVT);
  volatile uint64_t *w = flags_word(SINT_EVT, CONN_EVT);
  const uint64_t bit = 1ull << (CONN_EVT % 64);
  uint32_t s = signal_event(CONN_EVT);
  bool got = wait_irqs(VEC_EVT, 1, WAIT_MS);
  report(s == HV_STATUS_SUCCESS && got && *w == bit,
         "HvSignalEvent sets flag 0x%x of SINT %u and interrupts (status 0x%x)", CONN_EVT,
         SINT_EVT, s);
  s = signal_event(CONN_EVT);
  report(s == HV_STATUS_SUCCESS && !wait_irqs(VEC_EVT, 2, QUIET_MS) && *w == bit,
         "a flag still set does not interrupt again");
  s = signal_event((1ull << 32) | CONN_EVT);
  report(s == HV_STATUS_INVALID_PORT_ID, "a nonzero flag number is HV_STATUS_INVALID_PORT_ID (0x%x)", s);
  *w = 0;
}

static void check_bad_pages(uint64_t ram_end) {
  wrmsr(HV_MSR_SIMP, 0);
  uint32_t s = post(CONN_MSG, 0x12345678, 8, 0x4444);
  report(s == HV_STATUS_INVALID_SYNIC_STATE,
         "with SIMP disabled, HvPostMessage is HV_STATUS_INVALID_SYNIC_STATE (0x%x)", s);
  /* Past RAM (below the PCI hole): the VMM must not write there. */
  wrmsr(HV_MSR_SIMP, ram_end | HV_ENABLE);
  wrmsr(HV_MSR_SIEFP, (ram_end + 0x1000) | HV_ENABLE);
  s = post(CONN_MSG, 0x12345678, 8, 0x5555);
  uint32_t e = signal_event(CONN_EVT);
  report(s == HV_STATUS_INVALID_SYNIC_STATE && e == HV_STATUS_INVALID_SYNIC_STATE,
         "SIMP and SIEFP at 0x%lx, past RAM: both calls are HV_STATUS_INVALID_SYNIC_STATE "
         "(0x%x, 0x%x)",
         (unsigned long)ram_end, s, e);
  wrmsr(HV_MSR_SIMP, SIMP_PAGE | HV_ENABLE);
  wrmsr(HV_MSR_SIEFP, SIEFP_PAGE | HV_ENABLE);
}

static void check_synic(bool direct_timers, uint64_t ram_end) {
  lapic_enable();
  wrmsr(HV_MSR_SIMP, SIMP_PAGE | HV_ENABLE);
  wrmsr(HV_MSR_SIEFP, SIEFP_PAGE | HV_ENABLE);
  wrmsr(HV_MSR_SCONTROL, HV_ENABLE);
  report(rdmsr(HV_MSR_SVERSION) == 1 && rdmsr(HV_MSR_EOM) == 0 &&
             rdmsr(HV_MSR_SIMP) == (SIMP_PAGE | HV_ENABLE),
         "SynIC enabled: SVERSION 1, EOM reads 0, SIMP reads back");
  check_sint_routes();
  check_stimer(direct_timers);

  wrmsr(HV_MSR_GUEST_OS_ID, 0x8100ull << 48); /* Linux's vendor id */
  wrmsr(HV_MSR_HYPERCALL, HCALL_PAGE | HV_ENABLE);
  report(rdmsr(HV_MSR_HYPERCALL) == (HCALL_PAGE | HV_ENABLE), "the hypercall page is enabled");
  uint32_t s = signal_event(0x1234);
  report(s == HV_STATUS_INVALID_CONNECTION_ID,
         "HvSignalEvent to a connection nobody owns: HV_STATUS_INVALID_CONNECTION_ID (0x%x)",
         s);
  check_messages();
  check_events();
  check_bad_pages(ram_end);

  testdev(TD_MSG_CONN_DESTROY, 0, 0, CONN_MSG);
  testdev(TD_EVT_CONN_DESTROY, 0, 0, CONN_EVT);
  for (uint32_t n = 0; n < 16; ++n) wrmsr(HV_MSR_SINT0 + n, HV_SINT_MASKED);
  wrmsr(HV_MSR_SCONTROL, 0);
  wrmsr(HV_MSR_SIMP, 0);
  wrmsr(HV_MSR_SIEFP, 0);
  wrmsr(HV_MSR_HYPERCALL, 0);
  wrmsr(HV_MSR_GUEST_OS_ID, 0);
}

int guest_main(uint32_t mb_magic, const struct multiboot_info *mbi) {
  (void)mb_magic;
  const char *cmdline = (mbi->flags & MB_INFO_CMDLINE) ? mb_phys(mbi->cmdline) : "";
  const bool off = str_has_word(cmdline, "off");
  const bool nosynic = str_has_word(cmdline, "nosynic");
  const uint32_t ncpus = fw_cfg_present() ? fw_cfg_read_u16(FW_CFG_NB_CPUS) : 1;
  const uint64_t ram = fw_cfg_present() ? fw_cfg_read_u64(FW_CFG_RAM_SIZE) : 0;
  set_exception_hook(on_exception);

  struct cpuid_regs v = cpuid(HV_LEAF_VENDOR, 0);
  struct cpuid_regs i = cpuid(HV_LEAF_INTERFACE, 0);
  struct cpuid_regs k = cpuid(KVM_LEAF_WITH_HYPERV, 0);
  const bool kvm_at_100 = same_string(k.ebx, k.ecx, k.edx, "KVMKVMKVM\0\0\0");
  if (off) {
    report(i.eax != HV_INTERFACE_HV1, "no Hyper-V interface at 0x40000001 (eax 0x%x)", i.eax);
    report(same_string(v.ebx, v.ecx, v.edx, "KVMKVMKVM\0\0\0") && !kvm_at_100,
           "0x40000000 is KVM's own signature, nothing at 0x40000100");
    report(rdmsr_faults(HV_MSR_VP_INDEX), "HV_X64_MSR_VP_INDEX raises #GP");
    return report_summary();
  }

  report(same_string(v.ebx, v.ecx, v.edx, "Microsoft Hv") && v.eax >= HV_LEAF_LIMITS,
         "0x40000000: vendor \"Microsoft Hv\", leaves up to 0x%x", v.eax);
  report(i.eax == HV_INTERFACE_HV1, "0x40000001: the \"Hv#1\" interface");
  report(kvm_at_100 && k.eax >= KVM_LEAF_WITH_HYPERV + 1,
         "KVM's signature moved to 0x40000100 (max leaf 0x%x; features 0x%x at 0x40000101)",
         k.eax, cpuid(KVM_LEAF_WITH_HYPERV + 1, 0).eax);
  struct cpuid_regs f = cpuid(HV_LEAF_FEATURES, 0);
  const uint32_t need = HV_FEAT_HYPERCALL | HV_FEAT_VP_INDEX | HV_FEAT_TIME_REF_COUNT |
                        HV_FEAT_REFERENCE_TSC;
  report((f.eax & need) == need, "0x40000003 offers the hypercall, VP_INDEX and clock MSRs "
                                 "(eax 0x%x, ebx 0x%x, edx 0x%x)",
         f.eax, f.ebx, f.edx);
  report(rdmsr(HV_MSR_VP_INDEX) == 0, "VP_INDEX is 0 on the BSP");
  check_ap_vp_indexes(ncpus);
  check_clocks();
  if (nosynic) {
    report((f.eax & (HV_FEAT_SYNIC | HV_FEAT_STIMER)) == 0, "no SynIC or timers offered");
    return report_summary();
  }
  const uint32_t timers = HV_FEAT_SYNIC | HV_FEAT_STIMER;
  if ((f.eax & timers) != timers) {
    report(false, "0x40000003 offers the SynIC and its timers (eax 0x%x)", f.eax);
    return report_summary();
  }
  /* The first page past low RAM, below the PCI hole at 3 GiB. */
  const uint64_t ram_end = ram < 0xc0000000ull ? ram : 0xbff00000ull;
  check_synic((f.edx & HV_FEAT_EDX_STIMER_DIRECT) != 0, ram_end);
  return report_summary();
}
