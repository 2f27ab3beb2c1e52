#include "core/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>

#include "core/unique_fd.h"

namespace strata {

namespace {

constexpr size_t kHeaderFixed = sizeof(kSnapshotMagic) + 4 + 4;
constexpr size_t kSectionHeader = 4 + 4 + 8;
constexpr size_t kSectionTrailer = 4;
constexpr uint32_t kMaxArchName = 64;

uint32_t Crc(uint32_t crc, std::span<const uint8_t> b) {
  // zlib's crc32 takes a uInt length: feed large spans in pieces.
  while (!b.empty()) {
    const size_t n = b.size() > (1u << 30) ? (1u << 30) : b.size();
    crc = static_cast<uint32_t>(
        crc32(crc, b.data(), static_cast<uInt>(n)));
    b = b.subspan(n);
  }
  return crc;
}

uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
         uint32_t{p[3]} << 24;
}

uint64_t Le64(const uint8_t* p) {
  return uint64_t{Le32(p)} | uint64_t{Le32(p + 4)} << 32;
}

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void PutLe64(uint8_t* p, uint64_t v) {
  PutLe32(p, static_cast<uint32_t>(v));
  PutLe32(p + 4, static_cast<uint32_t>(v >> 32));
}

}  // namespace

std::string SnapshotTagName(uint32_t tag) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(tag >> (8 * i));
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

// --------------------------------------------------------- StateWriter ----

void StateWriter::U32(uint32_t v) {
  uint8_t b[4];
  PutLe32(b, v);
  Bytes(b);
}

void StateWriter::U64(uint64_t v) {
  uint8_t b[8];
  PutLe64(b, v);
  Bytes(b);
}

void StateWriter::Str(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  Bytes(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

void StateWriter::Blob(std::span<const uint8_t> b) {
  U64(b.size());
  Bytes(b);
}

// --------------------------------------------------------- StateReader ----

void StateWriter::ByteQueue(const std::deque<uint8_t>& q) {
  U64(q.size());
  buf_.insert(buf_.end(), q.begin(), q.end());
}

Status StateReader::ByteQueue(std::deque<uint8_t>* q, uint64_t max) {
  const uint64_t n = STRATA_TRY(U64());
  if (n > max) {
    return Fail(fmt::format("{} queued input bytes (at most {})", n, max));
  }
  const std::span<const uint8_t> b = STRATA_TRY(Bytes(n));
  q->assign(b.begin(), b.end());
  return Ok();
}

Error StateReader::Fail(std::string_view message) const {
  return MakeError(Errc::kInvalidArgument, "snapshot: {}: {}", what_, message);
}

Result<std::span<const uint8_t>> StateReader::Bytes(uint64_t n) {
  if (n > remaining()) {
    return Fail(fmt::format("truncated: {} bytes wanted at offset {}, {} left",
                            n, pos_, remaining()));
  }
  std::span<const uint8_t> b = data_.subspan(pos_, n);
  pos_ += n;
  return b;
}

Result<uint8_t> StateReader::U8() { return STRATA_TRY(Bytes(1))[0]; }

Result<uint32_t> StateReader::U32() { return Le32(STRATA_TRY(Bytes(4)).data()); }

Result<uint64_t> StateReader::U64() { return Le64(STRATA_TRY(Bytes(8)).data()); }

Result<bool> StateReader::Bool() {
  const uint8_t v = STRATA_TRY(U8());
  if (v > 1) return Fail(fmt::format("a flag reads {}, not 0 or 1", v));
  return v == 1;
}

Result<std::string> StateReader::Str(uint64_t max_len) {
  const uint32_t n = STRATA_TRY(U32());
  if (n > max_len) {
    return Fail(fmt::format("a string of {} bytes (at most {} expected)", n,
                            max_len));
  }
  std::span<const uint8_t> b = STRATA_TRY(Bytes(n));
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Result<std::span<const uint8_t>> StateReader::Blob() {
  const uint64_t n = STRATA_TRY(U64());
  return Bytes(n);
}

Status StateReader::ExpectEnd() const {
  if (remaining() != 0) {
    return Fail(fmt::format("{} unexpected bytes at the end", remaining()));
  }
  return Ok();
}

// ------------------------------------------------------ SnapshotWriter ----

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(
    const std::string& path, std::string_view arch) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wbe");
  if (f == nullptr) return SysError("creating the snapshot file {}", tmp);
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(path, f));
  uint8_t head[kHeaderFixed];
  std::memcpy(head, kSnapshotMagic, sizeof(kSnapshotMagic));
  PutLe32(head + 8, kSnapshotFormatVersion);
  PutLe32(head + 12, static_cast<uint32_t>(arch.size()));
  STRATA_TRY(w->Put(head));
  STRATA_TRY(w->Put(std::span(reinterpret_cast<const uint8_t*>(arch.data()),
                              arch.size())));
  return w;
}

SnapshotWriter::~SnapshotWriter() {
  if (f_ != nullptr) std::fclose(f_);
  if (!finished_) ::unlink((path_ + ".tmp").c_str());
}

Status SnapshotWriter::Put(std::span<const uint8_t> bytes) {
  if (!bytes.empty() &&
      std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size()) {
    return SysError("writing the snapshot file {}.tmp", path_);
  }
  written_ += bytes.size();
  return Ok();
}

Status SnapshotWriter::BeginSection(uint32_t tag, uint64_t length) {
  if (in_section_ || finished_) {
    return MakeError(Errc::kInternal, "snapshot: section {} begun inside "
                     "another", SnapshotTagName(tag));
  }
  uint8_t h[kSectionHeader];
  PutLe32(h, tag);
  PutLe32(h + 4, 0);
  PutLe64(h + 8, length);
  STRATA_TRY(Put(h));
  in_section_ = true;
  left_ = length;
  crc_ = static_cast<uint32_t>(crc32(0, nullptr, 0));
  return Ok();
}

Status SnapshotWriter::Append(std::span<const uint8_t> bytes) {
  if (!in_section_ || bytes.size() > left_) {
    return MakeError(Errc::kInternal,
                     "snapshot: {} bytes appended beyond the section's length",
                     bytes.size());
  }
  crc_ = Crc(crc_, bytes);
  left_ -= bytes.size();
  return Put(bytes);
}

Status SnapshotWriter::EndSection() {
  if (!in_section_ || left_ != 0) {
    return MakeError(Errc::kInternal,
                     "snapshot: section ended {} bytes short", left_);
  }
  uint8_t t[kSectionTrailer];
  PutLe32(t, crc_);
  in_section_ = false;
  return Put(t);
}

Status SnapshotWriter::Section(uint32_t tag, std::span<const uint8_t> payload) {
  STRATA_TRY(BeginSection(tag, payload.size()));
  STRATA_TRY(Append(payload));
  return EndSection();
}

Status SnapshotWriter::Finish() {
  STRATA_TRY(Section(kSnapTagEnd, {}));
  if (std::fflush(f_) != 0 || fsync(fileno(f_)) != 0) {
    return SysError("writing the snapshot file {}.tmp", path_);
  }
  FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) return SysError("closing {}.tmp", path_);
  if (std::rename((path_ + ".tmp").c_str(), path_.c_str()) != 0) {
    return SysError("renaming {}.tmp to {}", path_, path_);
  }
  finished_ = true;
  return Ok();
}

// ------------------------------------------------------ SnapshotReader ----

SnapshotReader::~SnapshotReader() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::Open(
    const std::string& path, std::string_view arch) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    Error e = SysError("opening the snapshot {}", path);
    return errno == ENOENT ? Error(Errc::kNotFound, e.message(), ENOENT) : e;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return SysError("stat {}", path);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: not a regular file (a snapshot is one)", path);
  }
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->name_ = path;
  if (st.st_size > 0) {
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ,
                   MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return SysError("mapping the snapshot {}", path);
    r->map_ = p;
    r->map_size_ = static_cast<size_t>(st.st_size);
    r->data_ = std::span(static_cast<const uint8_t*>(p), r->map_size_);
  }
  STRATA_TRY(r->Parse(arch));
  return r;
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::FromBytes(
    std::vector<uint8_t> bytes, std::string_view arch, std::string name) {
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->name_ = std::move(name);
  r->owned_ = std::move(bytes);
  r->data_ = r->owned_;
  STRATA_TRY(r->Parse(arch));
  return r;
}

Status SnapshotReader::Parse(std::string_view arch) {
  auto bad = [this](std::string msg) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("{}: {}", name_, std::move(msg)));
  };
  const uint64_t size = data_.size();
  if (size < sizeof(kSnapshotMagic) ||
      std::memcmp(data_.data(), kSnapshotMagic, sizeof(kSnapshotMagic)) != 0) {
    return bad("not a strata snapshot (no STRATASN magic at its start)");
  }
  if (size < kHeaderFixed) {
    return bad(fmt::format("truncated: {} bytes, shorter than the header",
                           size));
  }
  version_ = Le32(data_.data() + 8);
  if (version_ != kSnapshotFormatVersion) {
    return bad(fmt::format("snapshot format version {}; this strata reads "
                           "version {}", version_, kSnapshotFormatVersion));
  }
  const uint32_t arch_len = Le32(data_.data() + 12);
  if (arch_len > kMaxArchName || kHeaderFixed + arch_len > size) {
    return bad(fmt::format("truncated or corrupt header (architecture name "
                           "of {} bytes)", arch_len));
  }
  const std::string_view file_arch(
      reinterpret_cast<const char*>(data_.data() + kHeaderFixed), arch_len);
  if (file_arch != arch) {
    return bad(fmt::format("a snapshot of an {} machine; this strata runs {} "
                           "machines", file_arch, arch));
  }
  uint64_t pos = kHeaderFixed + arch_len;
  bool ended = false;
  while (pos < size) {
    if (size - pos < kSectionHeader) {
      return bad(fmt::format("truncated: a section header at offset {} has "
                             "only {} bytes", pos, size - pos));
    }
    Section s;
    s.offset = pos;
    s.tag = Le32(data_.data() + pos);
    const uint32_t reserved = Le32(data_.data() + pos + 4);
    const uint64_t len = Le64(data_.data() + pos + 8);
    const std::string tag = SnapshotTagName(s.tag);
    if (reserved != 0) {
      return bad(fmt::format("corrupt: section '{}' at offset {} has a "
                             "non-zero reserved field", tag, pos));
    }
    const uint64_t body = pos + kSectionHeader;
    if (len > size - body || size - body - len < kSectionTrailer) {
      return bad(fmt::format("truncated: section '{}' at offset {} claims {} "
                             "bytes, the file has {} after its header",
                             tag, pos, len, size - body));
    }
    s.payload = data_.subspan(body, len);
    const uint32_t want = Le32(data_.data() + body + len);
    const uint32_t have =
        Crc(static_cast<uint32_t>(crc32(0, nullptr, 0)), s.payload);
    if (want != have) {
      return bad(fmt::format("corrupt: section '{}' at offset {} fails its "
                             "checksum", tag, pos));
    }
    pos = body + len + kSectionTrailer;
    if (s.tag == kSnapTagEnd) {
      ended = true;
      break;
    }
    if (s.tag != kSnapTagConfig && s.tag != kSnapTagVcpu &&
        s.tag != kSnapTagVm && s.tag != kSnapTagDevice &&
        s.tag != kSnapTagMemory) {
      return bad(fmt::format("unknown section '{}' at offset {}", tag,
                             s.offset));
    }
    sections_.push_back(s);
  }
  if (!ended) return bad("truncated: no end marker");
  if (pos != size) {
    return bad(fmt::format("{} bytes after the end marker", size - pos));
  }
  return Ok();
}

std::vector<const SnapshotReader::Section*> SnapshotReader::Find(
    uint32_t tag) const {
  std::vector<const Section*> out;
  for (const Section& s : sections_) {
    if (s.tag == tag) out.push_back(&s);
  }
  return out;
}

Result<const SnapshotReader::Section*> SnapshotReader::FindOne(
    uint32_t tag) const {
  std::vector<const Section*> all = Find(tag);
  if (all.size() != 1) {
    return MakeError(Errc::kInvalidArgument,
                     "{}: {} '{}' sections, expected one", name_, all.size(),
                     SnapshotTagName(tag));
  }
  return all[0];
}

}  // namespace strata
