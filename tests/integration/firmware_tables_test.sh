#!/bin/bash
# bhyverun --dump-tables against the peer tools: iasl (ACPICA) disassembles
# every ACPI table without an error and finds exactly the configured
# processors in the MADT, with the APIC ids the CPUID policy gives them
# (arch/amd64/cpuid.h: SMT bits, then core bits, then the package); dmidecode
# reads smbios.bin and finds one Processor Information per socket and the
# configured memory. No /dev/kvm needed.
#
# iasl 20200925 cannot read a binary RSDP (its header check wants a table
# name as the signature, and "RSD PTR " has a space), so RSDP.dat is checked
# here: signature, revision 2 and both checksums. The disassembled DSDT must
# also compile back with iasl without errors or warnings.
set -u
# dmidecode is in /usr/sbin, which the strict test environment leaves out.
export PATH="$PATH:/usr/sbin:/sbin"
BHYVERUN="$1"
for tool in iasl dmidecode od; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/setup.sh)"; exit 1; }
done
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { checks=$((checks + 1)); }

bits() {  # ceil(log2(n)), 0 for n <= 1
  local n=$1 b=0
  while (((1 << b) < n)); do b=$((b + 1)); done
  echo $b
}

# The APIC id of vCPU i in a sockets x cores x threads topology.
apic_id() {
  local i=$1 cores=$2 threads=$3
  local sb cb
  sb=$(bits "$threads")
  cb=$(bits "$cores")
  local smt=$((i % threads)) core=$(((i / threads) % cores)) pkg=$((i / (threads * cores)))
  echo $(((pkg << (sb + cb)) | (core << sb) | smt))
}

u8_sum() {  # the 8-bit sum of bytes [off, off+len) of a file
  od -An -tu1 -v -j "$2" -N "$3" "$1" | awk '{for (i = 1; i <= NF; i++) s += $i} END {print s % 256}'
}

# case name, cpus, sockets, cores, threads, memory (MiB), bhyverun args...
run_case() {
  local name=$1 cpus=$2 sockets=$3 cores=$4 threads=$5 mem=$6
  shift 6
  local dir="$TMP/$name"
  rm -rf "$dir"
  if ! "$BHYVERUN" --dump-tables "$dir" -m "${mem}M" "$@" 2>"$dir.err"; then
    fail "$name: bhyverun --dump-tables $* failed: $(cat "$dir.err")"
    return
  fi
  local sig
  for sig in APIC FACP DSDT FACS MCFG XSDT RSDT RSDP; do
    [ -s "$dir/$sig.dat" ] || fail "$name: $sig.dat missing"
  done
  local f
  for f in "$dir"/*.dat; do
    [ "$(basename "$f")" = RSDP.dat ] && continue
    local out
    out=$(cd "$dir" && iasl -d "$(basename "$f")" 2>&1)
    local rc=$?
    if [ $rc -ne 0 ] || grep -qi "error" <<<"$out" ||
       grep -qi "error" "${f%.dat}.dsl" 2>/dev/null; then
      fail "$name: iasl -d $(basename "$f") (status $rc): $(grep -i error <<<"$out" | head -3)"
    else
      pass
    fi
  done
  # The disassembled DSDT compiles back without errors or warnings.
  local asl
  asl=$(cd "$dir" && iasl -p DSDT-recompiled DSDT.dsl 2>&1)
  if [ $? -ne 0 ] || ! grep -q "0 Errors, 0 Warnings" <<<"$asl"; then
    fail "$name: iasl cannot recompile DSDT.dsl: $(grep -iE "error|warning" <<<"$asl" | head -3)"
  else
    pass
  fi
  # RSDP: signature, both checksums, revision 2.
  local r="$dir/RSDP.dat"
  if [ "$(head -c 8 "$r")" != "RSD PTR " ] || [ "$(u8_sum "$r" 0 20)" != 0 ] ||
     [ "$(u8_sum "$r" 0 36)" != 0 ] ||
     [ "$(od -An -tu1 -j 15 -N 1 "$r" | tr -d ' ')" != 2 ]; then
    fail "$name: RSDP signature, revision or checksums wrong"
  else
    pass
  fi
  # The MADT's processors, in table order, as "type:id:flags".
  local madt="$dir/APIC.dsl"
  local got
  got=$(awk '
    /Subtable Type : 00 \[Processor Local APIC\]/ {t = "lapic"; next}
    /Subtable Type : 09 \[Processor Local x2APIC\]/ {t = "x2apic"; next}
    /Subtable Type/ {t = ""}
    t == "lapic" && /Local Apic ID :/ {print $NF; t = ""}
    t == "x2apic" && /Processor x2Apic ID :/ {print $NF; t = ""}
  ' "$madt" | while read -r hex; do printf '%d ' "$((16#$hex))"; done)
  local want="" i
  for ((i = 0; i < cpus; i++)); do want+="$(apic_id "$i" "$cores" "$threads") "; done
  if [ "$got" != "$want" ]; then
    fail "$name: MADT APIC ids: got [$(head -c 200 <<<"$got")...] want [$(head -c 200 <<<"$want")...]"
  else
    pass
  fi
  local n_lapic n_x2
  n_lapic=$(grep -c "Subtable Type : 00 \[Processor Local APIC\]" "$madt")
  n_x2=$(grep -c "Subtable Type : 09 \[Processor Local x2APIC\]" "$madt")
  local want_x2=0
  for ((i = 0; i < cpus; i++)); do
    (($(apic_id "$i" "$cores" "$threads") > 254)) && want_x2=$((want_x2 + 1))
  done
  if [ $((n_lapic + n_x2)) -ne "$cpus" ] || [ "$n_x2" -ne "$want_x2" ]; then
    fail "$name: MADT has $n_lapic local APIC + $n_x2 x2APIC entries, want $cpus with $want_x2 x2APIC"
  else
    pass
  fi
  if ((want_x2 > 0)) && ! grep -q "Local x2APIC NMI" "$madt"; then
    fail "$name: no x2APIC NMI entry"
  fi
  # SMBIOS through dmidecode.
  local dmi
  if ! dmi=$(dmidecode --from-dump "$dir/smbios.bin" 2>&1); then
    fail "$name: dmidecode --from-dump failed: $(head -3 <<<"$dmi")"
    return
  fi
  grep -q "SMBIOS 3.0" <<<"$dmi" || fail "$name: dmidecode does not see SMBIOS 3.0"
  local procs
  procs=$(grep -c "^Processor Information" <<<"$dmi")
  [ "$procs" -eq "$sockets" ] && pass ||
    fail "$name: $procs Processor Information structures, want $sockets"
  local per_core_ok
  per_core_ok=$(grep -c "Core Count: $cores\$" <<<"$dmi")
  [ "$per_core_ok" -eq "$sockets" ] && pass ||
    fail "$name: Core Count $cores in $per_core_ok of $sockets sockets"
  grep -q "Thread Count: $((cores * threads))\$" <<<"$dmi" && pass ||
    fail "$name: no Thread Count $((cores * threads))"
  # Memory: the sum of the Memory Device sizes.
  local total
  total=$(awk '/^Memory Device/ {m = 1} m && /^\tSize: [0-9]+ MB/ {s += $2; m = 0}
               m && /^\tSize: [0-9]+ GB/ {s += $2 * 1024; m = 0} END {print s + 0}' <<<"$dmi")
  [ "$total" -eq "$mem" ] && pass || fail "$name: memory devices total $total MiB, want $mem"
  grep -q "^Memory Array Mapped Address" <<<"$dmi" && pass ||
    fail "$name: no Memory Array Mapped Address"
}

for n in 1 2 16 65 255 256 1024; do
  run_case "cpus$n" "$n" "$n" 1 1 256 -c "$n"
done
run_case topo_2x3x2 12 2 3 2 512 -c cpus=12,sockets=2,cores=3,threads=2
# Sparse ids (3 cores take 2 bits): ids pass 254 at vCPU 192.
run_case topo_40x3x2 240 40 3 2 256 -c cpus=240,sockets=40,cores=3,threads=2
# RAM above 4 GiB: two Memory Array Mapped Address ranges, two DIMMs.
run_case highmem 4 4 1 1 20480 -c 4
if [ -d "$TMP/highmem" ]; then
  n=$(dmidecode --from-dump "$TMP/highmem/smbios.bin" | grep -c "^Memory Array Mapped Address")
  [ "$n" -eq 2 ] && pass || fail "highmem: $n mapped address ranges, want 2"
fi

echo "firmware_tables_test: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
