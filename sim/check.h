// Always-on assertions for programmer errors.
//
// PAYLAB_CHECK stays on in every build type (it does not look at NDEBUG).
// A failed check throws CheckFailure, which nothing in the simulator or the
// system catches: it unwinds out of Simulator::Run to the runner, which
// prints the message together with the seed and the one command that
// replays the run (there is no global "current seed" to print from here).
// Outside a simulation (unit tests) the exception fails the test.
#pragma once

#include <stdexcept>
#include <string>

namespace paylab::sim {

class CheckFailure : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void FailCheck(const char* condition, const char* file, int line);

}  // namespace paylab::sim

#define PAYLAB_CHECK(cond)                                 \
  do {                                                     \
    if (!(cond)) [[unlikely]] {                            \
      ::paylab::sim::FailCheck(#cond, __FILE__, __LINE__); \
    }                                                      \
  } while (0)
