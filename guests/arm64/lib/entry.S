/*
 * Entry points and the EL1 vector table.
 *
 * The image starts with an arm64 Linux Image header (Documentation/arm64/
 * booting.rst: text_offset 0x80000, 4 KiB pages, 2 MiB-aligned base), so
 * any loader that insists on the Image format takes the .flat as well; its
 * first word branches to boot_entry, so a loader that just enters the first
 * byte works too.
 *
 * Boot CPU (boot_entry): EL1h, MMU off, DAIF masked, x0 = DTB address.
 * Sets SP to the boot stack, turns the MMU and caches on, clears the bss,
 * calls runtime_start(dtb).
 * Secondary CPUs (secondary_entry, the CPU_ON entry point): x0 = the
 * context id smp_start() passed, the CPU's DTB index; SP = that index's
 * stack, MMU on, then secondary_start(index).
 *
 * Why the MMU: with it off every data access is Device-nGnRnE, where
 * unaligned accesses fault and exclusives (LDAXR/STLXR) need not work
 * (Arm ARM B2.9.6). An identity map of 1 GiB blocks does: 0-1 GiB (the
 * devices) Device-nGnRnE, 1-512 GiB Normal write-back. Table walks are
 * non-cacheable (TCR_EL1.IRGN0/ORGN0 = 0), so the table the loader wrote
 * needs no cache maintenance.
 */
#include "layout.h"

#define DESC_BLOCK 0x1
#define DESC_AF (1 << 10)
#define DESC_SH_INNER (3 << 8)
#define DESC_ATTR(n) ((n) << 2)
#define DESC_PXN (1 << 53)
#define DESC_UXN (1 << 54)
#define DEVICE_BLOCK (DESC_BLOCK | DESC_AF | DESC_ATTR(0) | DESC_PXN | DESC_UXN)
#define NORMAL_BLOCK (DESC_BLOCK | DESC_AF | DESC_SH_INNER | DESC_ATTR(1))

	.section .text.head, "ax"
	.globl _start
_start:
	b	boot_entry		/* code0 */
	.long	0			/* code1 */
	.quad	IMAGE_TEXT_OFFSET	/* text_offset */
	.quad	__image_size		/* image_size, bss and stacks included */
	.quad	0x2			/* flags: LE, 4 KiB pages, 2 MiB-aligned base */
	.quad	0, 0, 0			/* res2..res4 */
	.ascii	"ARM\x64"		/* magic */
	.long	0			/* res5 (no PE header) */

boot_entry:
	msr	daifset, #0xf
	mov	x19, x0
	adrp	x1, boot_stack_top
	add	x1, x1, :lo12:boot_stack_top
	mov	sp, x1
	bl	mmu_enable
	adrp	x1, __bss_start
	add	x1, x1, :lo12:__bss_start
	adrp	x2, __bss_end
	add	x2, x2, :lo12:__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	mov	x0, x19
	bl	runtime_start
	b	park

	.text
	.globl secondary_entry
secondary_entry:
	msr	daifset, #0xf
	cmp	x0, #MAX_CPUS
	b.hs	park
	mov	x19, x0
	adrp	x1, cpu_stacks
	add	x1, x1, :lo12:cpu_stacks
	add	x2, x0, #1
	lsl	x2, x2, #CPU_STACK_SHIFT
	add	sp, x1, x2
	bl	mmu_enable
	mov	x0, x19
	bl	secondary_start
park:
	msr	daifset, #0xf
3:	wfi
	b	3b

/* Leaf: clobbers x0-x2 only. */
mmu_enable:
	/* MAIR_EL1: Attr0 Device-nGnRnE (0x00), Attr1 Normal WB RW-allocate (0xff). */
	mov	x0, #0xff00
	msr	mair_el1, x0
	/* TCR_EL1: T0SZ 25 (39-bit VA, level-1 start), TG0 4 KiB, walks
	 * non-cacheable, EPD1 (no TTBR1 walks), IPS = PARange capped at 48 bits. */
	mov	x0, #25
	orr	x0, x0, #(1 << 23)
	mrs	x1, id_aa64mmfr0_el1
	and	x1, x1, #0xf
	mov	x2, #5
	cmp	x1, x2
	csel	x1, x2, x1, hi
	bfi	x0, x1, #32, #3
	msr	tcr_el1, x0
	adrp	x0, page_table_l1
	msr	ttbr0_el1, x0
	isb
	tlbi	vmalle1
	dsb	nsh
	isb
	mrs	x0, sctlr_el1
	orr	x0, x0, #(1 << 0)	/* M */
	orr	x0, x0, #(1 << 2)	/* C */
	orr	x0, x0, #(1 << 12)	/* I */
	bic	x0, x0, #(1 << 1)	/* A: unaligned Normal accesses allowed */
	bic	x0, x0, #(1 << 19)	/* WXN */
	msr	sctlr_el1, x0
	isb
	ret

/* Vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes, 2 KiB aligned. */
.macro vector n
	.balign	0x80
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #0]
	mov	x0, #\n
	b	vector_common
.endm

	.balign	0x800
	.globl	vector_table
vector_table:
	vector	0
	vector	1
	vector	2
	vector	3
	vector	4
	vector	5
	vector	6
	vector	7
	vector	8
	vector	9
	vector	10
	vector	11
	vector	12
	vector	13
	vector	14
	vector	15

vector_common:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	str	x30, [sp, #240]
	mrs	x1, elr_el1
	mrs	x2, spsr_el1
	stp	x1, x2, [sp, #248]
	mrs	x1, esr_el1
	mrs	x2, far_el1
	stp	x1, x2, [sp, #264]
	mov	x1, sp
	bl	exception_dispatch
	ldp	x1, x2, [sp, #248]
	msr	elr_el1, x1
	msr	spsr_el1, x2
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x19, [sp, #144]
	ldp	x20, x21, [sp, #160]
	ldp	x22, x23, [sp, #176]
	ldp	x24, x25, [sp, #192]
	ldp	x26, x27, [sp, #208]
	ldp	x28, x29, [sp, #224]
	ldr	x30, [sp, #240]
	ldp	x0, x1, [sp, #0]
	add	sp, sp, #FRAME_SIZE
	eret

	.section .data.page_table, "aw"
	.balign	4096
page_table_l1:
	.quad	DEVICE_BLOCK
	.set	gib, 1
	.rept	511
	.quad	(gib << 30) | NORMAL_BLOCK
	.set	gib, gib + 1
	.endr

	.section .stack, "aw", %nobits
	.balign	16
boot_stack:
	.skip	BOOT_STACK_SIZE
boot_stack_top:
	.balign	16
	.globl	cpu_stacks
cpu_stacks:
	.skip	MAX_CPUS << CPU_STACK_SHIFT
