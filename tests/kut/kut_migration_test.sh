#!/bin/bash
# scripts/kut.py's migration driver on an arm64 host (run_migration), with
# a stand-in for bhyverun: it prints kvm-unit-tests' migration lines, saves
# a "snapshot" (a counter) on SIGUSR2 and exits 0 as bhyverun
# --save-on-signal does, and continues from it under --restore once it has
# read its key. Checks repeated migrations (the plain and the "(quiet)"
# form), "Skipped VM migration", and that the save notices do not reach
# the classification (a clean stderr is part of PASS).
# args: kut.py
set -uo pipefail
kut_py=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/kut/arm"
printf 'ARCH=arm64\nTARGET=qemu\n' > "$tmp/kut/config.mak"
echo flat > "$tmp/kut/arm/debug.flat"
cat > "$tmp/kut/arm/unittests.cfg" <<'CFG'
[twice-migration]
file = debug.flat
test_args = twice
groups = debug migration

[skipped-migration]
file = debug.flat
test_args = skip
groups = debug migration

[plain]
file = debug.flat
test_args = plain
groups = debug
CFG

cat > "$tmp/bhyverun" <<'SH'
#!/bin/bash
# The stand-in: state is "<test> <migrations so far>".
[ "${1:-}" = -h ] && { echo "usage: bhyverun (stand-in)"; exit 0; }
save="" restore="" test=""
while [ $# -gt 0 ]; do
  case $1 in
    --save-on-signal) save=$2; shift 2 ;;
    --restore) restore=$2; shift 2 ;;
    -a) test=$2; shift 2 ;;
    *) shift ;;
  esac
done
n=0
if [ -n "$restore" ]; then
  read -r test n < "$restore" || exit 6
  read -r -n 1 key || { echo "no key" >&2; exit 6; }
  echo "INFO: Migration complete"
fi
wait_for_save() {  # LINE
  trap 'echo "$test $((n + 1))" > "$save"; echo "bhyverun: snapshot saved to $save" >&2; exit 0' USR2
  echo "$1"
  while :; do sleep 0.05; done
}
case "$test:$n" in
  plain:0) echo "SUMMARY: 1 tests"; exit 1 ;;
  twice:0) wait_for_save "Now migrate the VM, then press a key to continue..." ;;
  twice:1) wait_for_save "Now migrate the VM (quiet)" ;;
  twice:2) echo "PASS: migrated twice"; echo "SUMMARY: 2 tests"; exit 1 ;;
  skip:0) echo "SKIP: no ITS"; wait_for_save "Skipped VM migration (quiet)" ;;
  skip:1) echo "SUMMARY: 1 tests, 1 skipped"; exit 77 ;;
esac
echo "unexpected state $test:$n" >&2
exit 6
SH
chmod +x "$tmp/bhyverun"

out=$(python3 "$kut_py" "$tmp/kut" --arch arm64 --bhyverun "$tmp/bhyverun" \
  --json "$tmp/r.json" --timeout 20)
echo "$out"
res() { grep -qxF -- "$1" <<<"$out" || fail "no result line '$1'"; }
res "PASS twice-migration (2 tests)"
res "SKIP skipped-migration (1 tests, 1 skipped)"
res "PASS plain (1 tests)"
res "2 passed, 0 failed, 1 skipped"
python3 - "$tmp/r.json" <<'PY' || fail "report checks"
import json, sys
r = {t["name"]: t for t in json.load(open(sys.argv[1]))["tests"]}
assert r["twice-migration"]["migrations"] == 2, r["twice-migration"]
assert r["skipped-migration"]["migrations"] == 1, r["skipped-migration"]
assert "saved to" not in r["twice-migration"]["stderr"], r["twice-migration"]
assert "Migration complete" in r["twice-migration"]["stdout"]
assert "migrations" not in r["plain"]
PY
[ "$failures" = 0 ] && echo "kut_migration_test: all passed"
exit $((failures > 0))
