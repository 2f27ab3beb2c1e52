/*
 * 64-bit entry: the VMM enters an ELF64 image in long mode with paging on
 * (identity map of the low 4 GiB), a 64-bit CS, flat data segments,
 * interrupts off, RAX = 0x2BADB002, RBX = boot info and no usable stack.
 * Nothing of the VMM's GDT or page tables is replaced: this entry exists to
 * test exactly that state. Zero the bss and call runtime_start(magic, info).
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

	.section .stack, "aw", @nobits
	.balign 16
	.space BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
