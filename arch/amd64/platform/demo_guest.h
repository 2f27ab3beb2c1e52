// strata — the guest the pc machine boots when the config names no kernel:
// the demo guest (prints the CPU vendor it sees, counts the vCPUs that
// check in, powers off). Its bytes are generated into demo_guest.cc from
// the ELF by //scripts:bin2cc (see BUILD).
#pragma once

#include <cstdint>
#include <span>

namespace strata::embedded {
extern const unsigned char pc_demo_guest_elf[];
extern const unsigned long pc_demo_guest_elf_size;
}  // namespace strata::embedded

namespace strata::amd64 {

// An ELF32 Multiboot image; load it like any other kernel file.
inline std::span<const uint8_t> DemoGuestElf() {
  return {embedded::pc_demo_guest_elf, embedded::pc_demo_guest_elf_size};
}

}  // namespace strata::amd64
