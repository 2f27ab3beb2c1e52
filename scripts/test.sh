#!/bin/bash
# strata — set up and run every test: unit and integration tests under the
# normal build, the core library's tests again under ThreadSanitizer,
# everything again under AddressSanitizer+UBSan, and the arm64 cross-compile
# of the MI core. Ends with "N passed, N failed, N skipped"
# counting every test case run.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

RESULTS=$(mktemp -d /tmp/strata-test.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT
BAZEL_FLAGS=(--noshow_progress --ui_event_filters=-info,-debug --color=no)

collect() {  # $1 = label, $2 = bazel flags, $3... = target patterns
  # Copies the report of every test target in the patterns (fresh or cached).
  local label=$1 flags=$2
  shift 2
  local out="$RESULTS/$label" logs t path
  mkdir -p "$out"
  # shellcheck disable=SC2086
  logs=$(bazel info "${BAZEL_FLAGS[@]}" $flags bazel-testlogs 2>/dev/null)
  for t in $(bazel query "${BAZEL_FLAGS[@]}" "tests($(IFS=+; echo "$*"))" 2>/dev/null); do
    path=${t#//}; path=${path/://}
    if [ -f "$logs/$path/test.xml" ]; then
      mkdir -p "$out/$path"
      cp "$logs/$path/test.xml" "$out/$path/test.xml"
    else
      echo "FAIL $label:$t (no test report)" >> "$RESULTS/missing.txt"
    fi
  done
}

run_pass() {  # $1 = label, $2 = extra bazel flags, $3... = targets
  local label=$1 flags=$2
  shift 2
  echo "=== $label: bazel test $flags $*"
  # shellcheck disable=SC2086
  bazel test "${BAZEL_FLAGS[@]}" $flags --keep_going "$@" 2>&1 \
    | grep -vE '^[0-9.]+: src/main/tools/' | tail -n 60
  collect "$label" "$flags" "$@"
}

run_pass unit-and-integration "" //...
run_pass tsan "--config=tsan" //core/...
run_pass asan-ubsan "--config=asan" //...
echo "=== arm64 cross-compile of the MI core"
./scripts/cross_check_arm64.sh "$RESULTS/cross.txt"

python3 scripts/test_summary.py "$RESULTS"
