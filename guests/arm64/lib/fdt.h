/*
 * A small flattened-device-tree reader (Devicetree Specification v0.4,
 * chapter 5): checks the header and walks the structure block once,
 * collecting what the guests need into `boot_info`.
 */
#ifndef STRATA_GUEST_ARM64_FDT_H
#define STRATA_GUEST_ARM64_FDT_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct boot_info {
  bool valid;              /* the DTB header checked out */
  uint32_t ncpus;          /* /cpus/cpu@N nodes with device_type "cpu" */
  uint64_t mpidr[MAX_CPUS]; /* their `reg`, in DTB order */
  bool cpus_truncated;     /* more than MAX_CPUS in the tree */
  uint64_t mem_base, mem_size; /* first /memory reg entry */
  const char *bootargs;    /* /chosen bootargs, or "" */
  const char *psci_method; /* /psci method, or "" */
  /* The interrupt controller, a root child: 3 for "arm,gic-v3" (reg =
   * distributor, redistributor region), 2 for "arm,cortex-a15-gic" (reg =
   * distributor, CPU interface); 0 if there is neither. */
  uint32_t gic_version;
  uint64_t gic_dist;       /* distributor base */
  uint64_t gic_cpu;        /* GICv2: CPU interface base */
  uint64_t gic_redist;     /* GICv3: first redistributor region's base */
  uint64_t gic_redist_size; /* and size */
  uint32_t totalsize;
};

extern struct boot_info boot_info;

/* Parses the DTB at `dtb` into boot_info; false (and a printed reason) if
 * it is not a device tree. */
bool fdt_parse(uintptr_t dtb);

/* The DTB index of the CPU with this MPIDR, or -1. */
int fdt_cpu_index(uint64_t mpidr);

#endif /* STRATA_GUEST_ARM64_FDT_H */
