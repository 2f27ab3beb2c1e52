#include "devices/char_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(BufferBackendTest, CollectsAndTakes) {
  BufferBackend b;
  b.Write(Bytes("abc"));
  b.Write(Bytes(""));
  b.Write(Bytes(std::string_view("d\0e", 3)));
  EXPECT_EQ(b.contents(), std::string("abcd\0e", 6));
  EXPECT_EQ(b.Take(), std::string("abcd\0e", 6));
  EXPECT_EQ(b.contents(), "");
}

TEST(BufferBackendTest, ConcurrentWritersKeepChunksWhole) {
  BufferBackend b;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b, t] {
      std::string chunk(8, static_cast<char>('a' + t));
      for (int i = 0; i < 1000; ++i) b.Write(Bytes(chunk));
    });
  }
  for (auto& th : threads) th.join();
  std::string all = b.contents();
  ASSERT_EQ(all.size(), 4u * 1000 * 8);
  for (size_t i = 0; i < all.size(); i += 8) {
    EXPECT_EQ(all.substr(i, 8), std::string(8, all[i]));
  }
}

// Drains fd into a string until EOF.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

TEST(StdioBackendTest, WritesToFd) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  {
    StdioBackend b(p[1]);
    b.Write(Bytes("hello\n"));
  }
  close(p[1]);
  EXPECT_EQ(ReadAll(p[0]), "hello\n");
  close(p[0]);
}

// A write larger than the pipe buffer to a non-blocking fd needs the
// partial-write and EAGAIN handling to deliver every byte.
TEST(StdioBackendTest, LargeWriteToNonBlockingPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  std::string got;
  std::thread reader([&] { got = ReadAll(p[0]); });
  {
    StdioBackend b(p[1]);
    b.Write(Bytes(big));
  }
  close(p[1]);
  reader.join();
  close(p[0]);
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
}

TEST(StdioBackendTest, BrokenFdDropsOutputWithoutCrashing) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[0]);
  // Writing to a pipe with no reader raises SIGPIPE; ignore it as strata's
  // frontends do, so the write fails with EPIPE.
  signal(SIGPIPE, SIG_IGN);
  StdioBackend b(p[1]);
  b.Write(Bytes("x"));
  b.Write(Bytes("y"));  // silently dropped after the first failure
  close(p[1]);
  StdioBackend closed(-1);
  closed.Write(Bytes("z"));
}

}  // namespace
}  // namespace strata
