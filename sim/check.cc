// Throws the CheckFailure described in check.h.
#include "sim/check.h"

#include <fmt/format.h>

namespace paylab::sim {

void FailCheck(const char* condition, const char* file, int line) {
  throw CheckFailure(fmt::format("check failed: {} at {}:{}", condition, file, line));
}

}  // namespace paylab::sim
