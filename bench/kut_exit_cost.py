#!/usr/bin/env python3
# strata — exit cost and start-up side by side with QEMU, on kvm-unit-tests'
# own guests (a KUT tree built outside strata).
#
#   bench/kut_exit_cost.py KUT_TREE [--rounds N] [--bhyverun B] [--qemu Q]
#                          [--floor PIO_EXIT_BENCH] [--tests T1,T2,...]
#                          [--startup-guest HELLO_ELF]
#
# Exit cost: x86/vmexit.flat's tests (default inl_from_qemu, cpuid,
# mov_to_cr8, ipi, tscdeadline) run under bhyverun and under
# `qemu-system-x86_64 -accel kvm` alternately, N rounds (default 5; the
# order flips each round so drift spreads over both), each with the
# options KUT's unittests.cfg gives it, translated for bhyverun by
# scripts/kut.py exactly as the test runner does. Prints the cycles per
# iteration vmexit.flat reports, the medians and strata/QEMU. The physical
# floor comes in the same run from `pio_exit_bench --floor-inl`: a raw
# KVM_RUN loop doing a 4-byte `inl` of an unclaimed port, in TSC cycles.
#
# Start-up: create -> guest exit, wall time and max RSS, for KUT's
# dummy.flat under both, N rounds alternating, medians; --startup-guest
# (e.g. our hello micro-kernel) under bhyverun alone: QEMU's -kernel cannot
# load our long-mode ELF64 entry.
#
# Nothing is asserted: it prints figures (see the targets).
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import kut  # noqa: E402  (the runner's cfg parser and option translation)

DEFAULT_TESTS = ["inl_from_qemu", "cpuid", "mov_to_cr8", "ipi", "tscdeadline"]


def entry_for(cfg, name):
    """The unittests.cfg entry that runs vmexit.flat's `name` (for its smp
    and options), or a plain one (inl_from_qemu has no entry of its own:
    KUT runs it in the all-tests vmexit run)."""
    for t in cfg:
        if t.get("file") == "vmexit.flat" and \
           t.get("test_args", "").strip("'\" ") == name:
            return dict(t, name=f"vmexit_{name}")
    return {"name": f"vmexit_{name}", "file": "vmexit.flat",
            "test_args": name, "groups": "vmexit"}


def timed(cmd, timeout=120):
    """(returncode, stdout, seconds) of one run."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return p.returncode, out, time.monotonic() - t0


def max_rss_mib(cmd, timeout=120):
    """(returncode, stdout, seconds, max RSS in MiB) of one run: the child
    is reaped with wait4 for its own rusage."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out, time.monotonic() - t0, ru.ru_maxrss / 1024.0


def cycles_of(out, name):
    m = re.search(rf"^{re.escape(name)} (\d+)", out, re.M)
    return int(m.group(1)) if m else None


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(
        description="exit cost and start-up side by side with QEMU on "
                    "kvm-unit-tests guests")
    ap.add_argument("tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bhyverun", default=os.path.join(
        HERE, "..", "out", "bin", "bhyverun"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--floor", default=os.path.join(
        HERE, "..", "bazel-bin", "bench", "pio_exit_bench"))
    ap.add_argument("--tests", default=",".join(DEFAULT_TESTS))
    ap.add_argument("--startup-guest", default=None,
                    help="another guest for the start-up timing (e.g. "
                         "bazel-bin/tests/guests/amd64/hello.elf)")
    a = ap.parse_args()
    cfg = kut.parse_cfg(os.path.join(a.tree, "x86", "unittests.cfg"))
    caps = kut.probe(a.bhyverun)
    names = [n for n in a.tests.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="strata-exitcost.") as tmp:
        env_path = kut.write_env(a.tree, tmp)
        cmds = {}
        for n in names:
            t = entry_for(cfg, n)
            for vmm, q in (("strata", None), ("qemu", a.qemu)):
                st, cmd = kut.prepare(t, a.tree, a.bhyverun, caps, env_path,
                                      "x86_64", True, q)
                if st:
                    sys.exit(f"kut_exit_cost: {n} under {vmm}: {st} {cmd}")
                cmds[(n, vmm)] = cmd
        cyc = {k: [] for k in cmds}
        print(f"== exit cost: vmexit.flat, {a.rounds} alternating rounds "
              f"(cycles per iteration)")
        for r in range(a.rounds):
            order = ("strata", "qemu") if r % 2 == 0 else ("qemu", "strata")
            for n in names:
                for vmm in order:
                    rc, out, secs = timed(cmds[(n, vmm)])
                    c = cycles_of(out, n)
                    if c is None:
                        print(f"  round {r + 1} {n} {vmm}: no '{n} N' line "
                              f"(exit {rc})")
                        continue
                    cyc[(n, vmm)].append(c)
                    print(f"  round {r + 1} {n:<14} {vmm:<6} {c:>9}")
        floor = None
        if os.access(a.floor, os.X_OK):
            out = subprocess.run([a.floor, "--floor-inl"], text=True,
                                 capture_output=True).stdout
            m = re.search(r"median ([\d.]+) us/exit, (\d+) cycles/exit", out)
            if m:
                floor = (float(m.group(1)), int(m.group(2)))
        print("== exit cost, medians")
        for n in names:
            s, q = med(cyc[(n, "strata")]), med(cyc[(n, "qemu")])
            line = (f"  {n:<14} strata {s:>9.0f}  qemu {q:>9.0f}  "
                    f"strata/qemu {s / q:.3f}x")
            if n == "inl_from_qemu" and floor:
                line += f"  floor {floor[1]} ({s / floor[1]:.2f}x floor)"
            print(line)
        if floor:
            print(f"  raw KVM_RUN inl floor: {floor[0]:.3f} us, "
                  f"{floor[1]} cycles per exit (pio_exit_bench --floor-inl)")
        else:
            print(f"  (no floor: {a.floor} not built; bazel build -c opt "
                  f"//bench:pio_exit_bench)")

        print(f"== start-up: create -> guest exit, {a.rounds} alternating "
              f"rounds (wall s, max RSS MiB)")
        guests = [("dummy.flat", {"name": "dummy", "file": "dummy.flat"})]
        if a.startup_guest:
            guests.append((os.path.basename(a.startup_guest), None))
        for label, t in guests:
            if t is not None:
                st_cmd = {}
                for vmm, q in (("strata", None), ("qemu", a.qemu)):
                    st, cmd = kut.prepare(t, a.tree, a.bhyverun, caps,
                                          env_path, "x86_64", True, q)
                    if st:
                        sys.exit(f"kut_exit_cost: dummy under {vmm}: {cmd}")
                    st_cmd[vmm] = cmd
            else:
                # Our micro-kernels are ELF64 entered in long mode, which
                # QEMU's -kernel (Multiboot: ELF32, protected mode) cannot
                # load: strata only.
                st_cmd = {"strata": [a.bhyverun, "-k", a.startup_guest]}
            res = {vmm: [] for vmm in st_cmd}
            for r in range(a.rounds):
                order = ("strata", "qemu") if r % 2 == 0 else ("qemu", "strata")
                for vmm in (v for v in order if v in st_cmd):
                    rc, _, secs, rss = max_rss_mib(st_cmd[vmm])
                    res[vmm].append((secs, rss))
                    print(f"  round {r + 1} {label:<12} {vmm:<6} {secs:6.3f} s "
                          f"{rss:7.1f} MiB (exit {rc})")
            s_t = med([x[0] for x in res["strata"]])
            s_m = med([x[1] for x in res["strata"]])
            if "qemu" not in res:
                print(f"  {label}: strata {s_t:.3f} s {s_m:.1f} MiB (QEMU "
                      f"cannot load a long-mode ELF64 entry)")
                continue
            q_t = med([x[0] for x in res["qemu"]])
            q_m = med([x[1] for x in res["qemu"]])
            print(f"  {label}: strata {s_t:.3f} s {s_m:.1f} MiB, qemu "
                  f"{q_t:.3f} s {q_m:.1f} MiB; wall {s_t / q_t:.3f}x, RSS "
                  f"{s_m / q_m:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
