#!/usr/bin/env python3
"""Counts every test case in the Bazel/gtest XML reports and the plain
result files under a directory; prints failures (with their assertion
messages and the tail of the test's log) and skips, then the line
'N passed, N failed, N skipped'. Exit status 1 if anything failed."""
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
print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
sys.exit(1 if failed or passed == 0 else 0)
