/*
 * Constants shared by the guest runtime's C and assembly sources.
 *
 * Guests are linked at 2 MiB (guest.ld) so the VMM's boot-information area
 * at 1 MiB stays untouched; the AP start-up trampoline lives in low memory
 * at 0x8000 (SIPI vector 0x08), below the 640 KiB conventional-memory limit.
 * Only preprocessor definitions here: this header is included by .S files.
 */
#ifndef STRATA_GUEST_LAYOUT_H
#define STRATA_GUEST_LAYOUT_H

/* Multiboot v1 header (Multiboot Specification 0.6.96 §3.1.1). */
#define MB_HEADER_MAGIC 0x1BADB002
#define MB_HEADER_FLAG_MEMINFO 0x00000002 /* ask for mem_lower/mem_upper */
#define MB_HEADER_FLAGS MB_HEADER_FLAG_MEMINFO
#define MB_BOOT_MAGIC 0x2BADB002 /* EAX at entry */

/* Selectors of the runtime GDT (entry32.S). */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define GDT_ENTRIES 3

/* Stacks. */
#define BOOT_STACK_SIZE 16384
/* vCPUs the runtime starts (KVM_CAP_MAX_VCPUS on the development hosts)
 * and the APIC ids it can record (KVM_CAP_MAX_VCPU_ID there: sparse
 * topologies leave gaps in the ids). */
#define SMP_MAX_CPUS 1024
#define SMP_MAX_APIC_ID 4096
#define AP_STACK_SHIFT 11 /* 2 KiB per AP: ap_main only counts itself in */

/* AP start-up: trampoline copied to 0x8000, SIPI vector = address >> 12. */
#define AP_TRAMPOLINE_ADDR 0x8000
#define AP_SIPI_VECTOR (AP_TRAMPOLINE_ADDR >> 12)

/* xAPIC registers (SDM Vol. 3 §11.4.1, Table 11-1). */
#define LAPIC_BASE 0xFEE00000
#define LAPIC_ID 0x020

#define NUM_EXCEPTION_VECTORS 32

#endif /* STRATA_GUEST_LAYOUT_H */
