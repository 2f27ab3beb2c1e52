"""The architectures with a KVM backend so far: amd64 only.

arm64 has the backend's headers (arch/arm64/BUILD) but not its
implementation, so the MI backend compiles for arm64 and nothing linking it
can. Binaries and tests that link //core:vmmapi, //core/kvm, //arch:kvm_md,
//arch:vm_md or //arch:test_programs set

    target_compatible_with = KVM_BACKEND,

and `--config=arm64` wildcard builds skip them (an explicit request names
this constraint). When the arm64 backend lands this becomes [].
"""

KVM_BACKEND = ["@platforms//cpu:x86_64"]
