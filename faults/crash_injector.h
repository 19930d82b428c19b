// Crash injection (the "nemesis"): crashes nodes and restarts them after a
// downtime, from three sources:
//  - random plans: each crashes one node at Poisson times with the plan's
//    mean interval, downtimes uniform in [min, max];
//  - an explicit schedule: "crash payment at t=12.5 s for 5 s";
//  - fault points (faults/fault_points.h): a node's own code reached a
//    dangerous place and the plan says crash it there (CrashSoon).
//
// Each random plan draws from its own stream ("faults.crash.<node>"), so
// adding a plan for one node never changes when another node crashes.
// A crash due while the node is already down is skipped (a random plan
// tries again later). Heal() ends injection for the liveness phase: no
// further crashes, and every node this injector took down restarts at once.
//
// Every crash is recorded (node, time, downtime, cause) so that a run's
// realised faults can be written out as an explicit schedule (shrinking).
#pragma once

#include <cstdint>
#include <map>
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

// One crash of the explicit schedule.
struct ScheduledCrash {
  sim::Node* node = nullptr;
  sim::Time at = 0;
  sim::Duration downtime = sim::kSecond;
};

// A crash that happened.
struct RealisedCrash {
  sim::NodeId node = 0;
  sim::Time at = 0;
  sim::Duration downtime = 0;
  bool from_fault_point = false;
};

class CrashInjector {
 public:
  CrashInjector(sim::Simulator& sim, std::vector<CrashPlan> plans,
                std::vector<ScheduledCrash> schedule = {});

  // Schedules the first crash of every plan and every scheduled crash.
  void Start();
  // Crashes `node` as the next event (unless it is down by then) and
  // restarts it after `downtime`. For fault points: the caller has doomed
  // the node already, so this happens even after Heal().
  void CrashSoon(sim::Node* node, sim::Duration downtime);
  // Stops injecting and restarts every node that is down.
  void Heal();

  int64_t crashes() const { return crashes_; }
  sim::Duration downtime_total() const { return downtime_total_; }
  const std::vector<RealisedCrash>& realised() const { return realised_; }

 private:
  struct Armed {
    CrashPlan plan;
    sim::Rng rng;
  };
  void ScheduleRandom(size_t i);
  // Crashes `node` now if it is up; restarts it after `downtime`. Returns
  // false if it was down already.
  bool CrashNow(sim::Node* node, sim::Duration downtime, bool from_fault_point);
  void Restart(sim::Node* node);

  sim::Simulator& sim_;
  std::vector<Armed> armed_;
  std::vector<ScheduledCrash> schedule_;
  bool healed_ = false;
  int64_t crashes_ = 0;
  sim::Duration downtime_total_ = 0;
  // Nodes this injector took down, by id (ordered: heal restarts in id order).
  std::map<sim::NodeId, std::pair<sim::Node*, sim::Time>> down_;
  std::vector<RealisedCrash> realised_;
};

}  // namespace paylab::faults
