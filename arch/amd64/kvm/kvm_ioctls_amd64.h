// strata — amd64 KVM ioctl numbers whose structs end in a flexible array,
// computed by the C compiler in kvm_ioctls_amd64.c (see core/kvm/kvm_abi.h
// for why C++ cannot compute them). Internal header.
#pragma once

extern "C" {
extern const unsigned long strata_kvm_get_supported_cpuid;
extern const unsigned long strata_kvm_set_cpuid2;
extern const unsigned long strata_kvm_get_msrs;
extern const unsigned long strata_kvm_set_msrs;
extern const unsigned long strata_kvm_get_msr_index_list;
extern const unsigned long strata_kvm_get_xsave;
extern const unsigned long strata_kvm_set_xsave;
extern const unsigned long strata_kvm_get_supported_hv_cpuid;
}
