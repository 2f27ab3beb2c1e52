#include "core/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace strata {

namespace {

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

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

Result<std::vector<uint8_t>> ReadHostFile(const std::string& path,
                                          std::string_view what,
                                          uint64_t max_size) {
  auto fail = [&](Errc code, std::string_view reason, int e = 0) {
    return Error(code,
                 fmt::format("could not load {} '{}': {}", what, path, reason),
                 e);
  };
  // O_NONBLOCK: open() of a FIFO with no writer would otherwise block
  // forever (fifo(7)); the fstat below rejects it anyway. It has no effect
  // on reads of a regular file.
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    const int e = errno;
    return fail(OpenErrc(e), std::strerror(e), e);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    const int e = errno;
    return fail(Errc::kIo, fmt::format("fstat: {}", std::strerror(e)), e);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument,
                fmt::format("it is {}, not a regular file",
                            FileTypeName(st.st_mode)));
  }
  auto too_big = [&](uint64_t size, std::string_view how) {
    return fail(Errc::kOutOfRange,
                fmt::format("it {} {} bytes, more than the limit of {} bytes",
                            how, size, max_size));
  };
  const uint64_t expected = static_cast<uint64_t>(st.st_size);
  if (expected > max_size) return too_big(expected, "has");

  // Reading stops one byte past the limit: that is enough to know it is over.
  const uint64_t cap = max_size < UINT64_MAX ? max_size + 1 : max_size;
  std::vector<uint8_t> buf;
  // One byte past the expected size so end of file is seen by the first
  // short read; more as needed if the file grows, up to the cap.
  size_t got = 0;
  for (;;) {
    if (got == buf.size()) {
      const uint64_t want =
          std::min<uint64_t>(std::max<uint64_t>(expected + 1, got + kReadChunk),
                             cap);
      if (want <= got) return too_big(got, "grew to more than");
      buf.resize(static_cast<size_t>(want));
    }
    const ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      return fail(Errc::kIo, fmt::format("read: {}", std::strerror(e)), e);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got > max_size) return too_big(got, "grew to more than");
  }
  buf.resize(got);
  return buf;
}

}  // namespace strata
