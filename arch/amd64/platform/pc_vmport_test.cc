#include "arch/amd64/platform/pc_vmport.h"

#include <gtest/gtest.h>

#include <memory>

#include "core/bus.h"

namespace strata::platform::pc {
namespace {

TEST(VmportCall, GetVersionAnswersInEaxEbxAndEcx) {
  VmportRegs r{kVmportMagic, 0xdeadbeef, kVmportGetVersion, kVmportPort};
  EXPECT_EQ(VmportCall(r), std::optional<uint32_t>(6));
  EXPECT_EQ(r.ebx, kVmportMagic);
  EXPECT_EQ(r.ecx, 2u);
  EXPECT_EQ(r.edx, kVmportPort);
}

TEST(VmportCall, TheCommandIsCl) {
  VmportRegs r{kVmportMagic, 0, 0xffff0000u | kVmportGetVersion, 0};
  EXPECT_EQ(VmportCall(r), std::optional<uint32_t>(6));
}

TEST(VmportCall, NoMagicOrAnUnknownCommandRunsNothing) {
  VmportRegs none{0x12345678, 1, kVmportGetVersion, 3};
  EXPECT_EQ(VmportCall(none), std::nullopt);
  EXPECT_EQ(none.ebx, 1u);
  EXPECT_EQ(none.ecx, uint32_t{kVmportGetVersion});
  for (uint32_t cmd : {0x00u, 0x09u, 0x0bu, 0x14u, 0xffu, 0xfffu}) {
    VmportRegs r{kVmportMagic, 1, cmd, 3};
    EXPECT_EQ(VmportCall(r), std::nullopt) << cmd;
    EXPECT_EQ(r.ebx, 1u);
    EXPECT_EQ(r.ecx, cmd);
  }
}

// A device thread (no vCPU) has no registers to call with: the port reads
// all-ones and writes are ignored.
TEST(Vmport, WithoutAVcpuThePortReadsAllOnes) {
  Bus bus(BusKind::kPio);
  ASSERT_TRUE(bus.Register(kVmportPort, 4, std::make_shared<Vmport>()));
  EXPECT_EQ(bus.Read(IoContext::Device(), kVmportPort, 4).value(), 0xffffffffu);
  ASSERT_TRUE(bus.Write(IoContext::Device(), kVmportPort, 4, kVmportMagic));
  EXPECT_EQ(bus.Read(IoContext::Device(), kVmportPort, 1).value(), 0xffu);
}

}  // namespace
}  // namespace strata::platform::pc
