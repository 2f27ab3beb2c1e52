#include "devices/char_backend.h"

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace strata {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

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

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + i / 251);
  return s;
}

// A logger whose lines the test can read.
struct TestLogger {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  TestLogger() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%l: %v");
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_level(spdlog::level::info);
  }
  std::string text() {
    logger->flush();
    return out.str();
  }
};

StdioBackend::Options OutputOnly(int out_fd) {
  StdioBackend::Options o;
  o.out_fd = out_fd;
  o.in_fd = -1;
  return o;
}

TEST(StdioBackendTest, OutputReachesTheFdInOrder) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const std::string sent = Pattern(40000);  // fits the buffer
  std::string got;
  std::thread reader([&] { got = ReadAll(p[0]); });
  {
    StdioBackend b(OutputOnly(p[1]));
    ASSERT_TRUE(b.Start());
    for (size_t i = 0; i < sent.size(); i += 1000) {
      b.Write(Bytes(std::string_view(sent).substr(i, 1000)));
    }
    b.Stop();
    EXPECT_EQ(b.stats().accepted, sent.size());
    EXPECT_EQ(b.stats().written, sent.size());
    EXPECT_EQ(b.stats().dropped, 0u);
  }
  close(p[1]);
  reader.join();
  close(p[0]);
  EXPECT_TRUE(got == sent) << got.size();
}

// More than a pipe holds, through a non-blocking pipe: partial writes and
// EAGAIN lose nothing.
TEST(StdioBackendTest, LargeOutputToANonBlockingPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  const std::string big = Pattern(1 << 20);
  std::string got;
  std::thread reader([&] { got = ReadAll(p[0]); });
  {
    StdioBackend::Options o = OutputOnly(p[1]);
    o.buffer_size = big.size();
    o.drain_timeout = 30s;
    StdioBackend b(o);
    b.Write(Bytes(big));  // before Start: waits in the buffer
    ASSERT_TRUE(b.Start());
  }  // ~StdioBackend drains
  close(p[1]);
  reader.join();
  close(p[0]);
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
}

TEST(StdioBackendTest, OutputToARegularFile) {
  std::string path = ::testing::TempDir() + "/console.out";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  {
    StdioBackend b(OutputOnly(fd));
    ASSERT_TRUE(b.Start());
    b.Write(Bytes("to a file\n"));
  }
  close(fd);
  std::ifstream f(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f), {}), "to a file\n");
}

// The consumer never reads: every Write returns at once, what does not fit
// is counted as dropped, a (rate-limited) warning says so from the writer
// thread, and Stop() gives up after the drain timeout.
TEST(StdioBackendTest, AStalledConsumerNeverBlocksWrite) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  TestLogger log;
  StdioBackend::Options o = OutputOnly(p[1]);
  o.buffer_size = 16 << 10;
  o.drain_timeout = 200ms;
  o.name = "com1";
  o.logger = log.logger;
  auto b = std::make_unique<StdioBackend>(o);
  ASSERT_TRUE(b->Start());
  const std::string kb(1024, 'x');
  Clock::duration slowest{};
  const auto start = Clock::now();
  constexpr int kWrites = 4096;  // 4 MiB: far more than pipe + buffer
  for (int i = 0; i < kWrites; ++i) {
    const auto t0 = Clock::now();
    b->Write(Bytes(kb));
    slowest = std::max(slowest, Clock::now() - t0);
  }
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_LT(slowest, 250ms);
  // Let the writer notice the stall and warn once.
  std::this_thread::sleep_for(1500ms);
  const auto stop0 = Clock::now();
  b->Stop();
  EXPECT_LT(Clock::now() - stop0, 2s);
  const auto st = b->stats();
  // Every byte was either written or dropped (at Write, or by Stop).
  EXPECT_EQ(st.written + st.dropped, uint64_t{kWrites} * kb.size());
  EXPECT_GT(st.dropped, 0u);
  EXPECT_LE(st.written, st.accepted);
  // The pipe holds what was written: the start of the output, in order.
  ASSERT_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  b.reset();
  close(p[1]);
  const std::string got = ReadAll(p[0]);
  close(p[0]);
  EXPECT_EQ(got.size(), st.written);
  EXPECT_EQ(got, std::string(got.size(), 'x'));
  const std::string text = log.text();
  EXPECT_NE(text.find("warning: com1: output is not being read fast enough"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("warning: com1: {} bytes of guest output "
                                  "were dropped",
                                  st.dropped)),
            std::string::npos)
      << text;
  // Rate-limited: a handful of lines, not one per dropped write.
  EXPECT_LT(std::count(text.begin(), text.end(), '\n'), 6) << text;
}

// The reader goes away: EPIPE, not SIGPIPE (the writer thread blocks
// signals), then everything is dropped.
TEST(StdioBackendTest, AClosedPipeDropsOutputWithoutKillingTheProcess) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[0]);
  TestLogger log;
  StdioBackend::Options o = OutputOnly(p[1]);
  o.logger = log.logger;
  {
    StdioBackend b(o);
    ASSERT_TRUE(b.Start());
    b.Write(Bytes("x"));
    for (int i = 0; i < 100 && b.stats().dropped == 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    b.Write(Bytes("y"));
    b.Stop();
    EXPECT_EQ(b.stats().dropped, 2u);
    EXPECT_EQ(b.stats().written, 0u);
  }
  close(p[1]);
  EXPECT_NE(log.text().find("failed: Broken pipe"), std::string::npos)
      << log.text();
  StdioBackend closed(OutputOnly(-1));
  ASSERT_TRUE(closed.Start());
  closed.Write(Bytes("z"));
}

// Takes input a few bytes at a time, like a guest slowly draining RBR.
class SlowSink : public CharInput {
 public:
  explicit SlowSink(size_t room) : room_(room) {}
  size_t PushInput(std::span<const uint8_t> data) override {
    std::lock_guard lock(mu_);
    const size_t n = std::min(data.size(), room_ - held_);
    got_.append(reinterpret_cast<const char*>(data.data()), n);
    held_ += n;
    return n;
  }
  size_t InputRoom() const override {
    std::lock_guard lock(mu_);
    return room_ - held_;
  }
  void Consume() {
    std::lock_guard lock(mu_);
    held_ = 0;
  }
  std::string got() const {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  mutable std::mutex mu_;
  const size_t room_;
  size_t held_ = 0;
  std::string got_;
};

TEST(StdioBackendTest, InputIsFedOnlyAsFastAsTheDeviceTakesIt) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  SlowSink sink(5);
  StdioBackend::Options o = OutputOnly(-1);
  o.in_fd = p[0];
  StdioBackend b(o);
  b.SetInput(&sink);
  ASSERT_TRUE(b.Start());
  const std::string sent = "typed on the host console, in order";
  ASSERT_EQ(write(p[1], sent.data(), sent.size()),
            static_cast<ssize_t>(sent.size()));
  const auto deadline = Clock::now() + 10s;
  while (sink.got().size() < sent.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
    sink.Consume();
  }
  EXPECT_EQ(sink.got(), sent);
  EXPECT_EQ(b.stats().input, sent.size());
  close(p[1]);  // EOF ends the input thread; Stop still works
  std::this_thread::sleep_for(50ms);
  b.Stop();
  close(p[0]);
}

TEST(StdioBackendTest, ATerminalIsRawWhileRunningAndRestoredAfter) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  struct termios before;
  ASSERT_EQ(tcgetattr(slave, &before), 0);
  ASSERT_TRUE(before.c_lflag & ICANON);

  SlowSink sink(4096);
  StdioBackend::Options o;
  o.in_fd = slave;
  o.out_fd = slave;
  StdioBackend b(o);
  b.SetInput(&sink);
  ASSERT_TRUE(b.Start());
  EXPECT_TRUE(b.tty_raw());
  struct termios raw;
  ASSERT_EQ(tcgetattr(slave, &raw), 0);
  EXPECT_FALSE(raw.c_lflag & ICANON);
  EXPECT_FALSE(raw.c_lflag & ECHO);
  EXPECT_FALSE(raw.c_iflag & ICRNL);
  EXPECT_TRUE(raw.c_lflag & ISIG);   // ^C still stops the VMM
  EXPECT_TRUE(raw.c_oflag & OPOST);  // "\n" still starts a new line
  // No newline needed: raw input reaches the device byte by byte.
  ASSERT_EQ(write(master, "ab\r", 3), 3);
  const auto deadline = Clock::now() + 10s;
  while (sink.got().size() < 3 && Clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(sink.got(), "ab\r");  // CR not turned into NL
  b.Write(Bytes("out\n"));
  b.Stop();
  EXPECT_FALSE(b.tty_raw());
  struct termios after;
  ASSERT_EQ(tcgetattr(slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
  EXPECT_EQ(after.c_cflag, before.c_cflag);
  EXPECT_EQ(0, memcmp(after.c_cc, before.c_cc, sizeof before.c_cc));
  char buf[64];
  ssize_t n = read(master, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "out\r\n");
  close(slave);
  close(master);
}

TEST(StdioBackendTest, StartTwiceIsRefused) {
  StdioBackend b(OutputOnly(-1));
  ASSERT_TRUE(b.Start());
  EXPECT_EQ(b.Start().error().code(), Errc::kBusy);
}

}  // namespace
}  // namespace strata
