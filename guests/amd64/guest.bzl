"""x86_guest: a freestanding x86 guest kernel built with the host's gcc and ld.

The guests are not host code, so they do not go through the C++ toolchain:
a genrule compiles each source with `gcc -ffreestanding` (-m32 or -m64) and
links with `ld -T lib/guest.ld`. No libc or libgcc is linked, so -m32 needs
no gcc-multilib: only gcc's own freestanding headers are used.
"""

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
    "-fcf-protection=none",
    "-fno-common",
    "-mno-red-zone",
    # No SSE/x87 in compiled code: the VMM's entry state need not enable it,
    # and gcc -O2 would otherwise vectorise and spill varargs to XMM.
    "-mgeneral-regs-only",
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
]

_LIB_HDRS = [
    "//guests/common:libc.h",
    "//guests/common:printf.h",
    "//guests/common:report.h",
    "//guests/amd64:lib/acpi.h",
    "//guests/amd64:lib/exceptions.h",
    "//guests/amd64:lib/fw_cfg.h",
    "//guests/amd64:lib/lapic.h",
    "//guests/amd64:lib/layout.h",
    "//guests/amd64:lib/multiboot.h",
    "//guests/amd64:lib/platform.h",
    "//guests/amd64:lib/runtime.h",
    "//guests/amd64:lib/smp.h",
    "//guests/amd64:lib/x86.h",
]

_LIB_COMMON = [
    "//guests/common:printf.c",
    "//guests/common:report.c",
    "//guests/common:string.c",
    "//guests/amd64:lib/acpi.c",
    "//guests/amd64:lib/console.c",
    "//guests/amd64:lib/fw_cfg.c",
    "//guests/amd64:lib/lapic.c",
    "//guests/amd64:lib/runtime.c",
]

_LIB_32 = [
    "//guests/amd64:lib/entry32.S",
    "//guests/amd64:lib/exceptions.c",
    "//guests/amd64:lib/smp.c",
]

_LIB_64 = [
    "//guests/amd64:lib/entry64.S",
    "//guests/amd64:lib/exceptions.c",
]

_LINKER_SCRIPT = "//guests/amd64:lib/guest.ld"

def x86_guest(name, srcs, bits = 32, visibility = None):
    """Builds `<name>.elf` from `srcs` plus the runtime in //guests/amd64:lib/.

    Args:
      name: target name; the output is `<name>.elf`.
      srcs: the guest's own .c/.S files.
      bits: 32 for an ELF32 Multiboot image, 64 for an ELF64 long-mode image.
      visibility: as usual.
    """
    if bits == 32:
        mflag, emulation, lib = "-m32", "elf_i386", _LIB_32
    elif bits == 64:
        mflag, emulation, lib = "-m64", "elf_x86_64", _LIB_64
    else:
        fail("x86_guest: bits must be 32 or 64, not %s" % bits)

    sources = srcs + _LIB_COMMON + lib
    cmd = " && ".join([
        # gcc's own freestanding headers (stdint.h, stdarg.h, ...) only.
        "INC=$$(gcc -print-file-name=include)",
        "OBJDIR=$(@D)/_%s_objs" % name,
        "rm -rf $$OBJDIR",
        "mkdir -p $$OBJDIR",
        "OBJS=",
        "I=0",
        ("for SRC in %s; do I=$$((I+1)); O=$$OBJDIR/$$I.$$(basename $$SRC).o; " +
         "gcc %s %s -isystem $$INC -Iguests/amd64 -Iguests -c $$SRC -o $$O || exit 1; OBJS=\"$$OBJS $$O\"; done") % (
            " ".join(["$(location %s)" % s for s in sources]),
            mflag,
            " ".join(GUEST_CFLAGS),
        ),
        "ld -m %s %s -T $(location %s) -o $@ $$OBJS" % (
            emulation,
            " ".join(GUEST_LDFLAGS),
            _LINKER_SCRIPT,
        ),
        "rm -rf $$OBJDIR",
    ])
    native.genrule(
        name = name,
        srcs = sources + _LIB_HDRS + [_LINKER_SCRIPT],
        outs = [name + ".elf"],
        cmd = cmd,
        message = "Building x86 guest %s (ELF%d)" % (name, bits),
        visibility = visibility,
    )
