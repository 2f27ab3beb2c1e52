"""arm64_guest: a freestanding AArch64 guest kernel built with Debian's cross gcc.

The guests are not host code, so they do not go through a C++ toolchain:
a genrule compiles each source with `aarch64-linux-gnu-gcc -ffreestanding`
and links with `aarch64-linux-gnu-ld -T lib/guest.ld`, then objcopy makes
the raw image. No libc or libgcc is linked; only gcc's own freestanding
headers are used. Works from the normal (amd64 host) build: no
--config=arm64 needed.
"""

CROSS = "aarch64-linux-gnu-"

GUEST_CFLAGS = [
    "-std=gnu11",
    "-ffreestanding",
    "-nostdlib",
    "-nostdinc",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-common",
    # No FP/SIMD in compiled code: the entry state need not enable it
    # (CPACR_EL1.FPEN), and gcc -O2 would otherwise vectorise and spill.
    "-mgeneral-regs-only",
    # No unaligned accesses: the entry code runs with the MMU off, where
    # every access is Device memory and an unaligned one faults.
    "-mstrict-align",
    # Inline LDAXR/STLXR loops for the __atomic builtins: Debian's gcc
    # otherwise calls libgcc's LSE-or-LL/SC helpers, and no libgcc is linked.
    "-mno-outline-atomics",
    "-mbranch-protection=none",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
]

GUEST_LDFLAGS = [
    "-nostdlib",
    "-static",
    "-z noexecstack",
    "-z max-page-size=0x1000",
    "--build-id=none",
    "--no-warn-rwx-segments",
]

_LIB_HDRS = [
    "//guests/common:libc.h",
    "//guests/common:printf.h",
    "//guests/common:report.h",
    "//guests/arm64:lib/arm64.h",
    "//guests/arm64:lib/exceptions.h",
    "//guests/arm64:lib/fdt.h",
    "//guests/arm64:lib/gic.h",
    "//guests/arm64:lib/layout.h",
    "//guests/arm64:lib/platform.h",
    "//guests/arm64:lib/psci.h",
    "//guests/arm64:lib/runtime.h",
    "//guests/arm64:lib/smp.h",
    "//guests/arm64:lib/timer.h",
]

_LIB_SRCS = [
    "//guests/common:printf.c",
    "//guests/common:report.c",
    "//guests/common:string.c",
    "//guests/arm64:lib/entry.S",
    "//guests/arm64:lib/console.c",
    "//guests/arm64:lib/exceptions.c",
    "//guests/arm64:lib/fdt.c",
    "//guests/arm64:lib/gic.c",
    "//guests/arm64:lib/psci.c",
    "//guests/arm64:lib/runtime.c",
    "//guests/arm64:lib/smp.c",
]

_LINKER_SCRIPT = "//guests/arm64:lib/guest.ld"

def arm64_guest(name, srcs, visibility = None):
    """Builds `<name>.elf` and `<name>.flat` from `srcs` plus //guests/arm64:lib/.

    `<name>.flat` is the raw image (objcopy -O binary, starting with an
    arm64 Image header) to load at 0x40080000 and enter at its first byte
    with x0 = the DTB; `<name>.elf` is the same program for debuggers and
    readelf. The target `name` has both outputs; `name + "_flat"` and
    `name + "_elf"` name one each (for $(location) and embedding).

    Args:
      name: target name.
      srcs: the guest's own .c/.S files.
      visibility: as usual.
    """
    sources = srcs + _LIB_SRCS
    elf = name + ".elf"
    flat = name + ".flat"
    cmd = " && ".join([
        # gcc's own freestanding headers (stdint.h, stdarg.h, ...) only.
        "INC=$$(%sgcc -print-file-name=include)" % CROSS,
        "OBJDIR=$(@D)/_%s_objs" % name,
        "rm -rf $$OBJDIR",
        "mkdir -p $$OBJDIR",
        "OBJS=",
        "I=0",
        ("for SRC in %s; do I=$$((I+1)); O=$$OBJDIR/$$I.$$(basename $$SRC).o; " +
         "%sgcc %s -isystem $$INC -Iguests/arm64 -Iguests -c $$SRC -o $$O || exit 1; OBJS=\"$$OBJS $$O\"; done") % (
            " ".join(["$(location %s)" % s for s in sources]),
            CROSS,
            " ".join(GUEST_CFLAGS),
        ),
        "%sld %s -T $(location %s) -o $(location %s) $$OBJS" % (
            CROSS,
            " ".join(GUEST_LDFLAGS),
            _LINKER_SCRIPT,
            elf,
        ),
        "%sobjcopy -O binary $(location %s) $(location %s)" % (CROSS, elf, flat),
        "rm -rf $$OBJDIR",
    ])
    native.genrule(
        name = name,
        srcs = sources + _LIB_HDRS + [_LINKER_SCRIPT],
        outs = [elf, flat],
        cmd = cmd,
        message = "Building arm64 guest %s" % name,
        visibility = visibility,
    )
    native.filegroup(
        name = name + "_flat",
        srcs = [flat],
        visibility = visibility,
    )
    native.filegroup(
        name = name + "_elf",
        srcs = [elf],
        visibility = visibility,
    )
