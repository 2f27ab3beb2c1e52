// The demo guest (guests/amd64/demo.c) as bytes, for bhyverun to boot
// when it is given no kernel. The definitions are generated from demo.elf by
// //scripts:bin2cc.
#pragma once

namespace strata::embedded {

// An ELF32 Multiboot image; boot it like any other kernel file.
extern const unsigned char demo_guest_elf[];
extern const unsigned long demo_guest_elf_size;

}  // namespace strata::embedded
