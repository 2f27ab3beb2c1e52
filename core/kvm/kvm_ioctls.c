/*
 * strata — KVM ioctl numbers whose argument struct ends in a flexible
 * array. The number encodes sizeof(struct ...), which C++ computes wrongly
 * for Linux 6.1's __DECLARE_FLEX_ARRAY (see kvm_abi.h), so these are
 * computed here by the C compiler and read from C++ as constants.
 */
#include <linux/kvm.h>

const unsigned long strata_kvm_set_gsi_routing = KVM_SET_GSI_ROUTING;
