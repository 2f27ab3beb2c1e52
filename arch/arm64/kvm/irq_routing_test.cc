// The arm64 KVM interrupt encoding, checked against the layout the KVM API
// doc gives (built for arm64 and run under qemu-user by the test command).
#include "arch/arm64/kvm/irq_routing.h"

#include <gtest/gtest.h>

namespace strata::md::arm64 {
namespace {

constexpr uint32_t kSpis = 96;  // a 128-INTID vGIC

IrqPin Spi(uint32_t intid) { return IrqPin{IrqPin::Type::kSpi, intid, 0}; }
IrqPin Ppi(uint32_t intid, uint32_t vcpu) {
  return IrqPin{IrqPin::Type::kPpi, intid, vcpu};
}

TEST(Arm64IrqRouting, SpisAndPpisEncodeTypeVcpuAndId) {
  // SPI 33: type 1 in bits 27-24, id 33.
  EXPECT_EQ(*IrqLineValue(Spi(33), kSpis), 0x01000021u);
  // The virtual timer PPI 27 of vCPU 2: type 2, vcpu_index 2, id 27.
  EXPECT_EQ(*IrqLineValue(Ppi(27, 2), kSpis), 0x0202001bu);
  // vCPU 0x345: low 8 bits in 23-16, the next 4 in 31-28.
  EXPECT_EQ(*IrqLineValue(Ppi(30, 0x345), kSpis), 0x3245001eu);
}

TEST(Arm64IrqRouting, OutOfRangeInterruptsAreRefused) {
  EXPECT_EQ(IrqLineValue(Spi(31), kSpis).error().code(), Errc::kOutOfRange);
  EXPECT_EQ(IrqLineValue(Spi(32 + kSpis), kSpis).error().code(),
            Errc::kOutOfRange);
  EXPECT_EQ(IrqLineValue(Spi(1020), 2000).error().code(), Errc::kOutOfRange);
  EXPECT_EQ(IrqLineValue(Ppi(15, 0), kSpis).error().code(), Errc::kOutOfRange);
  EXPECT_EQ(IrqLineValue(Ppi(32, 0), kSpis).error().code(), Errc::kOutOfRange);
  auto big = IrqLineValue(Ppi(27, 0x1000), kSpis);
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message().find("vCPUs 0..4095"), std::string::npos);
}

TEST(Arm64IrqRouting, IrqfdsNameSpisByGsi) {
  EXPECT_EQ(*SpiGsi(Spi(32), kSpis), 0u);
  EXPECT_EQ(*SpiGsi(Spi(127), kSpis), 95u);
  EXPECT_EQ(SpiGsi(Ppi(27, 0), kSpis).error().code(), Errc::kInvalidArgument);
  auto routes = DefaultRoutes(kSpis);
  ASSERT_EQ(routes.size(), kSpis);
  EXPECT_EQ(routes[5].gsi, 5u);
  EXPECT_EQ(routes[5].type, uint32_t{KVM_IRQ_ROUTING_IRQCHIP});
  EXPECT_EQ(routes[5].u.irqchip.pin, 5u);
}

TEST(Arm64IrqRouting, ItsMsisCarryTheDeviceId) {
  kvm_msi m;
  ASSERT_TRUE(FillMsi(MsiMessage{0x08090040, 7, true, 0x1234}, &m));
  EXPECT_EQ(m.flags, uint32_t{KVM_MSI_VALID_DEVID});
  EXPECT_EQ(m.devid, 0x1234u);
  EXPECT_EQ(m.address_lo, 0x08090040u);
  EXPECT_EQ(m.data, 7u);
  ASSERT_TRUE(FillMsi(MsiMessage{0x08090040, 7, false, 0}, &m));
  EXPECT_EQ(m.flags, 0u);
  kvm_irq_routing_entry e{};
  ASSERT_TRUE(FillMsiRoute(MsiMessage{0x1'0809'0040, 9, true, 42}, &e));
  EXPECT_EQ(e.type, uint32_t{KVM_IRQ_ROUTING_MSI});
  EXPECT_EQ(e.flags, uint32_t{KVM_MSI_VALID_DEVID});
  EXPECT_EQ(e.u.msi.devid, 42u);
  EXPECT_EQ(e.u.msi.address_hi, 1u);
}

}  // namespace
}  // namespace strata::md::arm64
