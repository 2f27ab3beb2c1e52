#!/bin/bash
# strata — set up and run every test: unit and integration tests under the
# normal build, the core library's tests again under ThreadSanitizer, and the
# arm64 cross-compile of the MI core. Ends with "N passed, N failed, N skipped"
# counting every test case run.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

RESULTS=$(mktemp -d /tmp/strata-test.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT
BAZEL_FLAGS=(--noshow_progress --ui_event_filters=-info,-debug --color=no)

collect() {  # $1 = label for this pass; copies every test.xml of the last run
  local out="$RESULTS/$1"
  mkdir -p "$out"
  local logs
  logs=$(bazel info "${BAZEL_FLAGS[@]}" ${2:-} bazel-testlogs 2>/dev/null)
  (cd "$logs" && find . -name test.xml -newer "$RESULTS/stamp" \
      -exec cp --parents {} "$out" \;) 2>/dev/null || true
}

run_pass() {  # $1 = label, $2 = extra bazel flags, $3... = targets
  local label=$1 flags=$2
  shift 2
  echo "=== $label: bazel test $flags $*"
  touch "$RESULTS/stamp"
  sleep 1
  # shellcheck disable=SC2086
  bazel test "${BAZEL_FLAGS[@]}" $flags --keep_going "$@" 2>&1 \
    | grep -vE '^[0-9.]+: src/main/tools/' | tail -n 60
  collect "$label" "$flags"
}

run_pass unit-and-integration "" //...
run_pass tsan "--config=tsan" //core/...
echo "=== arm64 cross-compile of the MI core"
./scripts/cross_check_arm64.sh "$RESULTS/cross.txt"

python3 scripts/test_summary.py "$RESULTS"
