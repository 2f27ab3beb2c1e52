// strata — the configuration tree, after bhyve's config.c.
//
// Every setting is a string stored under a dotted key such as `cpu.count`,
// `memory.size` or `uart.com1.backend`; typed getters parse on read, so the
// same tree can come from `-o key=value` options, JSON files and defaults
// without each source knowing the types. A key's components are non-empty
// runs of [A-Za-z0-9_-]. A node is either a value (leaf) or a group of
// children, never both: `a.b=1` and `a.b.c=2` conflict.
//
// Every source is untrusted input, so keys are bounded: at most
// kMaxKeyComponents components and kMaxKeyLength bytes, checked by every
// call that takes a key, and JSON nesting is bounded the same way before it
// is parsed. Without that a 10^5-deep JSON file or a 10^4-part `-o` key
// overflowed the stack in the merge and made keys quadratic in size; with it
// every tree walk is shallow and every key short.
//
// Not thread-safe for mutation: build the tree before starting vCPUs; const
// calls may then run concurrently. No call throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace strata {

// Parses a byte count: a decimal number with an optional binary suffix
// K, M, G or T (case-insensitive, optionally followed by "B" or "iB"), a
// plain "B" suffix, or a 0x-prefixed hex number without suffix. Examples:
// "4096", "512M", "2G", "1GiB", "64kb", "0x1000". Malformed text is
// kInvalidArgument; a value above 2^64-1 is kOutOfRange.
Result<uint64_t> ParseSize(std::string_view text);

// Levenshtein distance (insert, delete, substitute: 1 each), for "did you
// mean" suggestions of config keys, device models and register names.
size_t EditDistance(std::string_view a, std::string_view b);

class Config {
 public:
  // Limits on keys (and so on JSON nesting): generous for real settings
  // (`uart.com1.backend` is 3 components, 17 bytes).
  static constexpr size_t kMaxKeyComponents = 32;
  static constexpr size_t kMaxKeyLength = 256;

  Config();
  ~Config();
  Config(const Config& other);
  Config& operator=(const Config& other);
  Config(Config&&);
  Config& operator=(Config&&);

  // Sets key to value, creating intermediate groups. Fails (naming the key)
  // if the key is malformed, if the path runs through an existing value, or
  // if key is an existing group (a value would replace a subtree).
  Status Set(std::string_view key, std::string_view value);
  // Sets key only if it has no value yet; same errors as Set otherwise.
  Status SetDefault(std::string_view key, std::string_view value);
  // Applies a `-o key=value` option (split at the first '='; the value may be
  // empty or contain '=').
  Status ParseOption(std::string_view key_eq_value);
  // Merges a JSON object: nested objects become dotted keys; strings,
  // numbers and bools become string values ("true"/"false", integers in
  // decimal, other numbers in JSON notation). Arrays and null are rejected
  // naming the key. Parse errors name `origin` and the byte position. Nesting
  // deeper than kMaxKeyComponents is rejected before parsing (the byte where
  // it gets too deep is named), as are keys over the limits. The merge is
  // all-or-nothing: on error the config is unchanged.
  Status MergeJson(std::string_view json_text,
                   std::string_view origin = "<json>");
  // As MergeJson on a file's contents, read with ReadHostFile: a FIFO, a
  // directory or a device is rejected (kInvalidArgument) without blocking,
  // as is a file over kMaxConfigFileSize (kOutOfRange); kNotFound / kIo name
  // the path.
  Status MergeJsonFile(const std::string& path);
  static constexpr uint64_t kMaxConfigFileSize = 4 << 20;

  // True if key names a value or a group.
  bool Has(std::string_view key) const;

  // Typed getters. kNotFound "config key 'x.y' is not set" if absent;
  // kInvalidArgument if key is a group or its value does not parse (the
  // message names key and value); kOutOfRange if it does not fit.
  Result<std::string> GetString(std::string_view key) const;
  // Decimal or 0x-hex, optional leading '-' (GetInt only).
  Result<int64_t> GetInt(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;
  // true/false/yes/no/on/off/1/0, case-insensitive.
  Result<bool> GetBool(std::string_view key) const;
  // Bytes, as ParseSize.
  Result<uint64_t> GetSize(std::string_view key) const;

  // Same, returning dflt when the key is unset (malformed values and groups
  // are still errors).
  Result<std::string> GetString(std::string_view key,
                                std::string_view dflt) const;
  Result<int64_t> GetInt(std::string_view key, int64_t dflt) const;
  Result<uint64_t> GetUint(std::string_view key, uint64_t dflt) const;
  Result<bool> GetBool(std::string_view key, bool dflt) const;
  Result<uint64_t> GetSize(std::string_view key, uint64_t dflt) const;

  // Range-checked: as GetUint(key, dflt), and kOutOfRange naming the key,
  // its value and the limits unless min <= value <= max ("config key
  // 'cpu.sockets' is 4294967297, outside the range 1..4294967295"). An unset
  // key yields dflt as is.
  Result<uint64_t> GetUintInRange(std::string_view key, uint64_t dflt,
                                  uint64_t min, uint64_t max) const;
  // GetUintInRange(key, dflt, 0, UINT32_MAX) as a uint32_t.
  Result<uint32_t> GetUint32(std::string_view key, uint32_t dflt) const;
  // As GetSize(key, dflt), range-checked like GetUintInRange.
  Result<uint64_t> GetSizeInRange(std::string_view key, uint64_t dflt,
                                  uint64_t min, uint64_t max) const;

  // Checks every value's key against a schema. A pattern is a dotted key
  // whose components may be `*`, which matches exactly one component:
  // "uart.*.backend" matches "uart.com1.backend" but not "uart.backend".
  // The first key (in sorted order) that matches no pattern is
  // kInvalidArgument: "unknown config key 'memory.sise' (did you mean
  // 'memory.size'?)", suggesting the pattern closest by edit distance when
  // one is close, else listing the known patterns.
  Status CheckKnownKeys(std::span<const std::string_view> patterns) const;

  // Every value's key, sorted.
  std::vector<std::string> Keys() const;

  // Names of the children of a group ("" = root), sorted; empty if key is a
  // value or unset.
  std::vector<std::string> Children(std::string_view key) const;

  // The effective config as pretty JSON: nested objects, string values,
  // keys sorted. MergeJson of the result into an empty Config reproduces it.
  std::string DumpJson() const;
  // "key=value\n" lines sorted by key.
  std::string DumpFlat() const;

 private:
  // Returns the node at key, or null if unset. Key must be valid or empty.
  // The value at key as a string, or kNotFound / kInvalidArgument (group).
  Result<std::string> Lookup(std::string_view key) const;

  // The tree (a JSON object whose leaves are strings), behind a pointer so
  // the JSON library stays out of the public headers.
  struct Tree;
  std::unique_ptr<Tree> tree_;
};

}  // namespace strata
