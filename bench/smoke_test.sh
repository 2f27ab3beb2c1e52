#!/bin/bash
# Runs a benchmark briefly: it must complete and print its figures.
# Performance is measured by running it for real, never asserted here.
#   smoke_test.sh SUITE REGEX COMMAND [ARGS...]
# passes if COMMAND succeeds and prints a line matching REGEX (grep -E). Without
# /dev/kvm the test says so and counts as skipped (tests/require_kvm.sh).
set -euo pipefail
suite=$1 regex=$2
shift 2
source "${TEST_SRCDIR}/strata/tests/require_kvm.sh"
require_kvm "$suite" Runs
out=$("$@")
echo "$out"
grep -qE -- "$regex" <<<"$out"
