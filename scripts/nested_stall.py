#!/usr/bin/env python3
"""strata — where a stalled nested L1 is (scripts/nested.sh).

When the L1 (QEMU's TCG running the Debian kernel and its KVM) stops
printing, nested.sh calls this before stopping it:

  nested_stall.py MONITOR_SOCKET SYMBOLS [SAMPLES]

It asks the L1's QEMU monitor (HMP on a unix socket) for every vCPU's
registers SAMPLES times (default 5), half a second apart, and prints one
line per vCPU per sample:

  nested-stall: sample 2 cpu 1 pc=ffffffff8110a2c4 native_queued_spin_lock_slowpath+0x54 (L1 kernel) cpl=0 hlt=0 ii=0

Then, per vCPU, the words of its stack that are kernel text (a rough
backtrace):

  nested-stall: cpu 1 stack: text_poke_bp_batch+0x8e < ...

A pc that is not in the L1 kernel's text is code the L1 runs for someone
else: its user space, or the L2 guest (SVM guest mode / EL1 under KVM).
SYMBOLS is the L1 kernel's /proc/kallsyms (its text symbols, which an
earlier L1 printed and nested.sh cached; Debian's System.map is a stub):
the L1 boots with nokaslr, so those addresses are the live ones.
"""

import bisect
import re
import socket
import sys
import time


def load_map(path):
    addrs, names = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    addrs.append(int(parts[0], 16))
                    names.append(parts[2] + (f" {parts[3]}" if len(parts) > 3 else ""))
    except OSError as e:
        print(f"nested-stall: no symbols ({e})")
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def symbol(addr, addrs, names, max_offset):
    """"name+off" for an address at most max_offset past a text symbol,
    else None."""
    i = bisect.bisect_right(addrs, addr) - 1
    if i < 0 or addr - addrs[i] > max_offset:
        return None
    return f"{names[i]}+{addr - addrs[i]:#x}"


def describe_pc(pc, addrs, names):
    # Beyond the last text symbol by more than 16 MiB: not kernel text.
    name = symbol(pc, addrs, names, 16 << 20)
    if name is None:
        return "(not L1 kernel text: L1 user space or the L2 guest)"
    return f"{name} (L1 kernel)"


class Monitor:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.read_prompt()

    def read_prompt(self):
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    def command(self, cmd):
        self.sock.sendall(cmd.encode() + b"\n")
        return self.read_prompt()


def parse_cpus(text):
    """[(cpu, pc, extra)] from `info registers -a` (x86 or arm64)."""
    out = []
    for block in re.split(r"\n(?=CPU#\d+)", text):
        m = re.match(r"CPU#(\d+)", block.strip())
        if not m:
            continue
        cpu = int(m.group(1))
        pc = re.search(r"\b(?:RIP|EIP|PC)=([0-9a-fA-F]+)", block)
        if not pc:
            continue
        extra = []
        for key in ("CPL", "II", "HLT"):  # x86
            v = re.search(rf"\b{key}=(\S+)", block)
            if v:
                extra.append(f"{key.lower()}={v.group(1)}")
        el = re.search(r"\b(EL[0-3][th])\b", block)  # arm64's PSTATE
        if el:
            extra.append(el.group(1))
        out.append((cpu, int(pc.group(1), 16), " ".join(extra)))
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    sock, smap = sys.argv[1], sys.argv[2]
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    addrs, names = load_map(smap)
    try:
        mon = Monitor(sock)
        for n in range(1, samples + 1):
            for cpu, pc, extra in parse_cpus(mon.command("info registers -a")):
                print(f"nested-stall: sample {n} cpu {cpu} pc={pc:x} "
                      f"{describe_pc(pc, addrs, names)} {extra}".rstrip())
            time.sleep(0.5)
        # Then each vCPU's stack, its words that are kernel text: a
        # poor man's backtrace (return addresses, and the interrupted pc
        # of an exception frame).
        for cpu, _, _ in parse_cpus(mon.command("info registers -a")):
            mon.command(f"cpu {cpu}")
            frames = []
            for word in re.findall(r"0x([0-9a-f]{16})", mon.command("x /128gx $sp")):
                # A return address lies within its function: 64 KiB at most.
                name = symbol(int(word, 16), addrs, names, 0x10000)
                if name and (not frames or frames[-1] != name):
                    frames.append(name)
            print(f"nested-stall: cpu {cpu} stack: "
                  f"{' < '.join(frames[:24]) if frames else '(no kernel text on it)'}")
    except OSError as e:
        print(f"nested-stall: cannot ask the L1's monitor ({e})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
