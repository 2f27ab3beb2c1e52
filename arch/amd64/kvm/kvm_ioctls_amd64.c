/*
 * strata — amd64 KVM ioctl numbers with flexible-array structs, computed
 * by the C compiler (see core/kvm/kvm_abi.h for why).
 */
#include <linux/kvm.h>

const unsigned long strata_kvm_get_supported_cpuid = KVM_GET_SUPPORTED_CPUID;
const unsigned long strata_kvm_set_cpuid2 = KVM_SET_CPUID2;
const unsigned long strata_kvm_get_msrs = KVM_GET_MSRS;
const unsigned long strata_kvm_set_msrs = KVM_SET_MSRS;
const unsigned long strata_kvm_get_msr_index_list = KVM_GET_MSR_INDEX_LIST;
const unsigned long strata_kvm_get_xsave = KVM_GET_XSAVE;
const unsigned long strata_kvm_set_xsave = KVM_SET_XSAVE;
const unsigned long strata_kvm_get_supported_hv_cpuid = KVM_GET_SUPPORTED_HV_CPUID;
