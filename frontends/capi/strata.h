/*
 * strata — the C ABI (libstrata.so.1) for embedders.
 *
 * C99, usable from C++; no C++ type crosses it. One opaque handle,
 * strata_machine, is a machine: a VM with its platform, the devices its
 * config declares and a guest (the C++ layer is strata::Machine,
 * core/machine.h). Its life:
 *
 *   strata_machine_new       an empty handle, configuring
 *   strata_config_set ...    config keys (bhyverun's -o keys), JSON text or
 *                            a JSON file; strata_set_kvm_device,
 *                            strata_set_log_handler
 *   strata_machine_create    checks the config and builds the VM: memory,
 *                            platform, devices, vCPUs, guest loaded. Nothing
 *                            runs yet: add memory, I/O handlers, write bytes
 *                            into guest memory, set registers.
 *   strata_start             one host thread per vCPU; returns at once
 *   strata_exit_fd           poll(2) it for POLLIN: readable once the VM has
 *                            stopped; then strata_wait gives the exit
 *   strata_pause/resume, strata_stop, registers, memory, interrupts
 *   strata_machine_free      stops a running VM, waits for it, frees all
 *
 * Errors. Every fallible call returns a strata_status (STRATA_OK is 0). On
 * failure a message saying what was wrong, and what to do, is kept for the
 * calling thread: strata_last_error(m) is the message of the last failed
 * call on m made by this thread (strata_last_error(NULL): calls given a
 * NULL handle). A successful call does not clear it; check the status
 * first. The string is valid until this thread's next failing call on the
 * same handle, or until the handle is freed. Threads do not see each
 * other's messages, so the model is safe under any concurrency.
 *
 * Threads. Unless a function says otherwise it may be called from any
 * thread, concurrently with other calls on the same machine, except that
 * nothing may run on a handle once strata_machine_free has started on it.
 * A thread that is running a vCPU (an I/O handler's thread, see
 * strata_io_read_fn) may call only what the section "I/O handlers" lists;
 * anything else returns STRATA_E_BUSY there (strata never waits for another
 * vCPU from a vCPU's thread: that deadlocks).
 *
 * Signals. vCPU threads start with the signal mask of the thread that calls
 * strata_start; strata's own threads block every signal. strata kicks vCPUs
 * out of the guest with SIGRTMIN+4, which it unblocks on a vCPU thread
 * only while that thread runs the vCPU, with a handler of its own
 * (SA_RESTART; a vCPU refuses to run if another handler is installed or the
 * signal is ignored): do not use that signal.
 *
 * Versioning. STRATA_ABI_VERSION is the version this header describes;
 * strata_abi_version() is the library's. They are compatible when the
 * majors are equal and the library's minor is at least the header's. Every
 * symbol of ABI 1.x carries the ELF symbol version STRATA_1 (the library's
 * SONAME is libstrata.so.1); a minor version only adds functions.
 *
 * Architecture. Register names, interrupt pins and MSI fields are those of
 * the architecture the library was built for (strata_arch()); the header
 * itself is the same for all. Each such place says what it means on amd64
 * (the pc machine) and arm64 (the virt machine, not implemented yet).
 */
#ifndef STRATA_H_
#define STRATA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ version -- */

#define STRATA_ABI_VERSION_MAJOR 1
#define STRATA_ABI_VERSION_MINOR 0
#define STRATA_ABI_VERSION \
  ((STRATA_ABI_VERSION_MAJOR << 16) | STRATA_ABI_VERSION_MINOR)

/* The library's ABI version, (major << 16) | minor. Any thread. */
uint32_t strata_abi_version(void);

/* The architecture the library drives: "amd64" or "arm64". A static
 * string. Any thread. */
const char *strata_arch(void);

/* ------------------------------------------------------------- errors -- */

/* The error codes of strata::Errc (core/result.h), plus OK. The values are
 * part of the ABI. */
typedef enum strata_status {
  STRATA_OK = 0,
  STRATA_E_INVALID_ARGUMENT = 1, /* a malformed argument or config value */
  STRATA_E_NOT_FOUND = 2,        /* a file, key, register or handler */
  STRATA_E_OUT_OF_RANGE = 3,     /* an address, size, index or buffer */
  STRATA_E_ALREADY_EXISTS = 4,   /* e.g. an overlapping I/O range */
  STRATA_E_UNSUPPORTED = 5,      /* the host, build or machine lacks it */
  STRATA_E_BUSY = 6,             /* not in this state or on this thread */
  STRATA_E_IO = 7,               /* a host system call failed */
  STRATA_E_GUEST_FAULT = 8,      /* the guest did something invalid */
  STRATA_E_INTERNAL = 9,         /* strata failed (or ran out of memory) */
  /* Not a status: gives the type the range of int, so any value a caller
   * passes (to strata_status_name) is one of the type's values. */
  STRATA_STATUS_RANGE_ = -0x7fffffff - 1
} strata_status;

/* "STRATA_OK", "STRATA_E_BUSY", ...; "STRATA_E_?" for other values. A
 * static string. Any thread. */
const char *strata_status_name(strata_status status);

typedef struct strata_machine strata_machine;

/* The message of the calling thread's last failed call on m (see the top
 * of this file); "" if there was none. m may be NULL: then the last call
 * this thread made with a NULL handle. Any thread, including vCPU threads.
 */
const char *strata_last_error(const strata_machine *m);

/* -------------------------------------------------- creating a machine -- */

/* A new machine handle in the configuring state, or NULL if out of
 * memory. The caller owns it: strata_machine_free. Nothing is touched on
 * the host until strata_machine_create. */
strata_machine *strata_machine_new(void);

/* Frees m: a running machine is stopped first (exit STRATA_EXIT_STOPPED, a
 * paused one resumed so that it can stop) and waited for; then the VM, its
 * devices, its memory and the exit fd are released. No I/O handler or log
 * handler is called once it returns. STRATA_E_BUSY (and nothing freed) on
 * a vCPU thread. NULL is a no-op (STRATA_OK). No other call on m may be in
 * progress or follow. */
strata_status strata_machine_free(strata_machine *m);

/* Sets a config key (bhyverun's -o key=value; the keys are listed in
 * README.md and by `bhyverun --help`): cpus, cpu.max, memory.size,
 * kernel.path, kernel.cmdline, kernel.initrd, log.level, com1.backend, the
 * machine's (amd64: x86.*), and device instances
 * (platform.<name>.device=<model> with platform.<name>.<key> settings;
 * `bhyverun --help` lists the models and their keys). Only malformed keys
 * fail here (STRATA_E_INVALID_ARGUMENT); unknown keys and bad values fail
 * strata_machine_create, naming the key. Configuring state only, else
 * STRATA_E_BUSY. */
strata_status strata_config_set(strata_machine *m, const char *key,
                                const char *value);

/* Merges a JSON object: {"memory": {"size": "64M"}, "cpus": 2}. All or
 * nothing; errors name the byte position. Configuring state only. */
strata_status strata_config_merge_json(strata_machine *m, const char *json);

/* The same from a file (at most 4 MiB; a FIFO or device is refused).
 * STRATA_E_NOT_FOUND if it does not exist. Configuring state only. */
strata_status strata_config_merge_json_file(strata_machine *m,
                                            const char *path);

/* Copies the value of key, NUL-terminated, into buf. Before creation: what
 * was set; after: the effective config (defaults filled in). If size is too
 * small (buf may then be NULL) nothing is copied and STRATA_E_OUT_OF_RANGE
 * is returned; in every case *needed (if not NULL) is set to the size
 * required, NUL included. STRATA_E_NOT_FOUND if the key is unset. */
strata_status strata_config_get(strata_machine *m, const char *key,
                                char *buf, size_t size, size_t *needed);

/* The whole config as JSON (keys sorted; before creation what was set,
 * after it the effective config), with the buffer rules of
 * strata_config_get. */
strata_status strata_config_dump_json(strata_machine *m, char *buf,
                                      size_t size, size_t *needed);

/* The KVM device to open (default "/dev/kvm"). Configuring state only. */
strata_status strata_set_kvm_device(strata_machine *m, const char *path);

/* Log levels (spdlog's). */
typedef enum strata_log_level {
  STRATA_LOG_TRACE = 0,
  STRATA_LOG_DEBUG = 1,
  STRATA_LOG_INFO = 2,
  STRATA_LOG_WARN = 3,
  STRATA_LOG_ERROR = 4,
  STRATA_LOG_CRITICAL = 5
} strata_log_level;

/* One log message of the machine (its devices, buses and vCPUs), without
 * a trailing newline; message is valid during the call only. Called on any
 * of strata's threads (vCPU threads included), one call at a time per
 * machine, possibly while strata holds internal locks: it must not call
 * any strata_ function and must not block for long. */
typedef void (*strata_log_fn)(void *opaque, strata_log_level level,
                              const char *message);

/* Sends the machine's log to fn (from strata_machine_create until
 * strata_machine_free returns) instead of strata's process-wide logger
 * (stderr). Messages below the config key log.level (default warn) are
 * not passed on. fn NULL: back to the process logger. Configuring state
 * only. */
strata_status strata_set_log_handler(strata_machine *m, strata_log_fn fn,
                                     void *opaque);

/* Checks the config and builds the machine: every key known (else the
 * closest known key is suggested), values in range, the kernel and initrd
 * read, the VM created on KVM with its memory (memory.size; amd64: up to
 * 3 GiB from 0, the rest from 4 GiB), platform devices, the declared device
 * instances and the vCPUs, the guest loaded (kernel.path; without it the
 * machine's built-in demo guest) and the boot vCPU set to its entry state
 * (amd64: ELF64 in long mode, ELF32/Multiboot in flat 32-bit protected
 * mode with paging off; the others wait for INIT/SIPI). Nothing runs. On
 * failure the handle stays configuring: a value can be set again and
 * create retried (a key cannot be unset). STRATA_E_BUSY if already
 * created. Not on a vCPU thread. */
strata_status strata_machine_create(strata_machine *m);

/* The number of vCPUs (config key cpus; ids 0..n-1); 0 before creation or
 * for NULL. Any thread. */
uint32_t strata_vcpu_count(const strata_machine *m);

/* ------------------------------------------------------- guest memory -- */

/* Adds a RAM segment of size bytes at guest-physical address gpa (both
 * multiples of 4 KiB), backed as the machine's memory.backing says
 * (anonymous memory with transparent huge pages by default, or its own
 * memfd "strata:<name>"). Changes
 * the memory map: takes the VM write lock, so running vCPUs are stopped
 * for a moment. STRATA_E_ALREADY_EXISTS if it overlaps RAM. Created
 * state, running or stopped; STRATA_E_BUSY while paused (resume first)
 * and on vCPU threads. */
strata_status strata_add_memory(strata_machine *m, const char *name,
                                uint64_t gpa, uint64_t size);

/* Removes the segment that starts at gpa (STRATA_E_NOT_FOUND if none
 * does). Same rules as strata_add_memory. */
strata_status strata_remove_memory(strata_machine *m, uint64_t gpa);

/* Copies len bytes of guest RAM at gpa to dst / from src. The whole range
 * must be RAM (it may span adjacent segments), else STRATA_E_OUT_OF_RANGE
 * and nothing is copied. While the VM runs the guest may change memory at
 * the same time (no ordering is implied); pause for a consistent view.
 * After creation, in every state; allowed in I/O handlers. */
strata_status strata_read_memory(strata_machine *m, uint64_t gpa, void *dst,
                                 size_t len);
strata_status strata_write_memory(strata_machine *m, uint64_t gpa,
                                  const void *src, size_t len);

/* ----------------------------------------------------------- registers -- */

/* The name of register index i of this architecture (amd64: "rax", "rbx",
 * ..., "r15", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8",
 * "efer"), or NULL past the last. Besides these, "pc" and "sp" name the
 * program counter and the stack pointer on every architecture. A static
 * string. Any thread. */
const char *strata_register_name(uint32_t index);

/* Reads / writes a vCPU's register by name (case-insensitive; see
 * strata_register_name). STRATA_E_NOT_FOUND for an unknown name (the
 * closest one is suggested), STRATA_E_OUT_OF_RANGE for a vCPU id >=
 * strata_vcpu_count. After creation, in every state. On a thread that is
 * not a vCPU's, while the VM runs, each call freezes that vCPU for the
 * access (it leaves the guest, completes its current instruction's exit
 * and waits) — fine for inspection, slow in a loop: pause first. A write
 * is what the guest sees when it next runs. On a vCPU thread (an I/O
 * handler) only that vCPU's own registers are accessible: any other vCPU
 * gives STRATA_E_BUSY. */
strata_status strata_get_register(strata_machine *m, uint32_t vcpu,
                                  const char *name, uint64_t *value);
strata_status strata_set_register(strata_machine *m, uint32_t vcpu,
                                  const char *name, uint64_t value);

/* -------------------------------------------------------- I/O handlers -- */

/* The vcpu argument of an access made by no vCPU (a coalesced write
 * replayed by strata). */
#define STRATA_NO_VCPU UINT32_MAX

/* An access to a handler's range: offset from its base, size 1, 2, 4 or 8
 * bytes, values little-endian in the low bytes (a read's result is masked
 * to size). vcpu is the id of the vCPU whose exit it is.
 *
 * Handlers run on that vCPU's thread, with the vCPU out of the guest and
 * waiting for the result; several vCPUs may call the same handler at once.
 * Keep them short. A handler (or anything else on a vCPU thread) may call:
 *   strata_last_error, strata_status_name, strata_abi_version,
 *   strata_arch, strata_register_name, strata_vcpu_count, strata_exit_fd,
 *   strata_config_get, strata_config_dump_json,
 *   strata_read_memory, strata_write_memory,
 *   strata_get_register / strata_set_register of its own vCPU (the
 *     accessing one; its instruction is not complete yet: where the PC
 *     points is the hypervisor's business until the handler returns, and
 *     a register the access itself fills, an x86 `in`'s RAX, is written
 *     after it),
 *   strata_irq_line, strata_msi,
 *   strata_add_io_handler, strata_stop.
 * Everything else returns STRATA_E_BUSY there without waiting: pausing,
 * resuming, waiting for or freeing the machine, another vCPU's registers,
 * removing an I/O handler, adding or removing memory, creating or starting.
 * Those would wait for vCPUs, this one included. A handler must not throw
 * (from C++) or longjmp out. */
typedef uint64_t (*strata_io_read_fn)(void *opaque, uint32_t vcpu,
                                      uint64_t offset, uint32_t size);
typedef void (*strata_io_write_fn)(void *opaque, uint32_t vcpu,
                                   uint64_t offset, uint32_t size,
                                   uint64_t value);

typedef enum strata_space {
  STRATA_SPACE_PIO = 0,  /* x86 port I/O, ports 0..0xffff (amd64 only) */
  STRATA_SPACE_MMIO = 1, /* guest-physical addresses outside RAM */
  /* Not a space: the range of int, so that any value passed is refused
   * with STRATA_E_INVALID_ARGUMENT rather than undefined. */
  STRATA_SPACE_RANGE_ = -0x7fffffff - 1
} strata_space;

/* Claims [base, base + length) of space for read/write with opaque.
 * Either function may be NULL (reads then give all-ones on PIO and zero
 * on MMIO, writes are dropped), not both. STRATA_E_ALREADY_EXISTS if the
 * range overlaps a device or another handler (the message names it),
 * STRATA_E_OUT_OF_RANGE past the space's end. After creation, in every
 * state; the handler sees accesses from the next one on. opaque must stay
 * valid until strata_remove_io_handler or strata_machine_free returns. */
strata_status strata_add_io_handler(strata_machine *m, strata_space space,
                                    uint64_t base, uint64_t length,
                                    strata_io_read_fn read,
                                    strata_io_write_fn write, void *opaque);

/* Removes the handler added at exactly base (STRATA_E_NOT_FOUND if none;
 * the machine's own devices cannot be removed) and waits until no call of
 * it is in progress, so opaque may be freed when it returns. Later
 * accesses are unclaimed (PIO reads all-ones, MMIO zero, writes dropped).
 * STRATA_E_BUSY on a vCPU thread. */
strata_status strata_remove_io_handler(strata_machine *m, strata_space space,
                                       uint64_t base);

/* ---------------------------------------------------------- interrupts -- */

/* Sets an interrupt-controller input to level (1 asserted, 0 deasserted;
 * an edge is 1 then 0). pin is the machine's interrupt number:
 *   amd64 (pc): a GSI, 0-23 (IOAPIC pins; 0-15 also the 8259 pair);
 *   arm64 (virt): a GIC SPI INTID (not implemented yet).
 * STRATA_E_OUT_OF_RANGE for another pin. After creation, in every state;
 * allowed in I/O handlers. */
strata_status strata_irq_line(strata_machine *m, uint32_t pin, int level);

/* strata_msi flags: devid is valid (arm64 GICv3 ITS: the requester's device
 * id, KVM_MSI_VALID_DEVID). */
#define STRATA_MSI_DEVID 1u

/* Signals a message-signalled interrupt: the write of data to address a
 * device would make (amd64: address 0xfeexxxxx with the destination APIC
 * id, data the vector and delivery mode, SDM Vol. 3 §11.11). flags 0 or
 * STRATA_MSI_DEVID (STRATA_E_UNSUPPORTED on amd64, whose MSIs carry no
 * device id). After creation, in every state; allowed in I/O handlers. */
strata_status strata_msi(strata_machine *m, uint64_t address, uint32_t data,
                         uint32_t flags, uint32_t devid);

/* ------------------------------------------------------------- running -- */

/* Starts the machine's device threads, then one host thread per vCPU, and
 * returns. Created state only (STRATA_E_BUSY otherwise: a machine runs
 * once). Not on a vCPU thread. */
strata_status strata_start(strata_machine *m);

/* An eventfd (non-blocking, close-on-exec, owned by m: do not close it)
 * that becomes readable once every vCPU thread has returned, i.e. the VM
 * has stopped; it stays readable. Poll it for POLLIN in your event loop,
 * then call strata_wait. -1 before creation or for NULL. Any thread. */
int strata_exit_fd(const strata_machine *m);

typedef enum strata_exit_kind {
  STRATA_EXIT_POWER_OFF = 0,   /* the guest powered off (ACPI S5, PSCI) */
  STRATA_EXIT_GUEST_EXIT = 1,  /* the guest wrote V to the debug-exit port */
  STRATA_EXIT_RESET = 2,       /* the guest asked for a reset */
  STRATA_EXIT_GUEST_CRASH = 3, /* triple fault, shutdown, crash event */
  STRATA_EXIT_VMM_ERROR = 4,   /* strata or the host failed */
  STRATA_EXIT_STOPPED = 5      /* strata_stop (or strata_machine_free) */
} strata_exit_kind;

/* Why the VM stopped. status is what bhyverun would exit with: 0
 * power-off, (V << 1) | 1 for a guest exit (so V = status >> 1), 2 reset,
 * 4 crash, 6 VMM error, and 0 for STRATA_EXIT_STOPPED. message explains
 * crashes and errors ("" otherwise); it is owned by the machine and valid
 * until strata_machine_free. */
typedef struct strata_exit {
  strata_exit_kind kind;
  int32_t status;
  const char *message;
} strata_exit;

/* Waits until the VM has stopped, joins its vCPU threads, stops its device
 * threads and fills *exit (may be NULL). Later calls return the same exit
 * at once; calls from several threads are serialized. STRATA_E_BUSY if the
 * machine was not started, while it is paused (it could not stop: resume
 * or strata_stop it), or on a vCPU thread. */
strata_status strata_wait(strata_machine *m, strata_exit *exit);

/* Asks the VM to stop and returns without waiting: every vCPU completes
 * its current exit and returns without entering the guest again; a paused
 * machine is resumed for that. The first reason to stop wins: if the guest
 * stopped first, strata_wait reports the guest's. Created or running; a
 * no-op once stopped. Allowed in I/O handlers. */
strata_status strata_stop(strata_machine *m);

/* Pauses a running machine: takes the VM write lock (on a thread of
 * strata's, which holds it until strata_resume), so every vCPU is out of
 * the guest with its last exit completed and parked, and no memory-map
 * change can happen. Returns once that holds. While paused: registers,
 * memory, interrupts, I/O handlers and the config work from any thread;
 * adding or removing memory and strata_wait are STRATA_E_BUSY;
 * strata_stop resumes and stops. STRATA_E_BUSY if not running (started
 * and not yet waited for), already paused, or on a vCPU thread. */
strata_status strata_pause(strata_machine *m);

/* Lets a paused machine run again (each vCPU continues where it stopped,
 * with any register written while paused). STRATA_E_BUSY if it is not
 * paused or on a vCPU thread. */
strata_status strata_resume(strata_machine *m);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* STRATA_H_ */
