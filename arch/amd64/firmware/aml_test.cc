#include "arch/amd64/firmware/aml.h"

#include <gtest/gtest.h>

namespace strata::amd64::aml {
namespace {

using B = Bytes;

TEST(AmlTest, PkgLengthOneByte) {
  EXPECT_EQ(PkgLength(0), (B{0x01}));
  EXPECT_EQ(PkgLength(0x3e), (B{0x3f}));
}

TEST(AmlTest, PkgLengthTwoBytes) {
  // 0x3f + 2 = 0x41: lead 0x40 | 0x1, then 0x04.
  EXPECT_EQ(PkgLength(0x3f), (B{0x41, 0x04}));
  EXPECT_EQ(PkgLength(0xffd), (B{0x4f, 0xff}));  // total 0xfff
}

TEST(AmlTest, PkgLengthThreeBytes) {
  EXPECT_EQ(PkgLength(0xffe), (B{0x81, 0x00, 0x01}));    // total 0x1001
  EXPECT_EQ(PkgLength(0xffffc), (B{0x8f, 0xff, 0xff}));  // total 0xfffff
}

TEST(AmlTest, PkgLengthFourBytes) {
  EXPECT_EQ(PkgLength(0xffffd), (B{0xc1, 0x00, 0x00, 0x01}));  // 0x100001
  EXPECT_EQ(PkgLength(0xffffffb), (B{0xcf, 0xff, 0xff, 0xff}));
}

TEST(AmlTest, NameStrings) {
  EXPECT_EQ(NameString("_HID"), (B{'_', 'H', 'I', 'D'}));
  EXPECT_EQ(NameString("_S5"), (B{'_', 'S', '5', '_'}));
  EXPECT_EQ(NameString("\\_SB"), (B{'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(NameString("\\_SB.PCI0"),
            (B{'\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
  EXPECT_EQ(NameString("\\_SB.PCI0.ISA"),
            (B{'\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S',
               'A', '_'}));
  EXPECT_EQ(NameString("^FOO"), (B{'^', 'F', 'O', 'O', '_'}));
}

TEST(AmlTest, Integers) {
  EXPECT_EQ(Integer(0), (B{0x00}));
  EXPECT_EQ(Integer(1), (B{0x01}));
  EXPECT_EQ(Integer(~0ull), (B{0xff}));
  EXPECT_EQ(Integer(0x0a), (B{0x0a, 0x0a}));
  EXPECT_EQ(Integer(0x1234), (B{0x0b, 0x34, 0x12}));
  EXPECT_EQ(Integer(0x12345678), (B{0x0c, 0x78, 0x56, 0x34, 0x12}));
  EXPECT_EQ(Integer(0x100000000ull), (B{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(AmlTest, StringAndEisaId) {
  EXPECT_EQ(String("ab"), (B{0x0d, 'a', 'b', 0}));
  // iasl: EISAID("PNP0A03") = 0x030AD041.
  EXPECT_EQ(EisaId("PNP0A03"), (B{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
  EXPECT_EQ(EisaId("PNP0501"), (B{0x0c, 0x41, 0xd0, 0x05, 0x01}));
}

TEST(AmlTest, NameAndPackage) {
  // Name (\_S5, Package (0x04) {Zero, Zero, Zero, Zero}), as iasl emits it.
  EXPECT_EQ(
      Name("\\_S5", Package({Integer(0), Integer(0), Integer(0), Integer(0)})),
      (B{0x08, '\\', '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0, 0, 0, 0}));
}

TEST(AmlTest, DeviceScopeMethod) {
  EXPECT_EQ(Device("COM1", Name("_UID", Integer(1))),
            (B{0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D',
               0x01}));
  EXPECT_EQ(Scope("\\_SB", {}), (B{0x10, 0x06, '\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(MethodReturn("_STA", Integer(0x0f)),
            (B{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f}));
}

TEST(AmlTest, LongPackageUsesTwoBytePkgLength) {
  std::vector<Bytes> elems(40, Integer(0x1234));  // 120 bytes of elements
  const Bytes p = Package(elems);
  ASSERT_GE(p.size(), 3u);
  EXPECT_EQ(p[0], 0x12);
  // body = 1 (count) + 120; total = 123 = 0x7b: lead 0x4b, then 0x07.
  EXPECT_EQ(p[1], 0x4b);
  EXPECT_EQ(p[2], 0x07);
  EXPECT_EQ(p[3], 40);
  EXPECT_EQ(p.size(), 1u + 2u + 1u + 120u);
}

TEST(AmlTest, ResourceTemplate) {
  // ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 0x01, 0x08)
  //                       IRQNoFlags () {4} }
  EXPECT_EQ(ResourceTemplate({Io(0x3f8, 0x3f8, 1, 8), IrqNoFlags(4)}),
            (B{0x11, 0x10, 0x0a, 0x0d,                          // Buffer(13)
               0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,  // IO
               0x22, 0x10, 0x00,                                // IRQ 4
               0x79, 0x00}));                                   // end tag
}

TEST(AmlTest, AddressDescriptors) {
  EXPECT_EQ(WordBusNumber(0, 0xff),
            (B{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0x00, 0x00, 0xff, 0x00,
               0, 0, 0x00, 0x01}));
  EXPECT_EQ(WordIo(0xd00, 0xffff),
            (B{0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x0d, 0xff, 0xff,
               0, 0, 0x00, 0xf3}));
  const Bytes d = DWordMemory(0xc0000000, 0xdfffffff);
  EXPECT_EQ(d.size(), 26u);
  EXPECT_EQ((B(d.begin(), d.begin() + 6)),
            (B{0x87, 0x17, 0x00, 0x00, 0x0c, 0x01}));
  EXPECT_EQ((B(d.end() - 4, d.end())), (B{0, 0, 0, 0x20}));  // length
  const Bytes q = QWordMemory(0x100000000ull, 0x1ffffffffull);
  EXPECT_EQ(q.size(), 46u);
  EXPECT_EQ(q[0], 0x8a);
  EXPECT_EQ(q[1], 0x2b);
  EXPECT_EQ(Interrupt(9, true, false),
            (B{0x89, 0x06, 0x00, 0x01, 0x01, 0x09, 0, 0, 0}));
}

}  // namespace
}  // namespace strata::amd64::aml
