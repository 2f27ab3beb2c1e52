#include "core/snapshot.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

namespace strata {
namespace {

std::string TempPath(const char* name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// A small valid file: a config, one vCPU blob, one device.
std::vector<uint8_t> SampleFile() {
  const std::string path = TempPath("sample.snap");
  auto w = SnapshotWriter::Create(path, "arm64");
  EXPECT_TRUE(w) << w.error().message();
  const std::string conf = "{\"cpus\": \"1\"}";
  EXPECT_TRUE((*w)->Section(
      kSnapTagConfig,
      std::span(reinterpret_cast<const uint8_t*>(conf.data()), conf.size())));
  StateWriter v;
  v.U32(0);
  v.U64(0x1122334455667788);
  v.Str("pc");
  EXPECT_TRUE((*w)->Section(kSnapTagVcpu, v.data()));
  StateWriter d;
  d.Str("uart0");
  d.Blob(std::vector<uint8_t>{1, 2, 3});
  EXPECT_TRUE((*w)->BeginSection(kSnapTagDevice, d.data().size()));
  EXPECT_TRUE((*w)->Append(std::span(d.data()).first(3)));
  EXPECT_TRUE((*w)->Append(std::span(d.data()).subspan(3)));
  EXPECT_TRUE((*w)->EndSection());
  EXPECT_TRUE((*w)->Finish());
  return ReadAll(path);
}

TEST(Snapshot, RoundTrip) {
  auto r = SnapshotReader::FromBytes(SampleFile(), "arm64");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)->version(), kSnapshotFormatVersion);
  ASSERT_EQ((*r)->sections().size(), 3u);
  auto conf = (*r)->FindOne(kSnapTagConfig);
  ASSERT_TRUE(conf);
  EXPECT_EQ(std::string((*conf)->payload.begin(), (*conf)->payload.end()),
            "{\"cpus\": \"1\"}");
  auto vcpu = (*r)->FindOne(kSnapTagVcpu);
  ASSERT_TRUE(vcpu);
  StateReader in((*vcpu)->payload, "vCPU 0");
  EXPECT_EQ(*in.U32(), 0u);
  EXPECT_EQ(*in.U64(), 0x1122334455667788u);
  EXPECT_EQ(*in.Str(), "pc");
  EXPECT_TRUE(in.ExpectEnd());
  // Reading past the end is an error, not a crash.
  auto past = in.U32();
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().message().find("vCPU 0: truncated"),
            std::string::npos);
  auto dev = (*r)->FindOne(kSnapTagDevice);
  ASSERT_TRUE(dev);
  StateReader din((*dev)->payload, "device");
  EXPECT_EQ(*din.Str(), "uart0");
  auto blob = din.Blob();
  ASSERT_TRUE(blob);
  EXPECT_EQ(blob->size(), 3u);
  EXPECT_FALSE((*r)->FindOne(kSnapTagMemory));
}

TEST(Snapshot, OpenFromFile) {
  const std::vector<uint8_t> bytes = SampleFile();
  auto r = SnapshotReader::Open(TempPath("sample.snap"), "arm64");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)->sections().size(), 3u);
  auto missing = SnapshotReader::Open(TempPath("no-such.snap"), "arm64");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
}

TEST(Snapshot, UnfinishedWriterLeavesNothing) {
  const std::string path = TempPath("unfinished.snap");
  {
    auto w = SnapshotWriter::Create(path, "arm64");
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Section(kSnapTagConfig, std::vector<uint8_t>{'{', '}'}));
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
}

void ExpectRejected(std::vector<uint8_t> bytes, std::string_view arch,
                    std::string_view text) {
  auto r = SnapshotReader::FromBytes(std::move(bytes), arch, "f.snap");
  ASSERT_FALSE(r) << "accepted; wanted an error with '" << text << "'";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find(text), std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().rfind("f.snap: ", 0), 0u)
      << r.error().message();
}

TEST(Snapshot, EveryTruncationIsAnError) {
  const std::vector<uint8_t> full = SampleFile();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    auto r = SnapshotReader::FromBytes(cut, "arm64");
    ASSERT_FALSE(r) << "truncated to " << n << " bytes was accepted";
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  }
  ExpectRejected({}, "arm64", "not a strata snapshot");
  ExpectRejected(std::vector<uint8_t>(full.begin(), full.end() - 1), "arm64",
                 "truncated");
}

TEST(Snapshot, EveryFlippedByteIsAnError) {
  const std::vector<uint8_t> full = SampleFile();
  for (size_t i = 0; i < full.size(); ++i) {
    std::vector<uint8_t> bad = full;
    bad[i] ^= 0x40;
    auto r = SnapshotReader::FromBytes(bad, "arm64");
    EXPECT_FALSE(r) << "byte " << i << " flipped was accepted";
  }
  std::vector<uint8_t> bad = full;
  bad[bad.size() - 30] ^= 1;  // inside the device section's payload
  ExpectRejected(bad, "arm64", "fails its checksum");
}

TEST(Snapshot, WrongMagicVersionArch) {
  std::vector<uint8_t> full = SampleFile();
  ExpectRejected(full, "amd64", "a snapshot of an arm64 machine");
  std::vector<uint8_t> v = full;
  v[8] = 9;
  ExpectRejected(v, "arm64", "format version 9");
  std::vector<uint8_t> m = full;
  m[0] = 'X';
  ExpectRejected(m, "arm64", "no STRATASN magic");
  std::vector<uint8_t> trailing = full;
  trailing.push_back(0);
  ExpectRejected(trailing, "arm64", "after the end marker");
  // A length that points far beyond the file.
  std::vector<uint8_t> huge = full;
  const size_t first = 8 + 4 + 4 + 5;  // header + "arm64"
  huge[first + 15] = 0x7f;
  ExpectRejected(huge, "arm64", "claims");
}

TEST(Snapshot, ReaderLimits) {
  StateWriter w;
  w.Str(std::string(100, 'x'));
  w.U8(2);
  StateReader r(w.data(), "device x");
  auto s = r.Str(10);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("a string of 100 bytes"),
            std::string::npos);
  StateReader r2(w.data(), "device x");
  ASSERT_TRUE(r2.Str());
  auto b = r2.Bool();
  ASSERT_FALSE(b);
  StateWriter big;
  big.U64(~uint64_t{0});
  StateReader r3(big.data(), "blob");
  EXPECT_FALSE(r3.Blob());
}

}  // namespace
}  // namespace strata
