#include "devices/char_backend.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace strata {

namespace {

// One write of at most PIPE_BUF bytes after POLLOUT never blocks on a
// pipe (pipe(7)), even if the fd is a blocking one.
constexpr size_t kChunk = PIPE_BUF;
// While the consumer is stalled the writer wakes this often to report
// drops.
constexpr int kStallReportMs = 1000;
// While the device has no room for input, the input thread looks again
// this often.
constexpr int kInputRetryMs = 20;

// Starts fn on a thread that blocks every signal (see Start()): the mask
// is inherited at creation, so no signal can reach the thread before it
// could have blocked it itself.
template <typename F>
std::thread SpawnWithSignalsBlocked(F&& fn) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t(std::forward<F>(fn));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

void Wake(int efd) {
  if (efd < 0) return;
  const uint64_t one = 1;
  ssize_t n = ::write(efd, &one, sizeof one);
  (void)n;  // EAGAIN: already signalled
}

void Drain(int efd) {
  uint64_t v;
  ssize_t n = ::read(efd, &v, sizeof v);
  (void)n;
}

}  // namespace

StdioBackend::StdioBackend(Options options)
    : opt_(std::move(options)),
      drop_limit_(opt_.name + " output drop", opt_.logger, 1,
                  std::chrono::seconds(10)),
      buf_(std::max<size_t>(opt_.buffer_size, 1)) {}

StdioBackend::~StdioBackend() { Stop(); }

spdlog::logger& StdioBackend::log() const {
  return opt_.logger ? *opt_.logger : Log();
}

void StdioBackend::Write(std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (failed_ || stopped_) {
      stats_.dropped += data.size();
      return;
    }
    const size_t room = buf_.size() - size_;
    const size_t n = std::min(room, data.size());
    size_t tail = (head_ + size_) % buf_.size();
    for (size_t done = 0; done < n;) {
      const size_t run = std::min(n - done, buf_.size() - tail);
      std::memcpy(buf_.data() + tail, data.data() + done, run);
      done += run;
      tail = (tail + run) % buf_.size();
    }
    wake = size_ == 0 && n > 0;
    size_ += n;
    stats_.accepted += n;
    stats_.dropped += data.size() - n;
  }
  // No logging here: this is the vCPU's thread, maybe under a device lock.
  if (wake) cv_.notify_one();
}

StdioBackend::Stats StdioBackend::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void StdioBackend::SetUpOutput() {
  out_fd_ = opt_.out_fd;
  struct stat st;
  if (out_fd_ < 0 || fstat(out_fd_, &st) != 0) {
    mode_ = OutMode::kPlain;  // the first write fails and says why
    return;
  }
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    mode_ = OutMode::kPlain;  // never waits for a consumer
    return;
  }
  if (S_ISSOCK(st.st_mode)) {
    mode_ = OutMode::kSocket;  // send(MSG_DONTWAIT) never blocks
    return;
  }
  mode_ = OutMode::kPollThenWrite;
  const int flags = fcntl(out_fd_, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) return;
  // A pipe or a terminal in blocking mode. Setting O_NONBLOCK on it would
  // change the file description we share with the shell (and with stdin,
  // for a terminal); a fresh description of the same pipe or terminal has
  // flags of its own.
  const std::string path = "/proc/self/fd/" + std::to_string(out_fd_);
  own_out_fd_.reset(
      ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (own_out_fd_) out_fd_ = own_out_fd_.get();
  // Otherwise: POLLOUT then at most PIPE_BUF bytes, which does not block on
  // a pipe and rarely on a terminal.
}

Status StdioBackend::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_) {
      return MakeError(Errc::kBusy, "{}: console already started", opt_.name);
    }
    if (stopped_) {
      return MakeError(Errc::kBusy, "{}: console already stopped", opt_.name);
    }
    started_ = true;
  }
  out_wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  in_wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!out_wake_ || !in_wake_) {
    return SysError("{}: eventfd", opt_.name);
  }
  SetUpOutput();

  bool input = input_ != nullptr && opt_.in_fd >= 0;
  if (input && isatty(opt_.in_fd)) {
    const pid_t fg = tcgetpgrp(opt_.in_fd);
    if (fg >= 0 && fg != getpgrp()) {
      log().info("{}: standard input is a terminal this process is a "
                 "background job of; console input is off",
                 opt_.name);
      input = false;
    } else if (opt_.raw_tty && tcgetattr(opt_.in_fd, &saved_tty_) == 0) {
      struct termios raw = saved_tty_;
      raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
                       ICRNL | IXON | IXOFF);
      raw.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
      raw.c_cflag = (raw.c_cflag & ~(CSIZE | PARENB)) | CS8;
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      raw.c_cc[VQUIT] = _POSIX_VDISABLE;
      raw.c_cc[VSUSP] = _POSIX_VDISABLE;
      if (tcsetattr(opt_.in_fd, TCSANOW, &raw) == 0) {
        tty_raw_.store(true, std::memory_order_release);
      } else {
        log().warn("{}: cannot put the terminal in raw mode: {}", opt_.name,
                   std::strerror(errno));
      }
    }
  }
  writer_ = SpawnWithSignalsBlocked([this] { WriterLoop(); });
  if (input) reader_ = SpawnWithSignalsBlocked([this] { InputLoop(); });
  return Ok();
}

void StdioBackend::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    deadline_ = std::chrono::steady_clock::now() + opt_.drain_timeout;
  }
  cv_.notify_all();
  Wake(in_wake_.get());
  Wake(out_wake_.get());
  if (reader_.joinable()) reader_.join();
  if (writer_.joinable()) writer_.join();
  {
    // Never started (or the writer is gone): what is left is dropped.
    std::lock_guard lock(mu_);
    stats_.dropped += size_;
    size_ = 0;
  }
  if (tty_raw_.exchange(false)) {
    // TCSANOW: TCSADRAIN would wait for a stalled terminal.
    if (tcsetattr(opt_.in_fd, TCSANOW, &saved_tty_) != 0) {
      log().warn("{}: cannot restore the terminal: {}", opt_.name,
                 std::strerror(errno));
    }
  }
  ReportDrops(/*final=*/true);
  out_wake_.reset();
  in_wake_.reset();
  own_out_fd_.reset();
  out_fd_ = -1;
}

void StdioBackend::ReportDrops(bool final) {
  uint64_t dropped;
  {
    std::lock_guard lock(mu_);
    dropped = stats_.dropped;
    if (!final && dropped == reported_drops_) return;
    reported_drops_ = dropped;
  }
  if (final) {
    if (dropped != 0) {
      log().warn("{}: {} bytes of guest output were dropped (the output was "
                 "not read fast enough, or failed)",
                 opt_.name, dropped);
    }
    return;
  }
  drop_limit_.Warn("{}: output is not being read fast enough; dropped {} "
                   "bytes of guest output so far (the guest is not slowed "
                   "down)",
                   opt_.name, dropped);
}

bool StdioBackend::WaitWritable(int timeout_ms) {
  if (mode_ == OutMode::kPlain) return true;
  struct pollfd p[2] = {{out_fd_, POLLOUT, 0}, {out_wake_.get(), POLLIN, 0}};
  int n = ::poll(p, 2, timeout_ms);
  if (n <= 0) return false;
  if (p[1].revents & POLLIN) Drain(out_wake_.get());
  // POLLERR/POLLHUP: the write reports the error.
  return (p[0].revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) != 0;
}

ssize_t StdioBackend::WriteOut(const uint8_t* p, size_t n) {
  if (mode_ == OutMode::kSocket) {
    return ::send(out_fd_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  return ::write(out_fd_, p, n);
}

void StdioBackend::WriterLoop() {
  uint8_t chunk[kChunk];
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return size_ > 0 || stopping_; });
    if (size_ == 0) break;  // stopping, and everything is out
    int timeout_ms = kStallReportMs;
    if (stopping_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;  // Stop() drops the rest
      timeout_ms = static_cast<int>(
          std::min<int64_t>(left.count(), kStallReportMs));
    }
    const size_t n = std::min({size_, buf_.size() - head_, kChunk});
    std::memcpy(chunk, buf_.data() + head_, n);
    lock.unlock();

    ReportDrops(/*final=*/false);
    ssize_t w = -1;
    int err = EAGAIN;
    if (WaitWritable(timeout_ms)) {
      w = WriteOut(chunk, n);
      err = w < 0 ? errno : 0;
    }

    lock.lock();
    if (w > 0) {
      head_ = (head_ + static_cast<size_t>(w)) % buf_.size();
      size_ -= static_cast<size_t>(w);
      stats_.written += static_cast<uint64_t>(w);
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) continue;
    // A hard error (EPIPE: the reader went away; EBADF; ENOSPC ...): the
    // output is gone for good.
    failed_ = true;
    stats_.dropped += size_;
    size_ = 0;
    lock.unlock();
    log().warn("{}: writing guest output to fd {} failed: {}; dropping "
               "further output",
               opt_.name, opt_.out_fd,
               w == 0 ? "wrote 0 bytes" : std::strerror(err));
    lock.lock();
  }
}

void StdioBackend::InputLoop() {
  uint8_t buf[kChunk];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const size_t room = input_->InputRoom();
    struct pollfd p[2] = {{opt_.in_fd, POLLIN, 0}, {in_wake_.get(), POLLIN, 0}};
    // No room: the guest is not reading; wait for it, not for the host.
    const int n = room == 0 ? ::poll(&p[1], 1, kInputRetryMs)
                            : ::poll(p, 2, -1);
    if (n < 0 && errno != EINTR) return;
    if (n <= 0 || room == 0) continue;
    if (p[1].revents & POLLIN) return;  // Stop()
    if (p[0].revents & POLLNVAL) return;
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t r = ::read(opt_.in_fd, buf, std::min(room, sizeof buf));
    if (r == 0) return;  // end of input: the guest just gets no more
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      log().warn("{}: reading console input failed: {}; input is off",
                 opt_.name, std::strerror(errno));
      return;
    }
    const size_t taken =
        input_->PushInput(std::span<const uint8_t>(buf, static_cast<size_t>(r)));
    std::lock_guard lock(mu_);
    stats_.input += taken;
  }
}

void BufferBackend::Write(std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  buf_.append(reinterpret_cast<const char*>(data.data()), data.size());
}

std::string BufferBackend::contents() const {
  std::lock_guard lock(mu_);
  return buf_;
}

std::string BufferBackend::Take() {
  std::lock_guard lock(mu_);
  return std::exchange(buf_, std::string());
}

}  // namespace strata
