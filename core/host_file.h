// strata — reading a host file the user named (kernel, initrd, config).
//
// A path on the command line is input like any other: it may name a FIFO
// (whose open() blocks until a writer appears — forever, in a VMM), a
// directory, a device that never ends (/dev/zero) or a file far larger than
// anything the VMM could use. ReadHostFile opens without blocking, checks
// that the path is a regular file of bounded size, and only then reads it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

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

// What a stat mode is, for messages: "a regular file", "a directory",
// "a FIFO (named pipe)", "a character device", "a block device", "a socket",
// "a symbolic link", "an unknown kind of file".
std::string_view FileTypeName(unsigned mode);

}  // namespace strata
