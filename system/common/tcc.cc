// Names of the TCC statuses (see tcc.h).
#include "system/common/tcc.h"

namespace paylab::system {

std::string_view TccStatusName(TccStatus s) {
  switch (s) {
    case TccStatus::kOk:
      return "ok";
    case TccStatus::kDeclined:
      return "declined";
    case TccStatus::kCancelled:
      return "cancelled";
    case TccStatus::kExpired:
      return "expired";
    case TccStatus::kUnavailable:
      return "unavailable";
    case TccStatus::kInvalid:
      return "invalid";
  }
  return "?";
}

}  // namespace paylab::system
