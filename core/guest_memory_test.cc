#include "core/guest_memory_testing.h"
#include "core/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(GuestMemoryTest, RejectsBadSegments) {
  GuestMemory m;
  EXPECT_EQ(GuestMemoryTestPeer::AddSegment(m, "a", 0, 0).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(GuestMemoryTestPeer::AddSegment(m, "a", 0x100, 0x1000).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(GuestMemoryTestPeer::AddSegment(m, "a", 0, 0x1001).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(GuestMemoryTestPeer::AddSegment(m, "a", ~0xfffull, 0x2000).error().code(),
            Errc::kOutOfRange);
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "low", 0, 0x10000).has_value());
  auto overlap = GuestMemoryTestPeer::AddSegment(m, "dup", 0xf000, 0x2000);
  ASSERT_FALSE(overlap.has_value());
  EXPECT_EQ(overlap.error().code(), Errc::kAlreadyExists);
  EXPECT_NE(overlap.error().message().find("low"), std::string::npos);
  EXPECT_TRUE(GuestMemoryTestPeer::AddSegment(m, "adjacent", 0x10000, 0x1000).has_value());
}

TEST(GuestMemoryTest, TranslateStaysInsideOneSegment) {
  GuestMemory m;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "low", 0, 0x10000).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "high", 0x100000, 0x10000).has_value());
  auto ok = m.Translate(0xff00, 0x100);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->size(), 0x100u);
  EXPECT_FALSE(m.Translate(0xff00, 0x101).has_value());   // runs off the end
  EXPECT_FALSE(m.Translate(0x20000, 1).has_value());      // hole
  EXPECT_FALSE(m.Translate(~0ull, 2).has_value());        // wraps
  EXPECT_FALSE(m.Translate(0x100000, ~0ull).has_value()); // huge length
  EXPECT_TRUE(m.IsRam(0x10ffff));
  EXPECT_FALSE(m.IsRam(0x110000));
  EXPECT_EQ(m.TotalSize(), 0x20000u);
}

TEST(GuestMemoryTest, CopiesSpanAdjacentSegmentsAndFailCleanly) {
  GuestMemory m;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "a", 0, 0x1000).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "b", 0x1000, 0x1000).has_value());
  std::vector<uint8_t> data(0x20, 0xab);
  ASSERT_TRUE(m.Write(0xff0, data.data(), data.size()).has_value());
  std::vector<uint8_t> back(0x20);
  ASSERT_TRUE(m.Read(0xff0, back.data(), back.size()).has_value());
  EXPECT_EQ(back, data);
  // Partly outside RAM: error, and nothing written.
  std::vector<uint8_t> more(0x20, 0xcd);
  auto s = m.Write(0x1ff0, more.data(), more.size());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), Errc::kOutOfRange);
  EXPECT_EQ(m.ReadObj<uint8_t>(0x1ff0).value(), 0u);
  ASSERT_TRUE(m.WriteObj<uint32_t>(0x10, 0xdeadbeef).has_value());
  EXPECT_EQ(m.ReadObj<uint32_t>(0x10).value(), 0xdeadbeefu);
  ASSERT_TRUE(m.Fill(0x10, 0, 4).has_value());
  EXPECT_EQ(m.ReadObj<uint32_t>(0x10).value(), 0u);
}

TEST(GuestMemoryTest, WriteWithFillsEachHostPieceOrNothing) {
  GuestMemory m;
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "a", 0, 0x1000).has_value());
  ASSERT_TRUE(GuestMemoryTestPeer::AddSegment(m, "b", 0x1000, 0x1000).has_value());
  // Across the two segments: two pieces, offsets from the start.
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  auto fill = [&](std::span<uint8_t> dst, uint64_t off) -> Status {
    pieces.emplace_back(off, dst.size());
    for (size_t i = 0; i < dst.size(); ++i) dst[i] = uint8_t(off + i);
    return Ok();
  };
  ASSERT_TRUE(m.WriteWith(0xff0, 0x20, fill).has_value());
  EXPECT_EQ(pieces, (std::vector<std::pair<uint64_t, uint64_t>>{
                        {0, 0x10}, {0x10, 0x10}}));
  EXPECT_EQ(m.ReadObj<uint8_t>(0x100f).value(), 0x1fu);
  // Partly outside RAM: an error before fill is called.
  pieces.clear();
  auto out = m.WriteWith(0x1ff0, 0x20, fill);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), Errc::kOutOfRange);
  EXPECT_TRUE(pieces.empty());
  // fill's error stops it at the first piece, and is returned.
  int calls = 0;
  auto failing = m.WriteWith(0xff0, 0x20, [&](std::span<uint8_t>, uint64_t) {
    ++calls;
    return Status(MakeError(Errc::kIo, "read failed"));
  });
  ASSERT_FALSE(failing.has_value());
  EXPECT_EQ(failing.error().code(), Errc::kIo);
  EXPECT_EQ(calls, 1);
}

TEST(GuestMemoryTest, MemfdSegmentsAreNamedMemfds) {
  GuestMemory m;
  GuestMemoryTestPeer::SetBacking(m, GuestMemory::Backing::kMemfd);
  auto seg = GuestMemoryTestPeer::AddSegment(m, "ram", 0, 0x1000);
  ASSERT_TRUE(seg.has_value());
  char link[64], target[256] = {};
  snprintf(link, sizeof(link), "/proc/self/fd/%d", (*seg)->memfd.get());
  ASSERT_GT(readlink(link, target, sizeof(target) - 1), 0);
  EXPECT_NE(std::string(target).find("memfd:strata:ram"), std::string::npos)
      << target;
  // The mapping and the fd are the same memory.
  (*seg)->host[0] = 0x5a;
  uint8_t b = 0;
  ASSERT_EQ(pread((*seg)->memfd.get(), &b, 1, 0), 1);
  EXPECT_EQ(b, 0x5a);
  ASSERT_TRUE(GuestMemoryTestPeer::RemoveSegment(m, 0).has_value());
  EXPECT_FALSE(m.IsRam(0));
  EXPECT_EQ(GuestMemoryTestPeer::RemoveSegment(m, 0).error().code(), Errc::kNotFound);
}

// The default: private anonymous memory, no fd, advised for huge pages.
TEST(GuestMemoryTest, AnonymousSegmentsHaveNoFdAndAskForHugePages) {
  GuestMemory m;
  const uint64_t size = 4ull << 20;
  auto seg = GuestMemoryTestPeer::AddSegment(m, "ram", 0, size);
  ASSERT_TRUE(seg.has_value());
  EXPECT_FALSE((*seg)->memfd.valid());
  (*seg)->host[size - 1] = 0xa5;
  EXPECT_EQ(m.ReadObj<uint8_t>(size - 1).value(), 0xa5u);
  // /proc/self/smaps flags the mapping "hg" (VM_HUGEPAGE) when the kernel
  // has THP at all (CONFIG_TRANSPARENT_HUGEPAGE, as Debian's). qemu-user
  // (the arm64 pass, .bazelrc) keeps madvise to itself.
  if (std::getenv("STRATA_UNDER_QEMU_USER") != nullptr) {
    ASSERT_TRUE(GuestMemoryTestPeer::RemoveSegment(m, 0).has_value());
    return;
  }
  FILE* f = std::fopen("/proc/self/smaps", "r");
  ASSERT_NE(f, nullptr);
  char line[512];
  const auto start = reinterpret_cast<uintptr_t>((*seg)->host);
  bool in = false, hg = false;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    uintptr_t a = 0, b = 0;
    if (std::sscanf(line, "%lx-%lx ", &a, &b) == 2) {
      in = a == start;
    } else if (in && std::strncmp(line, "VmFlags:", 8) == 0) {
      hg = std::strstr(line, " hg") != nullptr;
    }
  }
  std::fclose(f);
  EXPECT_TRUE(hg) << "guest RAM is not advised MADV_HUGEPAGE";
  ASSERT_TRUE(GuestMemoryTestPeer::RemoveSegment(m, 0).has_value());
}

// Zero-filling gives whole pages back (fresh memory stays unbacked, written
// memory reads as zeros again) and writes the partial pages at the ends,
// with either backing.
TEST(GuestMemoryTest, ZeroFillDiscardsWholePagesAndWritesTheEdges) {
  for (auto backing : {GuestMemory::Backing::kAnonymous, GuestMemory::Backing::kMemfd}) {
    GuestMemory m;
    GuestMemoryTestPeer::SetBacking(m, backing);
    const uint64_t size = 64 * 4096;
    auto seg = GuestMemoryTestPeer::AddSegment(m, "ram", 0x100000, size);
    ASSERT_TRUE(seg.has_value());
    uint8_t* host = (*seg)->host;
    (void)madvise(host, size, MADV_NOHUGEPAGE);  // count 4 KiB pages
    auto resident = [&] {
      std::vector<unsigned char> v(size / 4096);
      EXPECT_EQ(mincore(host, size, v.data()), 0);
      int n = 0;
      for (unsigned char c : v) n += c & 1;
      return n;
    };
    // Fresh memory zeroed (a bss): nothing becomes resident but the two
    // partial pages.
    ASSERT_TRUE(m.Fill(0x100000 + 100, 0, 40 * 4096).has_value());
    if (std::getenv("STRATA_UNDER_QEMU_USER") == nullptr) {
      EXPECT_LE(resident(), 2);
    }
    // Written memory zeroed: every byte of the range reads 0, the bytes
    // just outside keep their value.
    std::memset(host, 0xab, size);
    ASSERT_TRUE(m.Fill(0x100000 + 100, 0, 40 * 4096).has_value());
    EXPECT_EQ(host[99], 0xab);
    for (uint64_t i = 100; i < 100 + 40 * 4096; ++i) {
      ASSERT_EQ(host[i], 0) << "byte " << i;
    }
    EXPECT_EQ(host[100 + 40 * 4096], 0xab);
    // Inside one page: written, nothing discarded.
    ASSERT_TRUE(m.Fill(0x100000 + 50 * 4096 + 8, 0, 16).has_value());
    EXPECT_EQ(host[50 * 4096 + 7], 0xab);
    EXPECT_EQ(host[50 * 4096 + 8], 0);
    EXPECT_EQ(host[50 * 4096 + 23], 0);
    EXPECT_EQ(host[50 * 4096 + 24], 0xab);
    // Non-zero fills are written as before.
    ASSERT_TRUE(m.Fill(0x100000, 0x11, 3 * 4096).has_value());
    EXPECT_EQ(host[3 * 4096 - 1], 0x11);
    if (backing == GuestMemory::Backing::kMemfd) {
      uint8_t b = 1;
      ASSERT_EQ(pread((*seg)->memfd.get(), &b, 1, 20 * 4096), 1);
      EXPECT_EQ(b, 0);  // the hole reads as zeros through the fd too
    }
    ASSERT_TRUE(GuestMemoryTestPeer::RemoveSegment(m, 0x100000).has_value());
  }
}

// A segment's host address is congruent to its guest-physical address
// modulo 2 MiB, with either backing, so 2 MiB guest pages can be mapped
// by 2 MiB stage-2 entries.
TEST(GuestMemoryTest, SegmentsAreAlignedForHugePages) {
  for (auto backing : {GuestMemory::Backing::kAnonymous, GuestMemory::Backing::kMemfd}) {
    GuestMemory m;
    GuestMemoryTestPeer::SetBacking(m, backing);
    const uint64_t gpas[] = {0, 0x100000000ull, 0x7ff000, 0x40001000};
    for (uint64_t gpa : gpas) {
      auto seg = GuestMemoryTestPeer::AddSegment(m, "ram", gpa, 6ull << 20);
      ASSERT_TRUE(seg.has_value());
      const auto hva = reinterpret_cast<uintptr_t>((*seg)->host);
      EXPECT_EQ(hva % (2u << 20), gpa % (2u << 20)) << std::hex << gpa;
      (*seg)->host[0] = 1;
      (*seg)->host[(6ull << 20) - 1] = 2;
      EXPECT_EQ(m.ReadObj<uint8_t>(gpa + (6ull << 20) - 1).value(), 2u);
      ASSERT_TRUE(GuestMemoryTestPeer::RemoveSegment(m, gpa).has_value());
    }
  }
}

}  // namespace
}  // namespace strata
