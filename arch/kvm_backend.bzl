"""Tests that need the build host's /dev/kvm.

Both architectures have a KVM backend, so every library and binary builds
for amd64 and (--config=arm64) for arm64. A test that creates VMs, though,
can only run where its architecture's KVM is: the amd64 host for amd64
builds. The arm64 builds run their unit tests under qemu-user, which has no
arm64 KVM, so the tests that link the backend and create VMs set

    target_compatible_with = KVM_BACKEND,

and the arm64 side's guests run under KVM in the nested EL2 testbeds
instead (scripts/nested.sh el2-nvhe|el2-vhe, tests/nested/el2_cases.sh).
"""

KVM_BACKEND = ["@platforms//cpu:x86_64"]
