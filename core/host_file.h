// strata — reading a host file the user named (kernel, initrd, config).
//
// A path on the command line is input like any other: it may name a FIFO
// (whose open() blocks until a writer appears — forever, in a VMM), a
// directory, a device that never ends (/dev/zero) or a file far larger than
// anything the VMM could use. ReadHostFile opens without blocking, checks
// that the path is a regular file of bounded size, and only then reads it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"

namespace strata {

// Reads all of the regular file at `path`. `what` names it in errors
// ("kernel", "config file"): every message reads "could not load <what>
// '<path>': <reason>".
//
// Opens with O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, so opening a FIFO
// (or a device) returns at once instead of waiting for a writer; fstat()s the
// descriptor and rejects anything that is not a regular file, naming its type
// ("is a FIFO (named pipe)", "is a directory", "is a character device");
// rejects a file larger than `max_size` bytes, before reading and again if it
// grows while being read; then reads to end of file, retrying on EINTR.
//
// Errors: kNotFound (no such file, or a path component is missing);
// kInvalidArgument (not a regular file, permission denied, a symlink loop,
// a name too long); kOutOfRange (larger than max_size); kIo (the read
// failed). sys_errno is set where a system call failed.
Result<std::vector<uint8_t>> ReadHostFile(const std::string& path,
                                          std::string_view what,
                                          uint64_t max_size);

// A host file opened and checked as ReadHostFile does (a regular file of
// at most max_size bytes; the same errors, the same "could not load <what>
// '<path>'" messages) but not read yet: a loader reads the header it
// parses and has the rest read straight into guest memory, so a 14-MiB
// kernel is copied once (page cache to guest RAM) instead of into a buffer
// first and then again.
class HostFile {
 public:
  static Result<HostFile> Open(const std::string& path, std::string_view what,
                               uint64_t max_size);
  HostFile(HostFile&&) = default;
  HostFile& operator=(HostFile&&) = default;

  uint64_t size() const { return size_; }  // when it was opened

  // Reads exactly dst.size() bytes at `offset`. kIo if the read fails or
  // the file ends before (it shrank since Open: "it changed while
  // loading").
  Status ReadAt(uint64_t offset, std::span<uint8_t> dst) const;
  // The whole file, read to its end (kOutOfRange if it grew past max_size).
  Result<std::vector<uint8_t>> ReadAll() const;

 private:
  HostFile() = default;
  Error Fail(Errc code, std::string_view reason, int e = 0) const;
  Error TooBig(uint64_t size, std::string_view how) const;

  UniqueFd fd_;
  std::string path_, what_;
  uint64_t size_ = 0, max_size_ = 0;
};

// Bytes a loader copies into guest memory: held in memory (a test's
// image) or a HostFile, read in place.
class ByteSource {
 public:
  ByteSource(std::vector<uint8_t> bytes) : src_(std::move(bytes)) {}
  ByteSource(HostFile file) : src_(std::move(file)) {}

  uint64_t size() const;
  // Exactly dst.size() bytes at `offset` (kOutOfRange past the end of
  // bytes in memory; a file's errors as HostFile::ReadAt).
  Status ReadAt(uint64_t offset, std::span<uint8_t> dst) const;
  // All of it, as a buffer (the bytes moved out, or the file read).
  Result<std::vector<uint8_t>> TakeAll() &&;

 private:
  std::variant<std::vector<uint8_t>, HostFile> src_;
};

// What a stat mode is, for messages: "a regular file", "a directory",
// "a FIFO (named pipe)", "a character device", "a block device", "a socket",
// "a symbolic link", "an unknown kind of file".
std::string_view FileTypeName(unsigned mode);

}  // namespace strata
