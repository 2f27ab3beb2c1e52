#!/bin/bash
# strata — set up and run every test: unit and integration tests under the
# normal build, the core library's tests again under ThreadSanitizer,
# everything again under AddressSanitizer+UBSan, bhyverun, the core,
# devices and the arm64 backend cross-built for arm64 with their unit tests
# under qemu-user, and strata's guests in the nested SVM and EL2 testbeds
# (scripts/nested.sh svm|el2-nvhe|el2-vhe|el2-gicv2). Ends with
# "N passed, N failed, N skipped" counting every test case run.
#
# On a host without a usable /dev/kvm (itself a guest without nested
# virtualization), with STRATA_L1_TESTS=1, the cases each pass skipped for
# want of it run again after the pass inside the nested SVM testbed's L1,
# on its real-SVM KVM (scripts/nested.sh svm --bazel-tests; l1_pass
# below), and count there, as LABEL@svm-l1/..., instead of as skips
# (scripts/test_summary.py). Without it they stay skips, said loudly.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

RESULTS=$(mktemp -d /tmp/strata-test.XXXXXX)
L1WORK=$(mktemp -d /tmp/strata-test-l1.XXXXXX)
trap 'rm -rf "$RESULTS" "$L1WORK"' EXIT
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
  echo "=== $label: bazel test $flags $* (at $((SECONDS / 60)) min)"
  # shellcheck disable=SC2086
  bazel test "${BAZEL_FLAGS[@]}" $flags --keep_going "$@" 2>&1 \
    | grep -vE '^[0-9.]+: src/main/tools/' | tail -n 60
  collect "$label" "$flags" "$@"
}

# The nested testbeds run under /tmp/strata-nested.lock, so that L1s on one
# machine take turns (2 cores), unless this script holds it already (run
# under `flock /tmp/strata-nested.lock`, it has the lock file open).
nested() {
  if command -v flock >/dev/null &&
     ! ls -l /proc/$$/fd 2>/dev/null | grep -q ' -> /tmp/strata-nested.lock$'; then
    T0=$(date +%s) flock /tmp/strata-nested.lock bash -c \
      'w=$(($(date +%s) - T0)); ((w < 5)) || echo "(waited $w s for /tmp/strata-nested.lock)" >&2
       exec ./scripts/nested.sh "$@"' nested "$@"
  else
    ./scripts/nested.sh "$@"
  fi
}

kvm_usable() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
L1_WARNINGS=()  # repeated before the summary

l1_pass() {  # $1 = label, $2 = its --config name (- for none)
  # Without a usable /dev/kvm: the targets of pass $1 whose reports have
  # cases skipped for want of it (their skip message names /dev/kvm; only
  # those cases, as a gtest filter, or
  # the whole test) run in the nested SVM testbed's L1
  # (scripts/nested_bazel_tests.py), and their reports land in
  # $RESULTS/$1@svm-l1, where test_summary.py counts them in place of the
  # host's skips. An L1 that cannot start (no QEMU, no kernel) leaves the
  # skips as they are, said loudly; one that stops before every test ran
  # is a failure.
  local label=$1 config=$2 list="$L1WORK/$1.list" out="$L1WORK/$1" n t
  kvm_usable && return 0
  python3 scripts/nested_bazel_tests.py kvm-skips "$RESULTS/$label" "$config" > "$list"
  n=$(grep -c . "$list")
  [ "$n" = 0 ] && return 0
  if [ "${STRATA_L1_TESTS:-0}" != 1 ]; then
    # Opt-in: QEMU's TCG L1 has been seen to stop making progress under
    # these tests (a soft lockup while a test's threads race a running
    # vCPU; see README), often enough that a CI run would fail on it.
    L1_WARNINGS+=("WARNING: no usable /dev/kvm: $n test targets of $label have cases SKIPPED; STRATA_L1_TESTS=1 runs them in the nested SVM L1")
    echo "${L1_WARNINGS[-1]}"
    return 0
  fi
  echo "=== $label@svm-l1: no usable /dev/kvm on this host: $n test targets with KVM cases run in the nested SVM L1 (at $((SECONDS / 60)) min)"
  nested svm --bazel-tests "$list" --bazel-results "$out" --results "$out.testbed" | tail -n 1
  if grep -q '^FAIL nested-svm:testbed' "$out.testbed" 2>/dev/null; then
    L1_WARNINGS+=("WARNING: $label: the nested SVM L1 could not run $(grep "^FAIL nested-svm:testbed" "$out.testbed" | cut -d" " -f3-): the KVM cases of $label stay SKIPPED")
    echo "${L1_WARNINGS[-1]}"
    return 0
  fi
  [ -d "$out/${config/#-/default}" ] && mv "$out/${config/#-/default}" "$RESULTS/$label@svm-l1"
  while read -r _ t _; do
    path=${t#//}; path=${path/://}
    [ -f "$RESULTS/$label@svm-l1/$path/test.xml" ] ||
      echo "FAIL $label@svm-l1:$t (no result from the L1: it stopped first; the host's skips stand)" >> "$RESULTS/l1-$label.txt"
  done < "$list"
}

run_pass unit-and-integration "" //...
l1_pass unit-and-integration -
# The locking, kick and driver code, and the devices, under ThreadSanitizer.
run_pass tsan "--config=tsan" //core/... //devices/... //frontends/capi/... \
  //tests/integration:driver_amd64_test
l1_pass tsan tsan
run_pass asan-ubsan "--config=asan" //...
l1_pass asan-ubsan asan
# arm64: cross-build everything arm64 has — the static aarch64 bhyverun,
# the core, devices, the arm64 backend and machine — and run the unit
# tests under qemu-user. Tests that create VMs need an arm64
# KVM (arch/kvm_backend.bzl): they are left out here and their guests run
# in the nested EL2 testbeds below.
ARM64=(//frontends/bhyverun //core/... //devices/... //arch/arm64/...)
echo "=== arm64: bazel build --config=arm64 ${ARM64[*]} (at $((SECONDS / 60)) min)"
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
echo "=== nested-svm: scripts/nested.sh svm (at $((SECONDS / 60)) min)"
nested svm --results "$RESULTS/nested-svm.txt"
# The nested EL2 testbeds (arm64 L1s: nVHE on -cpu cortex-a57, VHE on
# -cpu max, both with a GICv3; nVHE on a GICv2 with the virtualization
# extensions): strata's arm64 guests, the device tree, snapshots, Linux
# as an L2.
for m in el2-nvhe el2-vhe el2-gicv2; do
  echo "=== nested-$m: scripts/nested.sh $m (at $((SECONDS / 60)) min)"
  nested $m --results "$RESULTS/nested-$m.txt"
done

((${#L1_WARNINGS[@]})) && printf '%s\n' "${L1_WARNINGS[@]}"
python3 scripts/test_summary.py "$RESULTS"
