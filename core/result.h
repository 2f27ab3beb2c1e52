// strata — Result<T>: the error type of every fallible API call.
//
// No exceptions cross the public API. A call that can fail returns
// [[nodiscard]] Result<T>, shaped like std::expected<T, Error> so it can be
// swapped for it once the toolchain has <expected>. Messages say what was
// wrong and, where it helps, what to do about it. Programming errors assert.
#pragma once

#include <cassert>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace strata {

enum class Errc {
  kInvalidArgument,  // caller passed something malformed
  kNotFound,         // a file, key or object does not exist
  kOutOfRange,       // an address, index or size outside what is valid
  kAlreadyExists,    // e.g. an overlapping bus range
  kUnsupported,      // the host or build lacks the feature
  kBusy,             // the object is in a state that forbids the call
  kIo,               // a host system call failed (see sys_errno)
  kGuestFault,       // the guest did something that stops the VM
  kInternal,         // an invariant broke inside strata
};

const char* ErrcName(Errc c);

class Error {
 public:
  Error(Errc code, std::string message, int sys_errno = 0)
      : code_(code), message_(std::move(message)), sys_errno_(sys_errno) {}

  Errc code() const { return code_; }
  const std::string& message() const { return message_; }
  int sys_errno() const { return sys_errno_; }

  // Prefixes context, e.g. Wrap("loading kernel foo.elf").
  Error Wrap(std::string_view context) const {
    return Error(code_, fmt::format("{}: {}", context, message_), sys_errno_);
  }

 private:
  Errc code_;
  std::string message_;
  int sys_errno_;
};

template <typename... Args>
Error MakeError(Errc code, fmt::format_string<Args...> f, Args&&... args) {
  return Error(code, fmt::format(f, std::forward<Args>(args)...));
}

// An error for a failed system call; appends strerror(errno).
template <typename... Args>
Error SysError(fmt::format_string<Args...> f, Args&&... args) {
  int e = errno;
  return Error(Errc::kIo,
               fmt::format("{}: {}", fmt::format(f, std::forward<Args>(args)...),
                           std::strerror(e)),
               e);
}

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(const T& v) : v_(std::in_place_index<0>, v) {}                // NOLINT
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}          // NOLINT
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}        // NOLINT
  template <typename U, typename = std::enable_if_t<
                            std::is_constructible_v<T, U&&> &&
                            !std::is_same_v<std::decay_t<U>, T> &&
                            !std::is_same_v<std::decay_t<U>, Error>>>
  Result(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { assert(!has_value()); return std::get<1>(v_); }
  Error&& error() && { assert(!has_value()); return std::get<1>(std::move(v_)); }

  T value_or(T alt) const& { return has_value() ? value() : alt; }

 private:
  std::variant<T, Error> v_;
};

// Success holds no Error (no string to build and destroy): a Status is
// made and checked on every VM exit.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)) {}  // NOLINT

  bool has_value() const { return !e_.has_value(); }
  explicit operator bool() const { return has_value(); }
  void value() const { assert(has_value()); }
  const Error& error() const& { assert(!has_value()); return *e_; }
  Error&& error() && { assert(!has_value()); return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;
inline Status Ok() { return Status(); }

}  // namespace strata

// STRATA_TRY(expr): evaluates a Result; on error returns the error from the
// enclosing function, otherwise yields the value (GNU statement expression,
// supported by gcc and clang).
#define STRATA_TRY(expr)                                 \
  ({                                                     \
    auto strata_try_r_ = (expr);                         \
    if (!strata_try_r_) return std::move(strata_try_r_).error(); \
    std::move(strata_try_r_).value();                    \
  })

// STRATA_TRY_CTX(expr, context): as STRATA_TRY, wrapping the error message.
#define STRATA_TRY_CTX(expr, context)                    \
  ({                                                     \
    auto strata_try_r_ = (expr);                         \
    if (!strata_try_r_) return std::move(strata_try_r_).error().Wrap(context); \
    std::move(strata_try_r_).value();                    \
  })
