#!/bin/bash
# Checks the built guests against the boot protocol bhyverun implements:
# ELF class and machine, every PT_LOAD at or above 2 MiB (clear of the
# VMM's boot-info area at 1 MiB) with p_paddr = p_vaddr, and for ELF32 a
# Multiboot v1 header with a valid checksum in the first 8 KiB.
# Usage: elf_layout_test.sh <guest.elf>...
set -u
failures=0
fail() { echo "FAIL: $1: $2"; failures=$((failures + 1)); }

for elf in "$@"; do
  name=$(basename "$elf")
  header=$(readelf -h "$elf") || { fail "$name" "not an ELF file"; continue; }
  class=$(awk '/Class:/ {print $2}' <<<"$header")
  machine=$(awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}' <<<"$header")
  case "$name" in
    hello.elf | exceptions64.elf | driver.elf | acpi.elf | ioapic.elf | rtc.elf | s3.elf | pci.elf | hyperv.elf) want_class=ELF64 want_machine="Advanced Micro Devices X86-64" ;;
    *) want_class=ELF32 want_machine="Intel 80386" ;;
  esac
  [[ "$class" == "$want_class" ]] || fail "$name" "class $class, expected $want_class"
  [[ "$machine" == "$want_machine" ]] || fail "$name" "machine '$machine', expected '$want_machine'"

  loads=0
  while read -r vaddr paddr; do
    loads=$((loads + 1))
    ((vaddr == paddr)) || fail "$name" "PT_LOAD p_vaddr $vaddr != p_paddr $paddr"
    ((paddr >= 0x200000)) || fail "$name" "PT_LOAD at $paddr, below 2 MiB"
  done < <(readelf -lW "$elf" | awk '$1 == "LOAD" {print $3, $4}')
  ((loads > 0)) || fail "$name" "no PT_LOAD segments"

  # Multiboot v1: magic 0x1BADB002, flags, checksum; 4-byte aligned, first
  # 8 KiB (Multiboot 0.6.96 §3.1.1). od prints little-endian 32-bit words.
  mapfile -t words < <(head -c 8192 "$elf" | od -An -v -t x4 -w4 | tr -d ' ')
  found=0
  for ((i = 0; i + 2 < ${#words[@]}; i++)); do
    if [[ "${words[i]}" == 1badb002 ]]; then
      sum=$(( (0x1badb002 + 0x${words[i + 1]} + 0x${words[i + 2]}) & 0xffffffff ))
      ((sum == 0)) && found=1 && break
    fi
  done
  if [[ "$want_class" == ELF32 ]]; then
    ((found)) || fail "$name" "no valid Multiboot v1 header in the first 8 KiB"
  fi
  echo "checked $name: $class, $loads PT_LOAD, multiboot header: $found"
done

if ((failures)); then
  echo "$failures failures"
  exit 1
fi
echo "all $# guests ok"
