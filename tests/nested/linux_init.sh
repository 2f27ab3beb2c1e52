#!/bin/sh
# strata — /init of the L2 Linux guest in the nested testbeds: reports
# what Linux sees (amd64: CPUs from the MADT, memory from the E820 map;
# arm64: both from the device tree) and powers off (amd64: through ACPI,
# the FADT's PM1a_CNT, S5; arm64: PSCI SYSTEM_OFF), which must end
# bhyverun with status 0.
mount -t proc proc /proc
echo "L2-MARKER: linux up, cpus $(grep -c ^processor /proc/cpuinfo), $(grep MemTotal /proc/meminfo)"
poweroff -f
