#!/bin/bash
# strata — set up and run every test: unit and integration tests under the
# normal build, the core library's tests again under ThreadSanitizer,
# everything again under AddressSanitizer+UBSan, bhyverun, the core,
# devices and the arm64 backend cross-built for arm64 with their unit tests
# under qemu-user, and strata's guests in the nested SVM and EL2 testbeds
# (scripts/nested.sh svm|el2-nvhe|el2-vhe|el2-gicv2). Ends with
# "N passed, N failed, N skipped" counting every test case run.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

RESULTS=$(mktemp -d /tmp/strata-test.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT
BAZEL_FLAGS=(--noshow_progress --ui_event_filters=-info,-debug --color=no)

compatible_tests() {  # $1 = bazel flags, $2... = target patterns
  # The test targets in the patterns that this configuration builds: an
  # arm64-only test (target_compatible_with @platforms//cpu:aarch64) runs in
  # the arm64 pass, an amd64-only one (arch/kvm_backend.bzl) in the others;
  # manual ones (tags = ["manual"]) in none, as `bazel test //...` does.
  # A plain query (no analysis, so the cross toolchain's own targets are
  # not analysed for the host). Prints nothing and fails if it cannot list.
  local flags=$1 other=aarch64 set
  shift
  [[ " $flags " == *" --config=arm64 "* ]] && other=x86_64
  set="tests($(IFS=+; echo "$*"))"
  bazel query "${BAZEL_FLAGS[@]}" \
    "$set except attr(target_compatible_with, 'cpu:$other', $set) except attr(tags, manual, $set)" 2>/dev/null
}

collect() {  # $1 = label, $2 = bazel flags, $3... = target patterns
  # Copies the report of every test target in the patterns (fresh or cached).
  local label=$1 flags=$2
  shift 2
  local out="$RESULTS/$label" logs t path
  mkdir -p "$out"
  # shellcheck disable=SC2086
  logs=$(bazel info "${BAZEL_FLAGS[@]}" $flags bazel-testlogs 2>/dev/null)
  local tests
  if ! tests=$(compatible_tests "$flags" "$@") || [ -z "$tests" ]; then
    echo "FAIL $label:collect (could not list the tests of $*)" \
      >> "$RESULTS/missing.txt"
    return
  fi
  for t in $tests; do
    path=${t#//}; path=${path/://}
    if [ -f "$logs/$path/test.xml" ]; then
      mkdir -p "$out/$path"
      cp "$logs/$path/test.xml" "$out/$path/test.xml"
      [ -f "$logs/$path/test.log" ] && cp "$logs/$path/test.log" "$out/$path/test.log"
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
# The locking, kick and driver code, and the devices, under ThreadSanitizer.
run_pass tsan "--config=tsan" //core/... //devices/... //frontends/capi/... \
  //tests/integration:driver_amd64_test
run_pass asan-ubsan "--config=asan" //...
# arm64: cross-build everything arm64 has — the static aarch64 bhyverun,
# the core, devices, the arm64 backend and machine — and run the unit
# tests under qemu-user. Tests that create VMs need an arm64
# KVM (arch/kvm_backend.bzl): they are left out here and their guests run
# in the nested EL2 testbeds below.
ARM64=(//frontends/bhyverun //core/... //devices/... //arch/arm64/...)
echo "=== arm64: bazel build --config=arm64 ${ARM64[*]}"
bazel build "${BAZEL_FLAGS[@]}" --config=arm64 --keep_going "${ARM64[@]}" 2>&1 \
  | grep -vE '^[0-9.]+: src/main/tools/' | tail -n 60
if [ "${PIPESTATUS[0]}" = 0 ]; then r=PASS; else r=FAIL; fi
echo "$r arm64:build" > "$RESULTS/arm64-build.txt"
mapfile -t arm64_tests < <(compatible_tests --config=arm64 "${ARM64[@]}" || true)
if ((${#arm64_tests[@]})); then
  run_pass arm64 "--config=arm64" "${arm64_tests[@]}"
else
  echo "FAIL arm64:tests (none found)" >> "$RESULTS/arm64-build.txt"
fi

# The nested SVM testbed: Debian's cloud kernel as an L1 under QEMU's TCG
# with SVM, strata's guests under its kvm-amd (scripts/nested.sh).
echo "=== nested-svm: scripts/nested.sh svm"
./scripts/nested.sh svm --results "$RESULTS/nested-svm.txt"
# The nested EL2 testbeds (arm64 L1s: nVHE on -cpu cortex-a57, VHE on
# -cpu max, both with a GICv3; nVHE on a GICv2 with the virtualization
# extensions): strata's arm64 guests, the device tree, snapshots, Linux
# as an L2.
for m in el2-nvhe el2-vhe el2-gicv2; do
  echo "=== nested-$m: scripts/nested.sh $m"
  ./scripts/nested.sh $m --results "$RESULTS/nested-$m.txt"
done

python3 scripts/test_summary.py "$RESULTS"
