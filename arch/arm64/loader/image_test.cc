#include "arch/arm64/loader/image.h"

#include <glob.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace strata::arm64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kRam = 0x40000000;  // QEMU virt's RAM base
using Bytes = std::vector<uint8_t>;

template <typename T>
void Put(Bytes& b, uint64_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

// A synthetic Image: the header of booting.rst and `file_size - 64` bytes of
// "kernel" (byte i = i * 13).
Bytes MakeImage(uint64_t text_offset, uint64_t image_size, uint64_t flags,
                uint64_t file_size = 4096) {
  Bytes b(file_size);
  for (uint64_t i = kImageHeaderSize; i < file_size; ++i) {
    b[i] = static_cast<uint8_t>(i * 13);
  }
  Put<uint32_t>(b, 0, 0x91005a4d);  // code0: "MZ" + add x13, x18, #0x16
  Put<uint32_t>(b, 4, 0x14000000);  // code1: b stext
  Put<uint64_t>(b, kImageTextOffsetOffset, text_offset);
  Put<uint64_t>(b, kImageSizeOffset, image_size);
  Put<uint64_t>(b, kImageFlagsOffset, flags);
  Put<uint32_t>(b, kImageMagicOffset, kImageMagic);
  return b;
}

// A Linux 5.x+ Image: text_offset 0, LE, 4K pages, placeable anywhere.
constexpr uint64_t kModernFlags = (1u << kImageFlagPageSizeShift) |
                                  kImageFlagPhysAnywhere;

Bytes GzipCompress(const Bytes& in, int level = Z_BEST_SPEED) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  Bytes out(deflateBound(&zs, in.size()));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// gzip of `n` zero bytes, streamed from a small buffer (level 1: ~230:1).
Bytes GzipZeros(uint64_t n) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 9,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  const Bytes zeros(1 << 20, 0);
  Bytes out;
  uint8_t buf[1 << 16];
  for (uint64_t left = n;;) {
    const uint64_t chunk = std::min<uint64_t>(left, zeros.size());
    zs.next_in = const_cast<Bytef*>(zeros.data());
    zs.avail_in = static_cast<uInt>(chunk);
    left -= chunk;
    const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    int rc;
    do {
      zs.next_out = buf;
      zs.avail_out = sizeof buf;
      rc = deflate(&zs, flush);
      out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
    } while (zs.avail_out == 0);
    if (rc == Z_STREAM_END || left == 0) break;
  }
  deflateEnd(&zs);
  return out;
}

// An EFI zboot image (zboot-header.S) around `payload`.
Bytes MakeZboot(const Bytes& payload, const char* comp = "gzip") {
  Bytes b(0x200, 0);
  b[0] = 'M';
  b[1] = 'Z';
  std::memcpy(b.data() + 4, "zimg", 4);
  Put<uint32_t>(b, 8, static_cast<uint32_t>(b.size()));
  Put<uint32_t>(b, 12, static_cast<uint32_t>(payload.size()));
  std::memcpy(b.data() + 24, comp, std::strlen(comp));
  Put<uint32_t>(b, 0x3c, 0x40);  // PE header offset
  b.insert(b.end(), payload.begin(), payload.end());
  b.resize(b.size() + 512, 0);  // the decompressor's code would follow
  return b;
}

// --- The Image header ---

TEST(ArmImageTest, ParsesAModernHeader) {
  const Bytes k = MakeImage(0, 30 * kMiB, kModernFlags);
  ASSERT_TRUE(IsLinuxImage(k));
  auto im = ParseLinuxImage(k);
  ASSERT_TRUE(im) << im.error().message();
  EXPECT_EQ(im->text_offset, 0u);
  EXPECT_EQ(im->image_size, 30 * kMiB);
  EXPECT_EQ(im->file_size, 4096u);
  EXPECT_FALSE(im->legacy);
  EXPECT_EQ(im->page_size, ArmImage::PageSize::k4K);
  EXPECT_TRUE(im->phys_anywhere);
  auto at = ImageLoadAddress(*im, kRam, 512 * kMiB);
  ASSERT_TRUE(at) << at.error().message();
  EXPECT_EQ(*at, kRam);
}

TEST(ArmImageTest, PageSizesAndTextOffset) {
  auto im = ParseLinuxImage(MakeImage(0x80000, 8 * kMiB, 3u << 1));
  ASSERT_TRUE(im);
  EXPECT_EQ(im->page_size, ArmImage::PageSize::k64K);
  EXPECT_FALSE(im->phys_anywhere);
  // The base is the lowest 2 MiB boundary in RAM, then text_offset.
  EXPECT_EQ(*ImageLoadAddress(*im, kRam, 64 * kMiB), kRam + 0x80000);
  EXPECT_EQ(*ImageLoadAddress(*im, kRam + 0x1000, 64 * kMiB),
            kRam + 2 * kMiB + 0x80000);
  EXPECT_EQ(ParseLinuxImage(MakeImage(0, 8 * kMiB, 2u << 1))->page_size,
            ArmImage::PageSize::k16K);
  EXPECT_EQ(ParseLinuxImage(MakeImage(0, 8 * kMiB, 0))->page_size,
            ArmImage::PageSize::kUnspecified);
}

TEST(ArmImageTest, RefusesBadMagicAndShortFiles) {
  Bytes k = MakeImage(0, 8 * kMiB, kModernFlags);
  k[kImageMagicOffset + 3] = 0x65;
  EXPECT_FALSE(IsLinuxImage(k));
  auto r = ParseLinuxImage(k);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("magic"), std::string::npos);
  r = ParseLinuxImage(Bytes(63, 0));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("shorter than its 64-byte header"),
            std::string::npos)
      << r.error().message();
}

TEST(ArmImageTest, RefusesABigEndianKernel) {
  auto r = ParseLinuxImage(MakeImage(0, 8 * kMiB, kModernFlags | 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("big-endian"), std::string::npos)
      << r.error().message();
}

TEST(ArmImageTest, ImageSizeZeroIsAPre317Kernel) {
  // text_offset and flags are not defined then: 0x80000 and little-endian.
  auto im = ParseLinuxImage(MakeImage(0x1234, 0, 1, 10000));
  ASSERT_TRUE(im) << im.error().message();
  EXPECT_TRUE(im->legacy);
  EXPECT_EQ(im->text_offset, 0x80000u);
  EXPECT_EQ(im->image_size, 10000u);
  EXPECT_EQ(*ImageLoadAddress(*im, kRam, 16 * kMiB), kRam + 0x80000);
}

TEST(ArmImageTest, FileLongerThanImageSizeReservesTheFile) {
  auto im = ParseLinuxImage(MakeImage(0, 0x1000, kModernFlags, 0x3000));
  ASSERT_TRUE(im);
  EXPECT_EQ(im->image_size, 0x3000u);
}

TEST(ArmImageTest, LoadAddressMustLeaveRoomForImageSize) {
  auto im = ParseLinuxImage(MakeImage(64 * kMiB, 8 * kMiB, kModernFlags));
  ASSERT_TRUE(im);
  auto r = ImageLoadAddress(*im, kRam, 64 * kMiB);  // text_offset past RAM
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("text_offset 0x4000000"),
            std::string::npos)
      << r.error().message();
  im = ParseLinuxImage(MakeImage(0, 65 * kMiB, kModernFlags));
  r = ImageLoadAddress(*im, kRam, 64 * kMiB);  // image_size over RAM
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  // Exactly full is fine.
  im = ParseLinuxImage(MakeImage(0, 64 * kMiB, kModernFlags));
  EXPECT_TRUE(ImageLoadAddress(*im, kRam, 64 * kMiB));
  // RAM starting 1 byte past a 2 MiB boundary loses almost 2 MiB.
  r = ImageLoadAddress(*im, kRam + 1, 64 * kMiB);
  EXPECT_FALSE(r);
}

// --- Compression ---

TEST(ArmKernelUnpackTest, GzipRoundTrip) {
  const Bytes k = MakeImage(0, 8 * kMiB, kModernFlags, 3 * kMiB + 17);
  const Bytes gz = GzipCompress(k);
  ASSERT_TRUE(IsGzip(gz));
  auto out = UnpackArmKernel(gz);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(*out, k);
  // Trailing padding after the gzip stream is ignored.
  Bytes padded = gz;
  padded.resize(padded.size() + 4096, 0);
  out = UnpackArmKernel(padded);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(*out, k);
}

TEST(ArmKernelUnpackTest, RefusesAGzipBomb) {
  // Exactly at the cap passes; one byte more is refused.
  EXPECT_EQ(Gunzip(GzipZeros(1 * kMiB), 1 * kMiB)->size(), 1 * kMiB);
  auto r = Gunzip(GzipZeros(1 * kMiB + 1), 1 * kMiB);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  // The default cap: 256 MiB + 1 of zeros is ~1.1 MiB of gzip.
  const Bytes bomb = GzipZeros(kMaxKernelSize + 1);
  EXPECT_LT(bomb.size(), kMaxKernelSize / 200);
  r = UnpackArmKernel(bomb);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kOutOfRange);
  EXPECT_NE(r.error().message().find("more than 268435456 bytes"),
            std::string::npos)
      << r.error().message();
}

TEST(ArmKernelUnpackTest, RefusesTruncatedAndCorruptGzip) {
  const Bytes gz = GzipCompress(MakeImage(0, 8 * kMiB, kModernFlags, kMiB));
  Bytes cut(gz.begin(), gz.end() - 9);  // the trailer and a bit of data
  auto r = UnpackArmKernel(cut);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos)
      << r.error().message();
  r = UnpackArmKernel(Bytes(gz.begin(), gz.begin() + 10));  // header only
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos);

  Bytes bad = gz;
  bad[bad.size() - 5] ^= 0xff;  // ISIZE/CRC trailer
  r = UnpackArmKernel(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("corrupt"), std::string::npos)
      << r.error().message();
}

TEST(ArmKernelUnpackTest, EfiZbootGzipPayload) {
  const Bytes k = MakeImage(0, 8 * kMiB, kModernFlags, 200000);
  const Bytes z = MakeZboot(GzipCompress(k));
  ASSERT_TRUE(IsZbootImage(z));
  EXPECT_FALSE(IsLinuxImage(z));
  auto out = UnpackArmKernel(z);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(*out, k);

  auto r = UnpackArmKernel(MakeZboot(GzipCompress(k), "zstd22"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnsupported);
  EXPECT_NE(r.error().message().find("\"zstd22\""), std::string::npos)
      << r.error().message();

  Bytes broken = MakeZboot(GzipCompress(k));
  Put<uint32_t>(broken, 12, 0x7fffffff);  // payload past the file
  r = UnpackArmKernel(broken);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
}

TEST(ArmKernelUnpackTest, UncompressedKernelsPassThrough) {
  const Bytes k = MakeImage(0, 8 * kMiB, kModernFlags);
  EXPECT_EQ(*UnpackArmKernel(k), k);
  const Bytes flat = {0x1f, 0x20, 0x03, 0xd5};  // nop: a raw .flat
  EXPECT_EQ(*UnpackArmKernel(flat), flat);
}

// --- The boot layout ---

void ExpectSane(const BootLayout& l, uint64_t ram_base, uint64_t ram_size) {
  const uint64_t ram_end = ram_base + ram_size;
  EXPECT_EQ(l.entry, l.kernel_addr);
  EXPECT_GE(l.kernel_addr, ram_base);
  EXPECT_GE(l.kernel_size, l.kernel_file_size);
  if (l.initrd_size) {
    EXPECT_GE(l.initrd_addr, l.kernel_addr + l.kernel_size);
    EXPECT_EQ(l.initrd_addr % 4096, 0u);
  }
  EXPECT_GE(l.dtb_addr, l.kernel_addr + l.kernel_size);
  EXPECT_GE(l.dtb_addr, l.initrd_addr + l.initrd_size);
  EXPECT_EQ(l.dtb_addr % (2 * kMiB), 0u);  // 8-byte aligned, own 2 MiB block
  EXPECT_LE(l.dtb_size, 2 * kMiB);
  EXPECT_LE(l.dtb_addr + l.dtb_size, ram_end);
}

TEST(ArmBootPlanTest, TypicalLinuxBoot) {
  const Bytes k = MakeImage(0, 30 * kMiB, kModernFlags, 28 * kMiB);
  auto l = PlanArmBoot(k, 20 * kMiB, 0x10000, kRam, 512 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->kind, BootLayout::Kind::kLinuxImage);
  EXPECT_EQ(l->kernel_addr, kRam);
  EXPECT_EQ(l->entry, kRam);
  EXPECT_EQ(l->kernel_file_size, 28 * kMiB);
  EXPECT_EQ(l->kernel_size, 30 * kMiB);
  EXPECT_EQ(l->initrd_addr, kRam + 128 * kMiB);  // QEMU: min(RAM/2, 128 MiB)
  EXPECT_EQ(l->initrd_size, 20 * kMiB);
  EXPECT_EQ(l->dtb_addr, kRam + 148 * kMiB);
  EXPECT_EQ(l->dtb_size, 0x10000u);
  ExpectSane(*l, kRam, 512 * kMiB);
}

TEST(ArmBootPlanTest, SmallRamPutsTheInitrdHalfwayOrAfterTheKernel) {
  const Bytes k = MakeImage(0, 20 * kMiB, kModernFlags);
  auto l = PlanArmBoot(k, 5 * kMiB + 1, 4096, kRam, 64 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->initrd_addr, kRam + 32 * kMiB);
  EXPECT_EQ(l->dtb_addr, kRam + 38 * kMiB);
  ExpectSane(*l, kRam, 64 * kMiB);
  // A kernel whose image_size reaches past RAM/2: the initrd follows it.
  const Bytes big = MakeImage(0, 40 * kMiB + 100, kModernFlags);
  l = PlanArmBoot(big, kMiB, 4096, kRam, 64 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->initrd_addr, kRam + 40 * kMiB + 4096);
  ExpectSane(*l, kRam, 64 * kMiB);
}

TEST(ArmBootPlanTest, NoInitrd) {
  const Bytes k = MakeImage(0, 30 * kMiB, kModernFlags);
  auto l = PlanArmBoot(k, 0, 2 * kMiB, kRam, 1024 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->initrd_addr, 0u);
  EXPECT_EQ(l->initrd_size, 0u);
  EXPECT_EQ(l->dtb_addr, kRam + 128 * kMiB);
  ExpectSane(*l, kRam, 1024 * kMiB);
}

TEST(ArmBootPlanTest, RawImageAtRamBasePlus512K) {
  Bytes flat(12345, 0);
  flat[0] = 0x1f;  // not gzip: 1f 20
  flat[1] = 0x20;
  auto l = PlanArmBoot(flat, 0, 4096, kRam, 128 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->kind, BootLayout::Kind::kRaw);
  EXPECT_EQ(l->kernel_addr, kRam + 0x80000);
  EXPECT_EQ(l->entry, kRam + 0x80000);
  EXPECT_EQ(l->kernel_size, 12345u);
  EXPECT_EQ(l->dtb_addr, kRam + 64 * kMiB);
  ExpectSane(*l, kRam, 128 * kMiB);
}

TEST(ArmBootPlanTest, RefusesWhatDoesNotFit) {
  auto expect = [](Result<BootLayout> r, Errc code, const std::string& what) {
    ASSERT_FALSE(r) << "expected: " << what;
    EXPECT_EQ(r.error().code(), code) << r.error().message();
    EXPECT_NE(r.error().message().find(what), std::string::npos)
        << r.error().message();
  };
  const Bytes k = MakeImage(0, 30 * kMiB, kModernFlags);
  expect(PlanArmBoot(k, 0, 4096, kRam, 16 * kMiB), Errc::kOutOfRange,
         "the arm64 Image needs");
  expect(PlanArmBoot(Bytes(16 * kMiB, 0), 0, 4096, kRam, 16 * kMiB),
         Errc::kOutOfRange, "the raw kernel");
  expect(PlanArmBoot(k, 100 * kMiB, 4096, kRam, 128 * kMiB),
         Errc::kOutOfRange, "the initrd");
  // The initrd ends exactly at RAM's end: no room for the DTB.
  expect(PlanArmBoot(k, 64 * kMiB, 4096, kRam, 128 * kMiB), Errc::kOutOfRange,
         "DTB");
  expect(PlanArmBoot(k, 60 * kMiB, 3 * kMiB, kRam, 128 * kMiB),
         Errc::kInvalidArgument, "booting.rst allows");
  expect(PlanArmBoot(k, 0, 0, kRam, 128 * kMiB), Errc::kInvalidArgument,
         "DTB of 0 bytes");
  expect(PlanArmBoot({}, 0, 4096, kRam, 128 * kMiB), Errc::kInvalidArgument,
         "empty");
  expect(PlanArmBoot(GzipCompress(k), 0, 4096, kRam, 128 * kMiB),
         Errc::kInvalidArgument, "compressed");
  expect(PlanArmBoot(MakeImage(0, 8 * kMiB, kModernFlags | 1), 0, 4096, kRam,
                     128 * kMiB),
         Errc::kUnsupported, "big-endian");
  expect(PlanArmBoot(k, 0, 4096, kRam, 0), Errc::kInvalidArgument, "RAM");
  Bytes elf(4096, 0);
  std::memcpy(elf.data(), "\x7f" "ELF", 4);
  expect(PlanArmBoot(elf, 0, 4096, kRam, 128 * kMiB), Errc::kUnsupported,
         "ELF");
  // booting.rst: kernel and initrd in one 1 GiB-aligned 32 GiB window.
  expect(PlanArmBoot(k, 33ull << 30, 4096, kRam, 64ull << 30),
         Errc::kOutOfRange, "32 GiB window");
}

// --- A real kernel: only in :image_real_kernel_test (manual, see BUILD) ---
#ifdef STRATA_REAL_KERNEL_TEST
// --- A real kernel (manual: see BUILD) ---

TEST(ArmRealKernelTest, DebianCloudArm64Vmlinuz) {
  std::string found;
  if (const char* env = std::getenv("STRATA_ARM64_KERNEL"); env && *env) {
    found = env;
  } else if (const passwd* pw = getpwuid(getuid()); pw != nullptr) {
    // scripts/nested.sh's cache (bazel's HOME is the test's tmpdir); an
    // entry counts once nested.sh has marked it .complete.
    const std::string pattern =
        std::string(pw->pw_dir) +
        "/.cache/strata/nested/linux-image-*-cloud-arm64/.complete";
    glob_t g{};
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc && found.empty(); ++i) {
        std::string dir = g.gl_pathv[i];
        dir.resize(dir.size() - std::strlen(".complete"));
        glob_t k{};
        if (glob((dir + "root/boot/vmlinuz-*").c_str(), 0, nullptr, &k) == 0 &&
            k.gl_pathc > 0) {
          found = k.gl_pathv[0];
        }
        globfree(&k);
      }
    }
    globfree(&g);
  }
  if (found.empty()) {
    GTEST_SKIP() << "no Debian arm64 kernel: the real-kernel check is NOT "
                    "run (bazel test --test_env=STRATA_ARM64_KERNEL="
                    "/path/to/vmlinuz-*-cloud-arm64, or scripts/nested.sh "
                    "el2-vhe fills ~/.cache/strata/nested)";
  }
  const char* path = found.c_str();
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << "cannot open " << path;
  const Bytes file((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  auto k = UnpackArmKernel(file);
  ASSERT_TRUE(k) << k.error().message();
  auto im = ParseLinuxImage(*k);
  ASSERT_TRUE(im) << im.error().message();
  EXPECT_EQ(im->page_size, ArmImage::PageSize::k4K);
  EXPECT_FALSE(im->legacy);
  EXPECT_GT(im->image_size, 8 * kMiB);
  auto l = PlanArmBoot(*k, 40 * kMiB, 2 * kMiB, kRam, 512 * kMiB);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->kind, BootLayout::Kind::kLinuxImage);
  EXPECT_EQ(l->kernel_addr, kRam + im->text_offset);
  ExpectSane(*l, kRam, 512 * kMiB);
  // The same kernel gzipped, as `make Image.gz` ships it.
  if (!IsGzip(file)) {
    auto again = UnpackArmKernel(GzipCompress(*k));
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, *k);
  }
  std::printf("real kernel %s: text_offset %#llx image_size %#llx flags "
              "%#llx file %zu bytes; kernel %#llx initrd %#llx dtb %#llx\n",
              path, static_cast<unsigned long long>(im->text_offset),
              static_cast<unsigned long long>(im->image_size),
              static_cast<unsigned long long>(im->flags), k->size(),
              static_cast<unsigned long long>(l->kernel_addr),
              static_cast<unsigned long long>(l->initrd_addr),
              static_cast<unsigned long long>(l->dtb_addr));
}
#endif  // STRATA_REAL_KERNEL_TEST

}  // namespace
}  // namespace strata::arm64
