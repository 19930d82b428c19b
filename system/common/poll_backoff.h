// The pace of a polling consumer: poll every `min` while there is work, and
// back off (doubling, up to `max`) while polls come back empty, as a real
// consumer's long poll would. A quiet system then costs few simulated
// events, and a busy one is served at full speed.
//
// Deterministic: the pace depends only on what the polls returned.
#pragma once

#include <algorithm>

#include "sim/time.h"

namespace paylab::system {

class PollBackoff {
 public:
  // REQUIRES: 0 < min <= max.
  PollBackoff(sim::Duration min, sim::Duration max) : min_(min), max_(std::max(min, max)) {}

  // How long to wait before the next poll.
  sim::Duration next() const { return current_; }
  // Records what the last poll found.
  void Found(bool work) { current_ = work ? min_ : std::min(max_, current_ * 2); }

 private:
  sim::Duration min_;
  sim::Duration max_;
  sim::Duration current_ = min_;
};

}  // namespace paylab::system
