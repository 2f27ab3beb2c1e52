#include "core/result.h"

namespace strata {

const char* ErrcName(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kOutOfRange: return "out of range";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kBusy: return "busy";
    case Errc::kIo: return "I/O error";
    case Errc::kGuestFault: return "guest fault";
    case Errc::kInternal: return "internal error";
  }
  return "unknown";
}

}  // namespace strata
