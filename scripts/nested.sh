#!/bin/bash
# strata — the nested testbeds: real SVM (amd64) and real ARMv8 EL2 (arm64)
# semantics one level down, on any host (PLATFORM.md).
#
#   scripts/nested.sh svm|el2-nvhe|el2-vhe|el2-gicv2 [--results FILE] [--keep DIR]
#                     [--kut KUT_TREE [--kut-timeout S] [--kut-json FILE]
#                      [--kut-tests "T1 T2 ..."] [--kut-exclude T]...
#                      [--kut-vmm strata|qemu] [--kut-max-smp N]] [--linux]
#                     [--exit-cost KUT_TREE [--exit-cost-rounds N]]
#                     [--bazel-tests FILE --bazel-results DIR]
#                     [--run BHYVERUN_ARGS...]
#
# --bazel-tests (svm) runs Bazel-built test binaries in the L1 instead of
# the mode's cases: FILE lists `CONFIG //TARGET [GTEST_FILTER]`, and each
# test's test.xml and test.log land in DIR/CONFIG/PKG/NAME
# (scripts/nested_bazel_tests.py; scripts/test.sh uses it on a host
# without /dev/kvm).
#
# Boots Debian's cloud kernel (linux-image-cloud-amd64 / -arm64, fetched with
# apt-get download from Debian's mirror and cached in
# ${STRATA_CACHE:-~/.cache/strata}/nested, outside the tree) as the L1 under
# QEMU's TCG:
#   svm       qemu-system-x86_64 -accel tcg -cpu max (SVM), kvm-amd in L1
#   el2-nvhe  qemu-system-aarch64 -M virt,virtualization=on,gic-version=3
#             -cpu cortex-a57 (ARMv8.0: KVM runs nVHE, ThunderX-class)
#   el2-vhe   the same with -cpu max and mte=on (ARMv8.1+ VHE, ThunderX2-class)
#   el2-gicv2 -cpu cortex-a57 with gic-version=2 (nVHE on a GICv2 host with
#             the virtualization extensions: KVM offers vGICv2 only)
# with an initramfs of busybox, the kernel's KVM modules, bhyverun (with its
# shared libraries), strata's guests and a driver (tests/nested/init.sh) that
# runs the mode's cases (tests/nested/<mode>_cases.sh) against the L1's
# /dev/kvm. Each case prints `nested: PASS|FAIL|SKIP <name> (...)`; this
# script prints them, then `nested-<mode>: N passed, N failed, N skipped`,
# and with --results writes `PASS|FAIL|SKIP nested-<mode>:<name>` lines for
# scripts/test_summary.py. An L1 that does not come up, has no /dev/kvm, or
# does not finish is a failure, never a skip. Exit status 1 if anything
# failed.
#
# --kut (svm) also runs a kvm-unit-tests tree built outside strata (as
# scripts/kut.sh does, through kut.py --plan/--results-from: the L1 has no
# python) after the cases, and prints its own `PASS|FAIL|SKIP <test>` lines
# and `nested-svm kvm-unit-tests: N passed, ...`; those are not folded into
# the case counts. --kut-vmm qemu runs the same tests under the host's QEMU
# (copied into the L1 with its libraries and firmware) instead: the
# baseline measured in the same testbed.
#
# --kut-max-smp N (arm64) sets KUT's $MAX_SMP (default 2, the L1's CPUs):
# the ITS tests (its-*, their migration forms included) need 4 vCPUs and
# SKIP with fewer; KVM runs more vCPUs than the L1 has CPUs, only slower.
#
# --linux (svm) also times the L2 Linux boot (to its marker and ACPI
# power-off) under bhyverun and under the L1's QEMU (-M pc, KVM) on the same
# kernel and initramfs, five alternating runs each, and prints
# `linux-boot: strata <median> s, qemu-pc <median> s, qemu-microvm <median> s`
# with their max RSS (arm64: qemu-virt, no microvm).
#
# --run (last; any mode) boots the L1 and runs bhyverun once with the
# arguments that follow instead of the cases (the guests are in /guests),
# prints its output and exits with its status: a real KVM for a host that
# has none (scripts/demo.sh uses it then). An L1 that cannot run it exits
# 6 with the reason, as a VMM error would.
#
# --exit-cost (svm) runs KUT's vmexit.flat tests under bhyverun and the
# L1's QEMU alternately (bench/kut_exit_cost.py --plan, default 5 rounds)
# with the raw KVM_RUN inl floor (pio_exit_bench --floor-inl) in the same
# L1, and prints the cycles, medians and ratios.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Run under `flock /tmp/strata-nested.lock`, this script has the lock's file
# open (flock(1) leaves it to the command); a Bazel server that a build here
# starts would inherit it and hold the lock for its whole life (hours), so
# Bazel gets no descriptors beyond stdio.
bazel() { command bazel "$@" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; }

mode=${1:-}
shift || true
results="" keep="" kut="" kut_timeout="" kut_json="" kut_tests="" kut_vmm=strata
kut_max_smp=2
kut_exclude=() linux="" exit_cost="" exit_cost_rounds=5 run=""
run_args=()
bazel_tests="" bazel_results=""
while (($#)); do
  case $1 in
    --run) run=1; shift; run_args=("$@"); break ;;
    --results) results=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --kut) kut=$(realpath "$2"); shift 2 ;;
    --kut-timeout) kut_timeout=$2; shift 2 ;;
    --kut-json) kut_json=$2; shift 2 ;;
    --kut-tests) kut_tests=$2; shift 2 ;;
    --kut-vmm) kut_vmm=$2; shift 2 ;;
    --kut-max-smp) kut_max_smp=$2; shift 2 ;;
    --kut-exclude) kut_exclude+=(--exclude "$2"); shift 2 ;;
    --linux) linux=1; shift ;;
    --exit-cost) exit_cost=$(realpath "$2"); shift 2 ;;
    --exit-cost-rounds) exit_cost_rounds=$2; shift 2 ;;
    --bazel-tests) bazel_tests=$(realpath "$2"); shift 2 ;;
    --bazel-results) bazel_results=$2; shift 2 ;;
    *) echo "nested.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

case $mode in
  svm) arch=amd64 ;;
  el2-nvhe|el2-vhe|el2-gicv2) arch=arm64 ;;
  *) echo "usage: scripts/nested.sh svm|el2-nvhe|el2-vhe|el2-gicv2 [--results FILE] [--keep DIR]" >&2
     exit 2 ;;
esac

label="nested-$mode"
cache=${STRATA_CACHE:-$HOME/.cache/strata}/nested
mkdir -p "$cache"
work=$(mktemp -d /tmp/strata-nested.XXXXXX)
if [ -z "$keep" ]; then trap 'rm -rf "$work"' EXIT; else mkdir -p "$keep"; fi

fail_all() {  # the testbed itself failed: one failing case, said loudly
  if [ -n "$run" ]; then
    echo "$label: cannot run bhyverun in the L1: $*" >&2
    exit 6
  fi
  echo "$label: FAIL testbed ($*)" >&2
  [ -n "$results" ] && echo "FAIL $label:testbed ($*)" >> "$results"
  echo "$label: 0 passed, 1 failed, 0 skipped"
  exit 1
}

# --- The L1 kernel: Debian's cloud kernel, cached ---
pkg_arch=$arch
meta=linux-image-cloud-$arch
apt_meta=$meta
[ "$arch" = arm64 ] && apt_meta="$meta:arm64"
resolve() {
  apt-cache depends "$apt_meta" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1
}
pkg=$(resolve)
if [ -z "$pkg" ]; then  # no package lists yet on this machine
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq >&2 || true
  pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
  fail_all "apt-cache cannot resolve $apt_meta (run scripts/setup.sh; apt-get update)"
fi
kver=${pkg#linux-image-}
kdir="$cache/$pkg"
if [ ! -f "$kdir/.complete" ]; then
  echo "$label: fetching $pkg ($pkg_arch) into $cache" >&2
  rm -rf "$kdir" && mkdir -p "$kdir/deb"
  if [ "$(id -u)" = 0 ]; then chown _apt "$kdir/deb" 2>/dev/null || true; fi
  (cd "$kdir/deb" && apt-get download -qq "$pkg:$pkg_arch" 2>&1 | grep -v "^W: Download is performed unsandboxed") ||
    true
  deb=$(ls "$kdir"/deb/*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail_all "apt-get download $pkg:$pkg_arch failed"
  dpkg-deb -x "$deb" "$kdir/root" || fail_all "cannot unpack $deb"
  rm -rf "$kdir/deb"
  touch "$kdir/.complete"
fi
kernel=$(ls "$kdir"/root/boot/vmlinuz-* 2>/dev/null | head -1)
# The L1 kernel's text symbols (Debian's System.map is a stub): read from
# its /proc/kallsyms by the first L1 that boots it (nokaslr), then cached.
# nested_stall.py names a stalled L1's pcs with them.
ksyms="$kdir/kallsyms"
[ -n "$kernel" ] || fail_all "no vmlinuz in $pkg"
moddir="$kdir/root/lib/modules/$kver"

# --- strata's side: bhyverun and the guests, from the normal build ---
if [ "$arch" = amd64 ]; then
  # -c opt: the L1 emulates every user-space instruction, so the VMM's exit
  # path is measured as shipped, not as an -O0 debug build.
  bazel build -c opt --noshow_progress --ui_event_filters=-info,-debug \
    //frontends/bhyverun //tests/guests/amd64:all //bench:pio_exit_bench \
    //tests/nested:kvm_pin >&2 ||
    fail_all "bazel build of bhyverun and the amd64 guests failed"
  bin=$(bazel info -c opt bazel-bin 2>/dev/null)
  bhyverun="$bin/frontends/bhyverun/bhyverun"
  guests=("$bin"/tests/guests/amd64/*.elf)
  [ -n "$exit_cost" ] && bench="$bin/bench/pio_exit_bench"
  kvm_pin="$bin/tests/nested/kvm_pin"  # see tests/nested/kvm_pin.cc
else
  # The static aarch64 bhyverun (--config=arm64) and the arm64 guests.
  bazel build -c opt --noshow_progress --ui_event_filters=-info,-debug --config=arm64 \
    //frontends/bhyverun //tests/guests/arm64:all //bench:mmio_exit_bench_arm64 >&2 ||
    fail_all "bazel build --config=arm64 of bhyverun and the arm64 guests failed"
  bin=$(bazel info -c opt --config=arm64 bazel-bin 2>/dev/null)
  bhyverun="$bin/frontends/bhyverun/bhyverun"
  guests=("$bin"/tests/guests/arm64/*.flat)
  bench="$bin/bench/mmio_exit_bench_arm64"
fi

# --- The initramfs ---
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,sbin,dev,proc,sys,tmp,modules,guests,lib/strata,etc}
if [ "$arch" = amd64 ]; then
  busybox=/bin/busybox  # busybox-static
  [ -x "$busybox" ] || fail_all "busybox-static is not installed (scripts/setup.sh)"
else
  # busybox-static:arm64, unpacked from its .deb (not installed: it would
  # replace the host's).
  bbdir="$cache/busybox-static-arm64"
  if [ ! -f "$bbdir/.complete" ]; then
    rm -rf "$bbdir" && mkdir -p "$bbdir/deb"
    if [ "$(id -u)" = 0 ]; then chown _apt "$bbdir/deb" 2>/dev/null || true; fi
    (cd "$bbdir/deb" && apt-get download -qq busybox-static:arm64 2>&1 |
       grep -v "^W: Download is performed unsandboxed") || true
    deb=$(ls "$bbdir"/deb/*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || fail_all "apt-get download busybox-static:arm64 failed"
    dpkg-deb -x "$deb" "$bbdir/root" || fail_all "cannot unpack $deb"
    touch "$bbdir/.complete"
  fi
  busybox="$bbdir/root/bin/busybox"
fi
cp "$busybox" "$rootfs/bin/busybox"
for a in sh mount insmod poweroff timeout grep sed tail head cat tr dmesg awk \
         uname printf echo sleep wc mkdir ls cut rm mv cp dd gzip base64; do
  ln -s busybox "$rootfs/bin/$a"
done
mods=()  # arm64: KVM is built into Debian's kernel
if [ "$arch" = amd64 ]; then
  mods=(kernel/virt/lib/irqbypass.ko kernel/arch/x86/kvm/kvm.ko
        kernel/arch/x86/kvm/kvm-amd.ko)
fi
for m in "${mods[@]}"; do
  [ -f "$moddir/$m" ] || fail_all "$pkg has no $m"
  cp "$moddir/$m" "$rootfs/modules/"
done
printf '%s\n' "${mods[@]##*/}" | grep . > "$rootfs/modules/order"
if [ -n "$bhyverun" ]; then
  cp "$bhyverun" "$rootfs/bin/bhyverun"
  # Its shared libraries and the loader, at the paths ldd names (amd64;
  # the arm64 build is static).
  if [ "$arch" = amd64 ]; then
    while read -r lib; do
      [ -f "$lib" ] || continue
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
    done < <(ldd "$bhyverun" "$kvm_pin" ${bench:+"$bench"} | grep -o '/[^ ]*')
    cp "$kvm_pin" "$rootfs/bin/kvm_pin"
  fi
  cp "${guests[@]}" "$rootfs/guests/"
  if [ -n "${bench:-}" ]; then
    # The arm64 MMIO bench runs as a case; the amd64 PIO bench gives
    # --exit-cost its floor.
    if [ "$arch" = amd64 ]; then
      cp "$bench" "$rootfs/bin/pio_exit_bench"
    else
      cp "$bench" "$rootfs/bin/mmio_exit_bench"
    fi
  fi
fi
# Linux as an L2: the same Debian kernel (amd64: a bzImage; arm64: an
# Image) with a busybox initramfs whose init prints a marker and powers off
# (tests/nested/linux_init.sh).
if true; then
  mkdir -p "$rootfs/linux" "$work/l2/bin" "$work/l2/proc" "$work/l2/sys" "$work/l2/dev"
  cp "$kernel" "$rootfs/linux/vmlinuz"
  cp "$busybox" "$work/l2/bin/busybox"
  for a in sh mount grep poweroff cat echo; do ln -s busybox "$work/l2/bin/$a"; done
  ln -s busybox "$rootfs/bin/time"
  cp tests/nested/linux_init.sh "$work/l2/init"
  chmod +x "$work/l2/init"
  (cd "$work/l2" && find . | cpio -o -H newc --quiet | gzip -1) > "$rootfs/linux/initrd" ||
    fail_all "cannot build the L2 initramfs"
fi
cp tests/nested/init.sh "$rootfs/init"
[ -s "$ksyms" ] || touch "$rootfs/kallsyms.want"
cp tests/nested/linux_bench.sh "$rootfs/linux_bench.sh"
cases="tests/nested/${mode}_cases.sh"
[ "$arch" = arm64 ] && cases=tests/nested/el2_cases.sh
if [ -n "$run" ]; then
  cases=tests/nested/run_cases.sh
  printf '%s\n' "${run_args[@]}" > "$rootfs/run_args"
fi
if [ -n "$bazel_tests" ]; then
  # The tests' binaries, runfiles and libraries; their plan is the cases.
  [ "$mode" = svm ] && [ -n "$bazel_results" ] ||
    fail_all "--bazel-tests is for svm, with --bazel-results DIR"
  bt_limit=$(python3 scripts/nested_bazel_tests.py stage "$bazel_tests" "$rootfs" "$work/bt.json") ||
    fail_all "scripts/nested_bazel_tests.py stage failed"
  cases="$rootfs/bt/plan.sh"
fi
cp "$cases" "$rootfs/cases.sh"
chmod +x "$rootfs/init"
# The host's QEMU in the L1, with its libraries and the firmware -kernel
# needs (SeaBIOS, qboot for microvm and the Multiboot/Linux option ROMs);
# /bin/qemu links to it.
copy_qemu() {
  [ "$arch" = arm64 ] && { copy_qemu_arm64; return; }
  [ -x "$rootfs/bin/qemu" ] && return
  local qemu lib f src
  qemu=$(command -v qemu-system-x86_64) || fail_all "no qemu-system-x86_64"
  # At its own path: QEMU finds its firmware relative to its executable.
  mkdir -p "$rootfs/usr/bin"
  cp "$qemu" "$rootfs/usr/bin/qemu-system-x86_64"
  ln -s ../usr/bin/qemu-system-x86_64 "$rootfs/bin/qemu"
  while read -r lib; do
    [ -f "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$qemu" | grep -o '/[^ ]*')
  for f in bios-256k.bin bios-microvm.bin multiboot_dma.bin linuxboot_dma.bin kvmvapic.bin; do
    src=$(ls /usr/share/qemu/$f /usr/share/seabios/$f 2>/dev/null | head -1)
    [ -n "$src" ] || fail_all "QEMU firmware $f missing"
    mkdir -p "$rootfs/usr/share/qemu"
    cp -L "$src" "$rootfs/usr/share/qemu/$f"
  done
}
# The arm64 L1's QEMU: Debian's qemu-system-arm:arm64 and its libraries in
# an arm64 sysroot (scripts/nested_arm64_qemu.sh, cached in $cache) merged
# into the initramfs at their own paths (/lib/ld-linux-aarch64.so.1,
# /lib/aarch64-linux-gnu, /usr/lib/aarch64-linux-gnu); /bin/qemu links to it.
copy_qemu_arm64() {
  [ -x "$rootfs/bin/qemu" ] && return
  local sysroot
  sysroot=$(scripts/nested_arm64_qemu.sh "$cache") ||
    fail_all "cannot make the arm64 QEMU (scripts/nested_arm64_qemu.sh $cache)"
  cp -a "$sysroot/." "$rootfs/" || fail_all "cannot copy $sysroot into the initramfs"
  ln -s ../usr/bin/qemu-system-aarch64 "$rootfs/bin/qemu"
}

# The cases take 0.5-2 min under TCG; an L1 that stops making progress
# (see tests/nested/svm_cases.sh) is cut off well before CI's limit.
l1_timeout=300
if [ -n "$linux" ]; then
  l1_timeout=$((l1_timeout + 600))
  copy_qemu
  touch "$rootfs/linux/bench"
fi
if [ -n "$kut" ]; then
  plan="$work/kutplan"
  kut_arch=(--arch x86) kdir=x86
  # The L1 has 2 CPUs: KUT's $MAX_SMP.
  [ "$arch" = arm64 ] && kut_arch=(--arch arm64 --max-smp "$kut_max_smp") kdir=arm
  # shellcheck disable=SC2086
  python3 scripts/kut.py "$kut" "${kut_arch[@]}" --plan "$plan" \
    --bhyverun "$bhyverun" \
    --vmm "$kut_vmm" ${kut_timeout:+--timeout "$kut_timeout"} \
    "${kut_exclude[@]}" $kut_tests ||
    fail_all "kut.py --plan failed"
  [ "$kut_vmm" = qemu ] && copy_qemu
  mkdir -p "$rootfs/kut/$kdir"
  cp "$plan/plan.sh" "$plan/env" "$rootfs/kut/"
  for f in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["files"]))' "$plan/plan.json"); do
    cp "$kut/$kdir/$f" "$rootfs/kut/$kdir/"
  done
  # Each test's limit, plus slack for the L1's boot.
  l1_timeout=$(( $(awk '{s += $3} END {print s + 0}' "$plan/plan.sh") + l1_timeout ))
fi
if [ -n "$exit_cost" ]; then
  [ "$arch" = amd64 ] || fail_all "--exit-cost is for svm (KUT's x86 vmexit.flat)"
  ecplan="$work/ecplan"
  # Not tscdeadline: the L1's KVM on QEMU's TCG SVM livelocks under
  # high-rate timer interrupts (tests/nested/svm_cases.sh).
  ec_tests=inl_from_qemu,cpuid,mov_to_cr8,ipi
  python3 bench/kut_exit_cost.py "$exit_cost" --plan "$ecplan" \
    --tests "$ec_tests" --rounds "$exit_cost_rounds" --bhyverun "$bhyverun" ||
    fail_all "kut_exit_cost.py --plan failed"
  copy_qemu
  mkdir -p "$rootfs/kut/x86"
  cp "$exit_cost/x86/vmexit.flat" "$rootfs/kut/x86/"
  cp "$ecplan/exitcost.sh" "$ecplan/env" "$rootfs/kut/"
  # Up to 3 min per run (ipi and tscdeadline are slow under TCG).
  l1_timeout=$(( $(grep -c '^ec_run' "$ecplan/exitcost.sh") * 180 + l1_timeout ))
fi
# Each Bazel test's limit (its TEST_TIMEOUT), plus slack for the L1's boot.
[ -n "$bazel_tests" ] && l1_timeout=$((bt_limit + l1_timeout))
initrd="$work/initrd.cpio.gz"
(cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd" ||
  fail_all "cannot build the initramfs"

# --- Boot the L1 and collect what it reports ---
log="$work/l1.log"
# The L1's QEMU monitor: nested_stall.py asks it where a stalled L1 is,
# and names its pcs with the L1 kernel's cached kallsyms (nokaslr).
monitor="$work/monitor.sock"
run_l1() {  # exec: boot_l1's kill reaches timeout, which passes it on
  if [ "$arch" = amd64 ]; then
    # tsc=reliable: TCG's TSC follows the host's clock on every vCPU, so
    # the L1 keeps it as its clocksource (not hpet after a watchdog
    # verdict), and its KVM gives guests a stable kvmclock (master clock)
    # and Hyper-V's TSC page: kvmclock_test and hyperv_clock, under
    # strata and QEMU alike.
    exec timeout -k 5 "$l1_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 2 \
      -nographic -no-reboot -nodefaults -serial stdio -monitor "unix:$monitor,server=on,wait=off" \
      -kernel "$kernel" -initrd "$initrd" \
      -append "console=ttyS0 panic=-1 quiet tsc=reliable nokaslr" </dev/null > "$log" 2>&1
  else
    local cpu=cortex-a57 machine=virt,virtualization=on,gic-version=3
    # cortex-a57: ARMv8.0, no VHE, so KVM runs nVHE (ThunderX-class); max:
    # ARMv8.1+ with VHE (ThunderX2-class), and MTE's tag memory so that the
    # L1's KVM can offer MTE to its guests. gic-version=2 with
    # virtualization=on: a GICv2 with the virtualization extensions
    # (GICH/GICV), so the L1's KVM offers vGICv2 (and no vGICv3).
    [ "$mode" = el2-vhe ] && cpu=max machine=$machine,mte=on
    [ "$mode" = el2-gicv2 ] && machine=virt,virtualization=on,gic-version=2
    exec timeout -k 5 "$l1_timeout" qemu-system-aarch64 -M "$machine" \
      -accel tcg -cpu "$cpu" -m 2G -smp 2 -nographic -no-reboot -nodefaults \
      -serial stdio -monitor "unix:$monitor,server=on,wait=off" \
      -kernel "$kernel" -initrd "$initrd" \
      -append "console=ttyAMA0 panic=-1 quiet nokaslr strata.mode=$mode" \
      </dev/null > "$log" 2>&1
  fi
}
# boot_l1: runs the L1 (run_l1) and watches its log. The L1's /init
# prints a pulse every 20 s (tests/nested/init.sh), so a log that has not
# grown for $l1_quiet s, or no new pulse for as long, means the L1 itself
# stopped making progress: it is stopped then rather than at l1_timeout.
l1_quiet=${STRATA_L1_QUIET:-150}  # seconds; the variable is for testing this path
boot_l1() {
  : > "$log"
  run_l1 &
  local qpid=$! last=-1 size quiet=0 pulses last_pulses=0 pulseless=0 why
  while kill -0 "$qpid" 2>/dev/null; do
    sleep 5
    size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    if [ "$size" = "$last" ]; then quiet=$((quiet + 5)); else quiet=0 last=$size; fi
    # Once /init pulses, a pulse that stops means the L1 stopped too, even
    # if its kernel still prints (soft-lockup reports every 28 s).
    pulses=$(grep -c '^nested-pulse:' "$log" 2>/dev/null)
    if [ "${pulses:-0}" -gt 0 ] && [ "$pulses" = "$last_pulses" ]; then
      pulseless=$((pulseless + 5))
    else
      pulseless=0 last_pulses=${pulses:-0}
    fi
    why=""
    [ "$quiet" -ge "$l1_quiet" ] && why="printed nothing for $quiet s"
    [ "$pulseless" -ge "$l1_quiet" ] && why="has not pulsed for $pulseless s"
    if [ -n "$why" ]; then
      echo "$label: the L1 $why: where its vCPUs are, then stopping it" >&2
      save_kallsyms
      python3 scripts/nested_stall.py "$monitor" "$ksyms" >&2
      kill "$qpid" 2>/dev/null
      break
    fi
  done
  wait "$qpid"
  local rc=$?
  save_kallsyms
  return $rc
}
l1_finished() { tr -d '\r' < "$log" | grep -q '^nested: done'; }
# save_kallsyms: the symbols an L1 printed (init.sh), into the cache.
save_kallsyms() {
  [ -s "$ksyms" ] && return
  tr -d '\r' < "$log" | sed -n '/^nested-kallsyms: begin$/,/^nested-kallsyms: end$/p' |
    grep -v '^nested-kallsyms:' | base64 -d 2>/dev/null | gunzip 2>/dev/null > "$ksyms.tmp" &&
    [ -s "$ksyms.tmp" ] && mv "$ksyms.tmp" "$ksyms"
  rm -f "$ksyms.tmp"
}
# The L1 itself (QEMU's TCG running KVM) has been seen to stop making
# progress mid-run (tests/nested/svm_cases.sh). Such a run is reported
# here with its last lines and run again, up to three runs in all; the
# last run's results are the ones counted, and a run that never finishes
# fails l1-finished.
start=$(date +%s)
boot_l1
rc=$?
for attempt in 2 3; do
  l1_finished && break
  echo "$label: the L1 did not finish (qemu status $rc after $(( $(date +%s) - start )) s); its last lines:" >&2
  tr -d '\r' < "$log" | tail -n 12 >&2
  echo "$label: running the L1 again (run $attempt of 3)" >&2
  if [ -n "$bazel_tests" ]; then
    # Keep the Bazel tests this run finished; the next runs the rest.
    python3 scripts/nested_bazel_tests.py resume "$work/bt.json" "$log" "$bazel_results" "$rootfs" &&
      (cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd" ||
      fail_all "cannot resume the Bazel tests"
  fi
  start=$(date +%s)
  boot_l1
  rc=$?
done
secs=$(( $(date +%s) - start ))
[ -n "$keep" ] && cp "$log" "$initrd" "$keep/"
if [ -n "$run" ]; then
  # bhyverun's output and status; nothing of the testbed's own lines.
  tr -d '\r' < "$log" | sed -n 's/^nested-run: | //p'
  rc=$(tr -d '\r' < "$log" | sed -n 's/^nested-run: status \([0-9]*\)$/\1/p' | tail -n 1)
  if [ -z "$rc" ]; then
    echo "$label: the L1 did not report bhyverun's status (after ${secs} s); its last lines:" >&2
    tr -d '\r' < "$log" | tail -n 12 >&2
    exit 6
  fi
  exit "$rc"
fi
tr -d '\r' < "$log" | grep '^nested' | grep -v '^nested-pulse' | sed 's/^/  /' >&2
passed=$(tr -d '\r' < "$log" | grep -c '^nested: PASS ')
failed=$(tr -d '\r' < "$log" | grep -c '^nested: FAIL ')
skipped=$(tr -d '\r' < "$log" | grep -c '^nested: SKIP ')
if [ -n "$results" ]; then
  tr -d '\r' < "$log" |
    sed -n 's/^nested: \(PASS\|FAIL\|SKIP\) \([^ ]*\).*/\1 '"$label"':\2/p' >> "$results"
fi
if ! l1_finished; then
  echo "$label: the L1 did not finish (qemu status $rc after ${secs} s); its last lines:" >&2
  tr -d '\r' < "$log" | tail -n 20 >&2
  [ -n "$results" ] && echo "FAIL $label:l1-finished" >> "$results"
  failed=$((failed + 1))
fi
if [ -n "$kut" ]; then
  echo "=== $label kvm-unit-tests ($kut)" >&2
  kut_out=$(python3 scripts/kut.py "$kut" --plan "$plan" --results-from "$log" \
    --bhyverun "$bhyverun" ${kut_json:+--json "$kut_json"})
  sed '$d' <<<"$kut_out" >&2
  echo "$label kvm-unit-tests ($kut_vmm): $(tail -n 1 <<<"$kut_out")" >&2
fi
if [ -n "$linux" ]; then
  tr -d '\r' < "$log" | grep '^linux-boot' >&2
fi
if [ -n "$bazel_tests" ]; then
  python3 scripts/nested_bazel_tests.py collect "$work/bt.json" "$log" "$bazel_results" ||
    { echo "$label: FAIL collecting the Bazel tests' results" >&2; failed=$((failed + 1)); }
fi
if [ -n "$exit_cost" ]; then
  python3 bench/kut_exit_cost.py "$exit_cost" --plan "$ecplan" \
    --tests "$ec_tests" --results-from "$log" >&2
fi
echo "$label: L1 $kver under TCG, ${secs} s" >&2
echo "$label: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
