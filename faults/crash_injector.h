// Crash injection (the "nemesis"): crashes chosen nodes at random times and
// restarts them after a random downtime.
//
// Each plan draws from its own stream ("faults.crash.<node>"), so adding a
// plan for one node never changes when another node crashes. Crash times
// follow a Poisson process with the plan's mean interval; downtimes are
// uniform in [min, max]. Heal() ends injection for the liveness phase: no
// further crashes, and every node that is down restarts at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/node.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace paylab::faults {

struct CrashPlan {
  sim::Node* node = nullptr;
  sim::Duration mean_interval = 60 * sim::kSecond;
  sim::Duration downtime_min = 1 * sim::kSecond;
  sim::Duration downtime_max = 10 * sim::kSecond;
};

class CrashInjector {
 public:
  CrashInjector(sim::Simulator& sim, std::vector<CrashPlan> plans);

  // Schedules the first crash of every plan.
  void Start();
  // Stops injecting and restarts every node that is down.
  void Heal();

  int64_t crashes() const { return crashes_; }
  int64_t crashes_of(const sim::Node* node) const;
  sim::Duration downtime_total() const { return downtime_total_; }

 private:
  struct Armed {
    CrashPlan plan;
    sim::Rng rng;
    int64_t crashes = 0;
    sim::Time down_since = 0;
  };
  void ScheduleCrash(size_t i);
  void Restart(size_t i);

  sim::Simulator& sim_;
  std::vector<Armed> armed_;
  bool healed_ = false;
  int64_t crashes_ = 0;
  sim::Duration downtime_total_ = 0;
};

}  // namespace paylab::faults
