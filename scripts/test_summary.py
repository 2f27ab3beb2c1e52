#!/usr/bin/env python3
"""Counts every test case in the Bazel/gtest XML reports and the plain
result files under a directory; prints failures and skips, then the line
'N passed, N failed, N skipped'. Exit status 1 if anything failed."""
import os
import sys
import xml.etree.ElementTree as ET

root = sys.argv[1]
passed, failed, skipped = 0, [], []

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
            for c in cases:
                name = f"{os.path.dirname(rel)}: {c.get('classname', '')}.{c.get('name')}"
                if c.find("failure") is not None or c.find("error") is not None:
                    failed.append(name)
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
print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
sys.exit(1 if failed or passed == 0 else 0)
