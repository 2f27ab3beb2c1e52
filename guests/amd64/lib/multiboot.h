/* Multiboot v1 boot information (Multiboot Specification 0.6.96 §3.3). */
#ifndef STRATA_GUEST_MULTIBOOT_H
#define STRATA_GUEST_MULTIBOOT_H

#include <stdint.h>

#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MEM_MAP (1u << 6)

struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower; /* KiB below 1 MiB */
  uint32_t mem_upper; /* KiB above 1 MiB */
  uint32_t boot_device;
  uint32_t cmdline; /* physical address of a NUL-terminated string */
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
} __attribute__((packed));

struct multiboot_module {
  uint32_t mod_start;
  uint32_t mod_end;
  uint32_t string;
  uint32_t reserved;
} __attribute__((packed));

/* `size` does not count itself: the next entry is at &size + 4 + size. */
struct multiboot_mmap_entry {
  uint32_t size;
  uint64_t base_addr;
  uint64_t length;
  uint32_t type; /* 1 = available RAM */
} __attribute__((packed));

/* Physical addresses are identity-mapped (or paging is off) in every guest. */
static inline const void *mb_phys(uint32_t addr) {
  return (const void *)(uintptr_t)addr;
}

#endif /* STRATA_GUEST_MULTIBOOT_H */
