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
# In a nested testbed's L1 (busybox, no python; scripts/nested.sh svm
# --exit-cost KUT_TREE): --plan DIR writes DIR/exitcost.sh, the same
# alternating runs as `ec_run ROUND TEST VMM COMMAND...` lines with the L1's
# paths (/kut, /bin/bhyverun, /bin/qemu, /bin/pio_exit_bench) that
# tests/nested/init.sh runs, and --plan DIR --results-from LOG prints the
# medians from the L1's "nested-ec:" lines. No start-up part there.
#
# Nothing is asserted: it prints figures (see the targets).
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import kut  # noqa: E402  (the runner's cfg parser and option translation)

L1_FLOOR = "/bin/pio_exit_bench"

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


GNU_TIME = "/usr/bin/time"  # Debian's "time"


def max_rss_mib(cmd, timeout=120):
    """(returncode, stdout, seconds, max RSS in MiB) of one run. Measured
    by GNU time where it is installed: a child that Python forks records
    Python's own high-water RSS as its max RSS when it execs (vfork shares
    Python's memory), ~20 MiB that are not the VMM's. Without it, the
    child's wait4 rusage, with that caveat printed once."""
    wrap = os.access(GNU_TIME, os.X_OK)
    if not wrap and not getattr(max_rss_mib, "warned", False):
        print(f"  (no {GNU_TIME}: max RSS from wait4 includes Python's own "
              "~20 MiB at exec)")
        max_rss_mib.warned = True
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile("r") as rss_file:
        full = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file.name, *cmd] if wrap else cmd
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, errors="replace")
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        killer.cancel()
        secs = time.monotonic() - t0
        rc = os.waitstatus_to_exitcode(status)
        rss_kib = ru.ru_maxrss
        if wrap:
            # GNU time exits with the command's status.
            lines = [ln for ln in rss_file.read().split() if ln.isdigit()]
            rss_kib = int(lines[-1]) if lines else float("nan")
    return rc, out, secs, rss_kib / 1024.0


def cycles_of(out, name):
    m = re.search(rf"^{re.escape(name)} (\d+)", out, re.M)
    return int(m.group(1)) if m else None


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def order_of(r):
    """Round r's order: it flips each round so drift spreads over both."""
    return ("strata", "qemu") if r % 2 == 0 else ("qemu", "strata")


def floor_of(out):
    m = re.search(r"median ([\d.]+) us/exit, (\d+) cycles/exit", out)
    return (float(m.group(1)), int(m.group(2))) if m else None


def print_medians(names, cyc, floor, floor_bin):
    print("== exit cost, medians")
    for n in names:
        s, q = med(cyc[(n, "strata")]), med(cyc[(n, "qemu")])
        line = (f"  {n:<14} strata {s:>9.0f}  qemu {q:>9.0f}  "
                f"strata/qemu {s / q:.3f}x")
        if n == "inl_from_qemu" and floor:
            line += f"  floor {floor[1]} ({s / floor[1]:.2f}x floor)"
        print(line)
    if floor:
        print(f"  raw KVM_RUN inl floor: {floor[0]:.3f} us, {floor[1]} "
              f"cycles per exit (pio_exit_bench --floor-inl)")
    else:
        print(f"  (no floor: {floor_bin} not built or printed nothing; "
              f"bazel build -c opt //bench:pio_exit_bench)")


def write_l1_plan(a, names, cmds, env_path):
    """DIR/exitcost.sh and DIR/env for the L1 (paths as the L1 sees them)."""
    os.makedirs(a.plan, exist_ok=True)
    with open(env_path) as src, open(os.path.join(a.plan, "env"), "w") as dst:
        dst.write(src.read())
    host_dir = os.path.join(a.tree, "x86")

    def l1(vmm, cmd):
        return [kut.L1_QEMU if vmm == "qemu" else kut.L1_BHYVERUN] + [
            c.replace(host_dir, kut.L1_TREE + "/x86")
             .replace(env_path, kut.L1_TREE + "/env") for c in cmd[1:]]
    lines = [f"ec_floor {L1_FLOOR} --floor-inl --exits 4000 --trials 5"]
    for r in range(a.rounds):
        for n in names:
            for vmm in order_of(r):
                lines.append(f"ec_run {r + 1} {n} {vmm} " +
                             shlex.join(l1(vmm, cmds[(n, vmm)])))
    with open(os.path.join(a.plan, "exitcost.sh"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


def report_l1(a, names):
    cyc = {(n, v): [] for n in names for v in ("strata", "qemu")}
    floor = None
    print(f"== exit cost in the L1: vmexit.flat, alternating rounds "
          f"(cycles per iteration)")
    for raw in open(a.results_from, errors="replace"):
        line = raw.rstrip("\r\n")
        if not line.startswith("nested-ec: "):
            continue
        rest = line[len("nested-ec: "):]
        if rest.startswith("raw inl floor:"):
            floor = floor_of(rest)
            continue
        f = rest.split()
        if len(f) >= 4 and (f[1], f[2]) in cyc:
            if f[3].isdigit():
                cyc[(f[1], f[2])].append(int(f[3]))
            print(f"  round {f[0]} {f[1]:<14} {f[2]:<6} {f[3]:>9} "
                  f"{' '.join(f[4:])}")
    print_medians(names, cyc, floor, L1_FLOOR)
    return 0


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
    ap.add_argument("--plan", metavar="DIR",
                    help="write DIR/exitcost.sh for a nested testbed's L1")
    ap.add_argument("--results-from", metavar="LOG",
                    help="with --plan: the medians from the L1's log")
    a = ap.parse_args()
    names = [n for n in a.tests.split(",") if n]
    if a.results_from:
        if not a.plan:
            sys.exit("kut_exit_cost: --results-from needs --plan DIR")
        return report_l1(a, names)
    cfg = kut.parse_cfg(os.path.join(a.tree, "x86", "unittests.cfg"))
    caps = kut.probe(a.bhyverun)
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
        if a.plan:
            return write_l1_plan(a, names, cmds, env_path)
        cyc = {k: [] for k in cmds}
        print(f"== exit cost: vmexit.flat, {a.rounds} alternating rounds "
              f"(cycles per iteration)")
        for r in range(a.rounds):
            for n in names:
                for vmm in order_of(r):
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
            floor = floor_of(out)
        print_medians(names, cyc, floor, a.floor)

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
