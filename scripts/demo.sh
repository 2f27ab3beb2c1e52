#!/bin/bash
# strata — set up, build bhyverun (out/bin/bhyverun) and boot the built-in
# demo guest (or pass bhyverun options, e.g. ./scripts/demo.sh -c 4).
# On a host without a usable /dev/kvm (itself a guest without nested
# virtualization) the same bhyverun runs inside the nested SVM testbed
# instead: QEMU's TCG with SVM as an L1 whose kvm-amd is a real KVM
# (scripts/nested.sh svm --run; about a minute, most of it the L1's boot).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  exec out/bin/bhyverun "$@"
fi
echo "demo: /dev/kvm is missing or not accessible on this host: running" \
  "bhyverun in the nested SVM testbed's L1 (QEMU TCG, kvm-amd) instead" >&2
exec ./scripts/nested.sh svm --run "$@"
