#include "arch/amd64/firmware/aml.h"

#include <cassert>

namespace strata::amd64::aml {

namespace {

// Opcodes (ACPI 6.5 §20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';
constexpr uint8_t kReturnOp = 0xa4;
constexpr uint8_t kOnesOp = 0xff;

// Resource descriptor tags (§6.4.2, §6.4.3).
constexpr uint8_t kIrqTagNoFlags = 0x22;  // small, IRQ, length 2
constexpr uint8_t kIoTag = 0x47;          // small, I/O port, length 7
constexpr uint8_t kEndTag = 0x79;         // small, end tag, length 1
constexpr uint8_t kDWordAddressTag = 0x87;
constexpr uint8_t kWordAddressTag = 0x88;
constexpr uint8_t kExtendedIrqTag = 0x89;
constexpr uint8_t kQWordAddressTag = 0x8a;

// Address space descriptor fields (§6.4.3.5.1, Table 6.44 and on).
constexpr uint8_t kResourceTypeMemory = 0;
constexpr uint8_t kResourceTypeIo = 1;
constexpr uint8_t kResourceTypeBus = 2;
constexpr uint8_t kGeneralConsumer = 1u << 0;
constexpr uint8_t kGeneralMinFixed = 1u << 2;
constexpr uint8_t kGeneralMaxFixed = 1u << 3;
constexpr uint8_t kIoEntireRange = 0x3;  // ISA and non-ISA ranges
constexpr uint8_t kMemReadWrite = 1u << 0;
constexpr uint8_t kMemNonCacheable = 0u << 1;

constexpr uint8_t kIoDecode16 = 1;

// Extended interrupt flags (§6.4.3.6, Table 6.57).
constexpr uint8_t kIntConsumer = 1u << 0;
constexpr uint8_t kIntEdge = 1u << 1;
constexpr uint8_t kIntActiveLow = 1u << 2;

constexpr size_t kMaxPkgLength = (1u << 28) - 1;

template <typename T>
void Put(Bytes& b, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
}

[[maybe_unused]] bool IsNameChar(char c) {  // for assert()
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// opcode(s), PkgLength, body.
Bytes Wrap(std::initializer_list<uint8_t> ops, const Bytes& body) {
  Bytes out(ops);
  Append(out, PkgLength(body.size()));
  Append(out, body);
  return out;
}

// The address space descriptor common part: tag, length, type, flags.
Bytes AddressHeader(uint8_t tag, uint16_t length, uint8_t type, uint8_t general,
                    uint8_t specific) {
  Bytes b = {tag};
  Put<uint16_t>(b, length);
  b.push_back(type);
  b.push_back(general);
  b.push_back(specific);
  return b;
}

}  // namespace

void Append(Bytes& a, const Bytes& b) { a.insert(a.end(), b.begin(), b.end()); }

Bytes Concat(std::initializer_list<Bytes> terms) {
  Bytes out;
  for (const Bytes& t : terms) Append(out, t);
  return out;
}

Bytes PkgLength(size_t body) {
  // One byte holds totals up to 63; otherwise the lead byte's bits 7-6 say
  // how many bytes follow, its bits 3-0 are the low nibble and each
  // following byte 8 more bits (§20.2.4).
  if (body + 1 <= 0x3f) return {static_cast<uint8_t>(body + 1)};
  for (size_t n = 2; n <= 4; ++n) {
    const size_t total = body + n;
    if (total < (size_t{1} << (4 + 8 * (n - 1)))) {
      Bytes b = {static_cast<uint8_t>(((n - 1) << 6) | (total & 0xf))};
      for (size_t i = 1; i < n; ++i) {
        b.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
      }
      return b;
    }
  }
  assert(false && "AML package longer than 2^28 bytes");
  return {};
}

Bytes NameString(std::string_view path) {
  Bytes out;
  while (!path.empty() &&
         (path.front() == kRootChar || path.front() == kParentPrefixChar)) {
    out.push_back(static_cast<uint8_t>(path.front()));
    path.remove_prefix(1);
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view{}
                                         : path.substr(dot + 1);
  }
  if (segs.empty()) {
    out.push_back(0);  // NullName
    return out;
  }
  if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    assert(segs.size() <= 255);
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (std::string_view s : segs) {
    assert(!s.empty() && s.size() <= 4);
    for (size_t i = 0; i < 4; ++i) {
      const char c = i < s.size() ? s[i] : '_';
      assert(IsNameChar(c));
      out.push_back(static_cast<uint8_t>(c));
    }
  }
  return out;
}

Bytes Integer(uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  if (v == ~uint64_t{0}) return {kOnesOp};
  Bytes b;
  if (v <= 0xff) {
    b.push_back(kBytePrefix);
    Put<uint8_t>(b, static_cast<uint8_t>(v));
  } else if (v <= 0xffff) {
    b.push_back(kWordPrefix);
    Put<uint16_t>(b, static_cast<uint16_t>(v));
  } else if (v <= 0xffffffff) {
    b.push_back(kDWordPrefix);
    Put<uint32_t>(b, static_cast<uint32_t>(v));
  } else {
    b.push_back(kQWordPrefix);
    Put<uint64_t>(b, v);
  }
  return b;
}

Bytes String(std::string_view s) {
  Bytes b = {kStringPrefix};
  for (char c : s) {
    assert(c != 0);
    b.push_back(static_cast<uint8_t>(c));
  }
  b.push_back(0);
  return b;
}

Bytes EisaId(std::string_view id) {
  // Three letters of 5 bits ('A' = 1) and four hex digits, stored
  // big-endian in a DWord (§19.6.35).
  assert(id.size() == 7);
  auto hex = [](char c) -> uint32_t {
    return c <= '9' ? static_cast<uint32_t>(c - '0')
                    : static_cast<uint32_t>(c - 'A' + 10);
  };
  const uint32_t v = ((static_cast<uint32_t>(id[0] - 0x40) & 0x1f) << 26) |
                     ((static_cast<uint32_t>(id[1] - 0x40) & 0x1f) << 21) |
                     ((static_cast<uint32_t>(id[2] - 0x40) & 0x1f) << 16) |
                     (hex(id[3]) << 12) | (hex(id[4]) << 8) |
                     (hex(id[5]) << 4) | hex(id[6]);
  return Bytes{kDWordPrefix, static_cast<uint8_t>(v >> 24),
               static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
               static_cast<uint8_t>(v)};
}

Bytes Name(std::string_view path, const Bytes& value) {
  return Concat({{kNameOp}, NameString(path), value});
}

Bytes Package(const std::vector<Bytes>& elements) {
  assert(elements.size() <= 255);
  Bytes body = {static_cast<uint8_t>(elements.size())};
  for (const Bytes& e : elements) Append(body, e);
  return Wrap({kPackageOp}, body);
}

Bytes Scope(std::string_view path, const Bytes& body) {
  return Wrap({kScopeOp}, Concat({NameString(path), body}));
}

Bytes Device(std::string_view name, const Bytes& body) {
  return Wrap({kExtOpPrefix, kDeviceOp}, Concat({NameString(name), body}));
}

Bytes MethodReturn(std::string_view name, const Bytes& value) {
  constexpr uint8_t kFlagsNoArgsNotSerialized = 0;
  return Wrap({kMethodOp}, Concat({NameString(name),
                                   {kFlagsNoArgsNotSerialized, kReturnOp},
                                   value}));
}

Bytes Buffer(const Bytes& data) {
  return Wrap({kBufferOp}, Concat({Integer(data.size()), data}));
}

Bytes Io(uint16_t min, uint16_t max, uint8_t align, uint8_t length) {
  Bytes b = {kIoTag, kIoDecode16};
  Put<uint16_t>(b, min);
  Put<uint16_t>(b, max);
  b.push_back(align);
  b.push_back(length);
  return b;
}

Bytes IrqNoFlags(uint8_t irq) {
  assert(irq < 16);
  Bytes b = {kIrqTagNoFlags};
  Put<uint16_t>(b, static_cast<uint16_t>(1u << irq));
  return b;
}

Bytes Interrupt(uint32_t gsi, bool level, bool active_low) {
  constexpr uint16_t kLength = 6;  // flags, count, one DWord
  Bytes b = {kExtendedIrqTag};
  Put<uint16_t>(b, kLength);
  b.push_back(static_cast<uint8_t>(kIntConsumer | (level ? 0 : kIntEdge) |
                                   (active_low ? kIntActiveLow : 0)));
  b.push_back(1);
  Put<uint32_t>(b, gsi);
  return b;
}

namespace {
constexpr uint8_t kProducerFixed = kGeneralMinFixed | kGeneralMaxFixed;
}  // namespace

Bytes WordBusNumber(uint16_t min, uint16_t max) {
  Bytes b =
      AddressHeader(kWordAddressTag, 13, kResourceTypeBus, kProducerFixed, 0);
  for (uint16_t v : {uint16_t{0}, min, max, uint16_t{0},
                     static_cast<uint16_t>(max - min + 1)}) {
    Put<uint16_t>(b, v);
  }
  return b;
}

Bytes WordIo(uint16_t min, uint16_t max) {
  Bytes b = AddressHeader(kWordAddressTag, 13, kResourceTypeIo, kProducerFixed,
                          kIoEntireRange);
  for (uint16_t v : {uint16_t{0}, min, max, uint16_t{0},
                     static_cast<uint16_t>(max - min + 1)}) {
    Put<uint16_t>(b, v);
  }
  return b;
}

Bytes DWordMemory(uint32_t min, uint32_t max, bool consumer) {
  Bytes b = AddressHeader(
      kDWordAddressTag, 23, kResourceTypeMemory,
      static_cast<uint8_t>(kProducerFixed | (consumer ? kGeneralConsumer : 0)),
      kMemReadWrite | kMemNonCacheable);
  for (uint32_t v : {uint32_t{0}, min, max, uint32_t{0}, max - min + 1}) {
    Put<uint32_t>(b, v);
  }
  return b;
}

Bytes QWordMemory(uint64_t min, uint64_t max) {
  Bytes b = AddressHeader(kQWordAddressTag, 43, kResourceTypeMemory,
                          kProducerFixed, kMemReadWrite | kMemNonCacheable);
  for (uint64_t v : {uint64_t{0}, min, max, uint64_t{0}, max - min + 1}) {
    Put<uint64_t>(b, v);
  }
  return b;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const Bytes& d : descriptors) Append(data, d);
  data.push_back(kEndTag);
  data.push_back(0);  // checksum 0: "treat as correct" (§6.4.2.9)
  return Buffer(data);
}

}  // namespace strata::amd64::aml
