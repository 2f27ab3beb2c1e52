#include "devices/fw_cfg.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"
#include "core/guest_memory_testing.h"

namespace strata {
namespace {

constexpr uint64_t kSelectorPort = kFwCfgIoPort + kFwCfgSelectorOffset;
constexpr uint64_t kDataPort = kFwCfgIoPort + kFwCfgDataOffset;

class FwCfgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fw_ = std::make_shared<FwCfg>();
    ASSERT_TRUE(bus_.Register(kFwCfgIoPort, kFwCfgIoLength, fw_));
  }
  void Select(uint16_t key) { ASSERT_TRUE(bus_.Write({}, kSelectorPort, 2, key)); }
  uint8_t ReadByte() {
    auto r = bus_.Read({}, kDataPort, 1);
    EXPECT_TRUE(r);
    return r ? static_cast<uint8_t>(*r) : 0;
  }
  std::vector<uint8_t> ReadBytes(size_t n) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < n; ++i) out.push_back(ReadByte());
    return out;
  }
  uint64_t ReadLe(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{ReadByte()} << (8 * i);
    return v;
  }
  uint64_t ReadBe(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | ReadByte();
    return v;
  }

  Bus bus_{BusKind::kPio};
  std::shared_ptr<FwCfg> fw_;
};

TEST_F(FwCfgTest, Signature) {
  Select(kFwCfgSignature);
  std::vector<uint8_t> sig = ReadBytes(4);
  EXPECT_EQ(std::string(sig.begin(), sig.end()), "QEMU");
  EXPECT_EQ(ReadByte(), 0);  // past the end
  EXPECT_EQ(ReadByte(), 0);
}

TEST_F(FwCfgTest, SignatureIsSelectedAtReset) {
  EXPECT_EQ(ReadByte(), 'Q');
}

TEST_F(FwCfgTest, IdIsTraditionalInterfaceOnly) {
  Select(kFwCfgId);
  EXPECT_EQ(ReadLe(4), kFwCfgVersionTraditional);
}

TEST_F(FwCfgTest, SelectResetsOffset) {
  Select(kFwCfgSignature);
  EXPECT_EQ(ReadByte(), 'Q');
  EXPECT_EQ(ReadByte(), 'E');
  Select(kFwCfgSignature);
  EXPECT_EQ(ReadByte(), 'Q');
}

TEST_F(FwCfgTest, IntegerItemsAreLittleEndian) {
  fw_->SetU16(kFwCfgNbCpus, 4);
  fw_->SetU16(kFwCfgMaxCpus, 0x0102);
  fw_->SetU32(kFwCfgKernelSize, 0xdeadbeef);
  fw_->SetU64(kFwCfgRamSize, 0x0000000180000000);
  Select(kFwCfgNbCpus);
  EXPECT_EQ(ReadBytes(3), (std::vector<uint8_t>{4, 0, 0}));
  Select(kFwCfgMaxCpus);
  EXPECT_EQ(ReadBytes(2), (std::vector<uint8_t>{0x02, 0x01}));
  Select(kFwCfgKernelSize);
  EXPECT_EQ(ReadLe(4), 0xdeadbeefu);
  Select(kFwCfgRamSize);
  EXPECT_EQ(ReadLe(8), 0x180000000u);
  EXPECT_EQ(ReadByte(), 0);
}

TEST_F(FwCfgTest, SetItemReplaces) {
  fw_->SetItem(kFwCfgKernelCmdline, {'a', 'b', 0});
  fw_->SetItem(kFwCfgKernelCmdline, {'c', 0});
  Select(kFwCfgKernelCmdline);
  EXPECT_EQ(ReadBytes(3), (std::vector<uint8_t>{'c', 0, 0}));
}

TEST_F(FwCfgTest, UnknownKeysReadZero) {
  Select(0x1234);
  EXPECT_EQ(ReadBytes(4), (std::vector<uint8_t>{0, 0, 0, 0}));
  Select(kFwCfgInvalid);
  EXPECT_EQ(ReadByte(), 0);
}

TEST_F(FwCfgTest, DataWritesAndByteSelectorWritesAreIgnored) {
  fw_->SetItem(0x42, {1, 2, 3});
  Select(0x42);
  ASSERT_TRUE(bus_.Write({}, kDataPort, 1, 0xff));
  EXPECT_EQ(ReadByte(), 1);  // neither stored nor advancing
  ASSERT_TRUE(bus_.Write({}, kSelectorPort, 1, kFwCfgSignature));
  EXPECT_EQ(ReadByte(), 2);  // still item 0x42
  EXPECT_EQ(bus_.unclaimed_count(), 0u);
}

TEST_F(FwCfgTest, SelectorReadsZeroAndWideDataReadsAreUnclaimed) {
  EXPECT_EQ(*bus_.Read({}, kSelectorPort, 1), 0u);
  EXPECT_EQ(*bus_.Read({}, kSelectorPort, 2), 0u);
  EXPECT_EQ(*bus_.Read({}, kDataPort, 2), 0xffffu);  // straddles out of range
  EXPECT_EQ(bus_.unclaimed_count(), 1u);
}

TEST_F(FwCfgTest, FileDirectory) {
  Select(kFwCfgFileDir);
  EXPECT_EQ(ReadByte(), 0);  // no directory until a file is added

  auto b = fw_->AddFile("etc/b", {1, 2, 3});
  ASSERT_TRUE(b);
  auto a = fw_->AddFile("etc/a", std::vector<uint8_t>(300, 7));
  ASSERT_TRUE(a);
  EXPECT_EQ(*b, kFwCfgFileFirst);
  EXPECT_EQ(*a, kFwCfgFileFirst + 1);

  Select(kFwCfgFileDir);
  EXPECT_EQ(ReadBe(4), 2u);  // count
  // Sorted by name: etc/a first.
  EXPECT_EQ(ReadBe(4), 300u);
  EXPECT_EQ(ReadBe(2), *a);
  EXPECT_EQ(ReadBe(2), 0u);
  std::vector<uint8_t> name = ReadBytes(kFwCfgMaxFilePath);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(name.data())), "etc/a");
  EXPECT_EQ(ReadBe(4), 3u);
  EXPECT_EQ(ReadBe(2), *b);
  EXPECT_EQ(ReadBe(2), 0u);
  name = ReadBytes(kFwCfgMaxFilePath);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(name.data())), "etc/b");
  EXPECT_EQ(ReadByte(), 0);

  Select(*b);
  EXPECT_EQ(ReadBytes(4), (std::vector<uint8_t>{1, 2, 3, 0}));
}

TEST_F(FwCfgTest, AddFileErrors) {
  ASSERT_TRUE(fw_->AddFile("etc/x", {}));
  auto dup = fw_->AddFile("etc/x", {1});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kAlreadyExists);
  auto empty = fw_->AddFile("", {1});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::kInvalidArgument);
  auto longname = fw_->AddFile(std::string(kFwCfgMaxFilePath, 'n'), {1});
  ASSERT_FALSE(longname);
  EXPECT_EQ(longname.error().code(), Errc::kInvalidArgument);
  EXPECT_TRUE(fw_->AddFile(std::string(kFwCfgMaxFilePath - 1, 'n'), {1}));
}


// --- The DMA interface ---

uint32_t Be32(uint32_t v) { return __builtin_bswap32(v); }
uint64_t Be64(uint64_t v) { return __builtin_bswap64(v); }

constexpr uint64_t kRamSize = 0x10000;
constexpr uint64_t kDesc = 0x1000;
constexpr uint64_t kBuf = 0x2000;

class FwCfgDmaTest : public FwCfgTest {
 protected:
  void SetUp() override {
    FwCfgTest::SetUp();
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "ram", 0, kRamSize));
    dma_ = std::make_shared<FwCfgDma>(fw_, mem_);
    ASSERT_TRUE(bus_.Register(kFwCfgDmaIoPort, kFwCfgDmaIoLength, dma_));
  }
  // Writes a FWCfgDmaAccess at kDesc and starts it as a guest does: the
  // high half of its address, then the low half (iowrite32be).
  void Start(uint32_t control, uint32_t length, uint64_t address,
             uint64_t desc = kDesc) {
    if (mem_.IsRam(desc, kFwCfgDmaAccessSize)) {
      const uint32_t c = Be32(control), l = Be32(length);
      const uint64_t a = Be64(address);
      ASSERT_TRUE(mem_.WriteObj(desc, c));
      ASSERT_TRUE(mem_.WriteObj(desc + 4, l));
      ASSERT_TRUE(mem_.WriteObj(desc + 8, a));
    }
    ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort, 4,
                           Be32(static_cast<uint32_t>(desc >> 32))));
    ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort + 4, 4,
                           Be32(static_cast<uint32_t>(desc))));
  }
  uint32_t Control(uint64_t desc = kDesc) {
    return Be32(*mem_.ReadObj<uint32_t>(desc));
  }
  std::vector<uint8_t> Ram(uint64_t gpa, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(mem_.Read(gpa, out.data(), n));
    return out;
  }

  GuestMemory mem_;
  std::shared_ptr<FwCfgDma> dma_;
};

TEST_F(FwCfgDmaTest, IdAdvertisesDmaAndRegisterReadsSignature) {
  Select(kFwCfgId);
  EXPECT_EQ(ReadLe(4), kFwCfgVersionTraditional | kFwCfgVersionDma);
  // "QEMU CFG" in address order.
  std::string sig;
  for (uint64_t i = 0; i < 8; ++i) {
    sig += static_cast<char>(*bus_.Read({}, kFwCfgDmaIoPort + i, 1));
  }
  EXPECT_EQ(sig, "QEMU CFG");
  EXPECT_EQ(Be32(static_cast<uint32_t>(
                *bus_.Read({}, kFwCfgDmaIoPort, 4))),
            0x51454d55u);
}

TEST_F(FwCfgDmaTest, SelectAndReadCopiesTheItemAndClearsControl) {
  fw_->SetItem(0x42, {1, 2, 3, 4, 5});
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead, 3, kBuf);
  EXPECT_EQ(Control(), 0u);
  EXPECT_EQ(Ram(kBuf, 3), (std::vector<uint8_t>{1, 2, 3}));
  // The read position is shared with the I/O interface.
  EXPECT_EQ(ReadByte(), 4);
  Start(kFwCfgDmaRead, 1, kBuf);
  EXPECT_EQ(Ram(kBuf, 1), (std::vector<uint8_t>{5}));
}

TEST_F(FwCfgDmaTest, ReadsPastTheEndFillZeros) {
  fw_->SetItem(0x42, {7, 8});
  ASSERT_TRUE(mem_.Fill(kBuf, 0xaa, 8));
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead, 6, kBuf);
  EXPECT_EQ(Control(), 0u);
  EXPECT_EQ(Ram(kBuf, 8), (std::vector<uint8_t>{7, 8, 0, 0, 0, 0, 0xaa, 0xaa}));
}

TEST_F(FwCfgDmaTest, SkipAdvancesWithoutCopying) {
  fw_->SetItem(0x42, {1, 2, 3, 4});
  ASSERT_TRUE(mem_.Fill(kBuf, 0xaa, 4));
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaSkip, 2, kBuf);
  EXPECT_EQ(Control(), 0u);
  EXPECT_EQ(Ram(kBuf, 4), (std::vector<uint8_t>(4, 0xaa)));
  EXPECT_EQ(ReadByte(), 3);
}

TEST_F(FwCfgDmaTest, SelectAloneTransfersNothing) {
  fw_->SetItem(0x42, {9});
  Start((0x42u << 16) | kFwCfgDmaSelect, 100, kBuf);
  EXPECT_EQ(Control(), 0u);
  EXPECT_EQ(ReadByte(), 9);
}

TEST_F(FwCfgDmaTest, BufferLeavingRamIsAnErrorAndCopiesNothing) {
  fw_->SetItem(0x42, std::vector<uint8_t>(64, 0x5a));
  ASSERT_TRUE(mem_.Fill(kRamSize - 16, 0xaa, 16));
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead, 64, kRamSize - 16);
  EXPECT_EQ(Control(), kFwCfgDmaError);
  EXPECT_EQ(Ram(kRamSize - 16, 16), (std::vector<uint8_t>(16, 0xaa)));
  // Zero-fill past the item is bounds-checked the same way.
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead, 0xffffffffu,
        kBuf);
  EXPECT_EQ(Control(), kFwCfgDmaError);
  // An address that wraps the 64-bit space.
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead, 64,
        ~uint64_t{0} - 8);
  EXPECT_EQ(Control(), kFwCfgDmaError);
}

TEST_F(FwCfgDmaTest, DescriptorOutsideRamIsIgnored) {
  fw_->SetItem(0x42, {1, 2});
  Select(0x42);
  Start(kFwCfgDmaSelect | kFwCfgDmaRead, 2, kBuf, kRamSize - 8);  // straddles
  Start(kFwCfgDmaSelect | kFwCfgDmaRead, 2, kBuf, 0x7fff00000000ull);
  EXPECT_EQ(ReadByte(), 1);  // nothing was selected or consumed
}

TEST_F(FwCfgDmaTest, WritesAreRefused) {
  fw_->SetItem(0x42, {1, 2});
  ASSERT_TRUE(mem_.Fill(kBuf, 0xee, 2));
  Start((0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaWrite, 2, kBuf);
  EXPECT_EQ(Control(), kFwCfgDmaError);
  EXPECT_EQ(ReadByte(), 1);  // unchanged
}

TEST_F(FwCfgDmaTest, HighHalfIsConsumedByEachTransferAndEightByteWrites) {
  fw_->SetItem(0x42, {3});
  // A high half set, then a transfer: the next low-half write alone starts
  // a descriptor below 4 GiB again (SeaBIOS writes only the low half).
  ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort, 4, Be32(1u)));
  ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort + 4, 4,
                         Be32(static_cast<uint32_t>(kDesc))));
  const uint32_t c = Be32((0x42u << 16) | kFwCfgDmaSelect |
                                   kFwCfgDmaRead);
  ASSERT_TRUE(mem_.WriteObj(kDesc, c));
  ASSERT_TRUE(mem_.WriteObj(kDesc + 4, Be32(1u)));
  ASSERT_TRUE(mem_.WriteObj(kDesc + 8, Be64(kBuf)));
  EXPECT_EQ(Control(), (0x42u << 16) | kFwCfgDmaSelect | kFwCfgDmaRead);
  ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort + 4, 4,
                         Be32(static_cast<uint32_t>(kDesc))));
  EXPECT_EQ(Control(), 0u);
  EXPECT_EQ(Ram(kBuf, 1), (std::vector<uint8_t>{3}));
  // One 8-byte write (the MMIO form) starts it too.
  ASSERT_TRUE(mem_.WriteObj(kDesc, c));
  dma_->Write({}, 0, 8, Be64(kDesc));
  EXPECT_EQ(Control(), 0u);
  // Other widths do nothing.
  ASSERT_TRUE(mem_.WriteObj(kDesc, c));
  ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort + 4, 2, 0x10));
  ASSERT_TRUE(bus_.Write({}, kFwCfgDmaIoPort + 6, 2, 0x00));
  EXPECT_NE(Control(), 0u);
}

}  // namespace
}  // namespace strata
