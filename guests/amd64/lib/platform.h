/*
 * The strata x86 platform as guests see it (same addresses as QEMU's pc/q35
 * machines, so every guest also runs under `qemu-system-i386 -M q35`).
 */
#ifndef STRATA_GUEST_PLATFORM_H
#define STRATA_GUEST_PLATFORM_H

#include "x86.h"

/* COM1, 16550 UART (PC16550D datasheet, register map §8.1). */
#define COM1_BASE 0x3F8
#define UART_THR 0         /* transmitter holding register (DLAB=0) */
#define UART_LSR 5         /* line status register */
#define UART_LSR_THRE 0x20 /* THR empty: may write the next byte */

/* isa-debug-exit: a write of V ends the VMM with status (V << 1) | 1. */
#define DEBUG_EXIT_PORT 0xF4

/* ACPI fixed hardware (ACPI 6.4 §4.8): PM1a control and the PM timer. */
#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_PM1_CNT_SLP_EN (1u << 13) /* with SLP_TYP = 0 (S5): power off */
#define ACPI_PM_TMR_PORT 0x608
#define ACPI_PM_TMR_MASK 0x00FFFFFFu /* 24-bit counter */
#define ACPI_PM_TMR_HZ 3579545u

/* QEMU fw_cfg, I/O port interface (docs/specs/fw_cfg.rst in QEMU). */
#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514
#define FW_CFG_ID 0x0001
#define FW_CFG_FILE_DIR 0x0019
#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NB_CPUS 0x0005

/* pc-testdev (QEMU hw/misc/pc-testdev.c). */
#define PC_TESTDEV_LATCH_PORT 0xE0 /* 0xE0-0xE3, 32-bit byte-lane latch */
#define PC_TESTDEV_IOMEM 0xFF000000u
#define PC_TESTDEV_IOMEM_SIZE 0x10000u

static inline uint32_t pmtimer_read(void) {
  return inl(ACPI_PM_TMR_PORT) & ACPI_PM_TMR_MASK;
}

#endif /* STRATA_GUEST_PLATFORM_H */
