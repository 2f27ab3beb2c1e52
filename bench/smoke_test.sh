#!/bin/bash
# Runs the benchmark briefly: it must complete and print its figures.
# Performance is measured by running it for real, never asserted here.
set -euo pipefail
if [ ! -r /dev/kvm ]; then echo "SKIPPED: /dev/kvm missing" >&2; exit 1; fi
out=$("$1" --exits 300 --trials 1)
echo "$out"
grep -q "ratio strata/raw" <<<"$out"
