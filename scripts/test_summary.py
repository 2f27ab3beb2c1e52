#!/usr/bin/env python3
"""Counts every test case in the Bazel/gtest XML reports and the plain
result files under a directory; prints failures (with their assertion
messages and the tail of the test's log) and skips, then the line
'N passed, N failed, N skipped'. Exit status 1 if anything failed.

Reports under LABEL@svm-l1/PKG/NAME are a test's cases run in the nested
SVM testbed's L1 (scripts/test.sh on a host without /dev/kvm): each of them
counts once, with its L1 result, in place of the same case of
LABEL/PKG/NAME that the host skipped for want of /dev/kvm (its skip
message names /dev/kvm; a test that reports no such case by name, e.g. a
shell test whose one case is named after its binary, replaces all of
them)."""
import os
import sys
import xml.etree.ElementTree as ET

root = sys.argv[1]
passed, failed, skipped = 0, [], []
details = {}  # failed name -> text to show

SANDBOX_NOISE = ("src/main/tools/linux-sandbox", "src/main/tools/process-wrapper")


def log_tail(xml_path, lines=25):
    """The last lines of the test's own output (test.log beside test.xml),
    without Bazel's sandbox debug lines."""
    log = os.path.join(os.path.dirname(xml_path), "test.log")
    if not os.path.exists(log):
        return ""
    with open(log, errors="replace") as f:
        text = [l.rstrip("\n") for l in f if not any(n in l for n in SANDBOX_NOISE)]
    return "\n".join(text[-lines:])

L1 = "@svm-l1"
KVM_SKIP = "/dev/kvm"  # a skip whose message names it (tests/kvm_testing.h,
# tests/require_kvm.sh, arch/amd64's own checks) was for want of it


def case_key(c):
    return (c.get("classname", ""), c.get("name"))


def kvm_skip(c):
    s = c.find("skipped")
    return s is not None and KVM_SKIP in ((s.get("message") or "") + (s.text or ""))


# The L1's reports: host report directory -> the case keys the L1 ran.
l1_cases = {}
for dirpath, _, files in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    top, _, rest = rel.partition(os.sep)
    if top.endswith(L1) and "test.xml" in files:
        try:
            keys = {case_key(c) for c in ET.parse(os.path.join(dirpath, "test.xml")).iter("testcase")}
        except ET.ParseError:
            keys = set()  # counted as a failure below
        l1_cases[os.path.join(top[:-len(L1)], rest)] = keys


def replaced_by_l1(rel_dir, cases):
    """The host's cases of this report that the L1 ran in their place."""
    if rel_dir not in l1_cases:
        return set()
    kvm = {case_key(c) for c in cases if kvm_skip(c)}
    ran = l1_cases[rel_dir]
    return kvm if not (kvm & ran) else kvm & ran


moved_to_l1 = 0
for dirpath, _, files in os.walk(root):
    for f in files:
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)
        if f == "test.xml":
            try:
                tree = ET.parse(path)
            except ET.ParseError as e:
                failed.append(f"{rel}: unreadable report ({e})")
                continue
            cases = list(tree.iter("testcase"))
            gone = replaced_by_l1(os.path.dirname(rel), cases)
            if gone:
                moved_to_l1 += len(gone)
                cases = [c for c in cases if case_key(c) not in gone]
                if not cases:
                    continue
            if not cases:
                failed.append(f"{rel}: no test cases reported")
                details[failed[-1]] = log_tail(path)
            for c in cases:
                name = f"{os.path.dirname(rel)}: {c.get('classname', '')}.{c.get('name')}"
                bad = c.find("failure")
                if bad is None:
                    bad = c.find("error")
                if bad is not None:
                    failed.append(name)
                    msg = (bad.get("message") or bad.text or "").strip()
                    details[name] = "\n".join(msg.splitlines()[:30])
                elif (c.find("skipped") is not None or c.get("result") == "skipped"
                      or c.get("status") == "notrun"):
                    skipped.append(name)
                else:
                    passed += 1
        elif f.endswith(".txt"):
            for line in open(path):
                kind, _, name = line.strip().partition(" ")
                if kind == "PASS":
                    passed += 1
                elif kind == "FAIL":
                    failed.append(name)
                elif kind == "SKIP":
                    skipped.append(name)

for name in skipped:
    print(f"SKIPPED: {name}")
for name in failed:
    print(f"FAILED: {name}")
    if details.get(name):
        for line in details[name].splitlines():
            print(f"    {line}")
# One log tail per failing test target (its output around the failure).
shown = set()
for dirpath, _, files in os.walk(root):
    if "test.xml" in files:
        rel = os.path.relpath(dirpath, root)
        if any(n.startswith(rel + ":") for n in failed) and rel not in shown:
            shown.add(rel)
            tail = log_tail(os.path.join(dirpath, "test.xml"))
            if tail:
                print(f"--- tail of {rel}/test.log")
                print(tail)
if moved_to_l1:
    print(f"({moved_to_l1} cases the host skipped for want of /dev/kvm ran in the "
          f"nested SVM L1 instead: *{L1}/...)")
print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
sys.exit(1 if failed or passed == 0 else 0)
