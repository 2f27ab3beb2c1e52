/*
 * Flattened device tree reader (Devicetree Specification v0.4 §5). One
 * pass over the structure block; a node's properties come before its
 * children (§5.4.1), so #address-cells/#size-cells of a parent are known
 * when its children's `reg` is read. Everything is big-endian and 4-byte
 * aligned within the blob; the blob itself is 8-byte aligned (§5.1).
 */
#include "fdt.h"

#include "psci.h"
#include "runtime.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u
#define FDT_MAX_DEPTH 16

struct boot_info boot_info;

static uint32_t be32(const void *p) {
  const uint8_t *b = p;
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* A `cells`-cell big-endian number (1 or 2 cells). */
static uint64_t read_cells(const uint8_t *p, uint32_t cells) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < cells; ++i) v = (v << 32) | be32(p + 4 * i);
  return v;
}

enum node_kind {
  NODE_OTHER,
  NODE_ROOT,
  NODE_CPUS,
  NODE_CPU,
  NODE_MEMORY,
  NODE_CHOSEN,
  NODE_PSCI,
  NODE_ROOT_CHILD, /* any other node under the root: a device */
};

struct node {
  enum node_kind kind;
  uint32_t address_cells, size_cells; /* for this node's children */
  /* NODE_CPU: properties seen so far */
  bool is_cpu;
  bool has_reg;
  uint64_t reg;
  /* NODE_MEMORY */
  bool is_memory;
  /* NODE_ROOT_CHILD: the GIC version its compatible names (0: not a GIC),
   * and its first two reg entries */
  uint32_t gic_version;
  uint32_t nregs;
  uint64_t reg_base[2], reg_size[2];
};

/* Whether the stringlist property `val` (`len` bytes) holds `want`. */
static bool stringlist_has(const uint8_t *val, uint32_t len, const char *want) {
  const char *s = (const char *)val, *end = s + len;
  while (s < end) {
    if (strcmp(s, want) == 0) return true;
    s += strlen(s) + 1;
  }
  return false;
}

static bool name_is(const char *name, const char *base) {
  size_t n = strlen(base);
  return strncmp(name, base, n) == 0 && (name[n] == '\0' || name[n] == '@');
}

bool fdt_parse(uintptr_t dtb) {
  struct boot_info *bi = &boot_info;
  memset(bi, 0, sizeof(*bi));
  bi->bootargs = "";
  bi->psci_method = "";
  const uint8_t *base = (const uint8_t *)dtb;
  if (dtb == 0 || (dtb & 7) != 0) {
    printf("fdt: no device tree: x0 at entry was 0x%lx\n", (unsigned long)dtb);
    return false;
  }
  if (be32(base) != FDT_MAGIC) {
    printf("fdt: no device tree at 0x%lx (magic 0x%x)\n", (unsigned long)dtb, be32(base));
    return false;
  }
  uint32_t totalsize = be32(base + 4);
  uint32_t off_struct = be32(base + 8);
  uint32_t off_strings = be32(base + 12);
  uint32_t size_struct = be32(base + 36);
  bi->totalsize = totalsize;
  const uint8_t *p = base + off_struct;
  const uint8_t *end = p + size_struct;
  const char *strings = (const char *)base + off_strings;

  struct node stack[FDT_MAX_DEPTH];
  int depth = -1; /* index of the current node in stack */
  bool memory_found = false;

  while (p + 4 <= end) {
    uint32_t token = be32(p);
    p += 4;
    if (token == FDT_BEGIN_NODE) {
      const char *name = (const char *)p;
      size_t len = strlen(name);
      p += (len + 1 + 3) & ~(size_t)3;
      if (++depth >= FDT_MAX_DEPTH) {
        printf("fdt: nodes nested deeper than %d\n", FDT_MAX_DEPTH);
        return false;
      }
      struct node *n = &stack[depth];
      memset(n, 0, sizeof(*n));
      /* Defaults (§2.3.5): 2 address cells, 1 size cell. */
      n->address_cells = 2;
      n->size_cells = 1;
      enum node_kind parent = depth > 0 ? stack[depth - 1].kind : NODE_OTHER;
      if (depth == 0) {
        n->kind = NODE_ROOT;
      } else if (parent == NODE_ROOT && name_is(name, "cpus")) {
        n->kind = NODE_CPUS;
      } else if (parent == NODE_CPUS && name_is(name, "cpu")) {
        n->kind = NODE_CPU;
      } else if (parent == NODE_ROOT && name_is(name, "memory")) {
        n->kind = NODE_MEMORY;
      } else if (parent == NODE_ROOT && name_is(name, "chosen")) {
        n->kind = NODE_CHOSEN;
      } else if (parent == NODE_ROOT && name_is(name, "psci")) {
        n->kind = NODE_PSCI;
      } else if (parent == NODE_ROOT) {
        n->kind = NODE_ROOT_CHILD;
      } else {
        n->kind = NODE_OTHER;
      }
    } else if (token == FDT_END_NODE) {
      if (depth < 0) break;
      struct node *n = &stack[depth];
      if (n->kind == NODE_CPU && n->is_cpu && n->has_reg) {
        if (bi->ncpus < MAX_CPUS) {
          bi->mpidr[bi->ncpus++] = n->reg;
        } else {
          bi->cpus_truncated = true;
        }
      }
      /* The first GIC node with both of its regions. */
      if (n->kind == NODE_ROOT_CHILD && n->gic_version != 0 && n->nregs == 2 &&
          bi->gic_version == 0) {
        bi->gic_version = n->gic_version;
        bi->gic_dist = n->reg_base[0];
        if (n->gic_version == 2) {
          bi->gic_cpu = n->reg_base[1];
        } else {
          bi->gic_redist = n->reg_base[1];
          bi->gic_redist_size = n->reg_size[1];
        }
      }
      --depth;
    } else if (token == FDT_PROP) {
      uint32_t len = be32(p);
      uint32_t nameoff = be32(p + 4);
      const uint8_t *val = p + 8;
      p += 8 + ((len + 3) & ~3u);
      if (depth < 0) continue;
      const char *pname = strings + nameoff;
      struct node *n = &stack[depth];
      const struct node *parent = depth > 0 ? &stack[depth - 1] : NULL;
      if (strcmp(pname, "#address-cells") == 0 && len == 4) {
        n->address_cells = be32(val);
      } else if (strcmp(pname, "#size-cells") == 0 && len == 4) {
        n->size_cells = be32(val);
      } else if (n->kind == NODE_CPU && strcmp(pname, "device_type") == 0) {
        n->is_cpu = strcmp((const char *)val, "cpu") == 0;
      } else if (n->kind == NODE_CPU && strcmp(pname, "reg") == 0 && parent &&
                 parent->address_cells >= 1 && parent->address_cells <= 2 &&
                 len >= 4 * parent->address_cells) {
        n->has_reg = true;
        n->reg = read_cells(val, parent->address_cells);
      } else if (n->kind == NODE_MEMORY && strcmp(pname, "reg") == 0 && !memory_found &&
                 parent && parent->address_cells <= 2 && parent->size_cells <= 2 &&
                 len >= 4 * (parent->address_cells + parent->size_cells)) {
        memory_found = true;
        bi->mem_base = read_cells(val, parent->address_cells);
        bi->mem_size = read_cells(val + 4 * parent->address_cells, parent->size_cells);
      } else if (n->kind == NODE_CHOSEN && strcmp(pname, "bootargs") == 0 && len > 0) {
        bi->bootargs = (const char *)val;
      } else if (n->kind == NODE_PSCI && strcmp(pname, "method") == 0 && len > 0) {
        bi->psci_method = (const char *)val;
      } else if (n->kind == NODE_ROOT_CHILD && strcmp(pname, "compatible") == 0) {
        /* How QEMU, kvmtool and strata name the two GICs. */
        if (stringlist_has(val, len, "arm,gic-v3")) {
          n->gic_version = 3;
        } else if (stringlist_has(val, len, "arm,cortex-a15-gic")) {
          n->gic_version = 2;
        }
      } else if (n->kind == NODE_ROOT_CHILD && strcmp(pname, "reg") == 0 && parent &&
                 parent->address_cells <= 2 && parent->size_cells <= 2) {
        const uint32_t entry = 4 * (parent->address_cells + parent->size_cells);
        for (n->nregs = 0; n->nregs < 2 && entry != 0 && len >= entry * (n->nregs + 1);
             ++n->nregs) {
          const uint8_t *e = val + entry * n->nregs;
          n->reg_base[n->nregs] = read_cells(e, parent->address_cells);
          n->reg_size[n->nregs] = read_cells(e + 4 * parent->address_cells, parent->size_cells);
        }
      }
    } else if (token == FDT_NOP) {
      continue;
    } else if (token == FDT_END) {
      break;
    } else {
      printf("fdt: bad token 0x%x at offset 0x%lx\n", token,
             (unsigned long)(p - 4 - base));
      return false;
    }
  }
  psci_use_smc = strcmp(bi->psci_method, "smc") == 0;
  bi->valid = true;
  return true;
}

int fdt_cpu_index(uint64_t mpidr) {
  for (uint32_t i = 0; i < boot_info.ncpus; ++i) {
    if (boot_info.mpidr[i] == mpidr) return (int)i;
  }
  return -1;
}
