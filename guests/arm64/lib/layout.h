/*
 * Constants shared by entry.S and the C runtime (no C in here: the
 * assembler includes it).
 */
#ifndef STRATA_GUEST_ARM64_LAYOUT_H
#define STRATA_GUEST_ARM64_LAYOUT_H

/* RAM base + text_offset = 0x40080000, where guest.ld links. */
#define IMAGE_TEXT_OFFSET 0x80000
#define MAX_CPUS 64
#define BOOT_STACK_SIZE 0x4000
/* 16 KiB per secondary CPU, indexed by DTB CPU index. */
#define CPU_STACK_SHIFT 14
/* struct exception_frame, rounded up to 16 bytes. */
#define FRAME_SIZE 288

#endif /* STRATA_GUEST_ARM64_LAYOUT_H */
