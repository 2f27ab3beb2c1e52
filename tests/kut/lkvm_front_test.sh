#!/bin/bash
# scripts/strata-lkvm as kvm-unit-tests' scripts use it (arm/run with
# TARGET=kvmtool, scripts/vmm.bash, scripts/arch-run.bash): the --help
# probe, the command line arm/run builds mapped onto bhyverun's options,
# kvmtool's "Fatal: Unable to open kernel" for KUT's premature-failure probe,
# where bhyverun is found, and refusals naming the option. No VM runs: the
# "bhyverun" here is a stub that prints its arguments, because what is
# checked is the front's translation.
# args: strata-lkvm kut.py
set -uo pipefail
front_src=$1 kut_py=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/libexec" "$tmp/stub" "$tmp/side"
cp "$front_src" "$kut_py" "$tmp/libexec/"
front="$tmp/libexec/strata-lkvm"
cat > "$tmp/stub/bhyverun" <<'EOF'
#!/bin/sh
printf 'bhyverun'
for a in "$@"; do printf ' [%s]' "$a"; done
echo
EOF
chmod +x "$tmp/stub/bhyverun"
export STRATA_BHYVERUN="$tmp/stub/bhyverun"
echo kernel > "$tmp/k.flat"
echo ENV=1 > "$tmp/env"

# search_kvmtool_binary: `$KVMTOOL --help` must say "The most commonly used".
"$front" --help 2>/dev/null | grep -q 'The most commonly used' ||
  fail "--help does not say 'The most commonly used'"

# expect 'ARGS' 'bhyverun [..] ...': the front's exec for ARGS.
expect() {
  local got
  # shellcheck disable=SC2086
  got=$(eval "\"\$front\" run $1" 2>&1)
  [ "$got" = "$2" ] || fail "run $1:
    got      $got
    expected $2"
}
K="$tmp/k.flat" E="$tmp/env"
layout="[-o] [arm64.layout=kvmtool]"
# What arm/run passes for selftest-setup (KVMTOOL_DEFAULT_OPTS, --mem 256
# from kvmtool_params, the env file last).
expect "--kernel $K --cpus 2 --params 'setup smp=2 mem=256' --nodefaults --network mode=none --loglevel=warning --mem 256 --initrd $E" \
  "bhyverun [-k] [$K] $layout [-c] [2] [-l] [warn] [-m] [256M] [-i] [$E] [-o] [arm64.pmu=false] [-a] [setup smp=2 mem=256]"
# pmu-*: --pmu keeps strata's PMU; without it kvmtool has none.
expect "--kernel $K --cpus 1 --params 'cycle-counter 0' --nodefaults --network mode=none --loglevel=warning --pmu --initrd $E" \
  "bhyverun [-k] [$K] $layout [-c] [1] [-l] [warn] [-i] [$E] [-a] [cycle-counter 0]"
# gic*/its-*: --irqchip=...
expect "--kernel $K --cpus 4 --irqchip=gicv2" \
  "bhyverun [-k] [$K] $layout [-c] [4] [-o] [arm64.gic_version=2] [-o] [arm64.pmu=false]"
expect "--kernel $K --irqchip gicv3" \
  "bhyverun [-k] [$K] $layout [-o] [arm64.gic_version=3] [-o] [arm64.its=false] [-o] [arm64.pmu=false]"
expect "--kernel $K --irqchip=gicv3-its --console serial" \
  "bhyverun [-k] [$K] $layout [-o] [arm64.gic_version=3] [-o] [arm64.its=true] [-o] [arm64.pmu=false]"
# kvmtool's short options and attached values; --mem is MiB unless suffixed.
expect "-k $K -c2 -m 1G -p 'a b' -i $E --loglevel debug" \
  "bhyverun [-k] [$K] $layout [-c] [2] [-m] [1G] [-i] [$E] [-l] [debug] [-o] [arm64.pmu=false] [-a] [a b]"
expect "--kernel=$K --cpus=3 --mem=128 --disable-mte --no-pvtime --dump-dtb $tmp/d.dtb" \
  "bhyverun [-k] [$K] $layout [-c] [3] [-m] [128M] [--dump-dtb] [$tmp/d.dtb] [-o] [arm64.pmu=false]"

# The premature-failure probe: kvmtool's exact wording, on stderr, and a
# status that is neither pass nor skip.
err=$("$front" run --kernel _NO_FILE_4Uhere_ --cpus 1 --nodefaults \
  --network mode=none --loglevel=warning --initrd "$E" 2>&1 >/dev/null)
rc=$?
[ "$err" = "  Fatal: Unable to open kernel _NO_FILE_4Uhere_" ] ||
  fail "missing kernel: '$err'"
[ "$rc" = 128 ] || fail "missing kernel: exit $rc, expected 128 (kvmtool's die())"
err=$("$front" run --kernel "$K" --initrd "$tmp/none" 2>&1)
[ "$err" = "  Fatal: Unable to open initrd $tmp/none" ] || fail "missing initrd: '$err'"

# Refusals name the option and exit 1 without running bhyverun.
for bad in "--firmware $tmp/fw.bin" "--nested" "--aarch32" "--disk $tmp/d.img" \
           "--network mode=tap" "--console virtio" "--irqchip gicv2m" \
           "--mem 256@0x80000000" "--vcpu-affinity 0-1" "--sve-max-vl 128" \
           "--debug" "$tmp/positional"; do
  # shellcheck disable=SC2086
  out=$("$front" run --kernel "$K" $bad 2>"$tmp/err")
  rc=$?
  [ "$rc" = 1 ] || fail "'$bad': exit $rc, expected 1"
  [ -z "$out" ] || fail "'$bad': bhyverun ran: $out"
  word=${bad%% *}
  grep -qF -- "${word#"$tmp/"}" "$tmp/err" ||
    fail "'$bad': the message does not name it: $(cat "$tmp/err")"
done
"$front" run 2>"$tmp/err" && fail "run without --kernel was accepted"
grep -q -- "--kernel" "$tmp/err" || fail "no --kernel: $(cat "$tmp/err")"
"$front" setup 2>"$tmp/err"
[ $? = 1 ] && grep -q "setup" "$tmp/err" || fail "lkvm setup: $(cat "$tmp/err")"

# Where bhyverun is: $STRATA_BHYVERUN, else PATH, else next to the front
# (an installed PREFIX/bin/strata-lkvm link beside PREFIX/bin/bhyverun).
cp "$tmp/stub/bhyverun" "$tmp/side/bhyverun"
sed -i 's/^printf .bhyverun./printf side/' "$tmp/side/bhyverun"
ln -s ../libexec/strata-lkvm "$tmp/side/strata-lkvm"
out=$(env -u STRATA_BHYVERUN PATH="$tmp/stub:/usr/bin:/bin" "$front" run --kernel "$K")
[ "${out%% *}" = bhyverun ] || fail "bhyverun from PATH: $out"
out=$(env -u STRATA_BHYVERUN PATH=/usr/bin:/bin "$tmp/side/strata-lkvm" run --kernel "$K")
[ "${out%% *}" = side ] || fail "bhyverun next to the front: $out"

if [ "$failures" != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "lkvm_front_test: all checks passed"
