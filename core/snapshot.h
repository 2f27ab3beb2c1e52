// strata — VM snapshots: the file format, a bounds-checked reader, and the
// interface through which devices and backends save and load their state
// (bhyve's checkpoint/restore, bhyvectl --checkpoint and bhyve -r, is the
// model).
//
// Theory. A snapshot is everything a new VMM process needs to continue a
// paused VM: the machine's config tree (so a restore needs only the file),
// guest RAM, each vCPU's registers and run state, the hypervisor's VM-wide
// state (arm64: the in-kernel vGIC and ITS), and the state of every device.
// Machine::Save (core/machine.h) takes it with every vCPU frozen at its
// loop top (VcpuLock: out of KVM_RUN, its last exit completed) and
// Machine::Restore builds the machine from the saved config and loads it
// back before any vCPU runs. Nothing is saved partially: a device or a
// backend that cannot save its state makes Save fail with an error naming
// it, and the file is written under a temporary name and renamed only when
// complete.
//
// File format (all integers little-endian):
//   header   "STRATASN" (8 bytes), u32 format version (kSnapshotFormatVersion),
//            u32 length + that many bytes: the architecture (md::kArchName)
//   sections u32 tag (four ASCII characters), u32 0 (reserved), u64 length,
//            `length` bytes of payload, u32 CRC-32 (zlib's) of the payload
//   end      a section with tag "END " and no payload, last in the file
// Sections, in the order written:
//   CONF  the config tree as JSON (Config::DumpJson)
//   VCPU  u32 vCPU index, then the backend's vCPU state (opaque here)
//   VMST  the backend's VM-wide state (opaque here)
//   DEV   str name, then that device's state (its own encoding)
//   RAM   str segment name, u64 gpa, u64 size, u64 extent count, then per
//         extent u64 offset, u64 length and the bytes; pages that are all
//         zero are left out (a restored segment starts zeroed)
// The reader checks everything before anything is used: magic, version,
// architecture, that every section fits in the file, its checksum, and the
// end marker; a truncated, corrupt, wrong-version or wrong-architecture
// file is a clear error (kInvalidArgument), never a crash. Payloads are
// then parsed with StateReader, which checks every length against what is
// left. A new format version is for a change old readers would misread;
// sections a reader does not know are an error too (there are none yet).
#pragma once

#include <cstdint>
#include <deque>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace strata {

inline constexpr char kSnapshotMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'S', 'N'};
inline constexpr uint32_t kSnapshotFormatVersion = 1;

constexpr uint32_t SnapshotTag(const char (&s)[5]) {
  return uint32_t{static_cast<uint8_t>(s[0])} |
         uint32_t{static_cast<uint8_t>(s[1])} << 8 |
         uint32_t{static_cast<uint8_t>(s[2])} << 16 |
         uint32_t{static_cast<uint8_t>(s[3])} << 24;
}
inline constexpr uint32_t kSnapTagConfig = SnapshotTag("CONF");
inline constexpr uint32_t kSnapTagVcpu = SnapshotTag("VCPU");
inline constexpr uint32_t kSnapTagVm = SnapshotTag("VMST");
inline constexpr uint32_t kSnapTagDevice = SnapshotTag("DEV ");
inline constexpr uint32_t kSnapTagMemory = SnapshotTag("RAM ");
inline constexpr uint32_t kSnapTagEnd = SnapshotTag("END ");
// "RAM " and the like, for messages.
std::string SnapshotTagName(uint32_t tag);

// Appends a state's fields to a buffer.
class StateWriter {
 public:
  void U8(uint8_t v) { buf_.push_back(v); }
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Bool(bool v) { U8(v ? 1 : 0); }
  void Bytes(std::span<const uint8_t> b) {
    buf_.insert(buf_.end(), b.begin(), b.end());
  }
  // u32 length, then the bytes.
  void Str(std::string_view s);
  // u64 length, then the bytes.
  void Blob(std::span<const uint8_t> b);
  // A byte queue (a UART's received bytes): u64 count, then the bytes.
  void ByteQueue(const std::deque<uint8_t>& q);
  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t>& data() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

// Reads a state's fields back; every read checks what is left and fails
// with kInvalidArgument naming `what` ("vCPU 1", "device uart0").
class StateReader {
 public:
  StateReader(std::span<const uint8_t> data, std::string what)
      : data_(data), what_(std::move(what)) {}
  Result<uint8_t> U8();
  Result<uint32_t> U32();
  Result<uint64_t> U64();
  Result<bool> Bool();
  Result<std::span<const uint8_t>> Bytes(uint64_t n);
  // A Str() of at most max_len bytes.
  Result<std::string> Str(uint64_t max_len = 4096);
  Result<std::span<const uint8_t>> Blob();
  // A ByteQueue() of at most `max` bytes, into *q (replaced).
  Status ByteQueue(std::deque<uint8_t>* q, uint64_t max);
  // kInvalidArgument if bytes are left over (the state is not what the
  // reader expects).
  Status ExpectEnd() const;
  uint64_t remaining() const { return data_.size() - pos_; }
  const std::string& what() const { return what_; }
  // A kInvalidArgument error "snapshot: <what>: <message>".
  Error Fail(std::string_view message) const;

 private:
  std::span<const uint8_t> data_;
  uint64_t pos_ = 0;
  std::string what_;
};

// What a device (or any other part of a machine with state of its own)
// implements to be saved. SaveState runs with every vCPU frozen; LoadState
// runs before any vCPU of the restored machine has run. Either may fail:
// SaveState with kUnsupported if its current state cannot be saved (the
// whole snapshot is then refused), LoadState if the data is not what it
// saved (a StateReader error).
class Snapshottable {
 public:
  virtual ~Snapshottable() = default;
  virtual Status SaveState(StateWriter& out) = 0;
  virtual Status LoadState(StateReader& in) = 0;
};

// Writes a snapshot file: the header at Create, sections in order, the end
// marker and the rename at Finish. Destroying an unfinished writer removes
// the temporary file, so a failed save leaves nothing behind.
class SnapshotWriter {
 public:
  // Opens "<path>.tmp" for writing. kIo if it cannot.
  static Result<std::unique_ptr<SnapshotWriter>> Create(
      const std::string& path, std::string_view arch);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  Status Section(uint32_t tag, std::span<const uint8_t> payload);
  // A section written in pieces: exactly `length` bytes must follow in
  // Append calls before EndSection.
  Status BeginSection(uint32_t tag, uint64_t length);
  Status Append(std::span<const uint8_t> bytes);
  Status EndSection();
  // The end marker, flush, close, rename to `path`.
  Status Finish();
  uint64_t bytes_written() const { return written_; }

 private:
  SnapshotWriter(std::string path, FILE* f) : path_(std::move(path)), f_(f) {}
  Status Put(std::span<const uint8_t> bytes);
  std::string path_;
  FILE* f_;
  bool finished_ = false;
  bool in_section_ = false;
  uint64_t left_ = 0;     // bytes the open section still expects
  uint32_t crc_ = 0;      // of the open section's payload so far
  uint64_t written_ = 0;
};

// A snapshot file, checked whole at Open (see the theory above); its
// sections' payloads stay valid as long as the reader.
class SnapshotReader {
 public:
  struct Section {
    uint32_t tag = 0;
    uint64_t offset = 0;  // of the section header in the file
    std::span<const uint8_t> payload;
  };

  // Maps and checks the file. kNotFound if it does not exist, kIo if it
  // cannot be read, kInvalidArgument for anything wrong with its contents;
  // messages start with the path.
  static Result<std::unique_ptr<SnapshotReader>> Open(const std::string& path,
                                                      std::string_view arch);
  // The same checks on bytes in memory (tests); `name` stands for the path.
  static Result<std::unique_ptr<SnapshotReader>> FromBytes(
      std::vector<uint8_t> bytes, std::string_view arch,
      std::string name = "snapshot");
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  const std::vector<Section>& sections() const { return sections_; }
  // The sections with this tag, in file order.
  std::vector<const Section*> Find(uint32_t tag) const;
  // The one section with this tag; kInvalidArgument if there is none or
  // more than one.
  Result<const Section*> FindOne(uint32_t tag) const;

 private:
  SnapshotReader() = default;
  Status Parse(std::string_view arch);
  std::string name_;
  std::vector<uint8_t> owned_;      // FromBytes
  void* map_ = nullptr;             // Open: the mapping
  size_t map_size_ = 0;
  std::span<const uint8_t> data_;
  uint32_t version_ = 0;
  std::vector<Section> sections_;
};

}  // namespace strata
