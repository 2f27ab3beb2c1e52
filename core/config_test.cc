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

// --- Bounds: untrusted keys and nesting -------------------------------------

std::string Parts(size_t n, std::string_view part = "a") {
  std::string k;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) k += '.';
    k += part;
  }
  return k;
}

std::string Nested(size_t depth, std::string_view leaf = "\"1\"") {
  std::string j;
  for (size_t i = 0; i < depth; ++i) j += "{\"a\":";
  j += leaf;
  j.append(depth, '}');
  return j;
}

TEST(ConfigBounds, ComponentLimit) {
  Config c;
  ASSERT_TRUE(c.Set(Parts(Config::kMaxKeyComponents), "x"));
  ExpectError(c.Set(Parts(Config::kMaxKeyComponents + 1), "x"),
              Errc::kInvalidArgument, {"33 components", "the limit is 32"});
  // 10^4 parts through every entry point: a clear error, no deep recursion,
  // and the message quotes only the start of the key.
  const std::string huge = Parts(10000);
  for (auto r : {c.Set(huge, "1"), c.SetDefault(huge, "1"),
                 c.ParseOption(huge + "=1")}) {
    ExpectError(r, Errc::kInvalidArgument,
                {"10000 components", "the limit is 32"});
    EXPECT_LT(r.error().message().size(), 300u);
  }
  ExpectError(c.GetString(huge), Errc::kInvalidArgument, {"10000 components"});
  EXPECT_FALSE(c.Has(huge));
  EXPECT_EQ(c.Keys().size(), 1u);
}

TEST(ConfigBounds, LengthLimit) {
  Config c;
  ASSERT_TRUE(c.Set(std::string(Config::kMaxKeyLength, 'k'), "x"));
  ExpectError(c.Set(std::string(Config::kMaxKeyLength + 1, 'k'), "x"),
              Errc::kInvalidArgument,
              {"257 bytes long", "the limit is 256 bytes"});
  const std::string mb(1 << 20, 'k');
  for (auto r : {c.Set(mb, "1"), c.ParseOption(mb + "=1"),
                 c.MergeJson("{\"" + mb + "\": 1}"),
                 c.MergeJson("{\"" + mb + "\": {\"b\": 1}}")}) {
    ExpectError(r, Errc::kInvalidArgument,
                {"1048576 bytes long", "the limit is 256 bytes"});
    EXPECT_LT(r.error().message().size(), 300u);
  }
  // A 1 MB option without '=' is quoted in part, too.
  auto no_eq = c.ParseOption(mb);
  ASSERT_FALSE(no_eq);
  EXPECT_LT(no_eq.error().message().size(), 300u);
  // And a 1 MB value that does not parse.
  ASSERT_TRUE(c.Set("n", mb));
  auto bad = c.GetUint("n");
  ASSERT_FALSE(bad);
  EXPECT_LT(bad.error().message().size(), 300u);
}

TEST(ConfigBounds, JsonNesting) {
  Config c;
  ASSERT_TRUE(c.MergeJson(Nested(Config::kMaxKeyComponents)));
  EXPECT_TRUE(c.Has(Parts(Config::kMaxKeyComponents)));
  Config d;
  ExpectError(d.MergeJson(Nested(Config::kMaxKeyComponents + 1), "deep.json"),
              Errc::kInvalidArgument,
              {"deep.json", "nested deeper than 32 levels", "at byte 160"});
  // 10^5 levels (objects, arrays, mixed) fail fast with the same error
  // instead of overflowing the stack.
  for (const std::string& bomb :
       {Nested(100000), std::string(100000, '[') + std::string(100000, ']'),
        "{\"a\":" + std::string(100000, '[')}) {
    ExpectError(d.MergeJson(bomb), Errc::kInvalidArgument,
                {"nested deeper than 32 levels"});
  }
  EXPECT_EQ(d.DumpFlat(), "");
  // Braces inside strings and comments do not count.
  ASSERT_TRUE(d.MergeJson("{\"a\": \"" + std::string(100, '{') +
                          "\\\"{\", // {{{{{{{{\n /* [[[[[[[ */ \"b\": 1}"));
  EXPECT_EQ(d.DumpFlat(), "a=" + std::string(100, '{') + "\"{\nb=1\n");
}

TEST(ConfigBounds, DottedNamesCountAsComponents) {
  // Names may hold dots; the key they make is what the limits apply to.
  Config c;
  ASSERT_TRUE(c.MergeJson(R"({"a.b": {"c.d": 1}})"));
  EXPECT_EQ(*c.GetString("a.b.c.d"), "1");
  const std::string json = "{\"" + Parts(20) + "\": {\"" + Parts(20) +
                           "\": 1}}";
  ExpectError(c.MergeJson(json), Errc::kInvalidArgument,
              {"40 components", "the limit is 32"});
  // 10^4-part names at each of 30 levels: rejected at the first level.
  std::string wide;
  for (int i = 0; i < 30; ++i) wide += "{\"" + Parts(10000) + "\":";
  wide += "1" + std::string(30, '}');
  ExpectError(c.MergeJson(wide), Errc::kInvalidArgument, {"10000 components"});
  EXPECT_EQ(c.DumpFlat(), "a.b.c.d=1\n");
}

TEST(ConfigBounds, DumpOfTheDeepestTreeRoundTrips) {
  Config c;
  ASSERT_TRUE(c.Set(Parts(Config::kMaxKeyComponents), "v"));
  Config d;
  ASSERT_TRUE(d.MergeJson(c.DumpJson()));
  EXPECT_EQ(d.DumpFlat(), c.DumpFlat());
}

// --- Range-checked getters -------------------------------------------------

TEST(ConfigRange, GetUintInRange) {
  Config c;
  ASSERT_TRUE(c.Set("cpu.sockets", "4294967297"));
  ExpectError(c.GetUint32("cpu.sockets", 1), Errc::kOutOfRange,
              {"'cpu.sockets'", "4294967297", "0..4294967295"});
  ExpectError(c.GetUintInRange("cpu.sockets", 1, 1, 1024), Errc::kOutOfRange,
              {"'cpu.sockets'", "1..1024"});
  ASSERT_TRUE(c.Set("cpu.sockets", "4294967295"));
  EXPECT_EQ(*c.GetUint32("cpu.sockets", 1), UINT32_MAX);
  ASSERT_TRUE(c.Set("cpu.sockets", "0"));
  ExpectError(c.GetUintInRange("cpu.sockets", 1, 1, 8), Errc::kOutOfRange,
              {"is 0", "1..8"});
  EXPECT_EQ(*c.GetUint32("unset", 7), 7u);
  EXPECT_EQ(*c.GetUintInRange("unset", 9, 1, 8), 9u);  // defaults unchecked
  ASSERT_TRUE(c.Set("cpu.sockets", "x"));
  ExpectError(c.GetUint32("cpu.sockets", 1), Errc::kInvalidArgument, {"'x'"});
}

TEST(ConfigRange, GetSizeInRange) {
  Config c;
  ASSERT_TRUE(c.Set("memory.size", "1M"));
  ExpectError(c.GetSizeInRange("memory.size", 0, 2 << 20, 1ull << 40),
              Errc::kOutOfRange, {"'memory.size'", "1048576 bytes",
                                  "2097152..1099511627776"});
  ASSERT_TRUE(c.Set("memory.size", "2M"));
  EXPECT_EQ(*c.GetSizeInRange("memory.size", 0, 2 << 20, 1ull << 40),
            2u << 20);
}

// --- Schema ----------------------------------------------------------------

constexpr std::string_view kSchema[] = {
    "cpus", "cpu.sockets", "memory.size", "uart.*.backend", "x86.cpu_vendor",
};

TEST(ConfigSchema, KnownKeysPass) {
  Config c;
  ASSERT_TRUE(c.Set("cpus", "2"));
  ASSERT_TRUE(c.Set("memory.size", "1G"));
  ASSERT_TRUE(c.Set("uart.com1.backend", "stdio"));
  ASSERT_TRUE(c.Set("uart.com2.backend", "none"));
  EXPECT_TRUE(c.CheckKnownKeys(kSchema));
  EXPECT_TRUE(Config().CheckKnownKeys(kSchema));
  EXPECT_TRUE(Config().CheckKnownKeys({}));
}

TEST(ConfigSchema, TypoGetsASuggestion) {
  Config c;
  ASSERT_TRUE(c.Set("memory.sise", "1G"));
  ExpectError(c.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
              {"unknown config key 'memory.sise' (did you mean "
               "'memory.size'?)"});
}

TEST(ConfigSchema, WildcardMatchesExactlyOneComponent) {
  for (const char* bad : {"uart.backend", "uart.a.b.backend"}) {
    Config c;
    ASSERT_TRUE(c.Set(bad, "stdio"));
    ExpectError(c.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
                {std::string("'") + bad + "'"});
  }
  // A typo under a wildcard is suggested with the component filled in.
  Config c;
  ASSERT_TRUE(c.Set("uart.com1.bakend", "stdio"));
  ExpectError(c.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
              {"did you mean 'uart.com1.backend'?"});
}

TEST(ConfigSchema, FarOffKeysListTheKnownOnes) {
  Config c;
  ASSERT_TRUE(c.Set("frobnicate", "1"));
  ASSERT_TRUE(c.Set("zz.top", "1"));
  ASSERT_TRUE(c.Set("zz.bottom", "1"));
  ExpectError(c.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
              {"unknown config key 'frobnicate' (known keys: cpus, "
               "cpu.sockets, memory.size, uart.*.backend, x86.cpu_vendor); "
               "2 more unknown keys"});
  // A group where a value is expected (or the reverse) is unknown too.
  Config g;
  ASSERT_TRUE(g.Set("cpus.count", "1"));
  ExpectError(g.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
              {"'cpus.count'"});
}

TEST(ConfigSchema, SuggestionsAreClosestByEditDistance) {
  struct Case {
    const char* key;
    const char* want;
  };
  for (const Case& t : {Case{"cpu", "cpus"}, Case{"cpu.socket", "cpu.sockets"},
                        Case{"x86.cpu-vendor", "x86.cpu_vendor"},
                        Case{"memory.siz", "memory.size"},
                        Case{"cpus2", "cpus"}}) {
    Config c;
    ASSERT_TRUE(c.Set(t.key, "1"));
    ExpectError(c.CheckKnownKeys(kSchema), Errc::kInvalidArgument,
                {std::string("did you mean '") + t.want + "'"});
  }
}

TEST(ConfigTest, KeysAreSorted) {
  Config c;
  ASSERT_TRUE(c.Set("b.x", "1"));
  ASSERT_TRUE(c.Set("a", "1"));
  ASSERT_TRUE(c.Set("b.a", "1"));
  EXPECT_EQ(c.Keys(), (std::vector<std::string>{"a", "b.a", "b.x"}));
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

TEST(EditDistance, Basics) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("uart16550", "uart_16550"), 1u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace strata
