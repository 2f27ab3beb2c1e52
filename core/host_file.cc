#include "core/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace strata {

namespace {

Errc OpenErrc(int e) {
  switch (e) {
    case ENOENT:
    case ENOTDIR:
      return Errc::kNotFound;
    case EACCES:
    case EPERM:
    case ELOOP:
    case ENAMETOOLONG:
    case EISDIR:
    case ENXIO:  // a socket, or a device with no driver
    case ENODEV:
      return Errc::kInvalidArgument;
    default:
      return Errc::kIo;
  }
}

// Reads are done in pieces of at most this much beyond the expected size, so
// a file that grows while it is read is caught near the limit.
constexpr size_t kReadChunk = 1 << 20;

}  // namespace

std::string_view FileTypeName(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO (named pipe)";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "an unknown kind of file";
  }
}

Error HostFile::Fail(Errc code, std::string_view reason, int e) const {
  return Error(code,
               fmt::format("could not load {} '{}': {}", what_, path_, reason),
               e);
}

Result<HostFile> HostFile::Open(const std::string& path, std::string_view what,
                                uint64_t max_size) {
  HostFile f;
  f.path_ = path;
  f.what_ = std::string(what);
  f.max_size_ = max_size;
  // O_NONBLOCK: open() of a FIFO with no writer would otherwise block
  // forever (fifo(7)); the fstat below rejects it anyway. It has no effect
  // on reads of a regular file.
  f.fd_.reset(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!f.fd_) {
    const int e = errno;
    return f.Fail(OpenErrc(e), std::strerror(e), e);
  }
  struct stat st;
  if (fstat(f.fd_.get(), &st) != 0) {
    const int e = errno;
    return f.Fail(Errc::kIo, fmt::format("fstat: {}", std::strerror(e)), e);
  }
  if (!S_ISREG(st.st_mode)) {
    return f.Fail(Errc::kInvalidArgument,
                  fmt::format("it is {}, not a regular file",
                              FileTypeName(st.st_mode)));
  }
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > max_size) return f.TooBig(f.size_, "has");
  return f;
}

Error HostFile::TooBig(uint64_t size, std::string_view how) const {
  return Fail(Errc::kOutOfRange,
              fmt::format("it {} {} bytes, more than the limit of {} bytes",
                          how, size, max_size_));
}

Status HostFile::ReadAt(uint64_t offset, std::span<uint8_t> dst) const {
  size_t got = 0;
  while (got < dst.size()) {
    const ssize_t n = pread(fd_.get(), dst.data() + got, dst.size() - got,
                            static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      return Fail(Errc::kIo, fmt::format("read: {}", std::strerror(e)), e);
    }
    if (n == 0) {
      return Fail(Errc::kIo,
                  fmt::format("it ends at byte {}, short of the {} bytes it "
                              "had when opened: it changed while loading",
                              offset + got, size_));
    }
    got += static_cast<size_t>(n);
  }
  return Ok();
}

Result<std::vector<uint8_t>> HostFile::ReadAll() const {
  // Reading stops one byte past the limit: that is enough to know it is over.
  const uint64_t cap = max_size_ < UINT64_MAX ? max_size_ + 1 : max_size_;
  std::vector<uint8_t> buf;
  // One byte past the expected size so end of file is seen by the first
  // short read; more as needed if the file grows, up to the cap.
  size_t got = 0;
  for (;;) {
    if (got == buf.size()) {
      const uint64_t want = std::min<uint64_t>(
          std::max<uint64_t>(size_ + 1, got + kReadChunk), cap);
      if (want <= got) return TooBig(got, "grew to more than");
      buf.resize(static_cast<size_t>(want));
    }
    const ssize_t n = pread(fd_.get(), buf.data() + got, buf.size() - got,
                            static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      return Fail(Errc::kIo, fmt::format("read: {}", std::strerror(e)), e);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got > max_size_) return TooBig(got, "grew to more than");
  }
  buf.resize(got);
  return buf;
}

Result<std::vector<uint8_t>> ReadHostFile(const std::string& path,
                                          std::string_view what,
                                          uint64_t max_size) {
  const HostFile f = STRATA_TRY(HostFile::Open(path, what, max_size));
  return f.ReadAll();
}

uint64_t ByteSource::size() const {
  if (const auto* b = std::get_if<std::vector<uint8_t>>(&src_)) {
    return b->size();
  }
  return std::get<HostFile>(src_).size();
}

Status ByteSource::ReadAt(uint64_t offset, std::span<uint8_t> dst) const {
  if (const auto* b = std::get_if<std::vector<uint8_t>>(&src_)) {
    if (offset > b->size() || dst.size() > b->size() - offset) {
      return MakeError(Errc::kOutOfRange,
                       "reading [{:#x}, +{:#x}) of {} bytes", offset,
                       dst.size(), b->size());
    }
    std::memcpy(dst.data(), b->data() + offset, dst.size());
    return Ok();
  }
  return std::get<HostFile>(src_).ReadAt(offset, dst);
}

Result<std::vector<uint8_t>> ByteSource::TakeAll() && {
  if (auto* b = std::get_if<std::vector<uint8_t>>(&src_)) return std::move(*b);
  return std::get<HostFile>(src_).ReadAll();
}

}  // namespace strata
