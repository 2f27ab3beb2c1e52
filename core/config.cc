#include "core/config.h"

#include <nlohmann/json.hpp>

#include "core/host_file.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

namespace strata {

namespace {

using nlohmann::json;

bool IsKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// How much of an untrusted key or value a message quotes.
constexpr size_t kQuotedMax = 80;
constexpr size_t kQuotedHead = 60;

// s, cut to its first kQuotedHead bytes plus "..." if longer than kQuotedMax
// (so a 1 MB key does not make a 1 MB message).
std::string Quoted(std::string_view s) {
  if (s.size() <= kQuotedMax) return std::string(s);
  return fmt::format("{}...", s.substr(0, kQuotedHead));
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) {
    return MakeError(Errc::kInvalidArgument, "config key is empty");
  }
  // The limits first: they bound everything done with the key afterwards.
  const size_t components =
      static_cast<size_t>(std::count(key.begin(), key.end(), '.')) + 1;
  if (components > Config::kMaxKeyComponents) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}' has {} components; the limit is {}",
                     Quoted(key), components, Config::kMaxKeyComponents);
  }
  if (key.size() > Config::kMaxKeyLength) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}' is {} bytes long; the limit is {} bytes",
                     Quoted(key), key.size(), Config::kMaxKeyLength);
  }
  size_t start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == '.') {
      if (i == start) {
        return MakeError(Errc::kInvalidArgument,
                         "invalid config key '{}': empty component (keys are "
                         "names of [A-Za-z0-9_-] separated by '.')",
                         key);
      }
      start = i + 1;
    } else if (!IsKeyChar(key[i])) {
      return MakeError(Errc::kInvalidArgument,
                       "invalid config key '{}': character '{}' is not "
                       "allowed (keys are names of [A-Za-z0-9_-] separated "
                       "by '.')",
                       key, key[i]);
    }
  }
  return Ok();
}

// Rejects JSON nested deeper than a key may have components, before the
// parser sees it: parsing, the merge and the tree's destructor all work per
// level, and a 10^5-deep document overflowed the stack. Strings (with
// escapes) and the comments MergeJson accepts are skipped; anything else
// that is malformed is left for the parser to report.
Status CheckJsonNesting(std::string_view text, std::string_view origin) {
  size_t depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '"':
        for (++i; i < text.size() && text[i] != '"'; ++i) {
          if (text[i] == '\\') ++i;
        }
        break;
      case '/':
        if (i + 1 < text.size() && text[i + 1] == '/') {
          i = text.find('\n', i);
          if (i == std::string_view::npos) return Ok();
        } else if (i + 1 < text.size() && text[i + 1] == '*') {
          i = text.find("*/", i + 2);
          if (i == std::string_view::npos) return Ok();
          ++i;
        }
        break;
      case '{':
      case '[':
        if (++depth > Config::kMaxKeyComponents) {
          return MakeError(Errc::kInvalidArgument,
                           "{}: JSON nested deeper than {} levels at byte {} "
                           "(config keys have at most {} components)",
                           origin, Config::kMaxKeyComponents, i,
                           Config::kMaxKeyComponents);
        }
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return Ok();
}

// Splits a validated key into its components.
std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    out.emplace_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// Sets a validated key in the tree rooted at root (an object).
Status SetIn(json& root, std::string_view key, std::string_view value) {
  STRATA_TRY(ValidateKey(key));
  std::vector<std::string> parts = SplitKey(key);
  json* node = &root;
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (!prefix.empty()) prefix += '.';
    prefix += part;
    auto it = node->find(part);
    if (i + 1 < parts.size()) {
      if (it == node->end()) {
        node = &((*node)[part] = json::object());
      } else if (it->is_object()) {
        node = &*it;
      } else {
        return MakeError(Errc::kInvalidArgument,
                         "cannot set config key '{}': '{}' already has the "
                         "value '{}' and cannot also hold sub-keys",
                         key, prefix, it->get_ref<const std::string&>());
      }
    } else {
      if (it != node->end() && it->is_object()) {
        return MakeError(Errc::kInvalidArgument,
                         "cannot set config key '{}' to a value: it is a "
                         "group of sub-keys",
                         key);
      }
      (*node)[part] = std::string(value);
    }
  }
  return Ok();
}

// Recursively merges a parsed JSON object under prefix into root.
Status MergeInto(json& root, const json& obj, const std::string& prefix,
                 std::string_view origin) {
  for (const auto& [name, v] : obj.items()) {
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    auto fail = [&](std::string_view what) -> Error {
      return MakeError(Errc::kInvalidArgument, "{}: config key '{}': {}",
                       origin, key, what);
    };
    switch (v.type()) {
      case json::value_t::object: {
        // Checked before descending (an empty object sets nothing, but its
        // key is still checked): the prefix never exceeds the key limits,
        // whatever dots the names hold.
        auto s = ValidateKey(key);
        if (!s) return std::move(s).error().Wrap(origin);
        STRATA_TRY(MergeInto(root, v, key, origin));
        break;
      }
      case json::value_t::string:
        STRATA_TRY_CTX(SetIn(root, key, v.get_ref<const std::string&>()),
                       origin);
        break;
      case json::value_t::boolean:
        STRATA_TRY_CTX(SetIn(root, key, v.get<bool>() ? "true" : "false"),
                       origin);
        break;
      case json::value_t::number_integer:
        STRATA_TRY_CTX(SetIn(root, key, std::to_string(v.get<int64_t>())),
                       origin);
        break;
      case json::value_t::number_unsigned:
        STRATA_TRY_CTX(SetIn(root, key, std::to_string(v.get<uint64_t>())),
                       origin);
        break;
      case json::value_t::number_float:
        STRATA_TRY_CTX(SetIn(root, key, v.dump()), origin);
        break;
      case json::value_t::array:
        return fail("arrays are not supported (use an object or a string)");
      case json::value_t::null:
        return fail("null is not a value (omit the key instead)");
      case json::value_t::binary:
      case json::value_t::discarded:
        return fail("unsupported JSON value");
    }
  }
  return Ok();
}

void Flatten(const json& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* out) {
  for (const auto& [name, v] : node.items()) {
    std::string key = prefix.empty() ? name : prefix + "." + name;
    if (v.is_object()) {
      Flatten(v, key, out);
    } else {
      out->emplace_back(std::move(key), v.get<std::string>());
    }
  }
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool HasHexPrefix(std::string_view s) {
  return s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

enum class NumErr { kOk, kInvalid, kOverflow };

// Parses all of s as an unsigned decimal or 0x-hex number.
NumErr ParseMagnitude(std::string_view s, uint64_t* out) {
  int base = 10;
  if (HasHexPrefix(s)) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return NumErr::kInvalid;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out, base);
  if (ec == std::errc::result_out_of_range) return NumErr::kOverflow;
  if (ec != std::errc() || ptr != end) return NumErr::kInvalid;
  return NumErr::kOk;
}

Result<int64_t> ParseInt(std::string_view key, std::string_view text) {
  std::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && digits[0] == '-') {
    negative = true;
    digits.remove_prefix(1);
  }
  uint64_t mag = 0;
  NumErr e = ParseMagnitude(digits, &mag);
  constexpr uint64_t kMaxPos = std::numeric_limits<int64_t>::max();
  if (e == NumErr::kOk && mag > kMaxPos + (negative ? 1 : 0)) {
    e = NumErr::kOverflow;
  }
  if (e == NumErr::kInvalid) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}' has value '{}', which is not an integer "
                     "(use decimal or 0x-hex)",
                     key, Quoted(text));
  }
  if (e == NumErr::kOverflow) {
    return MakeError(Errc::kOutOfRange,
                     "config key '{}' has value '{}', which does not fit in a "
                     "64-bit signed integer",
                     key, Quoted(text));
  }
  // -(2^63) is representable although +2^63 is not: negate in unsigned.
  return negative ? static_cast<int64_t>(~mag + 1) : static_cast<int64_t>(mag);
}

Result<uint64_t> ParseUint(std::string_view key, std::string_view text) {
  uint64_t v = 0;
  switch (ParseMagnitude(text, &v)) {
    case NumErr::kOk:
      return v;
    case NumErr::kInvalid:
      return MakeError(Errc::kInvalidArgument,
                       "config key '{}' has value '{}', which is not an "
                       "unsigned integer (use decimal or 0x-hex)",
                       key, Quoted(text));
    case NumErr::kOverflow:
      break;
  }
  return MakeError(Errc::kOutOfRange,
                   "config key '{}' has value '{}', which does not fit in a "
                   "64-bit unsigned integer",
                   key, Quoted(text));
}

Result<bool> ParseBool(std::string_view key, std::string_view text) {
  const std::string t = ToLower(text);
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  return MakeError(Errc::kInvalidArgument,
                   "config key '{}' has value '{}', which is not a boolean "
                   "(use true/false, yes/no, on/off or 1/0)",
                   key, Quoted(text));
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  auto invalid = [&] {
    return MakeError(Errc::kInvalidArgument,
                     "invalid size '{}': expected a number with an optional "
                     "K, M, G or T suffix (e.g. 512M, 2G) or 0x-hex bytes",
                     Quoted(text));
  };
  auto overflow = [&] {
    return MakeError(Errc::kOutOfRange,
                     "size '{}' does not fit in 64 bits", Quoted(text));
  };
  uint64_t n = 0;
  if (HasHexPrefix(text)) {
    // Hex digits include 'b', so a hex size takes no suffix.
    switch (ParseMagnitude(text, &n)) {
      case NumErr::kOk: return n;
      case NumErr::kInvalid: return invalid();
      case NumErr::kOverflow: return overflow();
    }
  }
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, n, 10);
  if (ptr == begin) return invalid();
  if (ec == std::errc::result_out_of_range) return overflow();
  if (ec != std::errc()) return invalid();

  const std::string suffix = ToLower(std::string_view(ptr, end - ptr));
  int shift = -1;
  if (suffix.empty() || suffix == "b") {
    shift = 0;
  } else {
    static constexpr std::pair<char, int> kUnits[] = {
        {'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}};
    for (const auto& [unit, s] : kUnits) {
      if (suffix[0] == unit) {
        std::string_view rest = std::string_view(suffix).substr(1);
        if (rest.empty() || rest == "b" || rest == "ib") shift = s;
        break;
      }
    }
  }
  if (shift < 0) return invalid();
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return overflow();
  }
  return n << shift;
}

namespace {

// Returns the node at key, or null if unset. Key must be valid or empty.
const json* FindIn(const json& root, std::string_view key) {
  if (key.empty()) return &root;
  if (!ValidateKey(key)) return nullptr;
  const json* node = &root;
  for (const std::string& part : SplitKey(key)) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

}  // namespace

struct Config::Tree {
  json root = json::object();
};

Config::Config() : tree_(std::make_unique<Tree>()) {}
Config::~Config() = default;
Config::Config(const Config& other)
    : tree_(std::make_unique<Tree>(*other.tree_)) {}
Config& Config::operator=(const Config& other) {
  if (this != &other) tree_ = std::make_unique<Tree>(*other.tree_);
  return *this;
}
Config::Config(Config&& other)
    : tree_(std::exchange(other.tree_, std::make_unique<Tree>())) {}
Config& Config::operator=(Config&& other) {
  if (this != &other) tree_ = std::exchange(other.tree_, std::make_unique<Tree>());
  return *this;
}

Status Config::Set(std::string_view key, std::string_view value) {
  return SetIn(tree_->root, key, value);
}

Status Config::SetDefault(std::string_view key, std::string_view value) {
  STRATA_TRY(ValidateKey(key));
  const json* node = FindIn(tree_->root, key);
  if (node != nullptr && node->is_string()) return Ok();
  return SetIn(tree_->root, key, value);
}

Status Config::ParseOption(std::string_view key_eq_value) {
  const size_t eq = key_eq_value.find('=');
  if (eq == std::string_view::npos) {
    return MakeError(Errc::kInvalidArgument,
                     "option '{}' is not of the form key=value",
                     Quoted(key_eq_value));
  }
  if (eq == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "option '{}' has an empty key (expected key=value)",
                     Quoted(key_eq_value));
  }
  return Set(key_eq_value.substr(0, eq), key_eq_value.substr(eq + 1));
}

Status Config::MergeJson(std::string_view json_text, std::string_view origin) {
  STRATA_TRY(CheckJsonNesting(json_text, origin));
  json parsed;
  try {
    parsed = json::parse(json_text.begin(), json_text.end(),
                         /*cb=*/nullptr, /*allow_exceptions=*/true,
                         /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at ...";
    // keep the human part.
    std::string_view what = e.what();
    if (size_t p = what.find("] "); p != std::string_view::npos) {
      what.remove_prefix(p + 2);
    }
    return MakeError(Errc::kInvalidArgument,
                     "{}: invalid JSON at byte {}: {}", origin, e.byte, what);
  } catch (const json::exception& e) {
    return MakeError(Errc::kInvalidArgument, "{}: invalid JSON: {}", origin,
                     e.what());
  }
  if (!parsed.is_object()) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: the top level must be a JSON object, not {}", origin,
                     parsed.type_name());
  }
  // Merge into a copy so a failure part-way leaves the config unchanged.
  json merged = tree_->root;
  try {
    STRATA_TRY(MergeInto(merged, parsed, "", origin));
  } catch (const json::exception& e) {
    return MakeError(Errc::kInternal, "{}: merging JSON failed: {}", origin,
                     e.what());
  }
  tree_->root = std::move(merged);
  return Ok();
}

Status Config::MergeJsonFile(const std::string& path) {
  std::vector<uint8_t> bytes =
      STRATA_TRY(ReadHostFile(path, "config file", kMaxConfigFileSize));
  return MergeJson(
      std::string_view(reinterpret_cast<const char*>(bytes.data()),
                       bytes.size()),
      path);
}


bool Config::Has(std::string_view key) const {
  return !key.empty() && FindIn(tree_->root, key) != nullptr;
}

Result<std::string> Config::Lookup(std::string_view key) const {
  STRATA_TRY(ValidateKey(key));
  const json* node = FindIn(tree_->root, key);
  if (node == nullptr) {
    return MakeError(Errc::kNotFound, "config key '{}' is not set", key);
  }
  if (!node->is_string()) {
    return MakeError(Errc::kInvalidArgument,
                     "config key '{}' is a group of sub-keys, not a value",
                     key);
  }
  return node->get<std::string>();
}

Result<std::string> Config::GetString(std::string_view key) const {
  return Lookup(key);
}

Result<int64_t> Config::GetInt(std::string_view key) const {
  std::string v = STRATA_TRY(Lookup(key));
  return ParseInt(key, v);
}

Result<uint64_t> Config::GetUint(std::string_view key) const {
  std::string v = STRATA_TRY(Lookup(key));
  return ParseUint(key, v);
}

Result<bool> Config::GetBool(std::string_view key) const {
  std::string v = STRATA_TRY(Lookup(key));
  return ParseBool(key, v);
}

Result<uint64_t> Config::GetSize(std::string_view key) const {
  std::string v = STRATA_TRY(Lookup(key));
  return STRATA_TRY_CTX(ParseSize(v), fmt::format("config key '{}'", key));
}

namespace {

// True if r failed only because the key is unset.
template <typename T>
bool IsUnset(const Result<T>& r) {
  return !r && r.error().code() == Errc::kNotFound;
}

}  // namespace

Result<std::string> Config::GetString(std::string_view key,
                                      std::string_view dflt) const {
  auto r = GetString(key);
  if (IsUnset(r)) return std::string(dflt);
  return r;
}

Result<int64_t> Config::GetInt(std::string_view key, int64_t dflt) const {
  auto r = GetInt(key);
  if (IsUnset(r)) return dflt;
  return r;
}

Result<uint64_t> Config::GetUint(std::string_view key, uint64_t dflt) const {
  auto r = GetUint(key);
  if (IsUnset(r)) return dflt;
  return r;
}

Result<bool> Config::GetBool(std::string_view key, bool dflt) const {
  auto r = GetBool(key);
  if (IsUnset(r)) return dflt;
  return r;
}

Result<uint64_t> Config::GetSize(std::string_view key, uint64_t dflt) const {
  auto r = GetSize(key);
  if (IsUnset(r)) return dflt;
  return r;
}

Result<uint64_t> Config::GetUintInRange(std::string_view key, uint64_t dflt,
                                        uint64_t min, uint64_t max) const {
  auto r = GetUint(key);
  if (IsUnset(r)) return dflt;
  const uint64_t v = STRATA_TRY(std::move(r));
  if (v < min || v > max) {
    return MakeError(Errc::kOutOfRange,
                     "config key '{}' is {}, outside the range {}..{}", key, v,
                     min, max);
  }
  return v;
}

Result<uint32_t> Config::GetUint32(std::string_view key, uint32_t dflt) const {
  return static_cast<uint32_t>(
      STRATA_TRY(GetUintInRange(key, dflt, 0, UINT32_MAX)));
}

Result<uint64_t> Config::GetSizeInRange(std::string_view key, uint64_t dflt,
                                        uint64_t min, uint64_t max) const {
  auto r = GetSize(key);
  if (IsUnset(r)) return dflt;
  const uint64_t v = STRATA_TRY(std::move(r));
  if (v < min || v > max) {
    return MakeError(Errc::kOutOfRange,
                     "config key '{}' is {} bytes, outside the range {}..{}",
                     key, v, min, max);
  }
  return v;
}

namespace {

std::vector<std::string_view> SplitView(std::string_view key) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    out.push_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

bool MatchesPattern(const std::vector<std::string_view>& key,
                    const std::vector<std::string_view>& pattern) {
  if (key.size() != pattern.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    if (pattern[i] != "*" && pattern[i] != key[i]) return false;
  }
  return true;
}


// The pattern as it would read for `key`: each `*` replaced by the key's
// component there, so "uart.*.backend" suggests "uart.com1.backend" for
// "uart.com1.backend2" rather than a literal '*'.
std::string Instantiate(const std::vector<std::string_view>& pattern,
                        const std::vector<std::string_view>& key) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (i > 0) out += '.';
    out += pattern[i] == "*" && i < key.size() ? key[i] : pattern[i];
  }
  return out;
}

}  // namespace

Status Config::CheckKnownKeys(
    std::span<const std::string_view> patterns) const {
  std::vector<std::vector<std::string_view>> split;
  split.reserve(patterns.size());
  for (std::string_view p : patterns) split.push_back(SplitView(p));

  std::vector<std::string> unknown;
  for (const std::string& key : Keys()) {
    const auto parts = SplitView(key);
    bool known = false;
    for (const auto& p : split) {
      if (MatchesPattern(parts, p)) {
        known = true;
        break;
      }
    }
    if (!known) unknown.push_back(key);
  }
  if (unknown.empty()) return Ok();

  const std::string& key = unknown.front();
  const auto parts = SplitView(key);
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& p : split) {
    std::string candidate = Instantiate(p, parts);
    const size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::move(candidate);
    }
  }
  // Close means a typo, not a different key: a few edits, fewer for short
  // keys ("cpu" is not a misspelt "cpus.max").
  const size_t close = std::max<size_t>(1, std::min<size_t>(3, key.size() / 3));
  std::string hint;
  if (!best.empty() && best_distance <= close) {
    hint = fmt::format(" (did you mean '{}'?)", best);
  } else {
    std::string all;
    for (std::string_view p : patterns) {
      if (!all.empty()) all += ", ";
      all += p;
    }
    hint = fmt::format(" (known keys: {})", all.empty() ? "none" : all);
  }
  std::string more;
  if (unknown.size() > 1) {
    more = fmt::format("; {} more unknown key{}", unknown.size() - 1,
                       unknown.size() > 2 ? "s" : "");
  }
  return MakeError(Errc::kInvalidArgument, "unknown config key '{}'{}{}", key,
                   hint, more);
}

std::vector<std::string> Config::Keys() const {
  std::vector<std::pair<std::string, std::string>> flat;
  Flatten(tree_->root, "", &flat);
  std::vector<std::string> out;
  out.reserve(flat.size());
  for (auto& [k, v] : flat) out.push_back(std::move(k));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Config::Children(std::string_view key) const {
  std::vector<std::string> out;
  const json* node = FindIn(tree_->root, key);
  if (node == nullptr || !node->is_object()) return out;
  for (const auto& [name, v] : node->items()) out.push_back(name);
  return out;
}

std::string Config::DumpJson() const {
  try {
    // Values may hold bytes that are not UTF-8 (e.g. host paths); replace
    // them rather than throw.
    return tree_->root.dump(2, ' ', /*ensure_ascii=*/false,
                      json::error_handler_t::replace);
  } catch (const json::exception&) {
    return "{}";
  }
}

std::string Config::DumpFlat() const {
  std::vector<std::pair<std::string, std::string>> flat;
  Flatten(tree_->root, "", &flat);
  std::sort(flat.begin(), flat.end());
  std::string out;
  for (const auto& [k, v] : flat) {
    out += k;
    out += '=';
    out += v;
    out += '\n';
  }
  return out;
}

// Levenshtein distance (insert, delete, substitute: 1 each). Keys are at
// most kMaxKeyLength bytes, so this is cheap.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace strata
