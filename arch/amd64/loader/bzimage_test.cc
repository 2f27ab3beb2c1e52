#include "arch/amd64/loader/bzimage.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/guest_memory_testing.h"

namespace strata::amd64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// A synthetic bzImage: `setup_sects` sectors of setup after the boot
// sector, then `kernel_size` bytes of "kernel" (byte i = i * 7).
struct Image {
  std::vector<uint8_t> bytes;
  template <typename T>
  void Put(uint64_t off, T v) {
    std::memcpy(bytes.data() + off, &v, sizeof(T));
  }
};

Image MakeImage(uint64_t kernel_size = 64 * 1024, uint8_t setup_sects = 4) {
  Image im;
  const uint64_t koff = (uint64_t{setup_sects} + 1) * 512;
  im.bytes.assign(koff + kernel_size, 0);
  im.bytes[kBzSetupSects] = setup_sects;
  im.Put<uint16_t>(kBzBootFlag, 0xaa55);
  im.bytes[0x201] = 0x6a;  // header runs to 0x26c, as in Linux 6.x
  im.Put<uint32_t>(kBzHeaderMagic, kBzMagic);
  im.Put<uint16_t>(kBzVersion, 0x020f);
  im.Put<uint32_t>(kBzInitrdAddrMax, 0x7fffffff);
  im.Put<uint32_t>(kBzKernelAlignment, 0x200000);
  im.bytes[kBzRelocatable] = 1;
  im.Put<uint16_t>(kBzXloadflags, kBzXlfKernel64);
  im.Put<uint32_t>(kBzCmdlineSize, 2047);
  im.Put<uint64_t>(kBzPrefAddress, 0x1000000);
  im.Put<uint32_t>(kBzInitSize, 4 * kMiB);
  for (uint64_t i = 0; i < kernel_size; ++i) {
    im.bytes[koff + i] = static_cast<uint8_t>(i * 7);
  }
  return im;
}

class BzImageTest : public ::testing::Test {
 protected:
  void AddRam(uint64_t gpa, uint64_t size) {
    ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(mem_, "ram", gpa, size));
  }
  template <typename T>
  T Read(uint64_t gpa) {
    auto v = mem_.ReadObj<T>(gpa);
    EXPECT_TRUE(v);
    return v ? *v : T{};
  }
  GuestMemory mem_;
};

TEST_F(BzImageTest, RecognisesTheSetupHeaderMagic) {
  EXPECT_TRUE(IsBzImage(MakeImage().bytes));
  std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F'};
  elf.resize(4096);
  EXPECT_FALSE(IsBzImage(elf));
  EXPECT_FALSE(IsBzImage({}));
}

TEST_F(BzImageTest, LoadsAtThePreferredAddressAndFillsTheZeroPage) {
  AddRam(0, 256 * kMiB);
  Image im = MakeImage();
  BzImageParams p;
  p.cmdline = "console=ttyS0 panic=-1";
  p.initrd = std::vector<uint8_t>(10000, 0x5a);
  BzImageLayout lay;
  auto bi = LoadBzImage(im.bytes, p, mem_, &lay);
  ASSERT_TRUE(bi) << bi.error().message();

  EXPECT_EQ(lay.kernel_addr, 0x1000000u);
  EXPECT_EQ(bi->entry, 0x1000000u + 0x200);
  EXPECT_EQ(bi->rsi, lay.zero_page);
  EXPECT_EQ(bi->mode, EntryMode::kLong64);
  // The protected-mode kernel, byte for byte.
  EXPECT_EQ(Read<uint8_t>(lay.kernel_addr + 3), 21);
  EXPECT_EQ(Read<uint8_t>(lay.kernel_addr + 1000), static_cast<uint8_t>(7000));

  // The setup header copied, plus what the loader adds.
  const uint64_t zp = lay.zero_page;
  EXPECT_EQ(Read<uint32_t>(zp + kBzHeaderMagic), kBzMagic);
  EXPECT_EQ(Read<uint16_t>(zp + kBzVersion), 0x020f);
  EXPECT_EQ(Read<uint8_t>(zp + kBzTypeOfLoader), 0xff);
  EXPECT_EQ(Read<uint8_t>(zp + kBzLoadflags) & kBzLoadedHigh, kBzLoadedHigh);
  EXPECT_EQ(Read<uint32_t>(zp + kBzCmdLinePtr), lay.cmdline);
  std::string cmd(p.cmdline.size() + 1, 'x');
  ASSERT_TRUE(mem_.Read(lay.cmdline, cmd.data(), cmd.size()));
  EXPECT_EQ(cmd, p.cmdline + '\0');

  // The initrd: page aligned, at the top of RAM, above the kernel.
  EXPECT_EQ(Read<uint32_t>(zp + kBzRamdiskImage), lay.initrd_addr);
  EXPECT_EQ(Read<uint32_t>(zp + kBzRamdiskSize), 10000u);
  EXPECT_EQ(lay.initrd_addr % 4096, 0u);
  EXPECT_GE(lay.initrd_addr, lay.kernel_addr + lay.init_size);
  EXPECT_LE(lay.initrd_addr + 10000, 256 * kMiB);
  EXPECT_GT(lay.initrd_addr + 10000, 256 * kMiB - 4096 - 10000);
  EXPECT_EQ(Read<uint8_t>(lay.initrd_addr + 9999), 0x5a);

  // The E820 map: the legacy hole reserved, the rest RAM.
  const std::vector<E820Entry> e820 = BuildE820(mem_);
  ASSERT_EQ(Read<uint8_t>(zp + kBzE820Entries), e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    EXPECT_EQ(Read<uint64_t>(zp + kBzE820Table + 20 * i), e820[i].addr);
    EXPECT_EQ(Read<uint64_t>(zp + kBzE820Table + 20 * i + 8), e820[i].size);
    EXPECT_EQ(Read<uint32_t>(zp + kBzE820Table + 20 * i + 16), e820[i].type);
  }
}

TEST_F(BzImageTest, EntersWithTheProtocolsBootSelectors) {
  AddRam(0, 64 * kMiB);
  auto bi = LoadBzImage(MakeImage().bytes, {}, mem_);
  ASSERT_TRUE(bi) << bi.error().message();
  EXPECT_EQ(bi->sregs.cs.selector, kBzBootCs);
  EXPECT_EQ(bi->sregs.cs.l, 1);
  EXPECT_EQ(bi->sregs.ds.selector, kBzBootDs);
  EXPECT_EQ(bi->sregs.ss.selector, kBzBootDs);
  EXPECT_NE(bi->sregs.cr0 & md::kCr0Pg, 0u);
  EXPECT_NE(bi->sregs.efer & md::kEferLma, 0u);
  EXPECT_EQ(bi->rflags & (1u << 9), 0u);  // IF clear
  // The GDT in memory agrees with the segment caches at those selectors.
  const uint64_t gdt = bi->sregs.gdt.base;
  EXPECT_EQ(Read<uint64_t>(gdt + kBzBootCs), EncodeDescriptor(bi->sregs.cs));
  EXPECT_EQ(Read<uint64_t>(gdt + kBzBootDs), EncodeDescriptor(bi->sregs.ds));
  // The identity map covers the kernel's entry.
  EXPECT_EQ(bi->sregs.cr3, kBzBootDataBase + 0x1000);
}

TEST_F(BzImageTest, FallsBackToOneMiBWhenNotRelocatableOrNoRoom) {
  AddRam(0, 64 * kMiB);
  Image fixed = MakeImage();
  fixed.bytes[kBzRelocatable] = 0;
  BzImageLayout lay;
  ASSERT_TRUE(LoadBzImage(fixed.bytes, {}, mem_, &lay));
  EXPECT_EQ(lay.kernel_addr, kBzDefaultLoadAddress);

  GuestMemory small;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(small, "ram", 0, 12 * kMiB));
  ASSERT_TRUE(LoadBzImage(MakeImage().bytes, {}, small, &lay));
  EXPECT_EQ(lay.kernel_addr, kBzDefaultLoadAddress);  // 16 MiB is not RAM
}

TEST_F(BzImageTest, RefusesWhatItCannotBoot) {
  AddRam(0, 64 * kMiB);
  Image old = MakeImage();
  old.Put<uint16_t>(kBzVersion, 0x020b);
  auto r = LoadBzImage(old.bytes, {}, mem_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("2.11"), std::string::npos)
      << r.error().message();

  Image i386 = MakeImage();
  i386.Put<uint16_t>(kBzXloadflags, 0);
  r = LoadBzImage(i386.bytes, {}, mem_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("XLF_KERNEL_64"), std::string::npos);

  std::vector<uint8_t> truncated = MakeImage().bytes;
  truncated.resize(0x240);
  r = LoadBzImage(truncated, {}, mem_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);

  Image no_flag = MakeImage();
  no_flag.Put<uint16_t>(kBzBootFlag, 0);
  EXPECT_FALSE(LoadBzImage(no_flag.bytes, {}, mem_));

  // 255 setup sectors in a file that ends before them.
  Image short_setup = MakeImage(4096, 4);
  short_setup.bytes[kBzSetupSects] = 255;
  r = LoadBzImage(short_setup.bytes, {}, mem_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("setup sectors"), std::string::npos);

  BzImageParams long_cmd;
  long_cmd.cmdline = std::string(2048, 'a');
  r = LoadBzImage(MakeImage().bytes, long_cmd, mem_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("at most 2047"), std::string::npos)
      << r.error().message();
}

// A HostFile source: the setup sectors are read, the kernel and initrd go
// from the files to guest RAM (the loader bhyverun uses). A file cut short
// after it was opened fails the load with the file's error.
TEST_F(BzImageTest, LoadsFromHostFilesAndCatchesOneCutShort) {
  AddRam(0, 64 * kMiB);
  const std::string dir = ::testing::TempDir();
  const std::string kpath = dir + "/bzimage_test.kernel";
  const std::string ipath = dir + "/bzimage_test.initrd";
  // 255 setup sectors: the most the header can name, all of them read.
  const Image im = MakeImage(3 * kMiB + 123, 255);
  std::vector<uint8_t> initrd(70000);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = uint8_t(i * 13);
  auto put = [](const std::string& path, const std::vector<uint8_t>& b) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
    std::fclose(f);
  };
  put(kpath, im.bytes);
  put(ipath, initrd);

  BzImageParams p;
  p.initrd = HostFile::Open(ipath, "initrd", 64 * kMiB).value();
  BzImageLayout lay;
  auto bi = LoadBzImage(HostFile::Open(kpath, "kernel", 64 * kMiB).value(), p,
                        mem_, &lay);
  ASSERT_TRUE(bi) << bi.error().message();
  const uint64_t koff = 256 * 512;
  ASSERT_EQ(lay.kernel_size, 3 * kMiB + 123);
  std::vector<uint8_t> back(lay.kernel_size);
  ASSERT_TRUE(mem_.Read(lay.kernel_addr, back.data(), back.size()));
  EXPECT_TRUE(std::equal(back.begin(), back.end(), im.bytes.begin() + koff));
  ASSERT_EQ(lay.initrd_size, initrd.size());
  back.resize(initrd.size());
  ASSERT_TRUE(mem_.Read(lay.initrd_addr, back.data(), back.size()));
  EXPECT_EQ(back, initrd);

  auto kernel = HostFile::Open(kpath, "kernel", 64 * kMiB).value();
  ASSERT_EQ(truncate(kpath.c_str(), 2 * kMiB), 0);
  auto cut = LoadBzImage(std::move(kernel), {}, mem_);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code(), Errc::kIo);
  EXPECT_NE(cut.error().message().find("could not load kernel '" + kpath +
                                       "': it ends at byte 2097152"),
            std::string::npos)
      << cut.error().message();
  std::remove(kpath.c_str());
  std::remove(ipath.c_str());
}

TEST_F(BzImageTest, TooLittleRamIsAnErrorAndWritesNothing) {
  AddRam(0, 8 * kMiB);
  ASSERT_TRUE(mem_.Fill(0, 0xee, 8 * kMiB));
  Image big = MakeImage();
  big.Put<uint32_t>(kBzInitSize, 16 * kMiB);  // more than RAM from 1 MiB
  auto r = LoadBzImage(big.bytes, {}, mem_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("init_size"), std::string::npos)
      << r.error().message();

  BzImageParams huge_initrd;
  huge_initrd.initrd = std::vector<uint8_t>(6 * kMiB, 1);
  r = LoadBzImage(MakeImage().bytes, huge_initrd, mem_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no room for the"), std::string::npos)
      << r.error().message();
  for (uint64_t gpa : {kBzBootDataBase, uint64_t{0x100000}, 7 * kMiB}) {
    EXPECT_EQ(Read<uint8_t>(gpa), 0xee) << std::hex << gpa;
  }
}

TEST_F(BzImageTest, TheMapIncludesRamAbove4GiB) {
  AddRam(0, 3ull << 30);
  AddRam(4ull << 30, 1ull << 30);
  BzImageLayout lay;
  auto bi = LoadBzImage(MakeImage().bytes, {}, mem_, &lay);
  ASSERT_TRUE(bi) << bi.error().message();
  const uint8_t n = Read<uint8_t>(lay.zero_page + kBzE820Entries);
  ASSERT_GE(n, 3);
  const uint64_t last = lay.zero_page + kBzE820Table + 20 * (n - 1);
  EXPECT_EQ(Read<uint64_t>(last), 4ull << 30);
  EXPECT_EQ(Read<uint64_t>(last + 8), 1ull << 30);
  EXPECT_EQ(Read<uint32_t>(last + 16), kE820Ram);
}

}  // namespace
}  // namespace strata::amd64
