/*
 * 32-bit entry (Multiboot v1): the loader enters _start in flat protected
 * mode with paging and interrupts off, EAX = 0x2BADB002, EBX = boot info and
 * no usable stack, GDT or IDT (Multiboot 0.6.96 §3.2). We load our own GDT
 * and segments, zero the bss, and call runtime_start(magic, info).
 *
 * Also here: the exception entry stubs and the AP start-up trampoline.
 */
#include "layout.h"

	.section .multiboot, "a"
	.balign 4
multiboot_header:
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	cld
	movl $boot_stack_top, %esp
	movl %eax, %esi			/* multiboot magic */
	/* EBX (boot info) survives: rep stosl uses EAX, ECX and EDI only. */
	lgdt gdt_descr
	ljmp $KERNEL_CS, $1f
1:	movw $KERNEL_DS, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	/* The bss ends before the stacks (.stack), so this is short. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	pushl %ebx
	pushl %esi
	call runtime_start
2:	cli
	hlt
	jmp 2b

/*
 * Exception stubs: push a zero error code where the CPU pushes none (SDM
 * Vol. 3 §6.13: 8, 10-14, 17, 21, 29 and 30 have one), then the vector.
 */
.macro isr_stub vec
isr_stub_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushl $0
	.endif
	pushl $\vec
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

/*
 * Returns without IRET. Exceptions here are always taken at CPL 0 without a
 * stack switch, so the frame is just EIP, CS (= KERNEL_CS), EFLAGS, and
 * `popfl; ret $8` restores the same state. Why: on a host whose KVM
 * instruction-emulates guest supervisor code (the paravirtual development
 * machines), KVM's emulator handles IRET only in real mode and stops the VM
 * with an emulation failure on a protected-mode IRET.
 */
isr_common:
	pushal
	pushl %esp			/* struct exception_frame * */
	call exception_dispatch
	addl $4, %esp
	popal
	addl $8, %esp			/* vector and error code */
	pushl 8(%esp)			/* the saved EFLAGS */
	popfl
	ret $8				/* to the saved EIP, dropping CS and EFLAGS */

	.section .rodata
	.balign 4
	.globl isr_stub_table
isr_stub_table:
.macro isr_ptrs from, to
	.long isr_stub_\from
	.if \to - \from
	isr_ptrs %(\from + 1), \to
	.endif
.endm
	isr_ptrs 0, 31
.noaltmacro

/*
 * AP trampoline. Copied to AP_TRAMPOLINE_ADDR and entered after SIPI in real
 * mode with CS = AP_TRAMPOLINE_ADDR >> 4, IP = 0 (SDM Vol. 3 §9.4.4.1), so
 * its own data is addressed relative to its start. It loads the runtime GDT
 * (a link-time address, reached with a 32-bit lgdt operand), sets CR0.PE and
 * far-jumps into ap_entry32 in the image.
 */
	.text
	.code16
	.globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl (ap_trampoline_gdtr - ap_trampoline_start)
	movl %cr0, %eax
	orl $1, %eax			/* CR0.PE */
	movl %eax, %cr0
	ljmpl $KERNEL_CS, $ap_entry32
	.balign 4
ap_trampoline_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
ap_trampoline_end:

	.code32
ap_entry32:
	movw $KERNEL_DS, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	/* A stack: the next free slot, by ticket (APIC ids can be sparse and
	 * exceed the slot count). Slot 0 is never used, so slot n's top is
	 * ap_stacks + (n + 1) << AP_STACK_SHIFT with n + 1 < SMP_MAX_CPUS. */
	movl $1, %ecx
	lock xaddl %ecx, ap_stack_next
	cmpl $(SMP_MAX_CPUS - 1), %ecx
	jae 1f				/* no stack for it: park uncounted */
	leal 1(%ecx), %ecx
	shll $AP_STACK_SHIFT, %ecx
	leal ap_stacks(%ecx), %esp
	lidt idt_descr
	call ap_main			/* finds its own APIC id */
1:	cli
	hlt
	jmp 1b

	.data
	.balign 4
ap_stack_next:
	.long 0
	.balign 8
	.globl gdt, gdt_end
gdt:
	.quad 0
	.quad 0x00CF9B000000FFFF	/* KERNEL_CS: flat 32-bit code, accessed */
	.quad 0x00CF93000000FFFF	/* KERNEL_DS: flat data, accessed */
gdt_end:
	.balign 4
	.word 0
gdt_descr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .stack, "aw", @nobits
	.balign 16
boot_stack:
	.space BOOT_STACK_SIZE
boot_stack_top:
	.globl ap_stacks
ap_stacks:
	.space SMP_MAX_CPUS << AP_STACK_SHIFT

	.section .note.GNU-stack, "", @progbits
