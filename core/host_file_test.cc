#include "core/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

class HostFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/host_file_test." + std::to_string(getpid());
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    // A test that blocks in open() fails here instead of at Bazel's timeout.
    alarm(20);
  }
  void TearDown() override {
    alarm(0);
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string dir_;
};

void ExpectError(const Result<std::vector<uint8_t>>& r, Errc code,
                 std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), code) << r.error().message();
  for (std::string_view n : needles) {
    EXPECT_NE(r.error().message().find(n), std::string::npos)
        << "'" << n << "' not in: " << r.error().message();
  }
}

TEST_F(HostFileTest, ReadsARegularFile) {
  std::string p = Write("k", std::string("abc\0def", 7));
  auto r = ReadHostFile(p, "kernel", 100);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(std::string(r->begin(), r->end()), std::string("abc\0def", 7));
}

TEST_F(HostFileTest, EmptyFileAndExactLimit) {
  auto empty = ReadHostFile(Write("e", ""), "initrd", 0);
  ASSERT_TRUE(empty.has_value()) << empty.error().message();
  EXPECT_TRUE(empty->empty());
  auto exact = ReadHostFile(Write("x", "12345"), "initrd", 5);
  ASSERT_TRUE(exact.has_value()) << exact.error().message();
  EXPECT_EQ(exact->size(), 5u);
}

TEST_F(HostFileTest, LargerThanTheLimit) {
  std::string p = Write("big", std::string(4097, 'x'));
  ExpectError(ReadHostFile(p, "config file", 4096), Errc::kOutOfRange,
              {"could not load config file '" + p + "'", "4097 bytes",
               "limit of 4096 bytes"});
}

TEST_F(HostFileTest, MultiMegabyteFile) {
  // Several read() calls; the data must arrive intact.
  std::string text(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>(i * 7);
  auto r = ReadHostFile(Write("m", text), "initrd", 64 << 20);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(std::string(r->begin(), r->end()), text);
}

TEST_F(HostFileTest, MissingFile) {
  std::string p = dir_ + "/missing";
  auto r = ReadHostFile(p, "kernel", 100);
  ExpectError(r, Errc::kNotFound,
              {"could not load kernel '" + p + "'", "No such file"});
  ExpectError(ReadHostFile(dir_ + "/missing/below", "kernel", 100),
              Errc::kNotFound, {"missing/below"});
}

TEST_F(HostFileTest, FifoIsRejectedWithoutBlocking) {
  std::string p = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = ReadHostFile(p, "kernel", 1 << 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ExpectError(r, Errc::kInvalidArgument,
              {"could not load kernel '" + p + "'", "FIFO",
               "not a regular file"});
  // Also with a writer holding the FIFO open (the open would not block
  // then, but reading could).
  int w = open(p.c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(w, 0);
  ExpectError(ReadHostFile(p, "initrd", 1 << 20), Errc::kInvalidArgument,
              {"FIFO"});
  close(w);
}

TEST_F(HostFileTest, DirectoryIsRejected) {
  ExpectError(ReadHostFile(dir_, "config file", 1 << 20),
              Errc::kInvalidArgument, {dir_, "is a directory"});
}

TEST_F(HostFileTest, DevZeroIsRejected) {
  // Endless: reading it "all" would never finish.
  ExpectError(ReadHostFile("/dev/zero", "initrd", 1 << 20),
              Errc::kInvalidArgument,
              {"'/dev/zero'", "a character device", "not a regular file"});
}

TEST_F(HostFileTest, SymlinkToARegularFileIsFollowed) {
  std::string target = Write("t", "hello");
  std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  auto r = ReadHostFile(link, "kernel", 100);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->size(), 5u);
}

TEST_F(HostFileTest, OpenChecksWithoutReadingAndReadAtReadsRanges) {
  const std::string p = Write("k", "0123456789");
  auto f = HostFile::Open(p, "kernel", 10);
  ASSERT_TRUE(f.has_value()) << f.error().message();
  EXPECT_EQ(f->size(), 10u);
  std::vector<uint8_t> b(4);
  ASSERT_TRUE(f->ReadAt(3, b).has_value());
  EXPECT_EQ(std::string(b.begin(), b.end()), "3456");
  // Open's checks are ReadHostFile's, with its messages.
  auto big = HostFile::Open(p, "kernel", 9);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), Errc::kOutOfRange);
  EXPECT_NE(big.error().message().find("could not load kernel '" + p + "'"),
            std::string::npos)
      << big.error().message();
  auto dir = HostFile::Open(dir_, "initrd", 100);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::kInvalidArgument);
}

TEST_F(HostFileTest, AFileThatShrinksAfterOpenIsAnErrorNotAShortLoad) {
  const std::string p = Write("k", std::string(8192, 'k'));
  auto f = HostFile::Open(p, "kernel", 1 << 20);
  ASSERT_TRUE(f.has_value()) << f.error().message();
  ASSERT_EQ(truncate(p.c_str(), 5000), 0);
  std::vector<uint8_t> b(4096, 0);
  ASSERT_TRUE(f->ReadAt(0, std::span<uint8_t>(b).first(4096)).has_value());
  auto r = f->ReadAt(4096, b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kIo);
  EXPECT_NE(r.error().message().find("it ends at byte 5000, short of the 8192 "
                                     "bytes it had when opened"),
            std::string::npos)
      << r.error().message();
}

TEST_F(HostFileTest, ByteSourceFromMemoryOrFile) {
  ByteSource mem(std::vector<uint8_t>{1, 2, 3, 4});
  EXPECT_EQ(mem.size(), 4u);
  std::vector<uint8_t> b(2);
  ASSERT_TRUE(mem.ReadAt(2, b).has_value());
  EXPECT_EQ(b, (std::vector<uint8_t>{3, 4}));
  auto past = mem.ReadAt(3, b);
  ASSERT_FALSE(past.has_value());
  EXPECT_EQ(past.error().code(), Errc::kOutOfRange);
  EXPECT_EQ(std::move(mem).TakeAll().value(),
            (std::vector<uint8_t>{1, 2, 3, 4}));

  ByteSource file(HostFile::Open(Write("i", "initrd"), "initrd", 64).value());
  EXPECT_EQ(file.size(), 6u);
  ASSERT_TRUE(file.ReadAt(0, b).has_value());
  EXPECT_EQ(std::string(b.begin(), b.end()), "in");
  auto all = std::move(file).TakeAll();
  ASSERT_TRUE(all.has_value()) << all.error().message();
  EXPECT_EQ(std::string(all->begin(), all->end()), "initrd");
}

TEST(FileTypeName, Names) {
  EXPECT_EQ(FileTypeName(S_IFREG | 0644), "a regular file");
  EXPECT_EQ(FileTypeName(S_IFDIR), "a directory");
  EXPECT_EQ(FileTypeName(S_IFIFO), "a FIFO (named pipe)");
  EXPECT_EQ(FileTypeName(S_IFCHR), "a character device");
  EXPECT_EQ(FileTypeName(S_IFBLK), "a block device");
  EXPECT_EQ(FileTypeName(S_IFSOCK), "a socket");
}

}  // namespace
}  // namespace strata
