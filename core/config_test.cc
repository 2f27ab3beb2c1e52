#include "core/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace strata {
namespace {

// Asserts r failed with code and a message containing each of needles.
template <typename R>
void ExpectError(const R& r, Errc code,
                 std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), code) << r.error().message();
  for (std::string_view n : needles) {
    EXPECT_NE(r.error().message().find(n), std::string::npos)
        << "'" << n << "' not in: " << r.error().message();
  }
}

TEST(ConfigTest, SetAndGetString) {
  Config c;
  ASSERT_TRUE(c.Set("cpu.count", "4"));
  ASSERT_TRUE(c.Set("uart.com1.backend", "stdio"));
  EXPECT_TRUE(c.Has("cpu.count"));
  EXPECT_TRUE(c.Has("uart.com1"));  // groups count as present
  EXPECT_TRUE(c.Has("uart"));
  EXPECT_FALSE(c.Has("uart.com2"));
  EXPECT_FALSE(c.Has(""));
  EXPECT_FALSE(c.Has("bad key"));
  EXPECT_EQ(*c.GetString("uart.com1.backend"), "stdio");
  // Overwriting a value is fine.
  ASSERT_TRUE(c.Set("cpu.count", "8"));
  EXPECT_EQ(*c.GetString("cpu.count"), "8");
  // Empty values are values.
  ASSERT_TRUE(c.Set("name", ""));
  EXPECT_EQ(*c.GetString("name"), "");
}

TEST(ConfigTest, KeyValidation) {
  Config c;
  for (const char* bad : {"", ".", "a.", ".a", "a..b", "a b", "a=b", "é",
                          "a/b", "a.b*"}) {
    ExpectError(c.Set(bad, "x"), Errc::kInvalidArgument, {"config key"});
  }
  EXPECT_TRUE(c.Set("A-z_0.9-_", "x"));
  ExpectError(c.GetString("a..b"), Errc::kInvalidArgument, {"a..b"});
}

TEST(ConfigTest, LeafAndGroupConflicts) {
  Config c;
  ASSERT_TRUE(c.Set("a.b", "1"));
  // Path crosses an existing leaf.
  ExpectError(c.Set("a.b.c", "2"), Errc::kInvalidArgument,
              {"'a.b.c'", "'a.b'", "'1'"});
  // A leaf would replace a subtree.
  ExpectError(c.Set("a", "2"), Errc::kInvalidArgument, {"'a'", "group"});
  EXPECT_EQ(*c.GetString("a.b"), "1");
  EXPECT_EQ(c.DumpFlat(), "a.b=1\n");
}

TEST(ConfigTest, SetDefault) {
  Config c;
  ASSERT_TRUE(c.Set("memory.size", "1G"));
  ASSERT_TRUE(c.SetDefault("memory.size", "256M"));
  ASSERT_TRUE(c.SetDefault("cpu.count", "1"));
  EXPECT_EQ(*c.GetString("memory.size"), "1G");
  EXPECT_EQ(*c.GetString("cpu.count"), "1");
  ExpectError(c.SetDefault("memory", "x"), Errc::kInvalidArgument, {"group"});
  ExpectError(c.SetDefault("memory.size.x", "x"), Errc::kInvalidArgument,
              {"memory.size"});
  ExpectError(c.SetDefault("a..b", "x"), Errc::kInvalidArgument, {"a..b"});
}

TEST(ConfigTest, ParseOption) {
  Config c;
  ASSERT_TRUE(c.ParseOption("uart.com1.path=/dev/a=b"));
  EXPECT_EQ(*c.GetString("uart.com1.path"), "/dev/a=b");
  ASSERT_TRUE(c.ParseOption("x.empty="));
  EXPECT_EQ(*c.GetString("x.empty"), "");
  ExpectError(c.ParseOption("novalue"), Errc::kInvalidArgument,
              {"'novalue'", "key=value"});
  ExpectError(c.ParseOption("=value"), Errc::kInvalidArgument,
              {"empty key"});
  ExpectError(c.ParseOption("a b=c"), Errc::kInvalidArgument, {"a b"});
}

TEST(ConfigTest, GetIntAndUint) {
  Config c;
  ASSERT_TRUE(c.Set("dec", "42"));
  ASSERT_TRUE(c.Set("hex", "0x1F"));
  ASSERT_TRUE(c.Set("neg", "-17"));
  ASSERT_TRUE(c.Set("neghex", "-0x10"));
  ASSERT_TRUE(c.Set("min", "-9223372036854775808"));
  ASSERT_TRUE(c.Set("max", "9223372036854775807"));
  ASSERT_TRUE(c.Set("big", "9223372036854775808"));
  ASSERT_TRUE(c.Set("umax", "18446744073709551615"));
  ASSERT_TRUE(c.Set("uover", "18446744073709551616"));
  EXPECT_EQ(*c.GetInt("dec"), 42);
  EXPECT_EQ(*c.GetInt("hex"), 31);
  EXPECT_EQ(*c.GetInt("neg"), -17);
  EXPECT_EQ(*c.GetInt("neghex"), -16);
  EXPECT_EQ(*c.GetInt("min"), INT64_MIN);
  EXPECT_EQ(*c.GetInt("max"), INT64_MAX);
  ExpectError(c.GetInt("big"), Errc::kOutOfRange, {"'big'"});
  EXPECT_EQ(*c.GetUint("big"), 9223372036854775808u);
  EXPECT_EQ(*c.GetUint("umax"), UINT64_MAX);
  ExpectError(c.GetUint("uover"), Errc::kOutOfRange, {"uover"});
  ExpectError(c.GetUint("neg"), Errc::kInvalidArgument, {"'neg'", "'-17'"});

  for (const char* bad : {"", "abc", "12abc", " 1", "1 ", "0x", "0xg", "+1",
                          "--1", "1.5", "-"}) {
    ASSERT_TRUE(c.Set("bad", bad));
    ExpectError(c.GetInt("bad"), Errc::kInvalidArgument, {"'bad'"});
    ExpectError(c.GetUint("bad"), Errc::kInvalidArgument, {"'bad'"});
  }
  ASSERT_TRUE(c.Set("bad", "abc"));
  ExpectError(c.GetInt("bad"), Errc::kInvalidArgument, {"'abc'", "integer"});
}

TEST(ConfigTest, GetBool) {
  Config c;
  for (const char* t : {"true", "TRUE", "Yes", "on", "1"}) {
    ASSERT_TRUE(c.Set("b", t));
    EXPECT_TRUE(*c.GetBool("b")) << t;
  }
  for (const char* f : {"false", "False", "NO", "off", "0"}) {
    ASSERT_TRUE(c.Set("b", f));
    EXPECT_FALSE(*c.GetBool("b")) << f;
  }
  for (const char* bad : {"", "2", "y", "truee", "enabled"}) {
    ASSERT_TRUE(c.Set("b", bad));
    ExpectError(c.GetBool("b"), Errc::kInvalidArgument, {"'b'", "boolean"});
  }
}

TEST(ConfigTest, ParseSize) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case ok[] = {
      {"0", 0},
      {"4096", 4096},
      {"512B", 512},
      {"1k", 1024},
      {"1K", 1024},
      {"4KB", 4096},
      {"4KiB", 4096},
      {"512M", 512ull << 20},
      {"512mb", 512ull << 20},
      {"2G", 2ull << 30},
      {"1GiB", 1ull << 30},
      {"3T", 3ull << 40},
      {"0x1000", 0x1000},
      {"0XfFfF", 0xffff},
      {"16777215T", 16777215ull << 40},
      {"18446744073709551615", UINT64_MAX},
  };
  for (const Case& c : ok) {
    auto r = ParseSize(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error().message();
    EXPECT_EQ(*r, c.bytes) << c.text;
  }
  for (const char* bad : {"", "M", "G2", "-1", "1.5G", "12Q", "1 G", "1GB ",
                          "1Gi", "1GiBs", "1KK", "0x", "0x10M", "1e3", "+5"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find(bad), std::string::npos);
  }
  for (const char* big : {"16777216T", "18446744073709551616",
                          "18014398509481984K", "0x10000000000000000"}) {
    auto r = ParseSize(big);
    ASSERT_FALSE(r) << big;
    EXPECT_EQ(r.error().code(), Errc::kOutOfRange) << big;
  }
}

TEST(ConfigTest, GetSize) {
  Config c;
  ASSERT_TRUE(c.Set("memory.size", "512M"));
  EXPECT_EQ(*c.GetSize("memory.size"), 512ull << 20);
  ASSERT_TRUE(c.Set("memory.size", "lots"));
  ExpectError(c.GetSize("memory.size"), Errc::kInvalidArgument,
              {"memory.size", "'lots'"});
  ASSERT_TRUE(c.Set("memory.size", "99999999T"));
  ExpectError(c.GetSize("memory.size"), Errc::kOutOfRange, {"memory.size"});
}

TEST(ConfigTest, MissingKeysAndGroups) {
  Config c;
  ASSERT_TRUE(c.Set("x.y", "1"));
  ExpectError(c.GetString("a.b"), Errc::kNotFound,
              {"config key 'a.b' is not set"});
  ExpectError(c.GetInt("x.y.z"), Errc::kNotFound, {"x.y.z"});
  ExpectError(c.GetUint("nope"), Errc::kNotFound, {"nope"});
  ExpectError(c.GetBool("nope"), Errc::kNotFound, {"nope"});
  ExpectError(c.GetSize("nope"), Errc::kNotFound, {"nope"});
  ExpectError(c.GetString("x"), Errc::kInvalidArgument, {"'x'", "group"});
  ExpectError(c.GetString(""), Errc::kInvalidArgument, {"empty"});
}

TEST(ConfigTest, GettersWithDefaults) {
  Config c;
  EXPECT_EQ(*c.GetString("s", "dflt"), "dflt");
  EXPECT_EQ(*c.GetInt("i", -5), -5);
  EXPECT_EQ(*c.GetUint("u", 7), 7u);
  EXPECT_EQ(*c.GetBool("b", true), true);
  EXPECT_EQ(*c.GetSize("z", 1234), 1234u);

  ASSERT_TRUE(c.Set("s", "set"));
  ASSERT_TRUE(c.Set("i", "3"));
  ASSERT_TRUE(c.Set("u", "0x10"));
  ASSERT_TRUE(c.Set("b", "off"));
  ASSERT_TRUE(c.Set("z", "1K"));
  EXPECT_EQ(*c.GetString("s", "dflt"), "set");
  EXPECT_EQ(*c.GetInt("i", -5), 3);
  EXPECT_EQ(*c.GetUint("u", 7), 16u);
  EXPECT_EQ(*c.GetBool("b", true), false);
  EXPECT_EQ(*c.GetSize("z", 1234), 1024u);

  // Malformed values are errors, not silently the default.
  ASSERT_TRUE(c.Set("i", "three"));
  ASSERT_TRUE(c.Set("u", "-1"));
  ASSERT_TRUE(c.Set("b", "maybe"));
  ASSERT_TRUE(c.Set("z", "big"));
  EXPECT_FALSE(c.GetInt("i", 0));
  EXPECT_FALSE(c.GetUint("u", 0));
  EXPECT_FALSE(c.GetBool("b", false));
  EXPECT_FALSE(c.GetSize("z", 0));
  // So are groups and invalid keys.
  ASSERT_TRUE(c.Set("g.child", "1"));
  EXPECT_FALSE(c.GetString("g", "dflt"));
  EXPECT_FALSE(c.GetInt("bad key", 1));
}

TEST(ConfigTest, Children) {
  Config c;
  ASSERT_TRUE(c.Set("uart.com2.backend", "null"));
  ASSERT_TRUE(c.Set("uart.com1.backend", "stdio"));
  ASSERT_TRUE(c.Set("cpu.count", "2"));
  EXPECT_EQ(c.Children(""), (std::vector<std::string>{"cpu", "uart"}));
  EXPECT_EQ(c.Children("uart"), (std::vector<std::string>{"com1", "com2"}));
  EXPECT_EQ(c.Children("uart.com1"), (std::vector<std::string>{"backend"}));
  EXPECT_TRUE(c.Children("cpu.count").empty());  // a value
  EXPECT_TRUE(c.Children("nope").empty());
  EXPECT_TRUE(c.Children("bad..key").empty());
}

TEST(ConfigTest, MergeJsonTypes) {
  Config c;
  ASSERT_TRUE(c.MergeJson(R"({
    // comments are allowed
    "cpu": {"count": 4, "topology": {"sockets": 1}},
    "memory": {"size": "2G"},
    "acpi": true, "debug": false,
    "big": 18446744073709551615, "neg": -3, "ratio": 1.5,
    "uart.com1.backend": "stdio"
  })"));
  EXPECT_EQ(*c.GetString("cpu.count"), "4");
  EXPECT_EQ(*c.GetInt("cpu.count"), 4);
  EXPECT_EQ(*c.GetString("cpu.topology.sockets"), "1");
  EXPECT_EQ(*c.GetSize("memory.size"), 2ull << 30);
  EXPECT_EQ(*c.GetString("acpi"), "true");
  EXPECT_EQ(*c.GetString("debug"), "false");
  EXPECT_EQ(*c.GetString("big"), "18446744073709551615");
  EXPECT_EQ(*c.GetString("neg"), "-3");
  EXPECT_EQ(*c.GetString("ratio"), "1.5");
  EXPECT_EQ(*c.GetString("uart.com1.backend"), "stdio");
}

TEST(ConfigTest, MergeJsonOverridesAndMerges) {
  Config c;
  ASSERT_TRUE(c.Set("cpu.count", "1"));
  ASSERT_TRUE(c.Set("memory.size", "1G"));
  ASSERT_TRUE(c.MergeJson(R"({"cpu": {"count": 2, "model": "host"}})"));
  EXPECT_EQ(*c.GetString("cpu.count"), "2");
  EXPECT_EQ(*c.GetString("cpu.model"), "host");
  EXPECT_EQ(*c.GetString("memory.size"), "1G");
  ASSERT_TRUE(c.MergeJson(R"({"empty": {}})"));
  EXPECT_FALSE(c.Has("empty"));
}

TEST(ConfigTest, MergeJsonErrors) {
  Config c;
  ASSERT_TRUE(c.Set("keep", "me"));
  ExpectError(c.MergeJson(R"({"a": [1, 2]})", "vm.json"),
              Errc::kInvalidArgument, {"vm.json", "'a'", "array"});
  ExpectError(c.MergeJson(R"({"a": {"b": null}})"), Errc::kInvalidArgument,
              {"<json>", "'a.b'", "null"});
  ExpectError(c.MergeJson(R"({"a b": 1})"), Errc::kInvalidArgument,
              {"a b"});
  ExpectError(c.MergeJson(R"({"x": {"": 1}})"), Errc::kInvalidArgument,
              {"x."});
  ExpectError(c.MergeJson(R"({"bad key": {}})"), Errc::kInvalidArgument,
              {"bad key"});
  ExpectError(c.MergeJson("[1]", "top.json"), Errc::kInvalidArgument,
              {"top.json", "object", "array"});
  ExpectError(c.MergeJson("\"str\""), Errc::kInvalidArgument, {"object"});
  // Parse error: origin and byte position.
  ExpectError(c.MergeJson(R"({"a": 1,, })", "broken.json"),
              Errc::kInvalidArgument, {"broken.json", "byte 9"});
  ExpectError(c.MergeJson(""), Errc::kInvalidArgument, {"<json>", "byte"});
  ExpectError(c.MergeJson(R"({"a": 1)"), Errc::kInvalidArgument, {"byte"});
  // Conflict with an existing value, and within the document.
  ExpectError(c.MergeJson(R"({"keep": {"x": 1}})"), Errc::kInvalidArgument,
              {"<json>", "keep.x"});
  ExpectError(c.MergeJson(R"({"p": {"q": 1}, "p.q.r": 2})"),
              Errc::kInvalidArgument, {"p.q.r"});
  // All-or-nothing: nothing from the failed merges stuck.
  EXPECT_EQ(c.DumpFlat(), "keep=me\n");
  // A failure after some keys were merged leaves none of them.
  ExpectError(c.MergeJson(R"({"aa": 1, "zz": null})"),
              Errc::kInvalidArgument, {"zz"});
  EXPECT_FALSE(c.Has("aa"));
}

TEST(ConfigTest, DumpJsonRoundTrip) {
  Config c;
  ASSERT_TRUE(c.Set("uart.com1.backend", "stdio"));
  ASSERT_TRUE(c.Set("uart.com1.irq", "4"));
  ASSERT_TRUE(c.Set("cpu.count", "2"));
  ASSERT_TRUE(c.Set("name", "quote\" back\\slash\nnewline \xc3\xa9"));
  ASSERT_TRUE(c.Set("empty", ""));
  const std::string dumped = c.DumpJson();
  EXPECT_NE(dumped.find("\n  \"cpu\": {"), std::string::npos) << dumped;
  // Keys are sorted: cpu < empty < name < uart.
  EXPECT_LT(dumped.find("\"cpu\""), dumped.find("\"empty\""));
  EXPECT_LT(dumped.find("\"name\""), dumped.find("\"uart\""));

  Config d;
  ASSERT_TRUE(d.MergeJson(dumped));
  EXPECT_EQ(d.DumpJson(), dumped);
  EXPECT_EQ(d.DumpFlat(), c.DumpFlat());
  EXPECT_EQ(*d.GetString("name"), *c.GetString("name"));

  EXPECT_EQ(Config().DumpJson(), "{}");
  EXPECT_EQ(Config().DumpFlat(), "");
}

TEST(ConfigTest, DumpJsonDoesNotThrowOnInvalidUtf8) {
  Config c;
  ASSERT_TRUE(c.Set("path", "/tmp/\xff\xfe"));
  std::string dumped = c.DumpJson();
  EXPECT_NE(dumped.find("path"), std::string::npos);
  Config d;
  EXPECT_TRUE(d.MergeJson(dumped));
}

TEST(ConfigTest, DumpFlatIsSortedByFullKey) {
  Config c;
  ASSERT_TRUE(c.Set("a.b", "1"));
  ASSERT_TRUE(c.Set("a-c", "2"));
  ASSERT_TRUE(c.Set("b", "3"));
  // '-' sorts before '.', so a-c precedes a.b.
  EXPECT_EQ(c.DumpFlat(), "a-c=2\na.b=1\nb=3\n");
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = tmp ? tmp : "/tmp";
    path_ = dir_ + "/config_test_" + std::to_string(getpid()) + ".json";
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void WriteFile(const std::string& text) {
    std::FILE* f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  std::string dir_;
  std::string path_;
};

TEST_F(ConfigFileTest, MergeJsonFile) {
  WriteFile(R"({"memory": {"size": "256M"}})");
  Config c;
  ASSERT_TRUE(c.MergeJsonFile(path_));
  EXPECT_EQ(*c.GetSize("memory.size"), 256ull << 20);
}

TEST_F(ConfigFileTest, ParseErrorNamesFile) {
  WriteFile("{\n  \"a\": tru\n}");
  Config c;
  ExpectError(c.MergeJsonFile(path_), Errc::kInvalidArgument,
              {path_, "byte"});
}

TEST_F(ConfigFileTest, MissingFileIsNotFound) {
  Config c;
  ExpectError(c.MergeJsonFile(path_ + ".missing"), Errc::kNotFound,
              {path_ + ".missing"});
}

TEST_F(ConfigFileTest, NotARegularFileIsRejected) {
  Config c;
  ExpectError(c.MergeJsonFile(dir_), Errc::kInvalidArgument,
              {dir_, "a directory"});
  ExpectError(c.MergeJsonFile("/dev/zero"), Errc::kInvalidArgument,
              {"/dev/zero", "a character device"});
  // A FIFO would block open() until a writer came.
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  alarm(20);
  ExpectError(c.MergeJsonFile(fifo), Errc::kInvalidArgument,
              {fifo, "FIFO"});
  alarm(0);
  unlink(fifo.c_str());
  EXPECT_EQ(c.DumpFlat(), "");
}

TEST_F(ConfigFileTest, OversizedFileIsRejected) {
  WriteFile("{\"a\": \"" + std::string(Config::kMaxConfigFileSize, 'x') +
            "\"}");
  Config c;
  ExpectError(c.MergeJsonFile(path_), Errc::kOutOfRange, {path_, "limit"});
}

}  // namespace
}  // namespace strata
