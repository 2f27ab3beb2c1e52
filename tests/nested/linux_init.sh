#!/bin/sh
# strata — /init of the L2 Linux guest in the nested SVM testbed: reports
# what Linux sees (CPUs from the MADT, memory from the E820 map) and powers
# off through ACPI (the FADT's PM1a_CNT, S5), which must end bhyverun with
# status 0.
mount -t proc proc /proc
echo "L2-MARKER: linux up, cpus $(grep -c ^processor /proc/cpuinfo), $(grep MemTotal /proc/meminfo)"
poweroff -f
