/*
 * 64-bit entry: the VMM enters an ELF64 image in long mode with paging on
 * (identity map of the low 4 GiB), a 64-bit CS, flat data segments,
 * interrupts off, RAX = 0x2BADB002, RBX = boot info and no usable stack.
 * Nothing of the VMM's GDT or page tables is replaced: this entry exists to
 * test exactly that state. Zero the bss and call runtime_start(magic, info).
 *
 * Also here: the exception and external-interrupt entry stubs for the
 * runtime IDT (exceptions.c).
 */
#include "layout.h"

	/* Carried for uniformity; the long-mode path does not require it. */
	.section .multiboot, "a"
	.balign 4
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

	.text
	.code64
	.globl _start
_start:
	cli
	cld
	movq $boot_stack_top, %rsp	/* 16-byte aligned: the call keeps the ABI */
	movl %eax, %r12d		/* multiboot magic */
	movl %ebx, %r13d		/* boot info, a 32-bit physical address */
	movq $__bss_start, %rdi
	movq $__bss_end, %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	movl %r12d, %edi
	movl %r13d, %esi
	call runtime_start
1:	cli
	hlt
	jmp 1b

/*
 * Exception stubs: push a zero error code where the CPU pushes none (SDM
 * Vol. 3 §6.13: 8, 10-14, 17, 21, 29 and 30 have one), then the vector.
 */
.macro isr_stub vec
isr_stub_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

.altmacro
.macro isr_stubs from, to
	isr_stub \from
	.if \to - \from
	isr_stubs %(\from + 1), \to
	.endif
.endm
	isr_stubs 0, 31
.noaltmacro

/*
 * External-interrupt stubs, vectors 32-255 (no error code: SDM Vol. 3
 * §6.13). Each is 16 bytes, so the gate of vector v points at
 * irq_stubs + (v - 32) * 16 (exceptions.c) and no table is needed;
 * `.rept` rather than a recursive macro, which would nest 224 deep.
 */
	.balign 16
	.globl irq_stubs
irq_stubs:
	.set irq_vec, NUM_EXCEPTION_VECTORS
	.rept 256 - NUM_EXCEPTION_VECTORS
	.balign 16
	pushq $0
	pushq $irq_vec
	jmp isr_common
	.set irq_vec, irq_vec + 1
	.endr
	/* At most 2 + 5 + 5 bytes (pushq imm8, pushq imm32, jmp rel32), so
	 * the .balign keeps every stub exactly 16 bytes apart. */
.altmacro

/*
 * In 64-bit mode the CPU aligns RSP down to 16 bytes and always pushes SS,
 * RSP, RFLAGS, CS, RIP (SDM Vol. 3 §6.14.2); with the error code (or our
 * zero), the vector and 15 GPRs that is 22 quadwords, so RSP is 16-byte
 * aligned at the call as the ABI wants.
 */
isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi			/* struct exception_frame * */
	call exception_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector and error code */
	/*
	 * Unlike a protected-mode IRET (see isr_common in entry32.S), IRETQ
	 * runs on the paravirtual development hosts too (checked there with
	 * the exceptions64 guest).
	 */
	iretq

	.section .rodata
	.balign 8
	.globl isr_stub_table
isr_stub_table:
.macro isr_ptrs from, to
	.quad isr_stub_\from
	.if \to - \from
	isr_ptrs %(\from + 1), \to
	.endif
.endm
	isr_ptrs 0, 31
.noaltmacro

	.section .stack, "aw", @nobits
	.balign 16
	.space BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
