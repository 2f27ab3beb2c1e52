/*
 * boot — an embedder of strata in C, using only the installed header and
 * library (scripts/install.sh):
 *
 *   gcc -std=c99 $(pkg-config --cflags strata) boot.c -o boot \
 *       $(pkg-config --libs strata)
 *   ./boot tests/guests/amd64/io.elf     (bazel-bin/...)
 *
 * It builds a machine from config keys (RAM, vCPUs, the kernel from argv),
 * plugs in two tiny devices of its own where strata's io guest probes for
 * "nothing there" — port 0x9f0 (reads all-ones, ignores writes) and a 4 KiB
 * MMIO window at 0xfe000000 (reads zero, ignores writes) — counts what the
 * guest does to them, starts the VM without blocking, waits for the exit fd
 * in its own poll(2) loop, and reports the exit and the counts. The guest's
 * console (COM1) is this process's stdout.
 *
 * Exit status 0 if the guest passed (debug exit 0: status 1) and the
 * devices saw exactly the io guest's accesses; 1 otherwise; 2 on a strata
 * error (with strata's message).
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <strata/strata.h>

#define PROBE_PORT 0x9f0
#define PROBE_MMIO 0xfe000000u
#define WAIT_SECONDS 120

/* One probe device. Its handlers run on vCPU threads; main reads the
 * counts after strata_wait, which has joined those threads. */
struct probe {
  const char *name;
  uint64_t read_value;
  unsigned reads, writes;
  uint64_t last_write;
};

static uint64_t probe_read(void *opaque, uint32_t vcpu, uint64_t offset,
                           uint32_t size) {
  struct probe *p = opaque;
  (void)vcpu;
  (void)offset;
  (void)size;
  p->reads++;
  return p->read_value; /* strata keeps the low `size` bytes */
}

static void probe_write(void *opaque, uint32_t vcpu, uint64_t offset,
                        uint32_t size, uint64_t value) {
  struct probe *p = opaque;
  (void)vcpu;
  (void)offset;
  (void)size;
  p->writes++;
  p->last_write = value;
}

static strata_machine *machine;

/* Checks a strata call; on failure prints strata's message and exits. */
static void check(strata_status s, const char *what) {
  if (s == STRATA_OK) return;
  fprintf(stderr, "boot: %s: %s (%s)\n", what, strata_last_error(machine),
          strata_status_name(s));
  strata_machine_free(machine);
  exit(2);
}

static const char *kind_name(strata_exit_kind k) {
  switch (k) {
    case STRATA_EXIT_POWER_OFF: return "power-off";
    case STRATA_EXIT_GUEST_EXIT: return "guest-exit";
    case STRATA_EXIT_RESET: return "reset";
    case STRATA_EXIT_GUEST_CRASH: return "guest-crash";
    case STRATA_EXIT_VMM_ERROR: return "vmm-error";
    case STRATA_EXIT_STOPPED: return "stopped";
  }
  return "?";
}

int main(int argc, char **argv) {
  struct probe port = {"port 0x9f0", UINT64_MAX, 0, 0, 0};
  struct probe mmio = {"mmio 0xfe000000", 0, 0, 0, 0};
  struct pollfd pfd;
  strata_exit ex;
  int waited = 0, ok;

  if (argc != 2) {
    fprintf(stderr, "usage: %s KERNEL (strata's tests/guests/amd64/io.elf)\n",
            argv[0]);
    return 2;
  }
  if ((strata_abi_version() >> 16) != STRATA_ABI_VERSION_MAJOR) {
    fprintf(stderr, "boot: libstrata ABI %u.%u, this program needs %d.x\n",
            (unsigned)(strata_abi_version() >> 16),
            (unsigned)(strata_abi_version() & 0xffff),
            STRATA_ABI_VERSION_MAJOR);
    return 2;
  }

  machine = strata_machine_new();
  if (machine == NULL) return 2;
  check(strata_config_set(machine, "memory.size", "64M"), "memory.size");
  check(strata_config_set(machine, "cpus", "1"), "cpus");
  check(strata_config_set(machine, "kernel.path", argv[1]), "kernel.path");
  check(strata_config_set(machine, "com1.backend", "stdio"), "com1.backend");
  check(strata_machine_create(machine), "creating the machine");

  check(strata_add_io_handler(machine, STRATA_SPACE_PIO, PROBE_PORT, 4,
                              probe_read, probe_write, &port),
        "adding the port probe");
  check(strata_add_io_handler(machine, STRATA_SPACE_MMIO, PROBE_MMIO, 4096,
                              probe_read, probe_write, &mmio),
        "adding the MMIO probe");

  check(strata_start(machine), "starting");
  /* An event loop of one fd: wake up every second until the VM stops. */
  pfd.fd = strata_exit_fd(machine);
  pfd.events = POLLIN;
  for (waited = 0; waited < WAIT_SECONDS; waited++) {
    pfd.revents = 0;
    if (poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN)) break;
  }
  if (waited == WAIT_SECONDS) {
    fprintf(stderr, "boot: the guest did not stop in %d s; stopping it\n",
            WAIT_SECONDS);
    check(strata_stop(machine), "stopping");
  }
  check(strata_wait(machine, &ex), "waiting");
  fflush(stdout); /* after the guest's console output */

  printf("boot: exit %s, status %d%s%s\n", kind_name(ex.kind), (int)ex.status,
         ex.message[0] ? ": " : "", ex.message);
  printf("boot: %s: %u reads, %u writes (last 0x%llx)\n", port.name,
         port.reads, port.writes, (unsigned long long)port.last_write);
  printf("boot: %s: %u reads, %u writes (last 0x%llx)\n", mmio.name,
         mmio.reads, mmio.writes, (unsigned long long)mmio.last_write);

  /* io.elf: inb, inw, inl, outl 0, inl on the port; read32, read8,
   * write32 0xffffffff, read32 on the window; then debug exit 0. */
  ok = ex.kind == STRATA_EXIT_GUEST_EXIT && ex.status == 1 &&
       port.reads == 4 && port.writes == 1 && port.last_write == 0 &&
       mmio.reads == 3 && mmio.writes == 1 && mmio.last_write == 0xffffffffu;
  printf("boot: %s\n", ok ? "PASS" : "FAIL");
  check(strata_machine_free(machine), "freeing the machine");
  return ok ? 0 : 1;
}
