/*
 * The machine the arm64 guests run on: the QEMU "virt" memory map (what
 * strata's virt machine and `qemu-system-aarch64 -M virt,gic-version=3`
 * both provide). The CPUs, their MPIDRs and the RAM size come from the
 * device tree (fdt.h); only the fixed device addresses are here.
 */
#ifndef STRATA_GUEST_ARM64_PLATFORM_H
#define STRATA_GUEST_ARM64_PLATFORM_H

#define RAM_BASE 0x40000000ul
/* Where the image is loaded and entered (RAM base + the arm64 Image
 * text_offset); guest.ld links here. */
#define IMAGE_BASE 0x40080000ul

/* PL011 UART (PrimeCell UART TRM DDI 0183, §3.2), SPI 1 = INTID 33. */
#define PL011_BASE 0x09000000ul
#define PL011_INTID 33
#define UARTDR 0x000
#define UARTFR 0x018
#define UARTFR_TXFF (1u << 5)
#define UARTFR_RXFE (1u << 4)
#define UARTFR_BUSY (1u << 3)
#define UARTIBRD 0x024
#define UARTFBRD 0x028
#define UARTLCR_H 0x02c
#define UARTCR 0x030
#define UARTIMSC 0x038

/* The GIC distributor (gic.c takes it, and the GICv2 CPU interface or
 * the GICv3 redistributors, from the device tree); each GICv3
 * redistributor is 128 KiB (RD frame, SGI frame at +64 KiB). */
#define GICD_BASE 0x08000000ul
#define GICR_STRIDE 0x20000ul

/* Device space with nothing in strata's virt machine (QEMU puts its
 * virtio-mmio transports here). */
#define UNMAPPED_DEVICE_BASE 0x0a000000ul

/* Generic timer PPIs. */
#define TIMER_VIRT_INTID 27
#define TIMER_PHYS_INTID 30

#endif /* STRATA_GUEST_ARM64_PLATFORM_H */
