#include "devices/fw_cfg.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bus.h"

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

}  // namespace
}  // namespace strata
