// strata — the guest the arm64 virt machine boots when the config names no
// kernel: the demo guest (guests/arm64/demo.c: prints the CPU's MIDR
// implementer and part, starts every CPU in the device tree with PSCI
// CPU_ON and prints "vcpus: N of N checked in", then PSCI SYSTEM_OFF). Its
// bytes are generated into demo_guest.cc from demo.flat by //scripts:bin2cc
// (see BUILD).
#pragma once

#include <cstdint>
#include <span>

namespace strata::embedded {
extern const unsigned char virt_demo_guest_flat[];
extern const unsigned long virt_demo_guest_flat_size;
}  // namespace strata::embedded

namespace strata::arm64 {

// Where the image must be loaded and entered (it is linked there): RAM
// base 0x40000000 + the arm64 Image text_offset 0x80000. Enter its first
// byte at EL1h, MMU off, DAIF masked, x0 = the DTB's guest-physical address.
inline constexpr uint64_t kDemoGuestLoadAddress = 0x40080000;

// A raw image that starts with an arm64 Linux Image header (text_offset
// 0x80000, image_size including the bss and stacks past the file's end).
inline std::span<const uint8_t> DemoGuestFlat() {
  return {embedded::virt_demo_guest_flat, embedded::virt_demo_guest_flat_size};
}

}  // namespace strata::arm64
