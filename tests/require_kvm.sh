# strata — sourced by the shell tests that need /dev/kvm (as
# tests/kvm_testing.h for the C++ ones): `require_kvm SUITE CASE` returns if
# /dev/kvm is a device this user can open read-write (tested without
# opening: <> would create a missing file); else it says so loudly, reports
# CASE of SUITE as a skipped test case in Bazel's XML and exits 0.
require_kvm() {
  local suite=$1 case=$2
  if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    return 0
  fi
  echo "SKIPPED: /dev/kvm is missing or not accessible; this test needs KVM" >&2
  if [ -n "${XML_OUTPUT_FILE:-}" ]; then
    cat > "$XML_OUTPUT_FILE" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="$suite" tests="1" failures="0" errors="0" skipped="1">
<testcase name="$case" classname="$suite" status="notrun"><skipped message="/dev/kvm is missing or not accessible"/></testcase>
</testsuite></testsuites>
XML
  fi
  exit 0
}
