# strata — what the nested SVM testbed runs in its L1 (kvm-amd on QEMU's
# SVM): strata's own guests under real SVM semantics, with both vendor
# policies and both irqchips. Sourced by tests/nested/init.sh; see case_.
G=/guests
case_ demo 0 "vcpus: 2 of 2 checked in" -c 2
case_ demo-intel-policy 0 "cpu vendor: GenuineIntel" -c 2 --cpu-vendor intel
# Named CPU models (x86.cpu_model): vendor, signature and brand string as
# the guest reads them, an Intel model on this AMD L1 included.
case_ cpu-model-opteron 0 'cpu: family 0xf model 0x6 stepping 1, "AMD Opteron 240 (Gen 1 Class Opteron)"' \
  -o x86.cpu_model=Opteron_G1
case_ cpu-model-ivybridge 0 'cpu: family 0x6 model 0x3a stepping 9, "Intel Xeon E3-12xx v2 (Ivy Bridge)"' \
  -c 2 -o x86.cpu_model=IvyBridge
case_ hello64 1 "hello: done" -k $G/hello.elf -a "one two"
case_ hello32-multiboot 1 "hello: done" -k $G/hello32.elf
case_ smp4 1 "smp: 4 of 4 cpus up" -c 4 -k $G/smp.elf
# Non-contiguous APIC ids (0-2, 4-6): the guest starts them by broadcast.
case_ smp-topology 1 "smp: 6 of 6 cpus up" -c cpus=6,sockets=2,cores=3 -k $G/smp.elf -a broadcast
case_ exceptions32 1 "SUMMARY: 8 tests, 0 unexpected failures" -k $G/exceptions.elf
# Under real SVM nothing is instruction-emulated: #BP runs, no skip.
case_ exceptions64 1 "SUMMARY: 14 tests, 0 unexpected failures" -k $G/exceptions64.elf
case_ io 1 "SUMMARY: 29 tests, 0 unexpected failures" -k $G/io.elf -c 2 -m 64M
case_ io-amd-policy 1 "SUMMARY: 29 tests, 0 unexpected failures" -k $G/io.elf --cpu-vendor amd
case_ io-split-irqchip 1 "SUMMARY: 29 tests, 0 unexpected failures" -k $G/io.elf -o x86.irqchip=split
case_ ioapic-split 1 "SUMMARY: 11 tests, 0 unexpected failures" -k $G/ioapic.elf -o x86.irqchip=split
case_ ioapic-kernel 1 "SUMMARY: 11 tests, 0 unexpected failures" -k $G/ioapic.elf
# VMware's backdoor port: GETVERSION answered in the vCPU's registers.
case_ vmport 1 "SUMMARY: 4 tests, 0 unexpected failures" -k $G/vmport.elf \
  -o platform.vmport.device=vmport
case_ vmport-absent 1 "SUMMARY: 1 tests, 0 unexpected failures" -k $G/vmport.elf -a absent
# x86.cpu_pm: HLT and PAUSE stay in the guest (KVM_CAP_X86_DISABLE_EXITS).
case_ cpu-pm 1 "smp: 4 of 4 cpus up" -c 4 -k $G/smp.elf -o x86.cpu_pm=true
case_ console-flood 1 "console: flood done" -k $G/console.elf -a "flood 16"
# Not here: the rtc guest (1024 Hz RTC interrupts). In 1 of 3 runs the L1
# stopped making progress inside it, as it did in kvm-unit-tests'
# vmexit_tscdeadline: the L1's KVM on QEMU's TCG SVM livelocks under
# high-rate timer interrupts (the L1 spins, no output, SIGKILL does not
# end bhyverun). It runs on the host KVM in //tests/integration.
# The firmware tables as the guest finds them.
case_ acpi-madt 1 "acpi: 4 processors in the MADT (4 local APIC, 0 x2APIC), fw_cfg says 4" -c 4 -k $G/acpi.elf
# ACPI S3: suspend, RTC-alarm wake, real-mode resume at the waking vector.
case_ s3-resume 85 "s3: suspending (waking vector 0x1000)" -c 2 -k $G/s3.elf
# Hyper-V enlightenments (x86.hyperv) on the L1's KVM: the leaves, VP
# indexes, the clocks, and with hyperv-testdev the SynIC, a synthetic
# timer and the message/event hypercalls; an explicit list without the
# SynIC; and without x86.hyperv, none of it.
HV_DEV="-o platform.hvtest.device=hyperv-testdev"
case_ hyperv-passthrough 1 "SUMMARY: 26 tests, 0 unexpected failures" -c 2 -m 64M -k $G/hyperv.elf -o x86.hyperv=passthrough $HV_DEV
case_ hyperv-list 1 "SUMMARY: 10 tests, 0 unexpected failures" -c 2 -m 64M -k $G/hyperv.elf -a nosynic -o x86.hyperv=relaxed,vpindex,time
case_ hyperv-split-irqchip 1 "SUMMARY: 10 tests, 0 unexpected failures" -c 2 -m 64M -k $G/hyperv.elf -a nosynic -o x86.irqchip=split -o x86.hyperv=relaxed,vpindex,time
case_ hyperv-off 1 "SUMMARY: 3 tests, 0 unexpected failures" -k $G/hyperv.elf -a off
# Linux (Debian's cloud kernel) as an L2: bzImage boot, 2 CPUs from the
# MADT, 256 MiB, ACPI power-off ending bhyverun with status 0.
case_ linux-boot 0 "L2-MARKER: linux up, cpus 2," -c 2 -m 256M -k /linux/vmlinuz -i /linux/initrd -a "console=ttyS0 quiet panic=-1"
