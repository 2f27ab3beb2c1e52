#!/usr/bin/env python3
"""Runs kvm-unit-tests under bhyverun (scripts/kut.sh is the entry point).

Reads <KUT_TREE>/x86/unittests.cfg as KUT's own scripts do
(scripts/common.bash, scripts/runtime.bash): each [section] is a test with
file, smp, test_args, qemu_params/extra_params, timeout (default 90 s),
groups, arch, accel, check and disabled_if. Every test, or the ones named,
runs under bhyverun with its options translated (translate_params): -smp,
-m, -append, -initrd, -cpu with the models and flags strata's CPUID policy
can honour, and the devices strata has. A test whose options ask for
something strata cannot provide is SKIPped with the option named, never run
without it. The env file KUT's scripts would make (TARGET, QEMU_ACCEL, the
host kernel's version and the ERRATA_<sha>=y lines of errata.txt that it
satisfies, merged with $KVM_UNIT_TESTS_ENV) is the Multiboot module.

Status as KUT's runner computes it (scripts/arch-run.bash,
qemu_fixup_return_code): bhyverun's (code << 1) | 1 exit status 1 is PASS
unless stderr holds anything but warnings, 77 is SKIP, a timeout is FAIL
(status 124), anything else FAIL. Prints `PASS|FAIL|SKIP <test> (<detail>)`
per test and `N passed, N failed, N skipped`; --json writes a report with
each test's status, seconds, SUMMARY line and first error line.

arm64 (--arch arm64, the default for a tree whose config.mak says
ARCH=arm64): <KUT_TREE>/arm/unittests.cfg, read by the same parser. smp is
expanded with $MAX_SMP (--max-smp); the QEMU options become bhyverun's
(translate_params_arm): -smp, -m, -append, -initrd, -cpu host|max|
cortex-a57 (strata gives the guest the host's CPU; other models SKIP),
-machine virt,gic-version=2|3|host|max -> -o arm64.gic_version=2|3|auto,
-accel kvm, -serial stdio; -machine mte=on, -chardev, a -device strata
lacks SKIP naming it. The migration group runs under strata: at each
migration point the guest prints (lib/migrate.c) bhyverun saves the VM on
SIGUSR2 (--save-on-signal) and a new bhyverun --restore continues it with
a key on stdin (run_migration; kut_migrate in the nested L1); under --vmm
qemu it SKIPs (KUT drives QEMU's QMP, which kut.py does not). The
env file is the initrd, as KUT's arm/run passes it. A tree configured with
--target=kvmtool (config.mak TARGET=kvmtool: UART ns16550a at 0x01000000)
runs from its kvmtool_params (translate_kvmtool, shared with
scripts/strata-lkvm) on -o arm64.layout=kvmtool, with TARGET=kvmtool in the
env and for disabled_if. bhyverun's exit status is the guest's
`EXIT: STATUS=n` (KUT's exit()), so the status rules are the x86 ones.
--vmm qemu runs qemu-system-aarch64 as KUT's arm/run does (-machine
virt,gic-version=host -accel kvm -cpu host, chr-testdev, pci-testdev);
--qemu-accel tcg (or STRATA_KUT_QEMU_ACCEL=tcg) runs it with -accel tcg
-cpu cortex-a57 instead, to check that path on any host.

The arm64 bhyverun runs only inside the nested EL2 testbed:

    scripts/nested.sh el2-nvhe --kut /work/kut-arm64 [--kut-vmm qemu]

plans the tests (--plan: plan.sh lines `kut_case NAME LIMIT /bin/bhyverun
-k /kut/arm/<file>.flat -c N -i /kut/env ...`, plan.json with "dir": "arm"
and the .flat files to copy into the L1's /kut/arm/) and classifies the
L1's log (--results-from). For a --target=kvmtool tree KUT's own runner
also works, in the L1 or on an arm64 host, through the kvmtool-compatible
front: KVMTOOL=strata-lkvm ./run_tests.sh.
"""
import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TIMEOUT = 90.0

# -cpu models: for these strata gives every vCPU the host's KVM-supported
# CPUID, filtered by its policy (arch/amd64/cpuid.h): their tests expect no
# more than that. A named model (Opteron_G1, IvyBridge, ...) goes to
# x86.cpu_model when bhyverun knows it (arch/amd64/cpu_models.h, probed).
CPU_MODELS = {"qemu64", "kvm64", "max", "host"}
# -cpu flags with a strata config key of their own (flag -> key); every
# other flag goes to x86.cpu_features, whose names bhyverun checks (probe).
CPU_FLAGS = {
    "x2apic": "x86.x2apic",
    "tsc-deadline": "x86.tsc_deadline",
}
# What bhyverun says when KVM on this host lacks a feature a test forces on:
# the test cannot run as configured, so it is skipped, naming the feature.
NO_HOST_SUPPORT = "is not supported by KVM on this host"
# Flags that change nothing under strata: strata's guest physical-address
# width is the host's already, and nothing migrates.
CPU_NOOP_FLAGS = {"host-phys-bits", "migratable"}
VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}
# QEMU's Hyper-V flags (hv_passthrough, hv-time, hv_stimer_direct=on, ...)
# become x86.hyperv: passthrough and the features strata names as QEMU does
# without "hv-" (bhyverun checks the names: probe); hv-vendor-id is
# x86.hyperv_vendor_id. Any other hv flag (hv-evmcs, hv-syndbg,
# hv-spinlocks=N, ...) is unsupported and named.
HV_PREFIXES = ("hv-", "hv_")


class Unsupported(Exception):
    """A test option strata cannot provide (the test is skipped)."""


def parse_cfg(path):
    """The tests of a unittests.cfg, in order, as dicts of their keys."""
    tests, cur, key = [], None, None
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if key and cur is not None and cur[key].endswith("\\"):
                cur[key] = cur[key][:-1] + " " + line.strip()  # continuation
                continue
            key = None
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = re.match(r"^\[(.+)\]$", s)
            if m:
                cur = {"name": m.group(1)}
                tests.append(cur)
                continue
            m = re.match(r"^([a-z_]+)\s*=\s*(.*)$", s)
            if m and cur is not None:
                key = m.group(1)
                cur[key] = m.group(2).strip()
                if cur[key].startswith('"""'):
                    # KUT's multi-line value (scripts/common.bash): up to
                    # a line ending in """, backslash-newline joined.
                    text = cur[key][3:]
                    while not text.rstrip().endswith('"""'):
                        more = f.readline()
                        if not more:
                            break
                        text += "\n" + more.rstrip("\n")
                    text = text.rstrip()
                    text = text[:-3] if text.endswith('"""') else text
                    cur[key] = text.replace("\\\n", " ").strip()
                    key = None
    return tests


def shell_words(text, env=None):
    """Words of text as bash's eval makes them (quotes, backticks), with
    `env` (variables such as MAX_SMP) added to the environment."""
    if not text:
        return []
    out = subprocess.run(
        ["bash", "-c", 'eval "set -- $1"; (($#)) && printf "%s\\0" "$@"; :',
         "kut", text],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, **env) if env else None)
    return [w for w in out.stdout.split("\0")[:-1]]


def memory_arg(value):
    m = re.fullmatch(r"(\d+)([kKmMgGtT]?)[bB]?", value)
    if not m:
        raise Unsupported(f"-m {value}: not a size")
    return m.group(1) + (m.group(2).upper() or "M")


def translate_hyperv(flag, name, on, hyperv, caps):
    """One Hyper-V -cpu flag (`name` without its hv- prefix, on or off)
    into x86.hyperv's items, appended to `hyperv`."""
    name = name.replace("_", "-")
    if name == "passthrough":
        if on:
            hyperv.append("passthrough")
        return
    if caps["hyperv"](name):
        hyperv.append(name if on else "-" + name)
        return
    raise Unsupported(f"-cpu flag {flag}: strata has no Hyper-V '{name}' "
                      f"(x86.hyperv)")


def translate_cpu(spec, args, caps):
    parts = spec.split(",")
    model, flags = parts[0], parts[1:]
    if model not in CPU_MODELS:
        if not caps["model"](model):
            raise Unsupported(f"-cpu {model}: not a model strata has (the "
                              f"host's KVM CPUID for "
                              f"{', '.join(sorted(CPU_MODELS))}; named ones: "
                              f"bhyverun -h, x86.cpu_model)")
        args += ["-o", f"x86.cpu_model={model}"]
    features, hyperv = [], []
    for flag in flags:
        if flag.startswith(HV_PREFIXES):
            name, eq, value = flag[3:].partition("=")
            if name.replace("_", "-") == "vendor-id" and eq:
                args += ["-o", f"x86.hyperv_vendor_id={value}"]
                continue
            if eq and value not in ("on", "off", "yes", "no", "true",
                                    "false"):
                raise Unsupported(f"-cpu flag {flag}: strata has no Hyper-V "
                                  f"setting '{name}'")
            translate_hyperv(flag, name, not eq or value in ("on", "yes",
                                                               "true"),
                             hyperv, caps)
            continue
        if flag.startswith(("+", "-")):
            name, on = flag[1:], flag[0] == "+"
        elif "=" in flag:
            name, value = flag.split("=", 1)
            if name == "vendor":
                if value not in VENDORS:
                    raise Unsupported(f"-cpu vendor={value}")
                args += ["--cpu-vendor", VENDORS[value]]
                continue
            if value not in ("on", "off", "yes", "no", "true", "false"):
                raise Unsupported(f"-cpu {flag}")
            on = value in ("on", "yes", "true")
        else:
            name, on = flag, True
        if name in CPU_NOOP_FLAGS:
            continue
        if name.startswith(HV_PREFIXES):  # +hv-time, -hv_synic
            translate_hyperv(flag, name[3:], on, hyperv, caps)
        elif name in CPU_FLAGS:
            args += ["-o", f"{CPU_FLAGS[name]}={'true' if on else 'false'}"]
        elif caps["feature"](name):
            features.append(("+" if on else "-") + name)
        else:
            raise Unsupported(f"-cpu flag {flag}: strata's CPUID policy has "
                              f"no control for it")
    if features:
        # As QEMU on KVM does: a flag the host lacks is dropped, with a
        # warning (KUT's runner allows warnings on stderr).
        args += ["-o", "x86.cpu_features=" + ",".join(features),
                 "-o", "x86.cpu_features_missing=drop"]
    if any(not h.startswith("-") for h in hyperv):
        # QEMU refuses a Hyper-V feature KVM lacks; so does bhyverun, saying
        # NO_HOST_SUPPORT, which classify() makes a SKIP naming it. (Only
        # "off"s enable nothing, as in QEMU.)
        args += ["-o", "x86.hyperv=" + ",".join(hyperv)]


def translate_params(words, caps):
    """bhyverun arguments and the extra -append text for QEMU options."""
    args, append = [], []
    i = 0

    def value():
        nonlocal i
        if i + 1 >= len(words):
            raise Unsupported(f"{words[i]} without a value")
        i += 1
        return words[i]

    while i < len(words):
        w = words[i]
        opt = "-" + w.lstrip("-")
        if opt == "-cpu":
            translate_cpu(value(), args, caps)
        elif opt == "-m":
            args += ["-m", memory_arg(value())]
        elif opt == "-smp":
            args += ["-c", value().split(",")[0].replace("cpus=", "")]
        elif opt == "-append":
            append.append(value())
        elif opt == "-initrd":
            args += ["-i", value()]
        elif opt in ("-enable-kvm",):
            pass
        elif opt == "-accel":
            v = value()
            if v != "kvm":
                raise Unsupported(f"{w} {v}")
        elif opt in ("-machine", "-M"):
            v = value()
            for prop in v.split(","):
                if prop in ("pit=off", "pit=on"):
                    args += ["-o", f"x86.pit={'false' if prop == 'pit=off' else 'true'}"]
                elif prop == "vmport=on" and caps["vmport"]:
                    # VMware's backdoor port (arch/amd64/platform/pc_vmport.h).
                    args += ["-o", "platform.vmport.device=vmport"]
                elif prop not in ("accel=kvm", "pc", "vmport=off"):
                    raise Unsupported(f"{w} {v}")
        elif opt == "-overcommit":
            v = value()
            for prop in v.split(","):
                if prop in ("cpu-pm=on", "cpu-pm=off"):
                    args += ["-o", f"x86.cpu_pm={'true' if prop == 'cpu-pm=on' else 'false'}"]
                else:
                    raise Unsupported(f"{w} {v}")
        elif opt == "-device":
            dev = value().split(",")[0]
            if dev == "pci-testdev" and caps["pci-testdev"]:
                pass  # added to every test when strata has it
            elif dev in ("isa-debug-exit", "pc-testdev"):
                pass  # always present
            elif dev == "hyperv-testdev" and caps["hyperv-testdev"]:
                # QEMU's control port at 0x3000 (devices/hyperv_testdev.h).
                args += ["-o", "platform.hvtestdev.device=hyperv-testdev"]
            else:
                raise Unsupported(f"-device {dev}")
        else:
            raise Unsupported(f"QEMU option {w}")
        i += 1
    return args, append


# --- arm64 (arm/unittests.cfg) ---
# -cpu models: strata gives every vCPU the host's CPU (KVM's preferred
# target), whatever the model: `host` and `max` are that; cortex-a57 is
# KUT's default PROCESSOR and the model the nested testbed's L1 runs as.
ARM_CPU_MODELS = {"host", "max", "cortex-a57"}
# -machine gic-version values -> arm64.gic_version (host/max: the host's).
ARM_GIC_VERSIONS = {"2": "2", "3": "3", "host": "auto", "max": "auto"}
# --irqchip (kvmtool) -> strata config.
KVMTOOL_IRQCHIPS = {
    "gicv2": ["-o", "arm64.gic_version=2"],
    "gicv3": ["-o", "arm64.gic_version=3", "-o", "arm64.its=false"],
    "gicv3-its": ["-o", "arm64.gic_version=3", "-o", "arm64.its=true"],
}
KVMTOOL_LOGLEVELS = {"error": "error", "warning": "warn", "info": "info",
                     "debug": "debug"}


def translate_params_arm(words, caps):
    """bhyverun arguments and the extra -append text for the QEMU options
    of an arm/unittests.cfg test (or of KUT's arm/run)."""
    args, append = [], []
    i = 0

    def value():
        nonlocal i
        if i + 1 >= len(words):
            raise Unsupported(f"{words[i]} without a value")
        i += 1
        return words[i]

    while i < len(words):
        w = words[i]
        opt = "-" + w.lstrip("-")
        if opt == "-cpu":
            v = value()
            model, *flags = v.split(",")
            if model not in ARM_CPU_MODELS:
                raise Unsupported(
                    f"-cpu {model}: strata gives the guest the host's CPU "
                    f"(models {', '.join(sorted(ARM_CPU_MODELS))})")
            for flag in flags:
                if flag in ("pmu=on", "pmu=off"):
                    args += ["-o", f"arm64.pmu={'true' if flag == 'pmu=on' else 'false'}"]
                else:
                    raise Unsupported(f"-cpu {model},{flag}")
        elif opt == "-m":
            args += ["-m", memory_arg(value())]
        elif opt == "-smp":
            args += ["-c", value().split(",")[0].replace("cpus=", "")]
        elif opt == "-append":
            append.append(value())
        elif opt == "-initrd":
            args += ["-i", value()]
        elif opt == "-enable-kvm":
            pass
        elif opt == "-accel":
            v = value()
            if v.split(",")[0] != "kvm":
                raise Unsupported(f"{w} {v}")
        elif opt in ("-machine", "-M"):
            v = value()
            for prop in v.split(","):
                name, _, val = prop.partition("=")
                if prop in ("virt", "accel=kvm") or name == "type" and \
                        val == "virt":
                    continue
                if name == "gic-version" and val in ARM_GIC_VERSIONS:
                    args += ["-o", f"arm64.gic_version={ARM_GIC_VERSIONS[val]}"]
                elif name == "mte" and val in ("on", "off"):
                    # The Memory Tagging Extension through KVM_CAP_ARM_MTE;
                    # a host without it is a SKIP (NO_HOST_SUPPORT).
                    args += ["-o", f"arm64.mte={'true' if val == 'on' else 'false'}"]
                else:
                    raise Unsupported(f"{w} {prop}")
        elif opt == "-device":
            dev = value().split(",")[0]
            # pci-testdev is added to every test when strata has it. (No
            # `continue` here: the loop's i += 1 must step past the value.)
            if dev != "pci-testdev" or not caps["pci-testdev"]:
                raise Unsupported(f"-device {dev}")
        elif opt == "-serial":
            v = value()
            if v != "stdio":
                raise Unsupported(f"-serial {v}: the UART is stdio")
        elif opt == "-chardev":
            raise Unsupported(f"-chardev {value()}")
        else:
            raise Unsupported(f"QEMU option {w}")
        i += 1
    return args, append


def translate_kvmtool(words):
    """kvmtool `run` options (KUT's kvmtool_params, or what KUT's arm/run
    passes to $KVMTOOL) as (bhyverun arguments, -append text, kernel or
    None). As kvmtool: no --pmu, no PMU; no --irqchip, the host's GIC."""
    args, append, kernel, pmu = [], [], None, False
    i = 0
    short = {"-c": "--cpus", "-m": "--mem", "-k": "--kernel",
             "-i": "--initrd", "-p": "--params", "-f": "--firmware",
             "-n": "--network", "-d": "--disk"}

    def value(opt, inline):
        nonlocal i
        if inline is not None:
            return inline
        if i + 1 >= len(words):
            raise Unsupported(f"{opt} without a value")
        i += 1
        return words[i]

    while i < len(words):
        w = words[i]
        opt, eq, inline = w.partition("=")
        inline = inline if eq else None
        if opt in short:
            opt = short[opt]
        elif len(opt) > 2 and opt[0] == "-" and opt[1] != "-" and \
                opt[:2] in short:
            opt, inline = short[opt[:2]], opt[2:]   # -c2, -m256
        if opt == "--kernel":
            kernel = value(opt, inline)
        elif opt == "--cpus":
            args += ["-c", value(opt, inline)]
        elif opt == "--mem":
            v = value(opt, inline)
            if "@" in v:
                raise Unsupported(f"--mem {v}: the RAM base is the layout's")
            args += ["-m", memory_arg(v)]
        elif opt == "--params":
            append.append(value(opt, inline))
        elif opt == "--initrd":
            args += ["-i", value(opt, inline)]
        elif opt == "--irqchip":
            v = value(opt, inline)
            if v not in KVMTOOL_IRQCHIPS:
                raise Unsupported(f"--irqchip {v}")
            args += KVMTOOL_IRQCHIPS[v]
        elif opt == "--pmu" and inline is None:
            pmu = True
        elif opt in ("--nodefaults", "--disable-mte", "--no-pvtime") and \
                inline is None:
            pass  # strata adds nothing to the command line, has no MTE
            # for the guest and no stolen-time device
        elif opt == "--network":
            v = value(opt, inline)
            if v != "mode=none":
                raise Unsupported(f"--network {v}: strata has no network")
        elif opt == "--console":
            v = value(opt, inline)
            if v != "serial":
                raise Unsupported(f"--console {v}: the console is the UART")
        elif opt == "--loglevel":
            v = value(opt, inline)
            if v not in KVMTOOL_LOGLEVELS:
                raise Unsupported(f"--loglevel {v}")
            args += ["-l", KVMTOOL_LOGLEVELS[v]]
        elif opt == "--dump-dtb":
            args += ["--dump-dtb", value(opt, inline)]
        elif opt.startswith("-"):
            raise Unsupported(f"kvmtool option {opt}")
        else:
            raise Unsupported(f"kvmtool argument {w}")
        i += 1
    if not pmu:
        args += ["-o", "arm64.pmu=false"]
    return args, append, kernel


def kernel_version():
    rel = platform.release()
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", rel)
    nums = [int(x) if x else 0 for x in m.groups()] if m else [0, 0, 0]
    return rel, nums


def errata_lines(tree):
    """ERRATA_<commit>=y for each errata.txt entry this host kernel has."""
    path = os.path.join(tree, "errata.txt")
    out = []
    if not os.path.exists(path):
        return out
    _, have = kernel_version()
    for raw in open(path):
        line = raw.split("#", 1)[0].replace(" ", "").replace("\t", "")
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            continue
        want = [int(x) for x in re.findall(r"\d+", fields[1])[:3]]
        want += [0] * (3 - len(want))
        if have >= want and not os.environ.get(f"ERRATA_{fields[0]}"):
            out.append(f"ERRATA_{fields[0]}=y")
    return out


def write_env(tree, directory, target="qemu", accel="kvm"):
    """The env file; `target` is the tree's TARGET (config.mak: qemu, or
    kvmtool, whose env has no QEMU_ACCEL), `accel` QEMU's (tcg: with
    ERRATA_FORCE=y, as KUT's env_errata)."""
    rel, (v, p, s) = kernel_version()
    lines = [f"TARGET={target}"]
    if target == "qemu":
        lines.append(f"QEMU_ACCEL={accel}")
    if accel == "tcg":
        lines.append("ERRATA_FORCE=y")
    lines += [f"KERNEL_VERSION_STRING={rel}", f"KERNEL_VERSION={v}",
              f"KERNEL_PATCHLEVEL={p}", f"KERNEL_SUBLEVEL={s}",
              "KERNEL_EXTRAVERSION="]
    old = os.environ.get("KVM_UNIT_TESTS_ENV")
    if old and os.path.exists(old):
        keys = {l.split("=", 1)[0] for l in lines}
        for l in open(old):
            l = l.strip()
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", l) and \
                    l.split("=", 1)[0] not in keys:
                lines.append(l)
    lines += [e for e in errata_lines(tree)
              if e.split("=")[0] not in {l.split("=")[0] for l in lines}]
    path = os.path.join(directory, "env")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def timeout_seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        return DEFAULT_TIMEOUT
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600,
                                "d": 86400}[m.group(2)]


def first_error(out, err):
    for line in out.splitlines():
        if line.startswith("FAIL") or "abort" in line.lower():
            return line.strip()
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    errors = [l for l in lines if "warn" not in l.lower()]
    return (errors or lines or [""])[0]


# The command KUT's x86/run builds for QEMU (with pc-testdev, isa-debug-exit
# and pci-testdev, KVM), for --vmm qemu: the baseline in the same run.
QEMU_FIXED = ["--no-reboot", "-nodefaults",
              "-global", "kvm-pit.lost_tick_policy=discard",
              "-device", "pc-testdev",
              "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
              "-display", "none", "-serial", "stdio",
              "-device", "pci-testdev", "-machine", "accel=kvm"]


# What a tree's tests run on: the directory of unittests.cfg and the .flat
# files, KUT's TARGET (config.mak) and the accelerator KUT's scripts see.
X86 = {"name": "x86", "dir": "x86", "target": "qemu", "accel": "kvm"}


def arm64_profile(target="qemu", accel="kvm", max_smp=1):
    return {"name": "arm64", "dir": "arm", "target": target, "accel": accel,
            "max_smp": max_smp}


# The command KUT's arm/run builds for QEMU (mach-virt, chr-testdev for
# the exit status, pci-testdev), for --vmm qemu; ACCEL and -cpu are added.
QEMU_ARM_FIXED = ["-nodefaults", "-machine", "virt"]
QEMU_ARM_DEVICES = ["-device", "virtio-serial-device",
                    "-device", "virtconsole,chardev=ctd",
                    "-chardev", "testdev,id=ctd",
                    "-device", "pci-testdev",
                    "-display", "none", "-serial", "stdio"]


def prepare(t, tree, bhyverun, caps, env_path, arch, explicit, qemu=None,
            prof=X86, checks=True):
    """("SKIP"|"FAIL", detail) for a test that does not run, else
    (None, command): bhyverun's, or with `qemu` (a binary) QEMU's. `checks`:
    evaluate the test's `check` lines here (not for --plan: they are the
    L1's)."""
    if t.get("excluded"):
        return "SKIP", "excluded on the command line (--exclude)"
    groups = t.get("groups", "").split()
    if "nodefault" in groups and not explicit:
        return "SKIP", "test marked as manual run only"
    if t.get("arch") and t["arch"] != arch:
        return "SKIP", f"{t['arch']} only"
    accel = t.get("accel", "")
    if accel and accel != prof["accel"]:
        if prof["accel"] != "kvm":
            return "SKIP", f"{accel} only, but ACCEL={prof['accel']}"
        return "SKIP", f"{accel} only, strata is kvm"
    if t.get("disabled_if"):
        r = subprocess.run(["bash", "-c", t["disabled_if"]],
                           env=dict(os.environ, TARGET=prof["target"],
                                    ACCEL=prof["accel"]))
        if r.returncode == 0:
            return "SKIP", f"disabled because: {t['disabled_if']}"
    for c in t.get("check", "").split() if checks else []:
        path, _, want = c.partition("=")
        try:
            have = open(path).read().strip()
        except OSError:
            have = None
        if have != want:
            return "SKIP", f"{path} not equal to {want}"
    kernel = os.path.join(tree, prof["dir"], t.get("file", ""))
    if not os.path.isfile(kernel):
        return "SKIP", f"Test file '{kernel}' not found"
    if prof["name"] == "arm64":
        return prepare_arm(t, kernel, bhyverun, caps, env_path, qemu, prof)
    if qemu:
        try:
            params = shell_words(t.get("qemu_params", "") + " " +
                                 t.get("extra_params", ""))
            test_args = shell_words(t.get("test_args", ""))
        except subprocess.CalledProcessError as e:
            return "FAIL", f"cannot expand the test's options: {e}"
        cmd = [qemu] + QEMU_FIXED + ["-kernel", kernel,
                                     "-smp", t.get("smp", "1")]
        if test_args:
            cmd += ["-append", " ".join(test_args)]
        return None, cmd + params + ["-initrd", env_path]
    try:
        params = shell_words(t.get("qemu_params", "") + " " +
                             t.get("extra_params", ""))
        extra, append = translate_params(params, caps)
        test_args = shell_words(t.get("test_args", ""))
    except Unsupported as e:
        return "SKIP", f"not supported by strata: {e}"
    except subprocess.CalledProcessError as e:
        return "FAIL", f"cannot expand the test's options: {e}"
    cmd = [bhyverun, "-k", kernel, "-c", t.get("smp", "1"), "-i", env_path]
    if caps["pci-testdev"]:
        cmd += ["-o", "pci.0.3.0.device=pci-testdev"]
    cmd += extra
    args = " ".join(test_args + append)
    if args:
        cmd += ["-a", args]
    return None, cmd


def prepare_arm(t, kernel, bhyverun, caps, env_path, qemu, prof):
    """prepare() for an arm/unittests.cfg test whose file exists."""
    kvmtool = prof["target"] == "kvmtool"
    if is_migration(t) and qemu:
        # KUT's run_migration drives QEMU's QMP (migrate, -incoming); the
        # test waits for it at its migration point.
        return "SKIP", ("migration: KUT's run_migration (QMP migrate, "
                        "-incoming) is not driven by kut.py")
    # strata's migration tests run like the others; the runner migrates
    # them with bhyverun's snapshots (run_migration here, kut_migrate in
    # the nested L1).
    try:
        smp = " ".join(shell_words(t.get("smp", "1"),
                                   {"MAX_SMP": str(prof["max_smp"])}))
        params = shell_words(t.get("kvmtool_params", "") if kvmtool else
                             t.get("qemu_params", "") + " " +
                             t.get("extra_params", ""))
        test_args = shell_words(t.get("test_args", ""))
    except subprocess.CalledProcessError as e:
        return "FAIL", f"cannot expand the test's options: {e}"
    if qemu:
        tcg = prof["accel"] == "tcg"
        cmd = [qemu] + QEMU_ARM_FIXED
        if not tcg:
            cmd[-1] += ",gic-version=host"
        cmd += ["-accel", prof["accel"], "-cpu",
                "cortex-a57" if tcg else "host"] + QEMU_ARM_DEVICES + [
                "-kernel", kernel, "-smp", smp]
        if test_args:
            cmd += ["-append", " ".join(test_args)]
        return None, cmd + params + ["-initrd", env_path]
    try:
        if kvmtool:
            extra, append, _ = translate_kvmtool(params)
        else:
            extra, append = translate_params_arm(params, caps)
    except Unsupported as e:
        return "SKIP", f"not supported by strata: {e}"
    cmd = [bhyverun, "-k", kernel, "-c", smp, "-i", env_path]
    if kvmtool:
        cmd += ["-o", "arm64.layout=kvmtool"]
    elif caps["pci-testdev"]:
        cmd += ["-o", "pci.0.3.0.device=pci-testdev"]
    cmd += extra
    args = " ".join(test_args + append)
    if args:
        cmd += ["-a", args]
    return None, cmd


def is_migration(t):
    return "migration" in t.get("groups", "").split()


# What a kvm-unit-tests guest prints when it waits for the harness to
# migrate it and then send a key (lib/migrate.c): every form is a migration
# point here (for "Skipped VM migration" the migration is not needed, and
# harmless).
MIGRATION_POINT = re.compile(r"Now migrate the VM|Skipped VM migration|"
                             r"(Begin|End) continuous migration")
SAVED_NOTICE = "bhyverun: snapshot saved to "


def run_migration(cmd, limit, snap_dir):
    """Runs bhyverun `cmd`, migrating the VM at each migration point: SIGUSR2
    saves it (bhyverun --save-on-signal exits 0), a new bhyverun --restore
    continues it with a key on stdin. (ret, out, err, migrations): the last
    instance's status (124 past `limit`), every instance's output."""
    deadline = time.monotonic() + limit
    snap = os.path.join(snap_dir, "migrate.snap")
    prev = os.path.join(snap_dir, "migrate.prev")
    argv, stdin, migrations = cmd + ["--save-on-signal", snap], b"", 0
    outs, errs = [], []
    while True:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        if stdin:
            p.stdin.write(stdin)
        p.stdin.close()
        out = bytearray()
        os.set_blocking(p.stdout.fileno(), False)
        # stderr is drained by a thread of its own, so a chatty VMM cannot
        # fill the pipe and stall while stdout is polled here.
        err_chunks = []
        drain = threading.Thread(
            target=lambda f=p.stderr: err_chunks.append(f.read()))
        drain.start()
        signalled = False
        while p.poll() is None:
            chunk = p.stdout.read()
            if chunk:
                out += chunk
            if not signalled and MIGRATION_POINT.search(
                    out.decode(errors="replace")):
                p.send_signal(signal.SIGUSR2)
                signalled = True
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                drain.join()
                outs.append(out.decode(errors="replace"))
                return 124, "".join(outs), "".join(errs), migrations
            time.sleep(0.05)
        out += p.stdout.read() or b""
        drain.join()
        err = b"".join(err_chunks).decode(errors="replace")
        outs.append(out.decode(errors="replace"))
        errs.append("".join(l for l in err.splitlines(True)
                            if SAVED_NOTICE not in l))
        if p.returncode == 0 and SAVED_NOTICE in err:
            migrations += 1
            os.replace(snap, prev)
            argv = [cmd[0], "--restore", prev, "--save-on-signal", snap]
            stdin = b"\n"
            continue
        return p.returncode, "".join(outs), "".join(errs), migrations


def classify(ret, out, err, limit):
    """(status, detail, summary, first error) from bhyverun's exit status
    and output, by KUT's rules (module comment)."""
    summaries = [l for l in out.splitlines() if l.startswith("SUMMARY: ")]
    summary = summaries[-1][len("SUMMARY: "):] if summaries else ""
    first = first_error(out, err)
    if ret != 1 and NO_HOST_SUPPORT in err:
        line = next(l for l in err.splitlines() if NO_HOST_SUPPORT in l)
        return "SKIP", line.split(": ")[-1].strip(), summary, first
    if ret == 1:
        bad = [l for l in err.splitlines()
               if l.strip() and "warn" not in l.lower()]
        if bad:
            return "FAIL", f"stderr: {bad[0].strip()}", summary, first
        return "PASS", summary, summary, first
    if ret == 77:
        return "SKIP", summary, summary, first
    if ret == 124:
        return "FAIL", f"timeout; duration={limit:g}s", summary, first
    if ret < 0:
        return ("FAIL", f"terminated on {signal.Signals(-ret).name}", summary,
                first)
    return "FAIL", summary or f"exit status {ret}: {first}", summary, first


def test_limit(t, timeout_override):
    return timeout_override or timeout_seconds(t.get("timeout", "90"))


def run_one(t, tree, bhyverun, caps, env_path, timeout_override, arch,
            explicit, qemu=None, prof=X86):
    """(status, detail, record) of one test."""
    rec = {"name": t["name"], "status": None, "seconds": 0.0, "summary": "",
           "first_error": "", "command": []}

    def done(status, detail):
        rec["status"], rec["detail"] = status, detail
        return status, detail, rec

    status, cmd = prepare(t, tree, bhyverun, caps, env_path, arch, explicit,
                          qemu, prof)
    if status:
        return done(status, cmd)
    rec["command"] = cmd
    limit = test_limit(t, timeout_override)
    start = time.monotonic()
    if is_migration(t) and not qemu:
        with tempfile.TemporaryDirectory(prefix="strata-migrate.") as snaps:
            ret, out, err, rec["migrations"] = run_migration(cmd, limit,
                                                             snaps)
    else:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace",
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=limit)
            ret = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            ret = 124
    rec["seconds"] = round(time.monotonic() - start, 3)
    rec["exit_status"] = ret
    status, detail, rec["summary"], rec["first_error"] = classify(
        ret, out, err, limit)
    rec["stdout"], rec["stderr"] = out[-4000:], err[-4000:]
    return done(status, detail)


# --- Running inside a nested testbed's L1 (scripts/nested.sh --kut) ---
# The L1 has busybox, not python: --plan writes the translated commands as
# a shell script of `kut_case NAME LIMIT COMMAND...` lines (paths as the L1
# sees them; a test with `check` lines gets them evaluated there first,
# `kut_check NAME CHECKS && kut_case ...`) and the tests that do not run;
# tests/nested/init.sh runs it and prints "nested-kut:" lines;
# --results-from classifies them here by the same rules.
L1_TREE, L1_BHYVERUN, L1_QEMU = "/kut", "/bin/bhyverun", "/bin/qemu"


DYNAMIC_ARGS = "@KUT_TEST_ARGS@"


def dynamic_word(word, raw_args):
    """A plan word holding DYNAMIC_ARGS as a shell word that makes the
    test's arguments in the L1 ("$(kut_args ...)"), the rest quoted."""
    before, _, after = word.partition(DYNAMIC_ARGS)
    return ((shlex.quote(before) if before else "") +
            f'"$(kut_args {shlex.quote(raw_args)})"' +
            (shlex.quote(after) if after else ""))


def write_plan(plan_dir, tree, chosen, bhyverun, caps, env_path, timeout,
               arch, explicit, qemu=None, prof=X86):
    os.makedirs(plan_dir, exist_ok=True)
    shutil.copy(env_path, os.path.join(plan_dir, "env"))
    entries, lines, files = [], [], set()
    for t in chosen:
        # test_args with a command substitution (kvmclock_test's
        # `date +%s`) are made in the L1 when the test runs (init.sh's
        # kut_args), not here: a placeholder stands for them in the plan.
        raw_args = t.get("test_args", "")
        dynamic = re.search(r"`|\$\(", raw_args)
        status, cmd = prepare(dict(t, test_args=DYNAMIC_ARGS) if dynamic
                              else t, tree, bhyverun, caps, env_path, arch,
                              explicit, qemu, prof, checks=False)
        limit = test_limit(t, timeout)
        entries.append({"name": t["name"], "status": status,
                        "detail": cmd if status else "", "limit": limit})
        if status:
            continue
        files.add(t["file"])
        l1 = [L1_QEMU if qemu else L1_BHYVERUN] + [
            c.replace(os.path.join(tree, prof["dir"]),
                      L1_TREE + "/" + prof["dir"])
             .replace(env_path, L1_TREE + "/env") for c in cmd[1:]]
        # A migration test runs under init.sh's kut_migrate, which
        # migrates it with bhyverun's snapshots.
        runner = "kut_migrate" if is_migration(t) and not qemu else "kut_case"
        # KUT evaluates `check` where the test runs: in the L1 (kut_check
        # prints the SKIP itself).
        check = " ".join(t.get("check", "").split())
        guard = (f"kut_check {shlex.quote(t['name'])} {shlex.quote(check)} "
                 f"&& " if check else "")
        words = [shlex.quote(w) for w in l1]
        if dynamic:
            words = [dynamic_word(w, raw_args) if DYNAMIC_ARGS in w else q
                     for w, q in zip(l1, words)]
        lines.append(f"{guard}{runner} {shlex.quote(t['name'])} "
                     f"{int(limit)} " + " ".join(words))
    with open(os.path.join(plan_dir, "plan.sh"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(plan_dir, "plan.json"), "w") as f:
        plan = {"tests": entries, "files": sorted(files)}
        if prof is not X86:
            plan["dir"] = prof["dir"]  # the files are in /kut/<dir>/
        json.dump(plan, f, indent=1)


def results_from(plan_dir, log):
    """(status, detail, record) per planned test from an L1's log."""
    plan = json.load(open(os.path.join(plan_dir, "plan.json")))
    got, cur = {}, None
    for raw in open(log, errors="replace"):
        line = raw.rstrip("\r\n")
        if not line.startswith("nested-kut: "):
            continue
        kind, _, rest = line[len("nested-kut: "):].partition(" ")
        if kind == "SKIP":  # a `check` that failed in the L1 (kut_check)
            name, _, detail = rest.partition(" ")
            got[name] = {"skip": detail}
        elif kind == "BEGIN":
            cur = got[rest] = {"out": [], "err": [], "ret": None, "secs": 0}
        elif cur is not None and kind == "OUT":
            cur["out"].append(rest)
            m = re.match(r"migrations: (\d+)$", rest)
            if m:
                cur["migrations"] = int(m.group(1))
        elif cur is not None and kind == "ERR":
            cur["err"].append(rest)
        elif cur is not None and kind == "END":
            m = re.match(r"rc=(\d+) secs=(\d+)", rest)
            if m:
                cur["ret"], cur["secs"] = int(m.group(1)), int(m.group(2))
            cur = None
    for e in plan["tests"]:
        rec = {"name": e["name"], "seconds": 0, "summary": "",
               "first_error": ""}
        if e["status"]:
            rec.update(status=e["status"], detail=e["detail"])
        elif "skip" in got.get(e["name"], {}):
            rec.update(status="SKIP", detail=got[e["name"]]["skip"])
        elif e["name"] not in got or got[e["name"]]["ret"] is None:
            rec.update(status="FAIL", detail="did not finish in the L1")
        else:
            g = got[e["name"]]
            status, detail, rec["summary"], rec["first_error"] = classify(
                g["ret"], "\n".join(g["out"]), "\n".join(g["err"]),
                e["limit"])
            if "migrations" in g:
                rec["migrations"] = g["migrations"]
                detail = f"{detail}; {g['migrations']} migration(s)"
            rec.update(status=status, detail=detail, seconds=g["secs"],
                       exit_status=g["ret"])
        yield rec["status"], rec["detail"], rec


def probe(bhyverun):
    """What this bhyverun offers, from its -h (and that it names a missing
    kernel, as KUT's premature-failure probe expects)."""
    h = subprocess.run([bhyverun, "-h"], capture_output=True, text=True)
    if h.returncode != 0:
        sys.exit(f"kut: {bhyverun} -h failed (status {h.returncode})")
    known = {}

    def accepts(setting):
        # Whether bhyverun accepts a config setting: it checks names and
        # syntax before it creates a VM, and --dump-config creates none.
        if setting not in known:
            r = subprocess.run([bhyverun, "--dump-config", "-o", setting],
                               capture_output=True, text=True)
            known[setting] = r.returncode == 0
        return known[setting]

    def has_model(name):
        return re.search(rf"^\s+{re.escape(name)}\s", h.stdout,
                         re.M) is not None

    return {"pci-testdev": has_model("pci-testdev"),
            "hyperv-testdev": has_model("hyperv-testdev"),
            "vmport": has_model("vmport"),
            # x86.cpu_features and x86.cpu_model names, and Hyper-V feature
            # names (after passthrough only the name is checked, not what
            # it depends on).
            "feature": lambda name: accepts(f"x86.cpu_features=+{name}"),
            "model": lambda name: accepts(f"x86.cpu_model={name}"),
            "hyperv": lambda name: accepts(f"x86.hyperv=passthrough,{name}")}


def probe_arm(bhyverun, required):
    """probe() for an arm64 bhyverun: its -h, run directly or, on a host
    of another architecture, under qemu-aarch64-static. For --plan (the L1
    runs it) an arm64 bhyverun this host cannot run is fine: then strata's
    virt machine is assumed to have no pci-testdev."""
    for cmd in ([bhyverun, "-h"], ["qemu-aarch64-static", bhyverun, "-h"]):
        try:
            h = subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            continue
        if h.returncode == 0:
            return {"pci-testdev": re.search(r"^\s+pci-testdev\s", h.stdout,
                                             re.M) is not None}
    if required:
        sys.exit(f"kut: cannot run {bhyverun} -h here (an arm64 bhyverun "
                 f"runs in the nested EL2 testbed: --plan)")
    return {"pci-testdev": False}


def tree_config(tree):
    """KEY=VALUE settings of the tree's config.mak (ARCH, TARGET, ...)."""
    mak = os.path.join(tree, "config.mak")
    if not os.path.exists(mak):
        return {}
    return dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$",
                           open(mak).read(), re.M))


def main():
    ap = argparse.ArgumentParser(
        prog="kut.sh",
        description="Run kvm-unit-tests (x86 or arm64) under bhyverun.")
    ap.add_argument("tree", help="a built kvm-unit-tests tree")
    ap.add_argument("tests", nargs="*", help="tests to run (default: all)")
    ap.add_argument("--json", help="write a JSON report here")
    ap.add_argument("--timeout", type=float,
                    help="seconds per test, overriding unittests.cfg")
    ap.add_argument("--bhyverun", default=os.environ.get(
        "BHYVERUN", os.path.join(ROOT, "out", "bin", "bhyverun")))
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print each command and a failing test's output")
    ap.add_argument("--exclude", action="append", default=[], metavar="TEST",
                    help="report TEST as SKIP without running it "
                         "(repeatable)")
    ap.add_argument("--vmm", choices=("strata", "qemu"), default="strata",
                    help="run the tests under bhyverun (default) or, as the "
                         "baseline, under QEMU with KUT's own x86/run "
                         "options")
    ap.add_argument("--qemu", default=None,
                    help="the QEMU binary for --vmm qemu (default "
                         "qemu-system-x86_64, or qemu-system-aarch64)")
    ap.add_argument("--arch", choices=("x86", "arm64"),
                    help="which tests: x86/unittests.cfg or "
                         "arm/unittests.cfg (default: the tree's config.mak "
                         "ARCH, else x86)")
    ap.add_argument("--max-smp", type=int, default=int(
        os.environ.get("MAX_SMP") or os.cpu_count() or 1),
                    help="(arm64) $MAX_SMP in unittests.cfg's smp (default "
                         "$MAX_SMP, else this host's CPUs; for --plan, the "
                         "L1's)")
    ap.add_argument("--qemu-accel", choices=("kvm", "tcg"),
                    default=os.environ.get("STRATA_KUT_QEMU_ACCEL", "kvm"),
                    help="(arm64, --vmm qemu; debugging) QEMU's accelerator: "
                         "tcg runs -accel tcg -cpu cortex-a57 (default kvm, "
                         "or $STRATA_KUT_QEMU_ACCEL)")
    ap.add_argument("--plan", metavar="DIR",
                    help="(nested.sh) write the commands for an L1 to DIR "
                         "instead of running them")
    ap.add_argument("--results-from", metavar="LOG",
                    help="(nested.sh) classify the results of --plan DIR's "
                         "commands from an L1's log")
    a = ap.parse_intermixed_args()
    conf = tree_config(a.tree)
    if a.arch is None:
        a.arch = "arm64" if conf.get("ARCH") in ("arm64", "arm") else "x86"
    if a.arch == "arm64":
        return main_arm(a, conf)
    if a.qemu is None:
        a.qemu = "qemu-system-x86_64"

    cfg = os.path.join(a.tree, "x86", "unittests.cfg")
    if not os.path.isfile(cfg):
        sys.exit(f"kut: {cfg} not found (is {a.tree} a kvm-unit-tests tree?)")
    if not os.access(a.bhyverun, os.X_OK):
        sys.exit(f"kut: {a.bhyverun} is not executable; run scripts/build.sh "
                 f"or pass --bhyverun")
    arch = "x86_64"
    mak = os.path.join(a.tree, "config.mak")
    if os.path.exists(mak):
        m = re.search(r"^ARCH=(\S+)", open(mak).read(), re.M)
        if m:
            arch = m.group(1)
    tests = parse_cfg(cfg)
    known = {t["name"] for t in tests}
    for n in a.tests + a.exclude:
        if n not in known:
            sys.exit(f"kut: no test '{n}' in {cfg}")
    chosen = [t for t in tests if not a.tests or t["name"] in a.tests]
    for t in chosen:
        t["excluded"] = t["name"] in a.exclude
    caps = probe(a.bhyverun)
    qemu = a.qemu if a.vmm == "qemu" else None
    return execute(a, chosen, caps, arch, qemu)


def main_arm(a, conf):
    """main() for arm/unittests.cfg (--arch arm64)."""
    cfg = os.path.join(a.tree, "arm", "unittests.cfg")
    if not os.path.isfile(cfg):
        sys.exit(f"kut: {cfg} not found (is {a.tree} a kvm-unit-tests tree?)")
    target = conf.get("TARGET") or "qemu"
    if target not in ("qemu", "kvmtool"):
        sys.exit(f"kut: {a.tree} is built for TARGET={target}")
    qemu = None
    if a.vmm == "qemu":
        if target == "kvmtool":
            sys.exit(f"kut: {a.tree} is a kvmtool build (its UART is at "
                     f"0x01000000): --vmm qemu needs a qemu build")
        qemu = a.qemu or "qemu-system-aarch64"
    accel = a.qemu_accel if qemu else "kvm"
    # --vmm qemu needs no bhyverun; --plan's runs in the L1.
    if not qemu and not a.plan and not os.access(a.bhyverun, os.X_OK):
        sys.exit(f"kut: {a.bhyverun} is not executable; build it with "
                 f"bazel build --config=arm64 //frontends/bhyverun or pass "
                 f"--bhyverun")
    arch = conf.get("ARCH") or "arm64"
    tests = parse_cfg(cfg)
    known = {t["name"] for t in tests}
    for n in a.tests + a.exclude:
        if n not in known:
            sys.exit(f"kut: no test '{n}' in {cfg}")
    chosen = [t for t in tests if not a.tests or t["name"] in a.tests]
    for t in chosen:
        t["excluded"] = t["name"] in a.exclude
    caps = {"pci-testdev": False} if qemu else probe_arm(
        a.bhyverun, required=not a.plan)
    prof = arm64_profile(target, accel, a.max_smp)
    return execute(a, chosen, caps, arch, qemu, prof,
                   {"target": target, "accel": accel})


def execute(a, chosen, caps, arch, qemu, prof=X86, env_kw={}):
    """Runs (or plans, or reads the L1's results of) the chosen tests and
    prints and reports them; main's exit status."""
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    records = []
    if a.plan and not a.results_from:
        with tempfile.TemporaryDirectory(prefix="strata-kut.") as tmp:
            env_path = write_env(a.tree, tmp, **env_kw)
            write_plan(a.plan, a.tree, chosen, a.bhyverun, caps, env_path,
                       a.timeout, arch, bool(a.tests), qemu, prof)
        return 0
    with tempfile.TemporaryDirectory(prefix="strata-kut.") as tmp:
        env_path = write_env(a.tree, tmp, **env_kw)
        if a.results_from:
            if not a.plan:
                sys.exit("kut: --results-from needs --plan DIR")
            runs = results_from(a.plan, a.results_from)
        else:
            runs = (run_one(t, a.tree, a.bhyverun, caps, env_path, a.timeout,
                            arch, bool(a.tests), qemu, prof)
                    for t in chosen)
        for status, detail, rec in runs:
            t = rec
            counts[status] += 1
            records.append(rec)
            print(f"{status} {t['name']} ({detail})", flush=True)
            if a.verbose and rec.get("command"):
                print("  $ " + shlex.join(rec["command"]))
                if status == "FAIL":
                    for l in (rec.get("stdout", "") +
                              rec.get("stderr", "")).splitlines()[-20:]:
                        print("  | " + l)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tree": os.path.abspath(a.tree),
                       "bhyverun": a.bhyverun, "tests": records,
                       "passed": counts["PASS"], "failed": counts["FAIL"],
                       "skipped": counts["SKIP"]}, f, indent=1)
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, "
          f"{counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
